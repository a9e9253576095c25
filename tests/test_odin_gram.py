"""ODIN against a per-sample jax.grad loop and numpy; Gram against its formula in numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oodjax import metrics, scores
from oodjax.scores import FitData, ModelOutputs


def _tiny_model(key, c_in=2, classes=4):
    k1, k2 = jax.random.split(key)
    w1 = jax.random.normal(k1, (3 * 3 * c_in, 8)) * 0.5
    w2 = jax.random.normal(k2, (8, classes))

    def logits(params, x):
        a, b = params
        h = jnp.tanh(x.reshape(x.shape[0], -1) @ a)
        return h @ b

    return jax.tree_util.Partial(logits, (w1, w2)), logits, (w1, w2)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("t,eps", [(1.0, 0.0), (10.0, 0.002), (1000.0, 0.004)])
def test_odin_against_per_sample_loop(key, t, eps):
    logits_fn, logits, params = _tiny_model(key)
    x = jax.random.normal(jax.random.key(7), (5, 3, 3, 2))
    std = jnp.asarray([0.5, 0.25])
    got = scores.odin(logits_fn, x, t, eps, std)
    want = []
    for xi in x:  # one sample at a time, as the official code (batch size 1)
        def nll(xi):
            z = logits(params, xi[None]) / t
            return -jax.nn.log_softmax(z)[0, jnp.argmax(z[0])]
        g = np.asarray(jax.grad(nll)(xi))
        x_tilde = np.asarray(xi) - eps * np.sign(g) / np.asarray(std)
        z = np.asarray(logits(params, jnp.asarray(x_tilde)[None]), np.float64) / t
        want.append(_softmax(z).max())
    np.testing.assert_allclose(got, want, rtol=1e-5)
    if eps == 0.0:
        np.testing.assert_allclose(got, scores.msp(logits_fn(x), t), rtol=1e-6)


def test_odin_step_raises_the_score_of_the_predicted_class(key):
    logits_fn, _, _ = _tiny_model(key)
    x = jax.random.normal(jax.random.key(8), (20, 3, 3, 2))
    plain = scores.odin(logits_fn, x, 1.0, 0.0)
    stepped = scores.odin(logits_fn, x, 1.0, 0.01)
    assert np.mean(np.asarray(stepped) >= np.asarray(plain)) > 0.9


def test_tune_odin_is_the_grid_minimum(key):
    logits_fn, _, _ = _tiny_model(key)
    id_x = jax.random.normal(jax.random.key(1), (40, 3, 3, 2)) * 0.5
    ood_x = {"far": jax.random.normal(jax.random.key(2), (30, 3, 3, 2)) * 2.0}
    temps, epss = (1.0, 10.0, 100.0), (0.0, 0.01, 0.05)
    grid = scores._odin.OdinGrid(temps, epss)
    (t, e, fpr), = scores.tune_odin(logits_fn, id_x, ood_x, jnp.ones(2), grid, batch_size=16).values()
    brute = {}
    for a in temps:
        for b in epss:
            m = metrics.ood_metrics(scores.odin(logits_fn, id_x, a, b), scores.odin(logits_fn, ood_x["far"], a, b))
            brute[(a, b)] = (m["fpr95"], -m["auroc"])
    assert (t, e) == min(brute, key=brute.get)
    np.testing.assert_allclose(fpr, [[brute[(a, b)][0] for b in epss] for a in temps], atol=1e-12)


def test_odin_bad_input(key):
    logits_fn, _, _ = _tiny_model(key)
    x = jnp.ones((2, 3, 3, 2))
    with pytest.raises(ValueError, match="epsilon must be a finite number >= 0"):
        scores.odin(logits_fn, x, 1.0, -0.1)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        scores.get("odin", temperatures=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        scores.odin(logits_fn, jnp.ones((2, 18)), 1.0, 0.0)
    odin = scores.get("odin")
    with pytest.raises(ValueError, match=r"odin needs ModelOutputs.model"):
        odin.score(odin.fit(FitData()), ModelOutputs(inputs=x))


def _gram_reference(maps, powers):
    out = []
    for f in maps:
        f = np.asarray(f, np.float64).reshape(f.shape[0], -1, f.shape[-1])
        stats = []
        for p in powers:
            fp = f**p
            g = np.einsum("nkc,nkd->ncd", fp, fp)
            g = np.sign(g) * np.abs(g) ** (1.0 / p)
            stats.append(np.triu(g).sum(-1))
        out.append(np.concatenate(stats, -1))
    return out


def test_gram_features_against_numpy(key):
    k1, k2 = jax.random.split(key)
    maps = (jax.random.normal(k1, (3, 4, 4, 5)), jax.nn.relu(jax.random.normal(k2, (3, 2, 2, 6))) * 30)
    got = scores.gram_features(maps, powers=(1, 2, 3, 7))
    for g, w in zip(got, _gram_reference(maps, (1, 2, 3, 7))):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-3)


def test_gram_score_against_numpy(key):
    rng = np.random.default_rng(0)
    train = [rng.normal(size=(60, 6)), rng.normal(size=(60, 4))]
    logits = rng.normal(size=(60, 3))
    val = [rng.normal(size=(20, 6)), rng.normal(size=(20, 4))]
    val_logits = rng.normal(size=(20, 3))
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    state = scores.fit_gram(ModelOutputs(f32(logits), f32(logits), maps=tuple(map(f32, train))),
                            ModelOutputs(f32(val_logits), f32(val_logits), maps=tuple(map(f32, val))))
    q = [rng.normal(size=(7, 6)) * 2, rng.normal(size=(7, 4)) * 2]
    q_logits = rng.normal(size=(7, 3))
    pred, vpred, qpred = logits.argmax(1), val_logits.argmax(1), q_logits.argmax(1)

    def dev(stats, p):
        total = []
        for l, v in enumerate(stats):
            lo = np.stack([train[l][pred == c].min(0) for c in range(3)])[p]
            hi = np.stack([train[l][pred == c].max(0) for c in range(3)])[p]
            total.append((np.maximum(lo - v, 0) / np.abs(lo + 1e-6) + np.maximum(v - hi, 0) / np.abs(hi + 1e-6)).sum(1))
        return np.stack(total, 1)

    want = -(dev(q, qpred) / dev(val, vpred).mean(0)).sum(1)
    got = scores.gram(ModelOutputs(f32(q_logits), f32(q_logits), maps=tuple(map(f32, q))), state)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    assert np.all(np.asarray(scores.gram(ModelOutputs(f32(logits), f32(logits), maps=tuple(map(f32, train))), state)) == 0)
    with pytest.raises(ValueError, match="powers"):
        scores.get("gram", powers=(0, 1))


def test_odin_without_a_grid_is_fixed_and_needs_no_ood_validation():
    fixed = scores.get("odin", temperature=100.0, epsilon=0.002, temperatures=None, epsilons=None)
    assert fixed.tune is None and scores.get("odin").tune is not None
    state = fixed.fit(None)
    assert (float(state.temperature), float(state.epsilon)) == pytest.approx((100.0, 0.002))
    with pytest.raises(ValueError, match="temperatures and epsilons together"):
        scores.get("odin", temperatures=None)
