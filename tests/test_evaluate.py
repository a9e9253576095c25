"""The evaluation pipeline: tuning sees only validation splits, streaming equals one big batch,
bootstrap std, plots, and the errors a user can hit."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oodjax import data, metrics, scores
from oodjax.data import ArraySource
from oodjax.evaluate import EvalData, build_scorers, evaluate
from oodjax.models import get
from oodjax.plots import write_plots

SPEC = {
    "msp": ("msp", {}),
    "knn": ("knn", {"k": 3}),
    "gram": ("gram", {"powers": (1, 2)}),
    "odin": ("odin", {"temperatures": (1.0, 100.0), "epsilons": (0.0, 0.01)}),
}


def _setup(key):
    model = get("small_cnn", num_classes=3, in_channels=1, image_size=12, widths=(4, 8), feature_dim=8)
    variables = model.init(key)
    rng = np.random.default_rng(0)
    img = lambda n, lo=0.0, hi=1.0: rng.uniform(lo, hi, (n, 12, 12, 1)).astype(np.float32)  # noqa: E731
    sets = [data.ood_set_from_arrays("bright", img(50, 0.5, 1.0)), data.ood_set_from_arrays("dark", img(45, 0.0, 0.3))]
    d = EvalData(fit_images=img(60), fit_labels=rng.integers(0, 3, 60), id_val=ArraySource(img(30)),
                 id_test=ArraySource(img(70)), ood_sets=sets, normalize=lambda x: (x - 0.5) / 0.25, input_std=(0.25,))
    return model, variables, d, dict(key=key, batch_size=32, progress=False)


def test_evaluate_records_and_tuning_on_validation_only(key):
    model, variables, kw, opts = _setup(key)
    d = kw._replace(id_test_labels=np.zeros(70, int))
    result = evaluate(model, variables, build_scorers(SPEC), d, bootstrap=3, **opts)
    assert len(result.records) == len(SPEC) * 2
    assert result.id_accuracy is not None and 0 <= result.id_accuracy <= 1
    for r in result.records:
        assert {*metrics.METRIC_NAMES, "auroc_std", "id_accuracy"} <= set(r)
        assert ("tuned" in r) == (r["scorer"] == "odin")
    # The tuned values are those of tune_odin on the validation splits alone.
    logits_fn = jax.tree_util.Partial(functools.partial(lambda a, v, x: a(v, x)[0], model.apply), variables)
    norm = lambda x: jnp.asarray(kw.normalize(x))  # noqa: E731
    want = scores.tune_odin(
        logits_fn, norm(kw.id_val.images), {s.name: norm(s.val.images) for s in kw.ood_sets},
        jnp.asarray([0.25]), scores._odin.OdinGrid((1.0, 100.0), (0.0, 0.01)))
    for r in result.records:
        if r["scorer"] == "odin":
            t, e, _ = want[r["ood_set"]]
            assert r["tuned"] == pytest.approx({"temperature": t, "epsilon": e})
    # Streaming in batches of 32 gives the scores of one plain call on the whole set.
    id_s, ood_s = result.scores["msp"]["dark"]
    np.testing.assert_allclose(id_s, scores.msp(model.apply(variables, norm(kw.id_test.images))[0]), rtol=1e-5)
    assert ood_s.shape == (len(kw.ood_sets[1].test),)


def test_plots(key, tmp_path):
    model, variables, kw, opts = _setup(key)
    result = evaluate(model, variables, build_scorers({"msp": ("msp", {})}), kw, **opts)
    records = [dict(r, kind="covariate", severity=i + 1, ood_set=f"blur-{i + 1}") for i, r in enumerate(result.records)]
    paths = write_plots(result.scores, records, tmp_path)
    assert {p.name for p in paths} == {"roc_msp.png", "density_msp.png", "auroc_vs_severity.png"}
    assert all(p.stat().st_size > 1000 for p in paths)


def test_evaluate_bad_input(key):
    model, variables, kw, opts = _setup(key)
    no_val = data.ood_set_from_arrays("noval", kw.ood_sets[0].test.images, val_fraction=0.0)
    with pytest.raises(ValueError, match=r"\['noval'\] have no validation split.*\['odin'\]"):
        evaluate(model, variables, build_scorers(SPEC), kw._replace(ood_sets=[no_val]), **opts)
    with pytest.raises(ValueError, match="fit_labels"):
        evaluate(model, variables, build_scorers({"knn": ("knn", {"k": 3})}), kw._replace(fit_labels=np.full(60, 3)),
                 **opts)
    wrong = data.ood_set_from_arrays("rgb", np.zeros((10, 12, 12, 3), np.float32))
    with pytest.raises(ValueError, match=r"model takes \(12, 12, 1\)"):
        evaluate(model, variables, build_scorers({"msp": ("msp", {})}), kw._replace(ood_sets=[wrong]), **opts)
    with pytest.raises(ValueError, match="unique"):
        evaluate(model, variables, build_scorers({"msp": ("msp", {})}), kw._replace(ood_sets=kw.ood_sets * 2), **opts)
    # A scorer whose needs the model cannot meet: an error naming both, before any model call.
    calls = []
    counted = model._replace(apply=lambda *a, **k: calls.append(1) or model.apply(*a, **k))
    with pytest.raises(ValueError, match=r"scorer 'amp' needs \['samples'\], which model 'plain' does not provide"):
        evaluate(counted, variables, build_scorers({"msp": ("msp", {}), "amp": ("amp", {})}), kw, model_label="plain",
                 **opts)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match=f"scorer 'g' has chunk={bad!r}: give a positive int"):
            evaluate(counted, variables, {"g": scores.get("grodin_g")._replace(chunk=bad)}, kw, **opts)
    assert calls == []


def test_evaluate_computes_only_what_the_scorers_need(key):
    """MSP alone: no fit or validation pass, no intermediate maps, no inputs kept; each scorer
    sees only the fields it declared."""
    model, variables, kw, opts = _setup(key)
    seen, maps_calls = [], []
    spy = scores.Scorer(lambda d: seen.append(d) or (), lambda st, out: seen.append(out) or scores.msp(out.logits))
    counted = model._replace(maps=lambda *a: maps_calls.append(1) or model.maps(*a))
    evaluate(counted, variables, {"spy": spy}, kw, **opts)
    fit, outputs = seen[0], seen[1:]
    assert fit == scores.FitData()  # needs = {logits}: nothing to fit on
    assert maps_calls == [] and outputs
    assert all(o.features is None and o.inputs is None and o.maps is None and o.model is None for o in outputs)
    # A scorer that needs maps but has no map_reduce gets the maps as they are.
    seen.clear()
    raw = scores.Scorer(lambda d: (), lambda st, out: seen.append(out.maps) or scores.msp(out.logits),
                        frozenset({"logits", "maps"}))
    evaluate(model, variables, {"raw": raw}, kw, **opts)
    assert seen and all(isinstance(m, tuple) and m[0].ndim == 4 for m in seen)


def test_validation_labels_reach_temp_scale_and_are_checked(key):
    model, variables, d, opts = _setup(key)
    spec = build_scorers({"ts": ("temp_scale", {})})
    with pytest.raises(ValueError, match="'ts' needs \\['val_labels'\\]"):
        evaluate(model, variables, spec, d, **opts)  # no id_val_labels given
    with pytest.raises(ValueError, match="id_val_labels must be 30 integers in \\[0, 3\\)"):
        evaluate(model, variables, spec, d._replace(id_val_labels=np.full(30, 3)), **opts)
    labels = np.arange(30) % 3
    result = evaluate(model, variables, spec, d._replace(id_val_labels=labels), **opts)
    logits = model.apply(variables, jnp.asarray(d.normalize(d.id_val.images)))[0]
    t = scores.get("temp_scale").fit(scores.FitData(val=scores.ModelOutputs(logits), val_labels=jnp.asarray(labels)))
    s_id = np.asarray(jnp.max(jax.nn.softmax(model.apply(variables, jnp.asarray(d.normalize(d.id_test.images)))[0] / t,
                                             axis=-1), axis=-1))
    np.testing.assert_allclose(result.scores["ts"]["bright"][0], s_id, rtol=1e-5)


def test_sharding_over_devices_does_not_change_the_scores(key):
    """Each batch sharded over 4 devices (padded to a multiple of 4) gives one device's scores."""
    from oodjax.parallel import batch_mesh

    assert jax.device_count() == 4
    model, variables, kw, opts = _setup(key)
    spec = {**SPEC, "gradnorm": ("gradnorm", {}), "mahalanobis": ("mahalanobis", {})}
    opts = {**opts, "batch_size": 30}  # not a multiple of 4: every batch is padded to 32 rows
    one = evaluate(model, variables, build_scorers(spec), kw, mesh=batch_mesh(jax.devices()[:1]), **opts)
    four = evaluate(model, variables, build_scorers(spec), kw, **opts)  # default: all 4 devices
    for label in spec:
        for name in ("bright", "dark"):
            for a, b in zip(one.scores[label][name], four.scores[label][name]):
                assert a.shape == b.shape
                np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=f"{label} on {name}")
    assert [r["scorer"] for r in one.records] == [r["scorer"] for r in four.records]
    for r1, r4 in zip(one.records, four.records):
        assert abs(r1["auroc"] - r4["auroc"]) < 1e-3, (r1["scorer"], r1["ood_set"])


def test_gradient_scorers_scored_in_pieces_on_cpu_equal_one_call(key):
    """A scorer with a `chunk` is scored in pieces of that many rows on the CPU (the last piece
    shifted back to end at the last row): the scores equal one call on the whole batch, on one
    device and sharded over four, for batch sizes that leave a partial last piece or none."""
    from oodjax.evaluate import _in_pieces
    from oodjax.parallel import batch_mesh

    model, variables, kw, opts = _setup(key)
    grodin = scores.get("grodin_g", temperatures=(1.0, 10.0), epsilons=(0.0, 0.01))
    assert grodin.chunk == 64
    x = jnp.asarray(kw.normalize(kw.id_test.images))
    state = {**grodin.fit(scores.FitData()), "epsilon": jnp.float32(0.01)}  # with ODIN's input step
    predict = scores.Predict(model.apply, variables, (0.25,))
    seen = []

    def spy(state, view):
        seen.append(view.inputs.shape[0])
        return grodin.score(state, view)

    whole = np.asarray(grodin.score(state, scores.ModelOutputs(inputs=x, model=predict)))
    for n, piece in [(70, 16), (64, 16), (70, 70), (70, 100), (17, 5)]:
        seen.clear()
        got = _in_pieces(spy, piece, batch_mesh(jax.devices()[:1]))(state, scores.ModelOutputs(inputs=x[:n], model=predict))
        np.testing.assert_allclose(np.asarray(got), whole[:n], rtol=1e-5, err_msg=f"n={n}, piece={piece}")
        assert set(seen) == {min(n, piece)} and len(seen) == -(-n // piece), (n, piece, seen)
    assert _in_pieces(spy, None, batch_mesh()) is spy  # no chunk: one call
    # Through evaluate, on 4 devices: pieces of 16 rows give the scores of the unsplit scorer.
    opts = {**opts, "batch_size": 40}
    split = evaluate(model, variables, {"g": grodin._replace(chunk=16)}, kw, **opts)
    one = evaluate(model, variables, {"g": grodin._replace(chunk=None)}, kw, **opts)
    for name in ("bright", "dark"):
        for a, b in zip(one.scores["g"][name], split.scores["g"][name]):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6, err_msg=name)
