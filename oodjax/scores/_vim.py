"""ViM: virtual-logit matching (Wang et al. 2022)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._checks import check_feature_dim, check_finite_rows, check_logits_features
from oodjax.scores._registry import register
from oodjax.scores._types import FitData, Head, ModelOutputs, Scorer
from oodjax.types import FEATURES, HEAD, LOGITS, TRAIN


class VimState(NamedTuple):
    """origin: (D,) u = -pinv(W^T) b; null_basis: (D, D - dim); alpha: scalar."""

    origin: jax.Array
    null_basis: jax.Array
    alpha: jax.Array


def default_vim_dim(feature_dim: int) -> int:
    """The principal dimension of the ViM paper: 1000 for D >= 2048, 512 for D >= 768, else D/2."""
    if feature_dim >= 2048:
        return 1000
    if feature_dim >= 768:
        return 512
    return feature_dim // 2


def residual_norm(features: jax.Array, origin: jax.Array, null_basis: jax.Array) -> jax.Array:
    """||(h - u) projected on the non-principal space||. features: (N, D). Returns (N,)."""
    return jnp.linalg.norm((features - origin[None, :]) @ null_basis, axis=-1)


def fit_vim(features: jax.Array, logits: jax.Array, head: Head, dim: int | None = None) -> VimState:
    """Principal space of the covariance of h - u about the origin u (ViM's `assume_centered`).

    alpha = mean_i max_c z_ic / mean_i ||residual_i|| on the training data.
    features: (N, D); logits: (N, C) on the same samples; head: the final dense layer.
    """
    check_logits_features(logits, features)
    check_finite_rows("the training features", features, "drop those samples or fix the model")
    d = features.shape[1]
    dim = default_vim_dim(d) if dim is None else dim
    if not 0 < dim < d:
        raise ValueError(f"ViM dim must be in (0, {d}) for {d}-dimensional features, got {dim}")
    w = np.asarray(head.kernel, np.float64)
    origin = -np.linalg.pinv(w.T) @ np.asarray(head.bias, np.float64)
    centered = np.asarray(features, np.float64) - origin[None, :]
    eigval, eigvec = np.linalg.eigh(centered.T @ centered / centered.shape[0])
    null_basis = eigvec[:, np.argsort(eigval)[::-1][dim:]]
    res = np.linalg.norm(centered @ null_basis, axis=-1)
    if not res.mean() > 1e-12 * max(np.abs(centered).max(), 1e-300):
        raise ValueError(f"ViM: the training features have no component outside their {dim}-dimensional principal "
                         "space (zero residual: alpha would be infinite); choose a smaller dim")
    alpha = np.asarray(logits, np.float64).max(axis=-1).mean() / res.mean()
    dtype = features.dtype
    return VimState(jnp.asarray(origin, dtype), jnp.asarray(null_basis, dtype), jnp.asarray(alpha, dtype))


def vim(logits: jax.Array, features: jax.Array, state: VimState) -> jax.Array:
    """logsumexp(z) - alpha ||(h - u) P_perp||. logits: (N, C); features: (N, D). Returns (N,)."""
    check_logits_features(logits, features)
    check_feature_dim("features", features, state.origin.shape[0], "the ViM state")
    res = residual_norm(features, state.origin, state.null_basis)
    return jax.nn.logsumexp(logits, axis=-1) - state.alpha * res


@register("vim")
def _vim(dim: int | None = None) -> Scorer:
    def fit(data: FitData) -> VimState:
        if data.head is None:
            raise ValueError("vim needs FitData.head (the final dense layer) for its origin")
        return fit_vim(data.train.features, data.train.logits, data.head, dim)

    def score(state: VimState, out: ModelOutputs) -> jax.Array:
        return vim(out.logits, out.features, state)

    return Scorer(fit, score, frozenset({LOGITS, FEATURES, HEAD, TRAIN}))
