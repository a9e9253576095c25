"""The OpenOOD v1.5 leaderboard's post-hoc methods, each against its definition written out here in
numpy (float64, loops where that is clearer), plus the invariances the papers claim where they are
cheap to test. Three references reuse a piece that has its own test first: the Weibull MLE (against
scipy), WeiPer's perturbed head (its column norms) and NAC's bin edges (written out)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from oodjax import scores
from oodjax.models import from_flax
from oodjax.scores import FitData, Head, ModelOutputs

N, C, D = 40, 6, 16


def _case(seed=0, n=N, relu=True):
    rng = np.random.default_rng(seed)
    h = rng.normal(0.4, 1.0, (n, D))
    h = np.maximum(h, 0.0) if relu else h
    w = rng.normal(0, 0.6, (D, C))
    b = rng.normal(0, 0.2, C)
    return h, w, b, h @ w + b


def _lse(z):
    m = z.max(-1, keepdims=True)
    return (m + np.log(np.exp(z - m).sum(-1, keepdims=True)))[..., 0]


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _fit_score(name, h, w, b, z, labels=None, val=None, val_labels=None, key=None, **hyper):
    f32 = lambda a: None if a is None else jnp.asarray(a, jnp.float32)  # noqa: E731
    scorer = scores.get(name, **hyper)
    train = ModelOutputs(f32(z), f32(h))
    fit = FitData(train=train, labels=None if labels is None else jnp.asarray(labels),
                  head=Head(f32(w), f32(b)), val=val, key=key,
                  val_labels=None if val_labels is None else jnp.asarray(val_labels))
    state = scorer.fit(fit)
    return lambda hh, zz: np.asarray(jax.jit(scorer.score)(state, ModelOutputs(f32(zz), f32(hh))), np.float64)


def _top_idx(row, p):
    k = row.size - int(np.round(row.size * p / 100))
    return np.argsort(-row, kind="stable")[:k], k


# --- logits only -------------------------------------------------------------------------------

@pytest.mark.parametrize("gamma,m", [(0.1, 100), (0.5, 3), (1.0, 2)])
def test_gen(gamma, m):
    *_, z = _case()
    p = _softmax(z)
    want = np.array([-sum(q**gamma * (1 - q) ** gamma for q in sorted(row)[::-1][:m]) for row in p])
    got = np.asarray(scores.gen(jnp.asarray(z, jnp.float32), gamma, m))
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    # Invariances: a shift of all logits, a permutation of the classes; every M >= C is the same.
    shifted = scores.gen(jnp.asarray(z[:, ::-1] + 3.0, jnp.float32), gamma, m)
    np.testing.assert_allclose(shifted, got, rtol=2e-5, atol=1e-6)
    np.testing.assert_array_equal(scores.gen(jnp.asarray(z, jnp.float32), gamma, C),
                                  scores.gen(jnp.asarray(z, jnp.float32), gamma, 1000))


def test_temp_scale_fits_the_nll_minimum_on_validation_labels():
    h, w, b, z = _case()
    rng = np.random.default_rng(3)
    val_z = 2.5 * _case(1, 200)[3]
    val_y = np.array([rng.choice(C, p=q) for q in _softmax(val_z / 2.5)])  # calibrated at T = 2.5
    grid = np.exp(np.linspace(np.log(0.05), np.log(100), 20001))
    nll = [-np.mean(np.log(_softmax(val_z / t)[np.arange(200), val_y])) for t in grid]
    t_star = grid[int(np.argmin(nll))]
    val = ModelOutputs(jnp.asarray(val_z, jnp.float32))
    score = _fit_score("temp_scale", h, w, b, z, val=val, val_labels=val_y)
    np.testing.assert_allclose(score(h, z), _softmax(z / t_star).max(-1), rtol=1e-3)
    with pytest.raises(ValueError, match="val_labels"):
        _fit_score("temp_scale", h, w, b, z, val=val)


# --- activation shaping ------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["p", "b", "s"])
@pytest.mark.parametrize("p", [0.0, 60.0, 90.0])
def test_ash(variant, p):
    h, w, b, z = _case()
    shaped = np.zeros_like(h)
    for i, row in enumerate(h):
        idx, k = _top_idx(row, p)
        s1 = row.sum()
        if variant == "p":
            shaped[i, idx] = row[idx]
        elif variant == "b":
            shaped[i, idx] = s1 / k
        else:
            shaped[i, idx] = row[idx] * np.exp(s1 / row[idx].sum())
    got = np.asarray(scores.ash(jnp.asarray(h, jnp.float32), p, variant))
    np.testing.assert_allclose(got, shaped, rtol=1e-5, atol=1e-6)
    score = _fit_score(f"ash_{variant}", h, w, b, z, percentile=p)
    np.testing.assert_allclose(score(h, z), _lse(shaped @ w + b), rtol=1e-5)
    if variant == "p":  # the kept activations are exactly the input's
        kept = got != 0
        np.testing.assert_array_equal(got[kept], np.asarray(jnp.asarray(h, jnp.float32))[kept])
    if variant == "b":  # the row sum (L1 norm of ReLU features) is preserved
        np.testing.assert_allclose(got.sum(-1), h.sum(-1), rtol=1e-5)


@pytest.mark.parametrize("p", [0.0, 85.0, 95.0])
def test_scale(p):
    h, w, b, z = _case()
    want = []
    for row in h:
        idx, _ = _top_idx(row, p)
        r = row.sum() / row[idx].sum()
        want.append(_lse((row * np.exp(r)) @ w + b))
    np.testing.assert_allclose(_fit_score("scale", h, w, b, z, percentile=p)(h, z), want, rtol=1e-5)
    # p = 0 keeps everything: r = 1.
    np.testing.assert_allclose(scores.scale_factor(jnp.asarray(h, jnp.float32), 0.0), 1.0, rtol=1e-6)


def test_percentile_grid_picks_the_best_auroc_per_ood_validation_set():
    import sklearn.metrics

    h, w, b, z = _case()
    grid = (0.0, 50.0, 90.0)
    scorer = scores.get("ash_s", grid=grid)
    state = scorer.fit(FitData(head=Head(jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32))))
    f32 = lambda hh: ModelOutputs(jnp.asarray(hh @ w + b, jnp.float32), jnp.asarray(hh, jnp.float32))  # noqa: E731
    rng = np.random.default_rng(11)
    oods = {"sparse": h * (rng.uniform(size=h.shape) < 0.3), "noisy": np.abs(h + rng.normal(0, 1.0, h.shape))}
    tuned = scorer.tune(state, f32(h), {k: f32(v) for k, v in oods.items()})
    for name, hh in oods.items():
        auroc = [sklearn.metrics.roc_auc_score(np.r_[np.ones(N), np.zeros(N)],
                                               np.r_[scores.ash_score(jnp.asarray(h, jnp.float32), state["head"], p),
                                                     scores.ash_score(jnp.asarray(hh, jnp.float32), state["head"], p)])
                 for p in grid]
        assert float(tuned[name]["percentile"]) == grid[int(np.argmax(auroc))], (name, auroc)


def test_at_least_one_activation_is_kept():
    h = jnp.asarray(_case()[0][:3], jnp.float32)
    mask, k = scores.top_mask(h, 99.0)  # D = 16: round(15.84) = 16 would keep none
    np.testing.assert_array_equal(np.asarray(mask).sum(-1), 1)
    assert np.isfinite(np.asarray(scores.scale_factor(h, 99.0))).all()


def test_dice():
    h, w, b, z = _case()
    train_h = _case(5, 300)[0]
    contrib = train_h.mean(0)[:, None] * w
    mask = contrib > np.percentile(contrib, 90)
    want = _lse(h @ (w * mask) + b)
    np.testing.assert_allclose(_fit_score("dice", train_h, w, b, train_h @ w + b)(h, z), want, rtol=1e-5)


# --- distances and geometry --------------------------------------------------------------------

def test_rmds_and_its_affine_invariance():
    h, w, b, z = _case(relu=False)
    train_h = _case(7, 400, relu=False)[0]
    y = np.arange(400) % C
    mu = np.stack([train_h[y == c].mean(0) for c in range(C)])
    cov = sum(np.outer(x - mu[c], x - mu[c]) for x, c in zip(train_h, y)) / 400
    mu0 = train_h.mean(0)
    cov0 = np.cov(train_h.T, bias=True)
    prec, prec0 = np.linalg.inv(cov), np.linalg.inv(cov0)
    want = []
    for x in h:
        md0 = (x - mu0) @ prec0 @ (x - mu0)
        want.append(-min((x - m) @ prec @ (x - m) - md0 for m in mu))
    score = _fit_score("rmds", train_h, w, b, train_h @ w + b, labels=y)
    np.testing.assert_allclose(score(h, z), want, rtol=2e-3, atol=2e-3)
    a = np.random.default_rng(1).normal(size=(D, D)) + 3 * np.eye(D)
    moved = _fit_score("rmds", train_h @ a + 1.0, w, b, train_h @ w + b, labels=y)(h @ a + 1.0, z)
    np.testing.assert_allclose(moved, want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("normalizer", ["distance", "norm"])
def test_fdbd(normalizer):
    h, w, b, z = _case()
    train_h = _case(2, 100)[0]
    mu = train_h.mean(0)
    want = []
    for x, zi in zip(h, z):
        c_hat = zi.argmax()
        dists = [abs(zi[c_hat] - zi[c]) / np.linalg.norm(w[:, c_hat] - w[:, c]) for c in range(C) if c != c_hat]
        ref = x - mu if normalizer == "distance" else x
        want.append(np.mean(dists) / np.linalg.norm(ref))
    score = _fit_score("fdbd", train_h, w, b, train_h @ w + b, normalizer=normalizer)
    np.testing.assert_allclose(score(h, z), want, rtol=1e-4)
    # Invariant to scaling the head (W, b) by a > 0 jointly.
    scaled = _fit_score("fdbd", train_h, 3 * w, 3 * b, 3 * (train_h @ w + b), normalizer=normalizer)(h, 3 * z)
    np.testing.assert_allclose(scaled, want, rtol=1e-4)


@pytest.mark.parametrize("alpha,cosine", [(1e-4, False), (0.1, False), (0.0, True)])
def test_nci(alpha, cosine):
    h, w, b, z = _case()
    train_h = _case(2, 100)[0]
    mu = train_h.mean(0)
    want = []
    for x, zi in zip(h, z):
        wc = w[:, zi.argmax()]
        p = wc @ (x - mu) / np.linalg.norm(x - mu) / (np.linalg.norm(wc) if cosine else 1.0)
        want.append(p + alpha * np.abs(x).sum())
    score = _fit_score("nci", train_h, w, b, train_h @ w + b, alpha=alpha, cosine=cosine)
    np.testing.assert_allclose(score(h, z), want, rtol=1e-4, atol=1e-6)


def test_she():
    h, w, b, z = _case()
    train_h = _case(4, 300, relu=False)[0]
    train_z = train_h @ w + b
    pred = train_z.argmax(1)
    y = np.where(np.arange(300) % 3 == 0, np.arange(300) % C, pred)  # a third of them mostly wrong
    patterns = np.stack([train_h[(y == c) & (pred == c)].mean(0) for c in range(C)])
    want = [x @ patterns[zi.argmax()] for x, zi in zip(h, z)]
    score = _fit_score("she", train_h, w, b, train_z, labels=y)
    np.testing.assert_allclose(score(h, z), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(score(2 * h, z), 2 * np.asarray(want), rtol=1e-5, atol=1e-6)  # linear in h
    # A class never predicted correctly falls back to all samples labelled with it; none at all: an error.
    y_wrong = np.where(pred == 2, 3, y)
    y_wrong[0] = 2
    fallback = np.asarray(scores.fit_she(jnp.asarray(train_h, jnp.float32), jnp.asarray(train_z, jnp.float32),
                                         jnp.asarray(y_wrong)))
    np.testing.assert_allclose(fallback[2], train_h[y_wrong == 2].mean(0), rtol=1e-5)
    with pytest.raises(ValueError, match="class 1 has no training sample"):
        scores.fit_she(jnp.asarray(train_h, jnp.float32), jnp.asarray(train_z, jnp.float32), jnp.asarray(y_wrong * 0))


@pytest.mark.parametrize("k", [1, 7])
def test_nnguide(k):
    h, w, b, z = _case()
    train_h = _case(6, 90)[0]
    train_z = train_h @ w + b
    bank = train_h / np.linalg.norm(train_h, axis=1, keepdims=True) * _lse(train_z)[:, None]
    sims = (h / np.linalg.norm(h, axis=1, keepdims=True)) @ bank.T
    guidance = np.sort(sims, axis=1)[:, ::-1][:, :k].mean(1)
    score = _fit_score("nnguide", train_h, w, b, train_z, k=k)
    np.testing.assert_allclose(score(h, z), _lse(z) * guidance, rtol=1e-4)
    with pytest.raises(ValueError, match="lower k"):
        _fit_score("nnguide", train_h[:5], w, b, train_z[:5], k=k + 5)


# --- OpenMax -------------------------------------------------------------------------------------

def test_weibull_fit_is_the_mle():
    rng = np.random.default_rng(0)
    for t in (rng.weibull(2.0, 30) * 3.0, 10000.0 + rng.uniform(0, 5, 20)):
        kappa, lam = scores.fit_weibull(t)
        c, _, scale = scipy.stats.weibull_min.fit(t, floc=0)
        loglik = lambda k, s: scipy.stats.weibull_min.logpdf(t, k, 0, s).sum()  # noqa: E731
        assert loglik(kappa, lam) >= loglik(c, scale) - 1e-6 * abs(loglik(c, scale))
        np.testing.assert_allclose([kappa, lam], [c, scale], rtol=2e-2)
    with pytest.raises(ValueError, match="not all equal"):
        scores.fit_weibull(np.ones(5))


@pytest.mark.parametrize("alpha", [2, 10])
def test_openmax(alpha):
    h, w, b, z = _case()
    train_z = _case(8, 240, relu=False)[3] * 2
    y = train_z.argmax(1)
    y[::5] = (y[::5] + 1) % C  # some wrong
    correct = train_z.argmax(1) == y
    a = min(alpha, C)
    want = []
    mavs, weib = [], []
    for c in range(C):
        zc = train_z[(y == c) & correct]
        mavs.append(zc.mean(0))
        tail = np.sort(np.linalg.norm(zc - mavs[-1], axis=1))[-20:]
        weib.append((*scores.fit_weibull(tail + 10000 - tail.min()), tail.min()))
    for zi in z:
        ranked = np.argsort(-zi)
        omega = np.zeros(C)
        for i, c in enumerate(ranked[:a], start=1):
            omega[c] = (a + 1 - i) / a
        wscore = np.array([1 - np.exp(-(((np.linalg.norm(zi - mavs[c]) + 10000 - weib[c][2]) / weib[c][1])
                                        ** weib[c][0])) for c in range(C)])
        recal = zi * (1 - omega * wscore)
        p = _softmax(np.append(recal, np.sum(zi - recal)))
        want.append(p[:-1].max())
    score = _fit_score("openmax", h, w, b, train_z, labels=y, alpha=alpha)
    np.testing.assert_allclose(score(h, z), want, rtol=2e-3, atol=1e-5)


# --- WeiPer ---------------------------------------------------------------------------------------

def test_weiper_perturbation():
    _, w, b, _ = _case()
    head = scores.perturbed_head(jax.random.key(0), Head(jnp.asarray(w), jnp.asarray(b)), repeats=5, delta=1.8)
    k = np.asarray(head.kernel).reshape(D, 5, C)
    for j in range(5):
        np.testing.assert_allclose(np.linalg.norm(k[:, j] - w, axis=0), 1.8 * np.linalg.norm(w, axis=0), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(head.bias), np.tile(b, 5).astype(np.float32))


def _hist(vals, lo, hi, bins):
    width = (hi - lo) / bins
    out = np.zeros(bins)
    for v in vals:
        i = bins - 1 if v == hi else int(np.floor((v - lo) / width))
        if 0 <= i < bins:
            out[i] += 1
    return out / vals.size


def _smooth(q, s):
    left = (s - 1) // 2
    padded = np.concatenate([[q[0]] * left, q, [q[-1]] * (s - 1 - left)])
    return np.array([padded[i:i + s].mean() for i in range(q.size)])


def _skl(p, q, eps):
    p, q = (p + eps) / (p + eps).sum(), (q + eps) / (q + eps).sum()
    return np.sum(p * np.log(p / q)) + np.sum(q * np.log(q / p))


def test_weiper_kld():
    h, w, b, z = _case()
    train_h = _case(9, 60)[0]
    hyper = dict(repeats=4, delta=1.8, n_bins=12, lambda1=2.5, lambda2=0.1, smoothing=4, smoothing_perturbed=3)
    key = jax.random.key(5)
    score = _fit_score("weiper_kld", train_h, w, b, train_h @ w + b, key=key, **hyper)
    pert = scores.perturbed_head(key, Head(jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32)), 4, 1.8)
    kw, kb = np.asarray(pert.kernel, np.float64), np.asarray(pert.bias, np.float64)
    tz = train_h @ kw + kb
    lo_h, hi_h, lo_z, hi_z = train_h.min(), train_h.max(), tz.min(), tz.max()
    dens_h = np.mean([_hist(r, lo_h, hi_h, 12) for r in train_h], axis=0)
    dens_z = np.mean([_hist(r, lo_z, hi_z, 12) for r in tz], axis=0)
    want = []
    for x in h:
        zt = x @ kw + kb
        msp_w = np.mean([_softmax(zt[j * C:(j + 1) * C]).max() for j in range(4)])
        kld_h = _skl(dens_h, _smooth(_hist(x, lo_h, hi_h, 12), 4), 0.01)
        kld_z = _skl(dens_z, _smooth(_hist(zt, lo_z, hi_z, 12), 3), 0.025)
        want.append(-(kld_h + 2.5 * kld_z - 0.1 * msp_w))
    np.testing.assert_allclose(score(h, z), want, rtol=1e-4, atol=1e-5)
    plain = _fit_score("weiper", train_h, w, b, train_h @ w + b, key=key, repeats=4, delta=1.8)
    want_msp = [np.mean([_softmax((x @ kw + kb)[j * C:(j + 1) * C]).max() for j in range(4)]) for x in h]
    np.testing.assert_allclose(plain(h, z), want_msp, rtol=1e-5)


# --- NAC-UE ---------------------------------------------------------------------------------------

def test_nac_edges_as_the_official_code():
    e = scores.nac_edges(50)
    assert e.size == 50 and e[0] == 0.0 and e[-1] == 1.2 and abs(e[-2] - 1.01) < 1e-12
    assert np.all(np.diff(e) > 0) and abs(e[23] - np.log(np.linspace(1, np.sqrt(1000), 25))[-2] / np.log(1000)) < 1e-12


def test_nac_ue():
    h, w, b, z = _case()
    train_h = _case(10, 120)[0]
    train_z = train_h @ w + b
    y = np.arange(120) % C
    alpha, edges = 3.0, scores.nac_edges(10)

    def states(hh, zz):
        grad = (_softmax(zz) - 1 / C) @ w.T  # d/dh of -(1/C) sum log p
        return 1 / (1 + np.exp(-alpha * hh * grad))

    # build_size 120 with 20 samples per class: the building set is every training sample.
    score = _fit_score("nac_ue", train_h, w, b, train_z, labels=y, key=jax.random.key(0), alpha=alpha, num_edges=10,
                       min_count=4.0, build_size=120)
    s_tr = states(train_h, train_z)
    counts = np.zeros((9, D))
    for row in s_tr:
        for n, v in enumerate(row):
            m = np.searchsorted(edges, v, side="right") - 1
            counts[m, n] += 1
    cov = np.minimum(counts / 4.0, 1.0)
    want = [np.mean([cov[np.searchsorted(edges, v, side="right") - 1, n] for n, v in enumerate(row)])
            for row in states(h, z)]
    np.testing.assert_allclose(score(h, z), want, rtol=1e-5)
    # The gradient in the closed form is autodiff's.
    g = jax.grad(lambda hh: -jnp.mean(jax.nn.log_softmax(hh @ w + b)))(jnp.asarray(h[0]))
    np.testing.assert_allclose(np.asarray(g), ((_softmax(z[:1]) - 1 / C) @ w.T)[0], rtol=1e-5, atol=1e-7)


def _coverage_numpy(train_states, test_states, edges, min_count):
    """NAC's per-neuron histogram of the building states, min(count / O, 1), read at the test states."""
    counts = np.zeros((edges.size - 1, train_states.shape[1]))
    for row in train_states:
        for n, v in enumerate(row):
            m = np.searchsorted(edges, v, side="right") - 1
            if 0 <= m < edges.size - 1:
                counts[m, n] += 1
    cov = np.minimum(counts / min_count, 1.0)
    return np.array([np.mean([cov[min(max(np.searchsorted(edges, v, side="right") - 1, 0), edges.size - 2), n]
                              for n, v in enumerate(row)]) for row in test_states])


def test_nac_ue_over_several_layers():
    """Two intermediate maps (their states sigmoid(alpha sum_hw z sum_hw g)) and the penultimate
    features, each with its own alpha, M, O; the score is the unweighted mean of the layers'."""
    h, w, b, z = _case()
    train_h = _case(10, 120)[0]
    train_z = train_h @ w + b
    y = np.arange(120) % C
    rng = np.random.default_rng(5)
    shapes = [(3, 3, 4), (2, 2, 7)]
    maps = {n: [rng.normal(0.2, 1.0, (n, *s)) for s in shapes] for n in (120, N)}
    grads = {n: [rng.normal(0.0, 0.3, (n, *s)) for s in shapes] for n in (120, N)}
    layers = [scores.NacLayer(None, 3.0, 10, 4.0), scores.NacLayer(-1, 0.5, 12, 3.0), scores.NacLayer(0, 2.0, 8, 2.0)]
    scorer = scores.get("nac_ue", layers=layers, build_size=120)
    assert {"maps", "map_grads"} <= scorer.needs and scorer.map_loss is scores.uniform_kl_loss
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731

    def outputs(n, hh, zz):
        reduced = scorer.map_reduce((tuple(map(f32, maps[n])), tuple(map(f32, grads[n]))))
        return ModelOutputs(f32(zz), f32(hh), maps=reduced)

    state = scorer.fit(FitData(train=outputs(120, train_h, train_z), labels=jnp.asarray(y), head=Head(f32(w), f32(b)),
                               key=jax.random.key(0)))
    got = np.asarray(jax.jit(scorer.score)(state, outputs(N, h, z)), np.float64)

    def sig(a):
        return 1 / (1 + np.exp(-a))

    def layer_states(layer, n, hh, zz):
        if layer.map is None:
            return sig(layer.alpha * hh * ((_softmax(zz) - 1 / C) @ w.T))
        m, g = maps[n][layer.map], grads[n][layer.map]
        return sig(layer.alpha * m.sum(axis=(1, 2)) * g.sum(axis=(1, 2)))

    want = np.mean([_coverage_numpy(layer_states(layer, 120, train_h, train_z), layer_states(layer, N, h, z),
                                    scores.nac_edges(layer.num_edges), layer.min_count) for layer in layers], axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # The official settings: four layers each, the penultimate one first.
    assert all(len(v) == 4 and v[0].map is None for v in scores.NAC_LAYERS.values())
    assert scores.get("nac_ue").needs.isdisjoint({"maps", "map_grads"})  # the default reads features only


def test_nac_ue_through_evaluate_equals_its_parts(key):
    """The pipeline (batches padded and sharded over 4 devices) gives the scores of fitting and
    scoring by hand on Model.map_grads of all images at once."""
    from oodjax import data
    from oodjax.data import ArraySource
    from oodjax.evaluate import EvalData, evaluate
    from oodjax.models import get

    model = get("small_cnn", num_classes=3, in_channels=1, image_size=12, widths=(4, 8), feature_dim=8)
    variables = model.init(key)
    rng = np.random.default_rng(0)
    img = lambda n: rng.uniform(0, 1, (n, 12, 12, 1)).astype(np.float32)  # noqa: E731
    fit_x, fit_y, test_x = img(60), rng.integers(0, 3, 60), img(37)
    d = EvalData(fit_images=fit_x, fit_labels=fit_y, id_val=ArraySource(img(8)), id_test=ArraySource(test_x),
                 ood_sets=[data.ood_set_from_arrays("noise", img(20))], normalize=lambda x: (x - 0.5) / 0.25,
                 input_std=(0.25,))
    layers = [scores.NacLayer(None, 10.0, 20, 3.0), scores.NacLayer(0, 0.05, 20, 3.0), scores.NacLayer(1, 0.5, 20, 3.0)]
    scorer = scores.get("nac_ue", layers=layers, build_size=60)
    result = evaluate(model, variables, {"nac": scorer}, d, key=key, batch_size=30, progress=False)

    def outputs(x):
        logits, features, maps, grads = model.map_grads(variables, jnp.asarray(d.normalize(x)), scorer.map_loss)
        return ModelOutputs(logits, features, maps=scorer.map_reduce((maps, grads)))

    state = scorer.fit(FitData(train=outputs(fit_x), labels=jnp.asarray(fit_y), head=model.head(variables),
                               key=jax.random.fold_in(key, 0)))  # evaluate: fold_in(key, scorer index)
    want = np.asarray(scorer.score(state, outputs(test_x)))
    got = result.scores["nac"]["noise"][0]
    assert np.mean(np.abs(got - want) < 1e-6) > 0.97, (got, want)  # a state on a bin edge may differ in the last bit


def test_nac_ue_layers_are_checked():
    with pytest.raises(ValueError, match="unknown NAC layer setting 'cifar'"):
        scores.get("nac_ue", layers="cifar")
    with pytest.raises(ValueError, match="distinct integer index"):
        scores.get("nac_ue", layers=[scores.NacLayer(0, 1.0, 10, 1.0), scores.NacLayer(0, 1.0, 10, 1.0)])
    with pytest.raises(ValueError, match="M must be an even integer"):
        scores.get("nac_ue", layers=[scores.NacLayer(0, 1.0, 11, 1.0)])
    scorer = scores.get("nac_ue", layers="cifar10")
    maps = tuple(jnp.ones((2, 4, 4, 3)) for _ in range(3))
    with pytest.raises(ValueError, match="layers read maps \\[-2, -3, -4\\], but the model has 3 maps"):
        scorer.map_reduce((maps, maps))


# --- AdaSCALE -------------------------------------------------------------------------------------

class _Net(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        f = nn.relu(nn.Dense(D, name="hidden")(x.reshape(x.shape[0], -1)))
        return nn.Dense(C, name="head")(f), f


def test_adascale_perturbation_is_a_per_sample_gradient_step():
    model = from_flax(_Net(), (3, 3, 2))
    variables = model.init(jax.random.key(0))
    predict = scores.Predict(model.apply, variables)
    x = jax.random.normal(jax.random.key(1), (5, 3, 3, 2))
    logits, _ = model.apply(variables, x)
    got = np.asarray(scores.perturbed_features(predict, x, logits, fraction=0.25, step=0.5))
    for i in range(5):  # one sample at a time, the gradient of its own max logit
        xi = x[i:i + 1]
        c = int(np.argmax(np.asarray(logits[i])))
        g = np.asarray(jax.grad(lambda v: model.apply(variables, v)[0][0, c])(xi)).reshape(-1)
        n = int(0.25 * g.size)
        mask = np.zeros(g.size)
        mask[np.argsort(np.abs(g), kind="stable")[:n]] = 1
        moved = np.asarray(xi).reshape(-1) + 0.5 * np.sign(g) * mask
        want = np.asarray(model.apply(variables, jnp.asarray(moved.reshape(xi.shape), jnp.float32))[1])[0]
        np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["a", "l"])
def test_adascale_from_shift_to_score(variant):
    h, w, b, z = _case()
    rng = np.random.default_rng(2)
    h_new = h + rng.normal(0, 0.3, h.shape)
    ref_q = rng.normal(5, 2, 50)
    k1, k2, lam, p_min, p_max = 25.0, 12.5, 10.0, 60.0, 90.0
    want = []
    for x, xn, zi in zip(h, h_new, z):
        order = np.argsort(-x, kind="stable")
        q = np.maximum(xn[order[:int(D * k1 / 100)]], 0).sum() + lam * np.abs(x - xn)[order[:int(D * k2 / 100)]].sum()
        p = p_min + (1 - np.mean(ref_q <= q)) * (p_max - p_min)
        a = np.maximum(x, 0)
        idx, _ = _top_idx(a, p)
        r = a.sum() / a[idx].sum()
        want.append(_lse((x * np.exp(r)) @ w + b if variant == "a" else (x @ w + b) * r**2))
    with jax.enable_x64(True):
        q = scores.shift_statistic(jnp.asarray(h), jnp.asarray(h_new), k1, k2, lam)
        p = scores.adaptive_percentile(q, jnp.asarray(ref_q), p_min, p_max)
        got = scores.energy(scores.adascale_logits(jnp.asarray(h), jnp.asarray(w), jnp.asarray(b), p, variant))
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-10)


@pytest.mark.parametrize("name,hyper,match", [
    ("ash_b", {"percentile": 100.0}, "percentile must be in"),
    ("scale", {"grid": (50.0, 120.0)}, "percentile must be in"),
    ("dice", {"sparsity": -1.0}, "percentile must be in"),
    ("gen", {"m": 0}, "m \\(the number of top classes\\) must be an integer >= 1"),
    ("gen", {"gamma": 0.0}, "gamma must be a finite number > 0"),
    ("fdbd", {"normalizer": "l1"}, "normalizer must be one of"),
    ("nci", {"alpha": -1.0}, "alpha must be a finite number >= 0"),
    ("nnguide", {"k": 0}, "k must be an integer >= 1"),
    ("openmax", {"tail_size": 1}, "tail_size must be an integer >= 2"),
    ("openmax", {"score": "max"}, "score must be"),
    ("weiper_kld", {"n_bins": 1}, "n_bins must be an integer >= 2"),
    ("nac_ue", {"num_edges": 5}, "M must be an even integer >= 4"),
    ("nac_ue", {"num_edges": 2}, "M must be an integer >= 4"),
    ("adascale_a", {"p_min": 90.0, "p_max": 80.0}, "p_min must be <= p_max"),
])
def test_bad_hyperparameters_are_refused_when_the_scorer_is_built(name, hyper, match):
    with pytest.raises(ValueError, match=match):
        scores.get(name, **hyper)


def test_a_state_from_another_model_is_refused():
    h, w, b, z = _case()
    score = _fit_score("ash_s", h, w, b, z)
    with pytest.raises(ValueError, match="fitted on another model"):
        score(h[:, :5], z)


def test_weiper_histogram_keeps_the_top_of_the_range():
    top = np.float32(1.0)
    below = np.nextafter(top, np.float32(0))  # floor((v - low) / width) rounds up to n_bins in float32
    vals = jnp.asarray([[0.0, 0.5, below, top, 1.5, -0.1]], jnp.float32)
    got = np.asarray(scores.histograms(vals, jnp.float32(0.0), jnp.float32(1.0), 100))
    assert got.sum() * 6 == pytest.approx(4) and got[0, -1] * 6 == pytest.approx(2)


def test_openmax_names_a_class_it_cannot_fit():
    z = np.random.default_rng(0).normal(size=(30, 3))
    y = np.r_[np.zeros(28, int), 1, 2]
    with pytest.raises(ValueError, match="class 1: OpenMax .* needs 3 or more samples"):
        scores.fit_openmax(jnp.asarray(z, jnp.float32), jnp.asarray(y))


def test_adascale_registered_scorer_end_to_end():
    model = from_flax(_Net(), (3, 3, 2))
    variables = model.init(jax.random.key(0))
    predict = scores.Predict(model.apply, variables)
    head = model.head(variables)
    x_val = jax.random.normal(jax.random.key(1), (30, 3, 3, 2))
    x = jax.random.normal(jax.random.key(2), (12, 3, 3, 2)) * 1.5
    k1, k2, lam, o = 25.0, 12.5, 10.0, 0.2

    def q_ref(xs):  # per sample: the max-logit gradient step, the second forward pass, Q'
        out = []
        for xi in np.asarray(xs):
            logits, h = (np.asarray(a, np.float64)[0] for a in model.apply(variables, jnp.asarray(xi[None])))
            c = int(logits.argmax())
            g = np.asarray(jax.grad(lambda v: model.apply(variables, v)[0][0, c])(jnp.asarray(xi[None]))).ravel()
            mask = np.zeros(g.size)
            mask[np.argsort(np.abs(g), kind="stable")[:int(o * g.size)]] = 1
            moved = jnp.asarray((xi.ravel() + 0.5 * np.sign(g) * mask).reshape(1, *xi.shape), jnp.float32)
            hn = np.asarray(model.apply(variables, moved)[1], np.float64)[0]
            order = np.argsort(-h, kind="stable")
            out.append(np.maximum(hn[order[:int(D * k1 / 100)]], 0).sum()
                       + lam * np.abs(h - hn)[order[:int(D * k2 / 100)]].sum())
        return np.array(out)

    ref = q_ref(x_val)
    w, b = np.asarray(head.kernel, np.float64), np.asarray(head.bias, np.float64)
    want = []
    for xi, q in zip(np.asarray(x), q_ref(x)):
        h = np.asarray(model.apply(variables, jnp.asarray(xi[None]))[1], np.float64)[0]
        p = 75.0 + (1 - np.mean(ref <= q)) * 10.0
        a = np.maximum(h, 0)
        idx, _ = _top_idx(a, p)
        want.append(_lse((h * np.exp(a.sum() / a[idx].sum())) @ w + b))
    scorer = scores.get("adascale_a", k1=k1, k2=k2, lam=lam, fraction=o)
    val = ModelOutputs(*model.apply(variables, x_val), x_val)
    state = scorer.fit(FitData(head=head, val=val, model=predict))
    logits, feats = model.apply(variables, x)
    got = jax.jit(scorer.score)(state, ModelOutputs(logits, feats, x, model=predict))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4)


@pytest.mark.parametrize("name,axis,grid", [("gen", "gamma", (0.01, 1.0, 10.0)), ("nci", "alpha", (0.0, 0.01, 1.0))])
def test_gen_and_nci_tune_their_hyperparameter(name, axis, grid):
    import sklearn.metrics

    h, w, b, z = _case()
    rng = np.random.default_rng(4)
    ood_h = np.abs(h[rng.permutation(N)] * rng.uniform(0.2, 3.0, (N, 1)))
    scorer = scores.get(name, grid=grid)
    head = Head(jnp.asarray(w, jnp.float32), jnp.asarray(b, jnp.float32))
    state = scorer.fit(FitData(train=ModelOutputs(jnp.asarray(z, jnp.float32), jnp.asarray(h, jnp.float32)),
                               head=head))
    outs = [ModelOutputs(jnp.asarray(x @ w + b, jnp.float32), jnp.asarray(x, jnp.float32)) for x in (h, ood_h)]
    tuned = scorer.tune(state, outs[0], {"ood": outs[1]})["ood"]
    auroc = [sklearn.metrics.roc_auc_score(np.r_[np.ones(N), np.zeros(N)], np.r_[
        *(np.asarray(scorer.score({**state, axis: jnp.float32(v)}, o)) for o in outs)]) for v in grid]
    assert float(tuned[axis]) == pytest.approx(grid[int(np.argmax(auroc))])
