"""Ensemble uncertainty measures against their definitions, the ensemble Model, temperature
scaling and ECE against numpy loops."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import entropy as np_entropy

from oodjax import calibration, data, models, scores
from oodjax.data import ArraySource
from oodjax.evaluate import EvalData, build_scorers, evaluate
from oodjax.plots import plot_reliability


def test_ensemble_measures_against_their_definitions():
    rng = np.random.default_rng(0)
    samples = (rng.normal(size=(5, 4, 3)) * 2).astype(np.float32)  # (N, K, C)
    p = softmax(samples.astype(np.float64), axis=-1)
    p_bar = p.mean(1)
    h_bar = np_entropy(p_bar, axis=-1)
    e_h = np.mean([np_entropy(p[:, k], axis=-1) for k in range(4)], axis=0)
    kl = lambda a, b: np.sum(a * np.log(a / b), axis=-1)  # noqa: E731
    want = {
        "confidence": p_bar.max(1),
        "entropy_of_expected": h_bar,
        "expected_entropy": e_h,
        "mutual_information": h_bar - e_h,
        "epkl": np.mean([kl(p[:, k], p[:, m]) for k, m in itertools.product(range(4), range(4))], axis=0),
        "mkl": np.mean([kl(p_bar, p[:, k]) for k in range(4)], axis=0),
    }
    s = jnp.asarray(samples)
    for name, w in want.items():
        np.testing.assert_allclose(getattr(scores, name)(s), w, rtol=1e-4, atol=1e-6, err_msg=name)
    mi = np.asarray(scores.mutual_information(s))
    assert np.all(mi >= -1e-6)
    np.testing.assert_allclose(mi, np.mean([kl(p[:, k], p_bar) for k in range(4)], axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(scores.epkl(s), mi + np.asarray(scores.mkl(s)), rtol=1e-4, atol=1e-6)
    # Registered as ID-scores (higher = ID): the uncertainties negated, confidence as is.
    out = scores.ModelOutputs(jnp.zeros((5, 3)), jnp.zeros((5, 1)), samples=s)
    for name, fn in scores.ENSEMBLE_MEASURES.items():
        key = name.removeprefix("ens_")
        sign = 1.0 if key == "confidence" else -1.0
        np.testing.assert_allclose(scores.get(name).score((), out), sign * want[key], rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="K >= 2"):
        scores.mkl(s[:, :1])
    with pytest.raises(ValueError, match="ensemble"):
        scores.get("ens_epkl").score((), out._replace(samples=None))


def test_ensemble_model_through_the_pipeline(key):
    net = models.get("small_cnn", num_classes=3, in_channels=1, image_size=8, widths=(4,), feature_dim=4)
    members = [net.init(jax.random.fold_in(key, k)) for k in range(3)]
    ens = models.ensemble(net)
    variables = models.stack_members(members)
    x = jax.random.normal(key, (6, 8, 8, 1))
    logits, _, samples = ens.samples(variables, x)
    for k, v in enumerate(members):
        np.testing.assert_allclose(samples[:, k], net.apply(v, x)[0], rtol=1e-5, atol=1e-6)
    p = softmax(np.asarray(samples, np.float64), -1).mean(1)
    np.testing.assert_allclose(jax.nn.softmax(logits, -1), p, rtol=1e-5)
    rng = np.random.default_rng(0)
    img = lambda n: rng.uniform(0, 1, (n, 8, 8, 1)).astype(np.float32)  # noqa: E731
    spec = {n: (n, {}) for n in scores.ENSEMBLE_MEASURES} | {"msp": ("msp", {})}
    d = EvalData(fit_images=img(16), fit_labels=rng.integers(0, 3, 16), id_val=ArraySource(img(8)),
                 id_test=ArraySource(img(20)), ood_sets=[data.ood_set_from_arrays("noise", img(20))],
                 normalize=lambda a: a, input_std=(1.0,))
    res = evaluate(ens, variables, build_scorers(spec), d, key=key, batch_size=8, progress=False)
    assert {r["scorer"] for r in res.records} == set(spec)
    with pytest.raises(ValueError, match="at least 2"):
        models.stack_members(members[:1])


def _ece_loop(logits, labels, bins):
    """ECE written out: equal-width bins over the max-softmax confidence."""
    p = softmax(logits, axis=1)
    conf, pred = p.max(1), p.argmax(1)
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        in_bin = [i for i in range(len(conf)) if (lo < conf[i] <= hi) or (b == 0 and conf[i] == 0.0)]
        if in_bin:
            acc = np.mean([pred[i] == labels[i] for i in in_bin])
            total += len(in_bin) / len(conf) * abs(acc - np.mean(conf[in_bin]))
    return total


def test_temperature_scaling_and_ece(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    logits = rng.normal(size=(400, 4)) + 3.0 * np.eye(4)[labels] * rng.uniform(0, 2, (400, 1))
    logits = 4.0 * logits  # over-confident
    t = calibration.fit_temperature(logits, labels)
    grid = np.exp(np.linspace(np.log(0.05), np.log(100), 4001))
    brute = grid[np.argmin([calibration.nll(logits, labels, g) for g in grid])]
    assert abs(np.log(t) - np.log(brute)) < 2e-3 and t > 1
    assert calibration.nll(logits, labels, t) <= calibration.nll(logits, labels, 1.0)
    for bins in (5, 15):
        np.testing.assert_allclose(calibration.ece(logits, labels, bins), _ece_loop(logits, labels, bins), atol=1e-12)
    assert calibration.ece(logits, labels, 15, temperature=t) < calibration.ece(logits, labels, 15)
    q = calibration.reliability(logits, labels, 10, "quantile")
    assert np.all(q["count"] == 40)
    path = plot_reliability({"T = 1": calibration.reliability(logits, labels),
                             f"T = {t:.2f}": calibration.reliability(logits, labels, temperature=t)},
                            tmp_path / "reliability.png")
    assert path.exists()
    with pytest.raises(ValueError, match="labels"):
        calibration.ece(logits, labels + 4)
    with pytest.raises(ValueError, match="binning"):
        calibration.ece(logits, labels, binning="log")
