"""OpenMax (Bendale & Boult, "Towards Open Set Deep Networks", CVPR 2016, Alg. 1 and 2).

Fit (Alg. 1), on the training logits (the "activation vectors"): per class c, the mean activation
vector mu_c of the correctly classified samples of c, and a Weibull fitted to the `tail_size`
largest distances ||z_i - mu_c|| among them, the way libMR's FitHigh does it: the tail is
translated to t = d + 10000 - min(tail) and a two-parameter Weibull (shape kappa, scale lambda) is
fitted by maximum likelihood; w_c(d) = 1 - exp(-((d + 10000 - min(tail)) / lambda)^kappa).

Score (Alg. 2): for the alpha top-ranked classes of z, the weights omega_(i) = (alpha + 1 - i) / alpha
(1, (alpha-1)/alpha, ..., 1/alpha; 0 for the others), the recalibrated logits
z^_c = z_c (1 - omega_c w_c(||z - mu_c||)) and the unknown class's z_0 = sum_c (z_c - z^_c);
P = softmax(z^_1..z^_C, z_0). The ID-score is max_{c >= 1} P_c, the probability that Alg. 2 accepts
(`score="known"`); `score="all"` takes the max over all C + 1 entries, as OpenOOD v1.5's code does.
One "channel" (no 10-crop), Euclidean distance (OpenOOD's; the original code uses eucos).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._checks import check_int, check_rank
from oodjax.scores._mahalanobis import check_labels
from oodjax.scores._registry import register
from oodjax.scores._types import FitData, ModelOutputs, Scorer
from oodjax.types import LABELS, LOGITS, TRAIN

TRANSLATE = 10000.0  # libMR's translate_amount


def fit_weibull(t: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood (shape kappa, scale lambda) of a two-parameter Weibull on t > 0 (float64).

    kappa solves sum t^k ln t / sum t^k - 1/k - mean ln t = 0 (increasing in k), by bisection on
    log k with t scaled to t / max t (the equation is scale-free); lambda = (mean t^kappa)^(1/kappa).
    """
    t = np.asarray(t, np.float64)
    if t.ndim != 1 or t.size < 2 or (t <= 0).any() or not np.isfinite(t).all():
        raise ValueError(f"a Weibull fit needs at least 2 positive finite values, got {t}")
    if np.ptp(t) == 0:
        raise ValueError("a Weibull fit needs values that are not all equal")
    top = t.max()
    log_y = np.log(t / top)

    def f(log_k: float) -> float:
        k = np.exp(log_k)
        w = np.exp(k * (log_y - log_y.max()))
        return float(np.sum(w * log_y) / np.sum(w) - 1.0 / k - log_y.mean())

    lo, hi = -20.0, 40.0
    if f(lo) > 0 or f(hi) < 0:
        raise ValueError("the Weibull likelihood has no maximum for these values")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    kappa = float(np.exp(0.5 * (lo + hi)))
    lam = top * float(np.mean(np.exp(kappa * log_y))) ** (1.0 / kappa)
    return kappa, lam


class OpenMaxState(NamedTuple):
    """means: (C, C) mean activation vectors; kappa: (C,) Weibull shapes; lam: (C,) scales;
    shift: (C,) lambda - 10000 + min(tail), so that w_c(d) = 1 - exp(-(1 + (d - shift_c) / lambda_c)^kappa_c)."""

    means: jax.Array
    kappa: jax.Array
    lam: jax.Array
    shift: jax.Array


def fit_openmax(logits: jax.Array, labels: jax.Array, tail_size: int = 20) -> OpenMaxState:
    """Alg. 1. A class with fewer than 3 correctly classified training samples uses all samples labelled
    with it."""
    check_rank("logits", logits, 2, "(N, C)")
    z = np.asarray(logits, np.float64)
    num_classes = z.shape[1]
    y = check_labels(labels, z.shape[0], num_classes)
    correct = z.argmax(axis=1) == y
    means, params = np.empty((num_classes, num_classes)), np.empty((num_classes, 3))
    for c in range(num_classes):
        rows = (y == c) & correct
        rows = rows if rows.sum() >= 3 else (y == c)
        means[c] = z[rows].mean(axis=0)
        tail = np.sort(np.linalg.norm(z[rows] - means[c], axis=1))[-tail_size:]
        if rows.sum() < 3 or np.ptp(tail) == 0:
            raise ValueError(f"class {c}: OpenMax fits a Weibull to its training samples' distances to their mean, "
                             f"and needs 3 or more samples at distinct distances (got {int(rows.sum())}); "
                             "give it a larger fit set")
        kappa, lam = fit_weibull(tail + TRANSLATE - tail.min())
        params[c] = kappa, lam, lam - TRANSLATE + tail.min()
    dtype = logits.dtype
    return OpenMaxState(jnp.asarray(means, dtype), *(jnp.asarray(params[:, i], dtype) for i in range(3)))


def openmax_probabilities(logits: jax.Array, state: OpenMaxState, alpha: int = 10) -> jax.Array:
    """Alg. 2: the (N, C + 1) OpenMax probabilities, the unknown class last."""
    check_rank("logits", logits, 2, "(N, C)")
    num_classes = logits.shape[1]
    alpha = min(alpha, num_classes)
    dist = jnp.linalg.norm(logits[:, None, :] - state.means[None], axis=-1)  # (N, C)
    # (d + 10000 - min tail) / lambda = 1 + (d - shift) / lambda, accurate in float32 for kappa ~ 1e4.
    w = 1.0 - jnp.exp(-jnp.exp(state.kappa[None, :] * jnp.log1p((dist - state.shift[None, :]) / state.lam[None, :])))
    ranks = jnp.argsort(jnp.argsort(-logits, axis=-1, stable=True), axis=-1)  # 0 = the largest logit
    omega = jnp.where(ranks < alpha, (alpha - ranks) / alpha, 0.0).astype(logits.dtype)
    recal = logits * (1.0 - omega * w)
    unknown = jnp.sum(logits - recal, axis=-1, keepdims=True)
    return jax.nn.softmax(jnp.concatenate([recal, unknown], axis=-1), axis=-1)


@register("openmax")
def _openmax(tail_size: int = 20, alpha: int = 10, score: str = "known") -> Scorer:
    """tail_size 20 and alpha 10 (the original code's; OpenOOD v1.5 uses alpha 3); score "known" or "all"."""
    check_int("tail_size", tail_size, 2)
    check_int("alpha", alpha)
    if score not in ("known", "all"):
        raise ValueError(f"score must be 'known' or 'all', got {score!r}")

    def fit(data: FitData) -> OpenMaxState:
        if data.labels is None:
            raise ValueError("openmax needs FitData.labels (training labels)")
        return fit_openmax(data.train.logits, data.labels, tail_size)

    def score_fn(state: OpenMaxState, out: ModelOutputs) -> jax.Array:
        p = openmax_probabilities(out.logits, state, alpha)
        return jnp.max(p[:, :-1] if score == "known" else p, axis=-1)

    return Scorer(fit, score_fn, frozenset({LOGITS, TRAIN, LABELS}))
