"""Bad numbers, degenerate fits and bad data reach a ValueError that names the problem (and the
fix) before any expensive work: the cases of the hardening battery (issue 17) that used to pass
silently or crash deep inside numpy/jax."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oodjax import data, gradients, scores, validation
from oodjax.data import ArraySource
from oodjax.evaluate import EvalData, evaluate
from oodjax.models import get
from oodjax.types import FitData, Head, ModelOutputs


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 0, -1.0, jnp.float32(0.0), np.float64(-2.0),
                                   jnp.asarray(float("inf")), np.asarray(0.0)])
def test_check_positive_refuses_every_kind_of_bad_scalar(value):
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        validation.check_positive("temperature", value)


def test_check_positive_passes_good_scalars_and_tracers():
    for v in (1, 2.5, np.float32(3.0), jnp.asarray(0.5)):
        validation.check_positive("t", v)
    jax.jit(lambda t: validation.check_positive("t", t) or t)(0.0)  # unknown under jit: not checked


@pytest.mark.parametrize("value", [2.5, "3", True, None, np.float64(4.0)])
def test_check_int_refuses_non_integers(value):
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        validation.check_int("k", value)
    validation.check_int("k", np.int64(3))  # NumPy integers are integers


def test_temperatures_and_odin_steps():
    z = jnp.ones((2, 3))
    for t in (float("inf"), jnp.float32(0.0)):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            scores.msp(z, temperature=t)
    x = jnp.ones((2, 4, 4, 1))
    net = lambda v: jnp.mean(v, axis=(1, 2)) @ jnp.ones((1, 3))  # noqa: E731
    for eps in (np.float32(-0.1), jnp.asarray(-0.1), float("nan")):
        with pytest.raises(ValueError, match="epsilon must be a finite number >= 0"):
            scores.odin(net, x, 2.0, eps)
    for std in ((0.0,), (1.0, -1.0, 1.0), (float("nan"),)):
        with pytest.raises(ValueError, match="std .* must hold finite numbers > 0"):
            scores.odin(net, x, 2.0, 0.001, std)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1, got 0"):
        gradients.per_sample_grad_norms(lambda v, xb: net(xb) * v["w"], lambda zz: jnp.sum(zz), {"w": jnp.ones(())},
                                        x, chunk_size=0)


def _features(n=30, d=6, seed=0):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=(n, d)), jnp.float32)


def test_non_finite_fit_features_are_named_by_row():
    h = _features().at[7, 2].set(jnp.nan)
    with pytest.raises(ValueError, match=r"KNN bank .*: 1 of 30 rows hold NaN or inf \(rows 7\)"):
        scores.get("knn", k=3).fit(FitData(train=ModelOutputs(features=h)))
    with pytest.raises(ValueError, match=r"training features: 1 of 30 rows hold NaN or inf \(rows 7\)"):
        scores.fit_mahalanobis(h, jnp.arange(30) % 3, 3)
    logits = h @ jnp.ones((6, 4))
    with pytest.raises(ValueError, match="rows hold NaN or inf"):
        scores.fit_vim(h, logits, Head(jnp.ones((6, 4)), jnp.zeros(4)), dim=3)


def test_degenerate_statistics_raise_instead_of_constant_scores():
    h = jnp.ones((30, 6))  # constant features: no variance
    with pytest.raises(ValueError, match="no variance about their class means"):
        scores.fit_mahalanobis(h, jnp.arange(30) % 3, 3)
    # Features inside a 2-dimensional subspace through the origin u = 0: zero residual for dim = 2.
    rng = np.random.default_rng(1)
    flat = jnp.asarray(np.c_[rng.normal(size=(30, 2)), np.zeros((30, 4))], jnp.float32)
    with pytest.raises(ValueError, match="no component outside their 2-dimensional principal space"):
        scores.fit_vim(flat, flat @ jnp.ones((6, 3)), Head(jnp.ones((6, 3)), jnp.zeros(3)), dim=2)


def _eval_setup(key):
    model = get("small_cnn", num_classes=3, in_channels=1, image_size=12, widths=(4,), feature_dim=8)
    rng = np.random.default_rng(0)
    img = lambda n: rng.uniform(0, 1, (n, 12, 12, 1)).astype(np.float32)  # noqa: E731
    d = EvalData(fit_images=img(30), fit_labels=rng.integers(0, 3, 30), id_val=ArraySource(img(8)),
                 id_test=ArraySource(img(10)), ood_sets=[data.ood_set_from_arrays("noise", img(10))],
                 normalize=lambda x: (x - 0.5) / 0.25, input_std=(0.25,))
    return model, model.init(key), d


def test_evaluate_names_bad_data_before_scoring(key):
    model, variables, d = _eval_setup(key)
    spec = {"knn": scores.get("knn", k=3)}
    fit = d.fit_images.copy()
    fit[4, 0, 0, 0] = np.nan  # the data layer refuses NaN pixels
    with pytest.raises(ValueError, match=r"fit_images: pixels must be finite and in \[0, 1\]"):
        evaluate(model, variables, spec, d._replace(fit_images=fit), key=key, progress=False)
    broken = jax.tree.map(lambda a: a, variables)  # a NaN weight: every output NaN
    broken["params"]["head"]["bias"] = broken["params"]["head"]["bias"].at[0].set(jnp.nan)
    with pytest.raises(ValueError, match=r"model's logits on the fit images: 30 of 30 rows hold NaN or inf .*: "
                                         r"check those images \(NaN pixels\?\) and the model's weights"):
        evaluate(model, broken, spec, d, key=key, progress=False)
    with pytest.raises(ValueError, match=r"image sets \['empty'\] are empty"):
        evaluate(model, variables, spec, d._replace(ood_sets=[data.ood_set_from_arrays(
            "empty", np.zeros((0, 12, 12, 1), np.float32))]), key=key, progress=False)
    with pytest.raises(ValueError, match="EvalData.input_std must hold finite numbers > 0"):
        evaluate(model, variables, spec, d._replace(input_std=(0.0,)), key=key, progress=False)


def test_every_scorer_refuses_nan_inf_negative_and_fractional_hyperparameters():
    """The sweep of the hardening battery: every numeric hyper-parameter of every registered scorer
    given NaN, inf, -1 (and 2.5 or 0 where it is an integer) is refused when the scorer is built,
    except the values that are meaningful (listed)."""
    import inspect

    from oodjax.scores import _registry

    # The zeros that mean something: keep every activation, no input step, no penalty, no cut-off.
    meaningful = {"ash_b.percentile", "ash_p.percentile", "ash_s.percentile", "scale.percentile", "dice.sparsity",
                  "adascale_a.p_min", "adascale_l.p_min", "adascale_a.lam", "adascale_l.lam", "grodin_g.epsilon",
                  "grodin_sg.epsilon", "odin.epsilon", "nci.alpha", "mahalanobis.rcond", "rmds.rcond",
                  "weiper_kld.lambda1", "weiper_kld.lambda2"}
    unclipped = {"rg.k", "rg_additive.k", "uv.k"}  # a clip threshold of inf clips nothing (paper 002's k = inf)
    accepted = []
    for name in scores.names():
        for param, p in inspect.signature(_registry._REGISTRY.get(name)).parameters.items():
            if isinstance(p.default, bool) or not isinstance(p.default, (int, float)):
                continue
            for v in [float("nan"), float("inf"), -1] + ([2.5, 0] if isinstance(p.default, int) else [0.0]):
                try:
                    scores.get(name, **{param: v})
                except (ValueError, TypeError) as e:
                    assert param in str(e) or "percentile" in str(e) or "M " in str(e), (name, param, v, e)
                else:
                    if not ((v == 0 and f"{name}.{param}" in meaningful)
                            or (v == float("inf") and f"{name}.{param}" in unclipped)):
                        accepted.append((name, param, v))
    assert accepted == []


def test_fitted_states_name_a_feature_dimension_mismatch():
    h = _features(30, 6)
    y = jnp.arange(30) % 3
    with pytest.raises(ValueError, match="features has 5 dimensions but the Mahalanobis state was fitted on 6"):
        scores.mahalanobis(h[:, :5], scores.fit_mahalanobis(h, y, 3))
    with pytest.raises(ValueError, match="features has 5 dimensions but the KNN bank was fitted on 6"):
        scores.knn(h[:, :5], h, 3)
    with pytest.raises(ValueError, match=r"k must be in \[1, 30\] \(the bank size\), got 31"):
        scores.knn(h, h, 31)
    state = scores.fit_vim(h, h @ jnp.ones((6, 4)), Head(jnp.eye(6, 4), jnp.zeros(4)), dim=3)
    with pytest.raises(ValueError, match="features has 7 dimensions but the ViM state was fitted on 6"):
        scores.vim(jnp.ones((2, 4)), jnp.ones((2, 7)), state)
