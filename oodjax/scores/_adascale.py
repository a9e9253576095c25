"""AdaSCALE (Regmi, "AdaSCALE: Adaptive Scaling for OOD Detection", arXiv:2503.08023, sec. 3):
SCALE with a per-sample percentile that depends on how much the sample's features move under a
small input perturbation.

1. Perturb: g = d z_y^ / dx (y^ = argmax z); the fraction o of input elements with the SMALLEST |g|
   move by `step` sign(g): x~ = x + step sign(g) mask; h~ = the features of x~ (a second forward pass).
2. Q' = sum over the k1 % largest entries of h of relu(h~) + lambda sum over the k2 % largest
   entries of h of |h - h~|.
3. p = p_min + (1 - F(Q')) (p_max - p_min), F the empirical CDF of Q' on the ID validation split
   (the fraction <= Q'): ID-like samples (small Q') get a high percentile and a strong scaling.
4. r = sum relu(h) / (sum of the top k = D - round(D p / 100) entries of relu(h)), and the energy of
   AdaSCALE-A: (h e^r) W + b (the features scaled), or AdaSCALE-L: (h W + b) r^2 (the logits).
Defaults are OpenOOD v1.5's (the author's integration): p in [75, 85], k1 = 5 %, k2 = 1 %,
lambda = 10, o = 5 %, step 0.5 (in normalized input units); OpenOOD fits F on 5000 ID validation
samples, here on the whole ID validation split given.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from oodjax.scores._checks import check_nonnegative, check_positive, check_rank
from oodjax.scores._logits import energy
from oodjax.scores._registry import register
from oodjax.scores._shaping import check_percentile, top_mask
from oodjax.scores._types import FitData, ModelOutputs, Predict, Scorer
from oodjax.types import FEATURES, HEAD, ID_VAL, INPUTS, LOGITS, MODEL

VARIANTS = ("a", "l")


def perturbed_features(predict: Predict, x: jax.Array, logits: jax.Array, fraction: float = 0.05,
                       step: float = 0.5) -> jax.Array:
    """h~: the features of x moved by step sign(g) on the fraction of its elements with the smallest
    |g|, g the gradient of each sample's own max logit. x: (N, H, W, C) normalized. Returns (N, D)."""
    pred = jnp.argmax(logits, axis=-1)

    def max_logit_sum(xs: jax.Array) -> jax.Array:  # rows are independent: one grad gives each its own
        return jnp.sum(jnp.take_along_axis(predict(xs), pred[:, None], axis=-1))

    g = jax.grad(max_logit_sum)(x).reshape(x.shape[0], -1)
    n = int(fraction * g.shape[1])
    _, smallest = jax.lax.top_k(-jnp.abs(g), n)  # the n smallest |g| (a full sort costs more than the step)
    mask = jnp.zeros(g.shape, bool).at[jnp.arange(g.shape[0])[:, None], smallest].set(True)
    x_new = x + jnp.where(mask, step * jnp.sign(g), 0).reshape(x.shape).astype(x.dtype)
    return predict.apply(predict.variables, x_new)[1]


def shift_statistic(features: jax.Array, perturbed: jax.Array, k1: float = 5.0, k2: float = 1.0,
                    lam: float = 10.0) -> jax.Array:
    """Q' = sum_{top k1 % of h} relu(h~) + lam sum_{top k2 % of h} |h - h~| (at least one entry each).
    Returns (N,)."""
    check_rank("features", features, 2, "(N, D)")
    d = features.shape[1]
    order = jnp.argsort(-features, axis=-1, stable=True)
    ranks = jnp.argsort(order, axis=-1)
    # At least one entry each (the code's int(D k / 100) is 0 for k2 = 1% when D < 100).
    top1, top2 = ranks < max(1, int(d * k1 / 100)), ranks < max(1, int(d * k2 / 100))
    c_o = jnp.sum(jnp.where(top1, jax.nn.relu(perturbed), 0), axis=-1)
    q = jnp.sum(jnp.where(top2, jnp.abs(features - perturbed), 0), axis=-1)
    return c_o + lam * q


def adaptive_percentile(q: jax.Array, reference: jax.Array, p_min: float, p_max: float) -> jax.Array:
    """p_min + (1 - F(q)) (p_max - p_min), F the empirical CDF of `reference` (fraction <= q)."""
    cdf = jnp.searchsorted(jnp.sort(reference), q, side="right") / reference.shape[0]
    return p_min + (1.0 - cdf.astype(q.dtype)) * (p_max - p_min)


def adascale_logits(features: jax.Array, kernel: jax.Array, bias: jax.Array, percentile: jax.Array,
                    variant: str = "a") -> jax.Array:
    """The scaled logits of step 4 with per-sample percentiles (N,). Returns (N, C)."""
    a = jax.nn.relu(features)
    mask, _ = top_mask(a, percentile[:, None])
    s2 = jnp.sum(jnp.where(mask, a, 0), axis=-1)
    r = jnp.sum(a, axis=-1) / jnp.where(s2 == 0, 1, s2)
    if variant == "a":
        return (features * jnp.exp(r)[:, None]) @ kernel + bias[None, :]
    return (features @ kernel + bias[None, :]) * (r**2)[:, None]


def _register(variant: str) -> None:
    @register(f"adascale_{variant}")
    def _factory(p_min: float = 75.0, p_max: float = 85.0, k1: float = 5.0, k2: float = 1.0, lam: float = 10.0,
                 fraction: float = 0.05, step: float = 0.5) -> Scorer:
        check_percentile(p_min)
        check_percentile(p_max)
        if p_min > p_max:
            raise ValueError(f"p_min must be <= p_max, got {p_min} > {p_max}")
        for name, v in (("k1", k1), ("k2", k2), ("fraction", fraction), ("step", step)):
            check_positive(name, v)
        check_nonnegative("lam", lam)

        def q_of(out: ModelOutputs, predict: Predict) -> jax.Array:
            h_new = perturbed_features(predict, out.inputs, out.logits, fraction, step)
            return shift_statistic(out.features, h_new, k1, k2, lam)

        def fit(data: FitData) -> dict:
            if data.head is None or data.val is None or data.model is None:
                raise ValueError(f"adascale_{variant} needs FitData.head, .val (ID validation) and .model")
            q_jit, val = jax.jit(q_of), data.val
            reference = jnp.concatenate([
                q_jit(ModelOutputs(val.logits[i:i + 256], val.features[i:i + 256], val.inputs[i:i + 256]), data.model)
                for i in range(0, val.logits.shape[0], 256)])
            return {"head": data.head, "reference": reference}

        def score(state: dict, out: ModelOutputs) -> jax.Array:
            p = adaptive_percentile(q_of(out, out.model), state["reference"], p_min, p_max)
            head = state["head"]
            return energy(adascale_logits(out.features, head.kernel, head.bias, p, variant))

        return Scorer(fit, score, frozenset({LOGITS, FEATURES, INPUTS, MODEL, HEAD, ID_VAL}))


for _variant in VARIANTS:
    _register(_variant)
