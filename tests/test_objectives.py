"""Training-time objectives of papers 001/003 against their formulas in numpy, their head
variants, their scores, and a few training steps that lower each loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats

from oodjax import models, scores
from oodjax.scores import ModelOutputs
from oodjax.training import (
    BIN, BINC, VIB, CrossEntropy, EnergyOE, TrainConfig, TrainOutputs, bin_loss, binary_mmce, energy_hinges,
    free_energy, mmce_weighted, train,
)

RNG = np.random.default_rng(0)


def test_bin_loss_is_zeta_weighted_binary_cross_entropy():
    logits, y, zeta = RNG.normal(size=(7, 4)) * 3, RNG.integers(0, 4, 7), 0.05
    sig = 1 / (1 + np.exp(-logits))
    expected = np.mean([
        -np.log(sig[i, y[i]]) - zeta * sum(np.log(1 - sig[i, c]) for c in range(4) if c != y[i]) for i in range(7)])
    got = bin_loss(jnp.asarray(logits, jnp.float32), jnp.asarray(y), zeta)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def _mmce_w_numpy(r, correct, width=0.4):
    """Kumar et al.'s MMCE_w written with explicit sums over the correct (C) and wrong (W) sets."""
    k = lambda a, b: np.exp(-abs(a - b) / width)  # noqa: E731
    c_idx, w_idx = np.flatnonzero(correct), np.flatnonzero(~correct)
    m_c, m_w = max(len(c_idx), 1), max(len(w_idx), 1)
    t1 = sum((1 - r[i]) * (1 - r[j]) * k(r[i], r[j]) for i in c_idx for j in c_idx) / m_c**2
    t2 = sum(r[i] * r[j] * k(r[i], r[j]) for i in w_idx for j in w_idx) / m_w**2
    t3 = sum((1 - r[i]) * r[j] * k(r[i], r[j]) for i in c_idx for j in w_idx) / (m_c * m_w)
    return np.sqrt(max(t1 + t2 - 2 * t3, 0.0) + 1e-10)


def test_mmce_against_the_double_sums():
    r = RNG.uniform(0.5, 1.0, 9)
    correct = RNG.random(9) < 0.6
    np.testing.assert_allclose(mmce_weighted(jnp.asarray(r), jnp.asarray(correct)), _mmce_w_numpy(r, correct), rtol=1e-5)
    # all correct: only the under-confidence term
    np.testing.assert_allclose(mmce_weighted(jnp.asarray(r), jnp.ones(9, bool)), _mmce_w_numpy(r, np.ones(9, bool)),
                               rtol=1e-5)
    logits, y = RNG.normal(size=(8, 3)) * 2, RNG.integers(0, 3, 8)
    p = 1 / (1 + np.exp(-logits))
    per_class = [_mmce_w_numpy(np.maximum(p[:, c], 1 - p[:, c]), (p[:, c] > 0.5) == (y == c)) for c in range(3)]
    np.testing.assert_allclose(binary_mmce(jnp.asarray(logits, jnp.float32), jnp.asarray(y)), np.mean(per_class),
                               rtol=1e-4)


def test_energy_terms():
    logits = RNG.normal(size=(6, 5)) * 4
    np.testing.assert_allclose(free_energy(jnp.asarray(logits), 2.0), -2 * scipy.special.logsumexp(logits / 2, axis=1),
                               rtol=1e-5)
    a, b = RNG.normal(size=(6, 5)) * 4, RNG.normal(size=(3, 5))
    e_in, e_out = -scipy.special.logsumexp(a, axis=1), -scipy.special.logsumexp(b, axis=1)
    expected = np.mean(np.maximum(e_in + 3, 0) ** 2) + np.mean(np.maximum(-1 - e_out, 0) ** 2)
    np.testing.assert_allclose(energy_hinges(jnp.asarray(a), jnp.asarray(b), -3.0, -1.0), expected, rtol=1e-5)


def test_gaussian_kl_against_quadrature():
    mu, sd, m, s = RNG.normal(size=(2, 3)), RNG.uniform(0.3, 2, (2, 3)), RNG.normal(size=(4, 3)), RNG.uniform(0.5, 2, (4, 3))
    got = np.asarray(models.gaussian_kl(jnp.asarray(mu), jnp.asarray(sd), jnp.asarray(m), jnp.asarray(s)))
    for i in range(2):
        for k in range(4):
            total = 0.0
            for d in range(3):
                p, q = scipy.stats.norm(mu[i, d], sd[i, d]), scipy.stats.norm(m[k, d], s[k, d])
                total += scipy.integrate.quad(lambda t: p.pdf(t) * (p.logpdf(t) - q.logpdf(t)), -30, 30)[0]
            np.testing.assert_allclose(got[i, k], total, rtol=1e-4, atol=1e-6)


def test_objectives_against_their_parts():
    logits, y = jnp.asarray(RNG.normal(size=(5, 3)), jnp.float32), jnp.asarray([0, 2, 1, 1, 0])
    binary = jnp.asarray(RNG.normal(size=(5, 3)), jnp.float32)
    kl = jnp.asarray(RNG.uniform(1, 5, (5, 3)), jnp.float32)
    ce = np.mean(-scipy.special.log_softmax(np.asarray(logits), axis=1)[np.arange(5), np.asarray(y)])
    out = TrainOutputs(logits, logits, {"binary_logits": binary, "class_kl": kl})
    np.testing.assert_allclose(CrossEntropy()(out, y)[0], ce, rtol=1e-5)
    loss, parts = BINC(zeta=0.1, lam=0.5)(out, y)
    np.testing.assert_allclose(loss, ce + bin_loss(binary, y, 0.1) + 0.5 * binary_mmce(binary, y), rtol=1e-5)
    assert set(parts) == {"ce", "bin", "mmce"}
    loss, parts = VIB(beta=0.01)(out, y)  # class priors: the KL to the true class's prior
    np.testing.assert_allclose(parts["kl"], np.mean(np.asarray(kl)[np.arange(5), np.asarray(y)]), rtol=1e-6)
    np.testing.assert_allclose(loss, ce + 0.01 * parts["kl"], rtol=1e-5)
    one = out._replace(extras={"kl": kl[:, :1]})
    np.testing.assert_allclose(VIB(beta=0.01)(one, y)[1]["kl"], np.mean(np.asarray(kl)[:, 0]), rtol=1e-6)
    ood = TrainOutputs(binary, binary, {})
    loss, _ = EnergyOE(lam=0.2, m_in=-2.0, m_out=1.0)(out, y, ood)
    np.testing.assert_allclose(loss, ce + 0.2 * energy_hinges(logits, binary, -2.0, 1.0), rtol=1e-5)


def test_bad_hyperparameters_and_missing_outputs():
    with pytest.raises(ValueError, match="zeta must be > 0"):
        BIN(zeta=0.0)
    with pytest.raises(ValueError, match="zeta must be > 0"):
        BINC(zeta=-1.0)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        BINC(lam=-0.5)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        VIB(beta=-0.1)
    with pytest.raises(ValueError, match="m_in must be below m_out"):
        EnergyOE(m_in=0.0, m_out=-1.0)
    out = TrainOutputs(jnp.zeros((2, 3)), jnp.zeros((2, 4)), {})
    with pytest.raises(ValueError, match="head='binc'"):
        BINC()(out, jnp.asarray([0, 1]))
    with pytest.raises(ValueError, match="head='vib'"):
        VIB()(out, jnp.asarray([0, 1]))
    with pytest.raises(ValueError, match="outlier batch"):
        EnergyOE()(out, jnp.asarray([0, 1]))
    with pytest.raises(KeyError, match="known heads: binc, vib, viby"):
        models.get("small_cnn", num_classes=3, in_channels=1, image_size=28, head="bnn")


def test_training_scores_against_numpy():
    logits = RNG.normal(size=(6, 3)) * 2
    kl = RNG.uniform(0, 200, (6, 3))  # exp(-200) underflows float32: the scores are log r
    out = ModelOutputs(jnp.asarray(logits, jnp.float32), jnp.zeros((6, 2)),
                       extras={"binary_logits": jnp.asarray(-logits, jnp.float32),
                               "class_kl": jnp.asarray(kl, jnp.float32)})
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    score = lambda name: np.asarray(scores.get(name).score((), out))  # noqa: E731
    np.testing.assert_allclose(score("bin"), sig(logits).max(1), rtol=1e-5)
    np.testing.assert_allclose(score("binc"), sig(-logits).max(1), rtol=1e-5)
    p = scipy.special.softmax(logits, axis=1)
    np.testing.assert_allclose(score("viby_i"), -(p * kl).sum(1), rtol=1e-4)
    np.testing.assert_allclose(score("viby_ii"), -kl.min(1), rtol=1e-5)
    single = out._replace(extras={"kl": jnp.asarray(kl[:, :1], jnp.float32)})
    np.testing.assert_allclose(scores.get("vib").score((), single), -kl[:, 0], rtol=1e-5)
    with pytest.raises(ValueError, match="head='vib'"):
        scores.get("vib").score((), out)
    with pytest.raises(ValueError, match="head='binc'"):
        scores.get("binc").score((), ModelOutputs(out.logits, out.features))
    with pytest.raises(ValueError, match="head='viby'"):
        scores.get("viby_ii").score((), single)


def _tiny(head=None, **kw):
    return models.get("small_cnn", num_classes=3, in_channels=1, image_size=12, head=head, head_kwargs={"z": 8} if head else None,
                      widths=(4, 8), feature_dim=8, **kw)


def _blobs(n=96, seed=0):
    """Three easy classes: bright top, bright bottom, dark images."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = rng.normal(0, 0.3, (n, 12, 12, 1)).astype(np.float32)
    x[y == 0, :6] += 1.5
    x[y == 1, 6:] += 1.5
    return x, y


@pytest.mark.parametrize("head,objective", [(None, BIN()), ("binc", BINC()), ("vib", VIB()), ("viby", VIB(0.01)),
                                            (None, EnergyOE(m_in=-6.0, m_out=-2.0))])
def test_a_few_steps_lower_each_objective(head, objective, key):
    x, y = _blobs()
    net = _tiny(head)
    kw = {"outliers": np.random.default_rng(1).uniform(-2, 2, (40, 12, 12, 1)).astype(np.float32),
          "outlier_batch_size": 16} if objective.uses_outliers else {}
    res = train(net, x, y, TrainConfig(epochs=8, batch_size=32, learning_rate=0.1), key=key, objective=objective,
                progress=False, **kw)
    losses = [r["epoch_loss"] for r in res.log if "epoch_loss" in r]
    assert losses[-1] < 0.9 * losses[0], losses
    if head is not None:
        logits, features, extras = net.extras(res.variables, jnp.asarray(x[:5]))
        head_layer = net.head(res.variables)  # the head variant's classifier: logits = features @ W + b
        np.testing.assert_allclose(features @ head_layer.kernel + head_layer.bias[None, :], logits, rtol=1e-4, atol=1e-5)
        assert {"binc": {"binary_logits"}, "vib": {"kl"}, "viby": {"class_kl"}}[head] == set(extras)
        assert {f"extras:{n}" for n in extras} <= net.provides
        if head == "viby":
            assert extras["class_kl"].shape == (5, 3)


def test_outlier_stream_checks(key):
    x, y = _blobs(64)
    cfg = TrainConfig(epochs=1, batch_size=32)
    with pytest.raises(ValueError, match="needs an outlier stream"):
        train(_tiny(), x, y, cfg, key=key, objective=EnergyOE(), progress=False)
    with pytest.raises(ValueError, match="does not use an outlier stream"):
        train(_tiny(), x, y, cfg, key=key, outliers=x, progress=False)
    with pytest.raises(ValueError, match="outliers have shape"):
        train(_tiny(), x, y, cfg, key=key, objective=EnergyOE(), outliers=x[:, :6], progress=False)


def test_finetuning_starts_from_the_given_variables(tmp_path, key):
    x, y = _blobs(64)
    net = _tiny()
    base = train(net, x, y, TrainConfig(epochs=2, batch_size=32), key=key, progress=False).variables
    zero_lr = TrainConfig(epochs=1, batch_size=32, learning_rate=1e-12, weight_decay=0.0)
    tuned = train(net, x, y, zero_lr, key=key, init_variables=base, progress=False, workdir=tmp_path / "ft").variables
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), base, tuned)
    other = jax.tree.map(lambda a: a + 1.0, base)  # another start is another run
    with pytest.raises(ValueError, match=r"holds another training run \(it differs from this one in: init_variables"):
        train(net, x, y, zero_lr, key=key, init_variables=other, progress=False, workdir=tmp_path / "ft")


def test_mc_dropout_against_a_loop_of_dropout_passes(key):
    net = _tiny(dropout=0.5)
    variables = net.init(key)
    x = jnp.asarray(_blobs(6)[0])
    mc = models.mc_dropout(net, 4, jax.random.key(7))
    logits, _, samples = mc.samples(variables, x)
    keys = jax.random.split(jax.random.key(7), 4)
    loop = np.stack([np.asarray(net.dropout_apply(variables, x, k)[0]) for k in keys], axis=1)
    np.testing.assert_allclose(samples, loop, rtol=1e-5)
    assert np.abs(loop[:, 0] - loop[:, 1]).max() > 1e-3  # the masks differ
    np.testing.assert_allclose(logits, scores.log_mean_softmax(jnp.asarray(loop)), rtol=1e-5)
    np.testing.assert_allclose(net.apply(variables, x)[0], net.apply(variables, x)[0])  # evaluation stays deterministic
    with pytest.raises(ValueError, match="num_samples >= 2"):
        models.mc_dropout(net, 1, key)
    with pytest.raises(ValueError, match="no dropout"):
        models.mc_dropout(models.ensemble(net), 3, key)
