"""Activation shaping and weight sparsification before the energy score: ASH (P, B, S), SCALE, DICE.

Each reshapes the penultimate features h (N, D) or the head's kernel W (D, C) and returns the
energy logsumexp(z') of the new logits z' = h'W' + b (an ID-score, higher = more ID). As on the
OpenOOD v1.5 leaderboard, the shaping acts on the pooled penultimate features (ASH's paper also
shapes earlier, pre-pooling maps in an ablation).

Per sample, "the top k" are the k = max(1, D - round(D p / 100)) largest entries of h (ties broken
by position, as a stable sort), that is, the entries above the p-th percentile of that sample; at
least one is kept (the reference code would divide by zero when D p / 100 rounds to D). The
features are meant to be non-negative (after a ReLU), as in the papers.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._checks import check_rank, concrete_scalar
from oodjax.scores._logits import energy
from oodjax.scores._registry import register
from oodjax.scores._tune import grid_tuner
from oodjax.scores._types import FitData, Head, ModelOutputs, Scorer
from oodjax.types import FEATURES, HEAD, TRAIN

ASH_VARIANTS = ("p", "b", "s")


def check_percentile(percentile: object) -> None:
    """ValueError unless a concrete percentile is in [0, 100) (tracers pass: the tuner's grid points)."""
    v = concrete_scalar(percentile)
    if (v is not None or isinstance(percentile, str)) and not (v is not None and 0 <= v < 100):
        raise ValueError(f"percentile must be in [0, 100), got {percentile!r}")


def top_mask(features: jax.Array, percentile: float | jax.Array) -> tuple[jax.Array, jax.Array]:
    """(mask (N, D) of each row's k largest entries, k) with k = max(1, D - round(D p / 100)) (round
    half to even, as torch.round). `percentile` may be traced (tuning)."""
    d = features.shape[-1]
    k = jnp.maximum(d - jnp.round(d * jnp.asarray(percentile, features.dtype) / 100), 1)
    order = jnp.argsort(-features, axis=-1, stable=True)
    ranks = jnp.argsort(order, axis=-1)
    return ranks.astype(k.dtype) < k, k


def _safe_ratio(a: jax.Array, b: jax.Array) -> jax.Array:
    return a / jnp.where(b == 0, 1, b)  # b == 0: the kept entries are all zero (a zero row stays zero)


def ash(features: jax.Array, percentile: float | jax.Array = 90.0, variant: str = "s") -> jax.Array:
    """ASH (Djurisic et al., ICLR 2023, sec. 3), per sample: keep the top k entries of h, zero the rest,
    then ASH-P: leave the kept ones as they are; ASH-B: set each kept one to s1 / k (the row's
    original sum spread evenly); ASH-S: multiply them by exp(s1 / s2), s1 and s2 the row sums
    before and after pruning. features: (N, D). Returns the shaped (N, D)."""
    check_rank("features", features, 2, "(N, D)")
    check_percentile(percentile)
    if variant not in ASH_VARIANTS:
        raise ValueError(f"variant must be one of {ASH_VARIANTS}, got {variant!r}")
    mask, k = top_mask(features, percentile)
    kept = jnp.where(mask, features, 0)
    s1 = jnp.sum(features, axis=-1, keepdims=True)
    if variant == "p":
        return kept
    if variant == "b":
        return jnp.where(mask, s1 / k, 0).astype(features.dtype)
    return kept * jnp.exp(_safe_ratio(s1, jnp.sum(kept, axis=-1, keepdims=True)))


def scale_factor(features: jax.Array, percentile: float | jax.Array = 85.0) -> jax.Array:
    """SCALE's r = s1 / s2 (Xu et al., ICLR 2024, sec. 4): the row sum over the sum of its top k
    entries. features: (N, D). Returns (N,)."""
    check_rank("features", features, 2, "(N, D)")
    check_percentile(percentile)
    mask, _ = top_mask(features, percentile)
    s1 = jnp.sum(features, axis=-1)
    return _safe_ratio(s1, jnp.sum(jnp.where(mask, features, 0), axis=-1))


def _head_energy(features: jax.Array, head: Head) -> jax.Array:
    if head.kernel.shape[0] != features.shape[-1]:
        raise ValueError(f"the head expects {head.kernel.shape[0]} features, got {features.shape[-1]}: "
                         "the state was fitted on another model")
    return energy(features @ head.kernel + head.bias[None, :])


def ash_score(features: jax.Array, head: Head, percentile: float | jax.Array = 90.0, variant: str = "s") -> jax.Array:
    """Energy of the head on ASH-shaped features: logsumexp(ash(h) W + b). Returns (N,)."""
    return _head_energy(ash(features, percentile, variant), head)


def scale_score(features: jax.Array, head: Head, percentile: float | jax.Array = 85.0) -> jax.Array:
    """SCALE: logsumexp((h exp(r)) W + b), the whole h scaled (nothing pruned). Returns (N,)."""
    r = scale_factor(features, percentile)
    return _head_energy(features * jnp.exp(r)[:, None], head)


def _percentile_scorer(name: str, score_fn, percentile: float, grid: Sequence[float] | None, criterion: str,
                       tune_size: int | None) -> Scorer:
    check_percentile(percentile)
    for p in grid or ():
        check_percentile(p)

    def fit(data: FitData) -> dict:
        if data.head is None:
            raise ValueError(f"{name} recomputes the logits: it needs FitData.head (the final dense layer)")
        return {"head": data.head, "percentile": jnp.asarray(percentile, jnp.float32)}

    def score(state: dict, out: ModelOutputs) -> jax.Array:
        return score_fn(out.features, state["head"], state["percentile"])

    tune = grid_tuner({"percentile": tuple(grid)}, criterion, tune_size, score=score) if grid else None
    return Scorer(fit, score, frozenset({FEATURES, HEAD}), tune=tune)


def _register_ash(variant: str, default: float) -> None:
    @register(f"ash_{variant}")
    def _factory(percentile: float = default, grid: Sequence[float] | None = None, criterion: str = "auroc",
                 tune_size: int | None = None) -> Scorer:
        """grid: percentiles to tune over on each OOD validation split (OpenOOD's sweep:
        65, 70, ..., 95); None uses `percentile`."""
        return _percentile_scorer(f"ash_{variant}", lambda h, head, p: ash_score(h, head, p, variant), percentile,
                                  grid, criterion, tune_size)


# 90 for all three: the official repository's ash_s@90 and OpenOOD v1.5's ASH (= ASH-B) at 90.
for _variant in ASH_VARIANTS:
    _register_ash(_variant, 90.0)


@register("scale")
def _scale(percentile: float = 85.0, grid: Sequence[float] | None = None, criterion: str = "auroc",
           tune_size: int | None = None) -> Scorer:
    """SCALE at the 85th percentile (the paper's ImageNet setting, OpenOOD's default); grid: percentiles
    to tune over on each OOD validation split."""
    return _percentile_scorer("scale", scale_score, percentile, grid, criterion, tune_size)


def fit_dice(features: jax.Array, head: Head, sparsity: float = 90.0) -> Head:
    """DICE (Sun & Li, ECCV 2022, sec. 3): the head with every weight whose contribution
    V_jc = mean_train(h_j) W_jc is at or below the sparsity-th percentile of all D x C contributions
    set to zero (the top 100 - p % kept, signed, as the official code: V > percentile).
    features: (N, D) training features. Returns the sparsified Head."""
    check_rank("features", features, 2, "(N, D)")
    check_percentile(sparsity)
    mean = np.asarray(features, np.float64).mean(axis=0)
    kernel = np.asarray(head.kernel, np.float64)
    contrib = mean[:, None] * kernel
    mask = contrib > np.percentile(contrib, sparsity)
    return Head(jnp.asarray(kernel * mask, head.kernel.dtype), head.bias)


@register("dice")
def _dice(sparsity: float = 90.0) -> Scorer:
    """DICE at p = 90% sparsity (the official CIFAR setting and OpenOOD's, for every benchmark)."""
    check_percentile(sparsity)

    def fit(data: FitData) -> Head:
        if data.head is None:
            raise ValueError("dice sparsifies the head: it needs FitData.head (the final dense layer)")
        return fit_dice(data.train.features, data.head, sparsity)

    def score(head: Head, out: ModelOutputs) -> jax.Array:
        return _head_energy(out.features, head)

    return Scorer(fit, score, frozenset({FEATURES, HEAD, TRAIN}))
