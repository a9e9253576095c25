"""What extending oodjax costs, measured by doing it: a new post-hoc scorer, a new gradient score
and a new report view, each written here as a user would (in one file of their own), counted in
lines, and run through the library."""

import json
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from oodjax import data, metrics, models, scores
from oodjax.data import ArraySource
from oodjax.evaluate import EvalData, EvalResult, evaluate
from oodjax.experiment import EmbeddedData, Experiment, ModelSpec
from oodjax.experiment import views
from oodjax.experiment.report import write_report

NEW_POSTHOC = '''
@scores.register("ext_logit_range")
def _logit_range():
    return scores.stateless(lambda out: jnp.max(out.logits, -1) - jnp.min(out.logits, -1), needs={"logits"})
'''
NEW_GRADIENT = '''
def entropy_loss(z, hyper):
    return -jnp.sum(jax.nn.softmax(z) * jax.nn.log_softmax(z))

@scores.register("ext_entropy_gradnorm")
def _entropy_gradnorm():
    return scores.gradient_scorer(entropy_loss, selector="head_kernel", norm="l1")
'''
NEW_VIEW = '''
@register_view("ext_worst_fpr")
def _worst(report):
    worst = max(report.records, key=lambda r: r["fpr95"])
    (report.out_dir / "worst.json").write_text(json.dumps(worst))
'''
COST = {name: len([l for l in textwrap.dedent(src).splitlines() if l.strip()])
        for name, src in (("post-hoc scorer", NEW_POSTHOC), ("gradient score", NEW_GRADIENT), ("view", NEW_VIEW))}


def _namespace():
    from oodjax.experiment import register_view

    ns = {"scores": scores, "jnp": jnp, "jax": jax, "json": json, "register_view": register_view}
    for src in (NEW_POSTHOC, NEW_GRADIENT, NEW_VIEW):
        exec(textwrap.dedent(src), ns)  # noqa: S102
    return ns


def test_extensions_are_a_few_lines_in_one_file(key, tmp_path):
    try:
        _check_extensions(key, tmp_path)
    finally:  # other tests derive scorer lists from the registry
        for name in ("ext_logit_range", "ext_entropy_gradnorm"):
            scores._registry._REGISTRY.remove(name)
        views._VIEWS.remove("ext_worst_fpr")


def _check_extensions(key, tmp_path):
    _namespace()
    print(f"\nlines to add (one file each): {COST}")
    assert COST == {"post-hoc scorer": 3, "gradient score": 5, "view": 4}
    # The new scorers run through the evaluation like the built-in ones.
    model = models.get("small_cnn", num_classes=3, in_channels=1, image_size=12, widths=(4, 8), feature_dim=8)
    variables = model.init(key)
    rng = np.random.default_rng(0)
    img = lambda n: rng.uniform(0, 1, (n, 12, 12, 1)).astype(np.float32)  # noqa: E731
    d = EvalData(img(20), rng.integers(0, 3, 20), ArraySource(img(10)), ArraySource(img(30)),
                 [data.ood_set_from_arrays("noise", img(25))], normalize=lambda a: a, input_std=(1.0,))
    built = {n: scores.get(n) for n in ("ext_logit_range", "ext_entropy_gradnorm")}
    result = evaluate(model, variables, built, d, key=key, batch_size=16, progress=False)
    assert {r["scorer"] for r in result.records} == set(built)
    # Minus (by default a small gradient means ID) the entropy's gradient norm over the head kernel,
    # whose closed form is ||h||_1 sum_c |dH/dz_c|.
    logits, features = model.apply(variables, jnp.asarray(d.id_test.images))
    p = jax.nn.softmax(logits)
    dh = -p * (jax.nn.log_softmax(logits) + jnp.sum(-p * jax.nn.log_softmax(logits), -1, keepdims=True))
    want = -jnp.sum(jnp.abs(features), -1) * jnp.sum(jnp.abs(dh), -1)
    np.testing.assert_allclose(result.scores["ext_entropy_gradnorm"]["noise"][0], want, rtol=1e-4, atol=1e-7)
    # The new view writes its file in a report.
    exp = Experiment(name="ext", data=EmbeddedData(), models=(ModelSpec("m", {}),), views=("ext_worst_fpr",),
                     results_dir=str(tmp_path))
    write_report(exp, [("m", EvalResult([dict(r, model="m") for r in result.records], 0.5, result.scores))], 0.0)
    worst = json.loads((tmp_path / "ext" / "worst.json").read_text())
    assert worst["fpr95"] == max(r["fpr95"] for r in result.records)
    assert set(metrics.METRIC_NAMES) <= set(worst)
