"""AMP / anchoring (paper 000): marginalization against a numpy loop over anchors written from eq. 1,
tau and both calibrations against numpy, anchored training, augmentations, the whole path, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import log_softmax as np_log_softmax
from scipy.special import softmax as np_softmax

from oodjax import anchoring, data, scores
from oodjax.data import ArraySource
from oodjax.evaluate import EvalData, build_scorers, evaluate
from oodjax.models import get
from oodjax.training import TrainConfig, train


def _net(key, channels=1, size=10, classes=3):
    model = get("small_cnn", num_classes=classes, in_channels=2 * channels, image_size=size, widths=(4, 8),
                feature_dim=8)
    return model, model.init(key)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _eq1_loop(apply, variables, x, anchors):
    """Eq. 1 and Fig. 3 written as a loop over anchors: H = mean_k f([c_k, x - c_k]),
    tau = sum_c std_k sigmoid(f(.))_c with torch's unbiased std."""
    preds = []
    for c in np.asarray(anchors):
        xa = np.concatenate([np.broadcast_to(c, x.shape), np.asarray(x) - c], axis=-1)
        preds.append(np.asarray(apply(variables, jnp.asarray(xa))[0], np.float64))
    p = np.stack(preds)  # (K, N, C), as in Fig. 3
    return p.mean(0), _sigmoid(p).std(0, ddof=1).sum(1), _sigmoid(p).std(0, ddof=1).mean(1), p


def test_marginalize_equals_a_loop_over_anchors(key):
    model, variables = _net(key)
    x = jax.random.normal(jax.random.key(1), (7, 10, 10, 1))
    anchors = jax.random.normal(jax.random.key(2), (4, 10, 10, 1))
    h, tau_sum, tau_mean, p = _eq1_loop(model.apply, variables, x, anchors)
    m = anchoring.marginalize(model.apply, variables, x, anchors)
    np.testing.assert_allclose(m.mean_logits, h, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m.tau, tau_sum, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(m.samples, np.swapaxes(p, 0, 1), rtol=1e-5, atol=1e-5)
    m_mean = anchoring.marginalize(model.apply, variables, x, anchors, reduce="mean")
    np.testing.assert_allclose(m_mean.tau, tau_mean, rtol=1e-4, atol=1e-7)
    # H is the head of the mean features (the head is linear).
    head = model.head(variables)
    np.testing.assert_allclose(m.features @ head.kernel + head.bias[None, :], h, rtol=1e-4, atol=1e-5)


def test_per_sample_anchors_are_drawn_from_the_pool(key):
    model, variables = _net(key)
    x = jax.random.normal(jax.random.key(1), (5, 10, 10, 1))
    pool = jax.random.normal(jax.random.key(2), (3, 10, 10, 1))
    m = anchoring.marginalize(model.apply, variables, x, pool, key=jax.random.key(3), num_anchors=6)
    assert m.samples.shape == (5, 6, 3)
    # Every anchored prediction is f([c_j, x - c_j]) for one pool image c_j.
    per_anchor = np.stack([np.asarray(model.apply(variables, anchoring.anchor_input(x, c))[0]) for c in pool])
    for i in range(5):
        for k in range(6):
            dist = np.abs(per_anchor[:, i] - np.asarray(m.samples[i, k])).max(axis=1)
            assert dist.min() < 1e-4
    # Different samples get different draws (with 3^6 patterns per sample, equal rows are unlikely).
    chosen = [[int(np.abs(per_anchor[:, i] - np.asarray(m.samples[i, k])).max(1).argmin()) for k in range(6)]
              for i in range(5)]
    assert len({tuple(c) for c in chosen}) > 1


def test_tau_calibrations_and_scores_against_numpy():
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(6, 4, 5)).astype(np.float32) * 3  # (N, K, C)
    s64 = samples.astype(np.float64)
    std = _sigmoid(s64).std(axis=1, ddof=1)
    np.testing.assert_allclose(anchoring.anchor_temperature(jnp.asarray(samples)), std.sum(1), rtol=1e-5)
    np.testing.assert_allclose(anchoring.anchor_temperature(jnp.asarray(samples), "mean"), std.mean(1), rtol=1e-5)
    h, tau = s64.mean(1), std.sum(1)
    for calibration, hc in (("tau", h / tau[:, None]), ("one_plus_exp", h / (1 + np.exp(tau))[:, None])):
        got = anchoring.calibrate(jnp.asarray(h, jnp.float32), jnp.asarray(tau, jnp.float32), calibration)
        np.testing.assert_allclose(got, hc, rtol=1e-5)
        out = scores.ModelOutputs(jnp.asarray(h, jnp.float32), jnp.zeros((6, 2)), samples=jnp.asarray(samples))
        want = {
            "amp": -np_log_softmax(hc, axis=1).mean(1),  # eq. 2
            "amp_msp": np_softmax(hc, axis=1).max(1),
            "amp_energy": np.log(np.exp(hc).sum(1)),
            "amp_entropy": (np_softmax(hc, axis=1) * np_log_softmax(hc, axis=1)).sum(1),
        }
        for name, w in want.items():
            sc = scores.get(name, calibration=calibration)
            np.testing.assert_allclose(sc.score(sc.fit(None), out), w, rtol=1e-4, atol=1e-5)
    tau_scorer = scores.get("amp_tau", reduce="mean")
    np.testing.assert_allclose(tau_scorer.score((), out), -std.mean(1), rtol=1e-5)


def test_amp_is_higher_for_a_confident_consistent_prediction():
    confident = jnp.tile(jnp.asarray([[8.0, 0.0, 0.0]]), (1, 4, 1)) + jnp.asarray([0.0, 0.1, -0.1, 0.0])[None, :, None]
    flat = jnp.asarray([[[2.0, 0.0, 1.0], [0.0, 2.0, 1.0], [1.0, 0.0, 2.0], [0.0, 1.0, 0.0]]])
    out = scores.ModelOutputs(jnp.zeros((2, 3)), jnp.zeros((2, 1)), samples=jnp.concatenate([confident, flat]))
    for name in ("amp", "amp_msp", "amp_energy", "amp_entropy", "amp_tau"):
        s = scores.get(name).score((), out)
        assert s[0] > s[1], name


def test_anchor_input_with_a_zero_anchor_is_zero_and_x():
    x = jax.random.normal(jax.random.key(0), (3, 5, 5, 2))
    z = anchoring.anchor_input(x, jnp.zeros((5, 5, 2)))
    np.testing.assert_array_equal(z, jnp.concatenate([jnp.zeros_like(x), x], axis=-1))
    batch = anchoring.anchored_batch(x, jnp.zeros((1, 5, 5, 2)).repeat(2, 0))
    np.testing.assert_array_equal(batch[:3], z)


@pytest.mark.parametrize("replacement", [False, True])
def test_anchored_training_transform(replacement):
    x = jax.random.normal(jax.random.key(0), (8, 6, 6, 3))
    t = anchoring.AnchoredTraining(replacement=replacement, every=2)
    for step in (0, 1):
        out = jax.jit(t)(jax.random.key(step), x, jnp.asarray(step))
        assert out.shape == (8, 6, 6, 6)
        clean_anchor = x - out[..., 3:]  # the residual always uses the clean anchor
        rows = [int(np.argmin(np.abs(np.asarray(x) - np.asarray(c)).reshape(8, -1).max(1))) for c in clean_anchor]
        np.testing.assert_allclose(clean_anchor, np.asarray(x)[rows], atol=1e-6)
        if not replacement:
            assert sorted(rows) == list(range(8))  # a shuffle of the batch
        corrupted = not np.allclose(out[..., :3], clean_anchor, atol=1e-6)
        assert corrupted == (step % 2 == 0)  # T(c) on every 2nd step only
    plain = anchoring.AnchoredTraining(corruptions=())(jax.random.key(0), x, jnp.asarray(0))
    np.testing.assert_allclose(plain[..., :3], x - plain[..., 3:], atol=1e-6)


def test_augmentations():
    key = jax.random.key(0)
    x = jax.random.uniform(key, (4, 12, 12, 3))
    for name, fn in anchoring.AUGMENTATIONS.items():
        out = jax.jit(fn)(key, x)
        assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out))), name
    np.testing.assert_allclose(anchoring.horizontal_flip(key, x, p=1.0), x[:, :, ::-1])
    gray = x @ jnp.asarray([0.299, 0.587, 0.114])
    np.testing.assert_allclose(anchoring.grayscale(key, x, p=1.0), jnp.repeat(gray[..., None], 3, -1), rtol=1e-6)
    np.testing.assert_allclose(anchoring.grayscale(key, x[..., :1], p=1.0), x[..., :1])
    # Neutral parameters are the identity.
    np.testing.assert_allclose(anchoring.resized_crop(key, x, scale=(1.0, 1.0), ratio=(1.0, 1.0)), x, atol=1e-5)
    np.testing.assert_allclose(anchoring.color_jitter(key, x, 0.0, 0.0, 0.0, 0.0), x, atol=1e-5)
    # A blur keeps a constant image and smooths noise.
    const = jnp.full((2, 12, 12, 1), 0.7)
    np.testing.assert_allclose(anchoring.gaussian_blur(key, const), const, rtol=1e-6)
    blurred = anchoring.gaussian_blur(key, x, sigma=(1.5, 1.5), kernel_size=5)
    assert float(jnp.std(blurred)) < 0.7 * float(jnp.std(x))
    # Every image gets its own parameters.
    jittered = anchoring.color_jitter(key, jnp.ones((6, 4, 4, 3)) * 0.5)
    assert len(np.unique(np.round(np.asarray(jittered[:, 0, 0, 0]), 5))) == 6
    with pytest.raises(ValueError, match="odd"):
        anchoring.gaussian_blur(key, x, kernel_size=4)


def test_bad_input_is_refused(key):
    model, variables = _net(key)
    x = jnp.zeros((2, 10, 10, 1))
    with pytest.raises(ValueError, match="K >= 2"):
        anchoring.marginalize(model.apply, variables, x, jnp.zeros((1, 10, 10, 1)))
    with pytest.raises(ValueError, match="like x"):
        anchoring.marginalize(model.apply, variables, x, jnp.zeros((3, 8, 8, 1)))
    with pytest.raises(ValueError, match="like x"):
        anchoring.anchor_input(x, jnp.zeros((8, 8, 1)))
    with pytest.raises(ValueError, match="both key and num_anchors"):
        anchoring.marginalize(model.apply, variables, x, jnp.zeros((3, 10, 10, 1)), key=key)
    with pytest.raises(ValueError, match="K >= 2"):
        anchoring.anchor_temperature(jnp.zeros((4, 1, 3)))
    with pytest.raises(ValueError, match="calibration"):
        scores.get("amp", calibration="softplus")
    with pytest.raises(ValueError, match="reduce"):
        scores.get("amp_tau", reduce="max")
    with pytest.raises(ValueError, match="anchored model"):
        scores.get("amp").score((), scores.ModelOutputs(jnp.zeros((2, 3)), jnp.zeros((2, 1))))
    with pytest.raises(ValueError, match="unknown augmentations"):
        anchoring.AnchoredTraining(corruptions=("solarize",))
    with pytest.raises(ValueError, match="every"):
        anchoring.AnchoredTraining(every=0)
    with pytest.raises(ValueError, match="no anchors"):
        anchoring.anchored_model(model).apply(variables, x)
    plain = get("small_cnn", num_classes=3, in_channels=1, image_size=10, widths=(4,), feature_dim=4)
    with pytest.raises(ValueError, match="transformed images"):
        train(plain, np.zeros((16, 10, 10, 1), np.float32), np.zeros(16, np.int32), TrainConfig(batch_size=8),
              key=key, input_transform=anchoring.AnchoredTraining(), progress=False)


def test_anchored_training_and_scoring_end_to_end(key, tmp_path):
    """A net trained with anchoring for a few steps on tiny data, scored through `evaluate`."""
    rng = np.random.default_rng(0)
    size = 10
    labels = rng.integers(0, 3, 96)
    images = (rng.uniform(0, 0.3, (96, size, size, 1)) + labels[:, None, None, None] * 0.3).astype(np.float32)
    net = get("small_cnn", num_classes=3, in_channels=2, image_size=size, widths=(4, 8), feature_dim=8)
    cfg = TrainConfig(epochs=3, batch_size=16, learning_rate=0.05, log_every=5)
    transform = anchoring.AnchoredTraining(every=2)
    result = train(net, images, labels, cfg, key=key, workdir=tmp_path / "anchored", input_transform=transform,
                   progress=False)
    losses = [r["loss"] for r in result.log if "loss" in r]
    assert losses[-1] < losses[0]
    # The transform is part of the run's identity: another transform refuses the same workdir.
    with pytest.raises(ValueError, match=r"holds another training run \(it differs from this one in: input_transform"):
        train(net, images, labels, cfg, key=key, workdir=tmp_path / "anchored",
              input_transform=anchoring.AnchoredTraining(replacement=True), progress=False)
    model = anchoring.anchored_model(net)
    variables = anchoring.with_anchors(result.variables, anchoring.draw_anchors(key, jnp.asarray(images), 5))
    ood = [data.ood_set_from_arrays("noise", rng.uniform(0, 1, (40, size, size, 1)).astype(np.float32))]
    spec = {name: (name, {}) for name in ("amp", "amp_msp", "amp_energy", "amp_entropy", "amp_tau", "msp", "gram")}
    spec["amp_mean"] = ("amp", {"reduce": "mean", "calibration": "one_plus_exp"})
    d = EvalData(fit_images=images[:32], fit_labels=labels[:32], id_val=ArraySource(images[32:48]),
                 id_test=ArraySource(images[48:]), id_test_labels=labels[48:], ood_sets=ood, normalize=lambda a: a,
                 input_std=(1.0,))
    res = evaluate(model, variables, build_scorers(spec), d, key=key, batch_size=16, progress=False)
    assert {r["scorer"] for r in res.records} == set(spec)
    assert all(np.isfinite(r["auroc"]) for r in res.records)
    # The pipeline's AMP scores equal marginalize + eq. 2 on the whole ID test set at once.
    m = anchoring.marginalize(net.apply, result.variables, jnp.asarray(images[48:]), variables["anchors"])
    want = anchoring.amp(anchoring.calibrate(m.mean_logits, m.tau))
    np.testing.assert_allclose(res.scores["amp"]["noise"][0], want, rtol=1e-4, atol=1e-5)
    # Per-sample draws from the pool work through the same Model.
    per_sample = anchoring.anchored_model(net, num_anchors=4, key=key)
    logits, feats, samples = per_sample.samples(variables, jnp.asarray(images[:8]))
    assert samples.shape == (8, 4, 3) and logits.shape == (8, 3)
