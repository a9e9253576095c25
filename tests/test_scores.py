"""Each scorer against its paper equation written out in numpy (or scipy), plus the registry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.spatial.distance
import scipy.special
import scipy.stats

from oodjax import scores
from oodjax.scores import FitData, Head, ModelOutputs

N, C, D = 64, 7, 12


def _data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    features = np.maximum(rng.normal(0.3, 1.0, (n, D)), 0.0).astype(np.float32)  # post-ReLU
    kernel = rng.normal(0, 0.5, (D, C)).astype(np.float32)
    bias = rng.normal(0, 0.1, C).astype(np.float32)
    logits = features @ kernel + bias
    return logits, features, kernel, bias


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("t", [1.0, 2.5, 1000.0])
def test_msp_energy(t):
    logits, *_ = _data()
    z = logits.astype(np.float64)
    np.testing.assert_allclose(scores.msp(jnp.asarray(logits), t), _softmax(z / t).max(-1), rtol=1e-5)
    want = t * np.log(np.sum(np.exp(z / t), axis=-1))
    np.testing.assert_allclose(scores.energy(jnp.asarray(logits), t), want, rtol=1e-5)


def test_max_logit_entropy():
    logits, *_ = _data()
    p = _softmax(logits.astype(np.float64))
    np.testing.assert_allclose(scores.max_logit(jnp.asarray(logits)), logits.max(-1))
    want = -scipy.stats.entropy(p, axis=-1)  # negative entropy: higher = more confident
    np.testing.assert_allclose(scores.entropy(jnp.asarray(logits)), want, rtol=1e-5, atol=1e-6)


def test_kl_matching():
    logits, *_ = _data()
    val_logits, *_ = _data(seed=1, n=200)
    means = scores.fit_kl_matching(jnp.asarray(val_logits))
    p_val = _softmax(val_logits.astype(np.float64))
    pred = p_val.argmax(-1)
    want_means = np.stack([p_val[pred == k].mean(0) for k in np.unique(pred)])
    np.testing.assert_allclose(means, want_means, rtol=1e-5)
    p = _softmax(logits.astype(np.float64))
    want = -np.array([min(scipy.stats.entropy(pi, d) for d in want_means) for pi in p])
    np.testing.assert_allclose(scores.kl_matching(jnp.asarray(logits), means), want, rtol=1e-4, atol=1e-6)


def test_react():
    logits, features, kernel, bias = _data()
    c = scores.fit_react_threshold(jnp.asarray(features), 90)
    assert c == pytest.approx(np.percentile(features, 90))
    z = np.minimum(features, c).astype(np.float64) @ kernel + bias
    want = scipy.special.logsumexp(z, axis=-1)
    got = scores.react(jnp.asarray(features), jnp.asarray(kernel), jnp.asarray(bias), c)
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("k,t", [(1.0, 1.0), (0.5, 2.0), (1e9, 1.0)])
def test_rg_eq8(k, t):
    logits, features, *_ = _data()
    z = logits.astype(np.float64)
    want = t * np.log(np.exp(z / t).sum(-1)) * np.minimum(features, k).sum(-1)
    got = scores.rg(jnp.asarray(logits), jnp.asarray(features), k, t)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    if k == 1e9:  # no clipping: the Igoe et al. row, energy * ||h||_1
        fne = scores.feature_norm_energy(jnp.asarray(logits), jnp.asarray(features))
        np.testing.assert_allclose(fne, want, rtol=1e-5)


def test_rg_additive_eq12_and_alpha(key):
    logits, features, *_ = _data(n=300)
    z = logits.astype(np.float64)
    want = np.log(np.exp(z).sum(-1)) + 0.3 * np.minimum(features, 0.7).sum(-1)
    got = scores.rg_additive(jnp.asarray(logits), jnp.asarray(features), 0.7, 0.3)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    alpha = scores.fit_rg_alpha(jnp.asarray(logits), jnp.asarray(features), 0.7, key=key, n=100)
    idx = np.asarray(jax.random.permutation(key, 300))[:100]
    u = np.log(np.exp(z[idx]).sum(-1))
    v = np.minimum(features[idx], 0.7).sum(-1)
    np.testing.assert_allclose(alpha, u.std() / v.std(), rtol=1e-5)


def _lee_reference(features, labels, num_classes):
    """Class means and the tied covariance (divided by N), as Lee et al. fit them."""
    h = features.astype(np.float64)
    means = np.stack([h[labels == c].mean(0) for c in range(num_classes)])
    centered = h - means[labels]
    return means, centered.T @ centered / h.shape[0]


def test_mahalanobis_against_scipy():
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(C), 30)
    features = (rng.normal(size=(labels.size, D)) + rng.normal(0, 3, (C, D))[labels]).astype(np.float32)
    state = scores.fit_mahalanobis(jnp.asarray(features), jnp.asarray(labels), C)
    queries = rng.normal(0, 3, (20, D)).astype(np.float32)
    means, cov = _lee_reference(features, labels, C)
    vi = np.linalg.inv(cov)
    want = [-min(scipy.spatial.distance.mahalanobis(q, m, vi) ** 2 for m in means) for q in queries]
    np.testing.assert_allclose(scores.mahalanobis(jnp.asarray(queries), state), want, rtol=1e-4)


def test_mahalanobis_singular_covariance_uses_pinv():
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(3), 40)
    features = rng.normal(size=(labels.size, 5)).astype(np.float32)
    features[:, 2] = 0.0  # a dead ReLU unit
    state = scores.fit_mahalanobis(jnp.asarray(features), jnp.asarray(labels), 3)
    means, cov = _lee_reference(features, labels, 3)
    queries = rng.normal(size=(10, 5))
    queries[:, 2] = 0.0
    pinv = np.linalg.pinv(cov)
    want = [-min((q - m) @ pinv @ (q - m) for m in means) for q in queries]
    got = scores.mahalanobis(jnp.asarray(queries, jnp.float32), state)
    np.testing.assert_allclose(got, want, rtol=1e-4)


@pytest.mark.parametrize("k,query_chunk,bank_chunk", [(1, 1024, 8192), (5, 7, 11), (13, 16, 3)])
def test_knn_against_brute_force(k, query_chunk, bank_chunk):
    rng = np.random.default_rng(5)
    bank = rng.normal(size=(101, D)).astype(np.float32)
    queries = rng.normal(size=(37, D)).astype(np.float32)
    got = scores.knn(jnp.asarray(queries), jnp.asarray(bank), k, query_chunk=query_chunk, bank_chunk=bank_chunk)
    b = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    dist = np.linalg.norm(q[:, None, :] - b[None, :, :], axis=-1)
    want = -np.sort(dist, axis=1)[:, k - 1]
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_vim_against_numpy():
    rng = np.random.default_rng(6)
    train_f = np.abs(rng.normal(size=(400, D))).astype(np.float32)
    kernel = rng.normal(size=(D, C)).astype(np.float32)
    bias = rng.normal(size=C).astype(np.float32)
    train_z = train_f @ kernel + bias
    head = Head(jnp.asarray(kernel), jnp.asarray(bias))
    state = scores.fit_vim(jnp.asarray(train_f), jnp.asarray(train_z), head, dim=4)
    # Reference written from the ViM paper: u solves W^T u = -b (least squares).
    u = np.linalg.lstsq(kernel.T.astype(np.float64), -bias.astype(np.float64), rcond=None)[0]
    x = train_f - u
    cov = np.cov(x.T, bias=True, ddof=None) + np.outer(x.mean(0), x.mean(0))  # about u, not the mean
    w, v = np.linalg.eigh(cov)
    ns = v[:, np.argsort(w)[::-1][4:]]
    alpha = train_z.max(-1).mean() / np.linalg.norm(x @ ns, axis=-1).mean()
    q = np.abs(rng.normal(size=(15, D))).astype(np.float32)
    qz = q @ kernel + bias
    want = scipy.special.logsumexp(qz, axis=-1) - alpha * np.linalg.norm((q - u) @ ns, axis=-1)
    got = scores.vim(jnp.asarray(qz), jnp.asarray(q), state)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert scores.default_vim_dim(2048) == 1000 and scores.default_vim_dim(768) == 512
    assert scores.default_vim_dim(128) == 64


def _fit_data(key, n=120):
    logits, features, kernel, bias = _data(n=n)
    labels = np.arange(n) % C
    out = ModelOutputs(jnp.asarray(logits), jnp.asarray(features))
    return FitData(out, jnp.asarray(labels), Head(jnp.asarray(kernel), jnp.asarray(bias)), None, key), out


EXPECTED = {
    "energy", "entropy", "feature_norm_energy", "kl_matching", "knn", "mahalanobis", "max_logit",
    "msp", "react", "rg", "rg_additive", "vim",
}


def test_registry_entries_compute_the_plain_functions(key):
    assert EXPECTED | {"odin", "gram", "gradnorm", "grodin_g", "grodin_sg"} <= set(scores.names())
    data, out = _fit_data(key)
    got = scores.get("energy", temperature=2.0).score((), out)
    np.testing.assert_allclose(got, scores.energy(out.logits, 2.0))
    st = scores.get("rg_additive", alpha=0.5).fit(data)
    np.testing.assert_allclose(scores.get("rg_additive", alpha=0.5).score(st, out),
                               scores.rg_additive(out.logits, out.features, 1.0, 0.5))


def test_register_new_scorer():
    name = "test_only_scaled_max_logit"

    @scores.register(name)
    def _factory(scale: float = 2.0):
        return scores.stateless(lambda out: scale * jnp.max(out.logits, axis=-1))

    try:
        assert name in scores.names()
        out = ModelOutputs(jnp.ones((3, 4)), jnp.ones((3, 2)))
        np.testing.assert_allclose(scores.get(name, scale=3.0).score((), out), [3.0, 3.0, 3.0])
        with pytest.raises(ValueError, match="already registered"):
            scores.register(name)(_factory)
    finally:
        scores._registry._REGISTRY.remove(name)  # other tests derive scorer lists from the registry


def test_unknown_name_lists_known():
    with pytest.raises(KeyError, match="known scorers: adascale_a, .*, amp, amp_energy, .*, energy, .*, weiper_kld"):
        scores.get("nope")


def test_bad_input(key):
    z = jnp.ones((4, 3))
    h = jnp.ones((4, 5))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        scores.msp(z, 0.0)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        scores.get("energy", temperature=-1.0)
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\)"):
        scores.energy(jnp.ones(3))
    with pytest.raises(ValueError, match="same batch size"):
        scores.rg(z, jnp.ones((5, 5)))
    with pytest.raises(ValueError, match="k must be a number > 0"):
        scores.rg(z, h, k=0.0)
    assert np.isfinite(np.asarray(scores.rg(z, jnp.abs(h), k=float("inf")))).all()  # k = inf: no clipping
    with pytest.raises(ValueError, match="bank size"):
        scores.knn(h, jnp.ones((3, 5)), 4)
    with pytest.raises(ValueError, match="percentile"):
        scores.fit_react_threshold(h, 0.0)
    with pytest.raises(ValueError, match="outside"):
        scores.fit_mahalanobis(h, jnp.array([0, 1, 2, 3]), 3)
    with pytest.raises(ValueError, match="no training sample"):
        scores.fit_mahalanobis(h, jnp.array([0, 0, 1, 1]), 3)
    with pytest.raises(ValueError, match="dim"):
        scores.fit_vim(h, z, Head(jnp.ones((5, 3)), jnp.ones(3)), dim=5)
    with pytest.raises(ValueError, match="needs FitData.head"):
        scores.get("react").fit(FitData(ModelOutputs(z, h)))
    with pytest.raises(ValueError, match="needs FitData.labels"):
        scores.get("mahalanobis").fit(FitData(ModelOutputs(z, h)))
    with pytest.raises(ValueError, match="FitData.key"):
        scores.get("rg_additive").fit(FitData(ModelOutputs(z, h)))
