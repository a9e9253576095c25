"""Scores that combine the penultimate features with the logits: ReAct, RG (paper 002), Igoe et al.

All return (N,) ID-scores (higher = more in-distribution).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._checks import check_logits_features, check_positive, check_rank, concrete_scalar
from oodjax.scores._logits import energy
from oodjax.scores._registry import register, stateless
from oodjax.scores._types import FitData, Head, ModelOutputs, Scorer
from oodjax.types import FEATURES, HEAD, KEY, LOGITS, TRAIN


def clipped_l1(features: jax.Array, k: float) -> jax.Array:
    """V = sum_i min(v_i, k) (paper 002, section 3.2). features: (N, D). Returns (N,)."""
    return jnp.sum(jnp.minimum(features, k), axis=-1)


def react(
    features: jax.Array,
    kernel: jax.Array,
    bias: jax.Array,
    threshold: float | jax.Array,
    temperature: float = 1.0,
) -> jax.Array:
    """ReAct (Sun et al. 2021): energy of the head applied to rectified features min(h, c).

    features: (N, D); kernel: (D, C); bias: (C,); threshold: the clip value c. Returns (N,).
    """
    check_rank("features", features, 2, "(N, D)")
    check_rank("kernel", kernel, 2, "(D, C)")
    check_rank("bias", bias, 1, "(C,)")
    if kernel.shape[0] != features.shape[1]:
        raise ValueError(f"kernel expects {kernel.shape[0]} features, got {features.shape[1]}")
    logits = jnp.minimum(features, threshold) @ kernel + bias[None, :]
    return energy(logits, temperature)


def fit_react_threshold(features: jax.Array, percentile: float = 90.0) -> float:
    """The ReAct clip value c: the `percentile`-th percentile of all ID activations (default 90)."""
    check_rank("features", features, 2, "(N, D)")
    _check_react_percentile(percentile)
    return float(np.percentile(np.asarray(features, dtype=np.float64), percentile))


def rg(
    logits: jax.Array, features: jax.Array, k: float = 1.0, temperature: float = 1.0
) -> jax.Array:
    """RG, eq. 8 of paper 002: T logsumexp(z / T) * sum_i min(v_i, k).

    The logits are the model's own (not recomputed from the clipped features).
    logits: (N, C); features: (N, D). Returns (N,).
    """
    check_logits_features(logits, features)
    check_positive("k", k, allow_inf=True)  # inf: no clipping
    return energy(logits, temperature) * clipped_l1(features, k)


def rg_additive(
    logits: jax.Array, features: jax.Array, k: float = 1.0, alpha: float = 1.0
) -> jax.Array:
    """Additive RG, eq. 12 of paper 002: logsumexp(z) + alpha * sum_i min(v_i, k).

    logits: (N, C); features: (N, D). Returns (N,).
    """
    check_logits_features(logits, features)
    check_positive("k", k, allow_inf=True)  # inf: no clipping
    return jax.nn.logsumexp(logits, axis=-1) + alpha * clipped_l1(features, k)


def fit_rg_alpha(
    logits: jax.Array, features: jax.Array, k: float = 1.0, *, key: jax.Array, n: int = 1000
) -> float:
    """alpha_s of paper 002 (Table 5): std(logsumexp z) / std(sum_i min(v_i, k)) on n training samples.

    The n samples are drawn without replacement with `key` (all of them if fewer than n).
    """
    check_logits_features(logits, features)
    idx = jax.random.permutation(key, logits.shape[0])[:n]
    u = np.asarray(jax.nn.logsumexp(logits[idx], axis=-1), dtype=np.float64)
    v = np.asarray(clipped_l1(features[idx], k), dtype=np.float64)
    if v.std() == 0:
        raise ValueError("the clipped feature norm is constant on the sample; alpha_s is undefined")
    return float(u.std() / v.std())


def feature_norm_energy(logits: jax.Array, features: jax.Array) -> jax.Array:
    """Igoe et al. 2022 (paper 002 Table 2, U = energy, V = GradNorm's V): energy(z) * ||h||_1.

    logits: (N, C); features: (N, D). Returns (N,).
    """
    check_logits_features(logits, features)
    return energy(logits) * jnp.sum(jnp.abs(features), axis=-1)


class ReactState(NamedTuple):
    head: Head
    threshold: jax.Array


def _require_head(data: FitData, name: str) -> Head:
    if data.head is None:
        raise ValueError(f"{name} recomputes logits and needs FitData.head (the final dense layer)")
    return data.head


def _check_react_percentile(percentile: object) -> None:
    v = concrete_scalar(percentile)
    if v is None or not 0.0 < v <= 100.0:
        raise ValueError(f"percentile must be a number in (0, 100], got {percentile!r}")


@register("react")
def _react(percentile: float = 90.0, temperature: float = 1.0) -> Scorer:
    check_positive("temperature", temperature)
    _check_react_percentile(percentile)

    def fit(data: FitData) -> ReactState:
        head = _require_head(data, "react")
        threshold = fit_react_threshold(data.train.features, percentile)
        return ReactState(head, jnp.asarray(threshold, data.train.features.dtype))

    def score(state: ReactState, out: ModelOutputs) -> jax.Array:
        return react(out.features, state.head.kernel, state.head.bias, state.threshold, temperature)

    return Scorer(fit, score, frozenset({FEATURES, HEAD, TRAIN}))


@register("rg")
def _rg(k: float = 1.0, temperature: float = 1.0) -> Scorer:
    check_positive("k", k, allow_inf=True)  # inf: no clipping
    check_positive("temperature", temperature)

    return stateless(lambda out: rg(out.logits, out.features, k, temperature), {LOGITS, FEATURES})


@register("rg_additive")
def _rg_additive(k: float = 1.0, alpha: float | None = None, alpha_scale: float = 1.0) -> Scorer:
    """alpha=None fits alpha = alpha_scale * alpha_s on 1000 training samples (needs FitData.key)."""
    check_positive("alpha_scale", alpha_scale)
    check_positive("k", k, allow_inf=True)  # inf: no clipping

    def fit(data: FitData) -> jax.Array:
        if alpha is not None:
            return jnp.asarray(alpha, jnp.float32)
        if data.key is None:
            raise ValueError("rg_additive with alpha=None samples training features: pass FitData.key")
        a = alpha_scale * fit_rg_alpha(data.train.logits, data.train.features, k, key=data.key)
        return jnp.asarray(a, data.train.logits.dtype)

    def score(a: jax.Array, out: ModelOutputs) -> jax.Array:
        return rg_additive(out.logits, out.features, k, a)

    needs = {LOGITS, FEATURES} if alpha is not None else {LOGITS, FEATURES, TRAIN, KEY}
    return Scorer(fit, score, frozenset(needs))


@register("feature_norm_energy")
def _feature_norm_energy() -> Scorer:
    return stateless(lambda out: feature_norm_energy(out.logits, out.features), {LOGITS, FEATURES})
