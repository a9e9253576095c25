"""Mahalanobis score with class means and a tied covariance (Lee et al. 2018), and its relative
version RMDS (Ren et al. 2021)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._checks import check_feature_dim, check_finite_rows, check_rank, concrete_scalar
from oodjax.scores._registry import register
from oodjax.scores._types import FitData, ModelOutputs, Scorer
from oodjax.types import FEATURES, LABELS, LOGITS, TRAIN


class MahalanobisState(NamedTuple):
    """whiten: (D, R) with whiten @ whiten.T = pinv(Sigma); means_w: (C, R) whitened class means."""

    whiten: jax.Array
    means_w: jax.Array


def check_labels(labels: np.ndarray, num_samples: int, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (num_samples,):
        raise ValueError(f"labels must have shape ({num_samples},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} labels are outside [0, {num_classes}), e.g. {labels[bad][:5].tolist()}"
        )
    return labels


def _whitening(cov: np.ndarray, rcond: float) -> np.ndarray:
    """(D, R) W with W W^T = pinv(cov): eigenvalues below rcond * max are dropped. A covariance
    without any variance (constant features: every score would be one constant) is an error."""
    eigval, eigvec = np.linalg.eigh(cov)
    if not eigval.max() > 0:
        raise ValueError("the training features have no variance about their class means (constant features): "
                         "a Mahalanobis distance would give every sample one score; check the model's features")
    keep = eigval > rcond * eigval.max()
    return eigvec[:, keep] / np.sqrt(eigval[keep])[None, :]


def fit_mahalanobis(
    features: jax.Array, labels: jax.Array, num_classes: int, rcond: float = 1e-10
) -> MahalanobisState:
    """Class means mu_c and tied covariance Sigma = 1/N sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T.

    Sigma is factored once (float64 eigendecomposition); eigenvalues below rcond * max are
    dropped, which equals using the pseudo-inverse (dead ReLU units make Sigma singular).
    features: (N, D); labels: (N,) in [0, num_classes).
    """
    check_rank("features", features, 2, "(N, D)")
    check_finite_rows("the training features", features, "drop those samples or fix the model")
    h = np.asarray(features, dtype=np.float64)
    y = check_labels(labels, h.shape[0], num_classes)
    counts = np.bincount(y, minlength=num_classes)
    if (counts == 0).any():
        raise ValueError(f"classes {np.flatnonzero(counts == 0).tolist()} have no training sample")
    means = np.zeros((num_classes, h.shape[1]))
    np.add.at(means, y, h)
    means /= counts[:, None]
    centered = h - means[y]
    whiten = _whitening(centered.T @ centered / h.shape[0], rcond)
    dtype = features.dtype
    return MahalanobisState(jnp.asarray(whiten, dtype), jnp.asarray(means @ whiten, dtype))


def mahalanobis(features: jax.Array, state: MahalanobisState) -> jax.Array:
    """max_c -(h - mu_c)^T pinv(Sigma) (h - mu_c). features: (N, D). Returns (N,)."""
    check_rank("features", features, 2, "(N, D)")
    check_feature_dim("features", features, state.whiten.shape[0], "the Mahalanobis state")
    z = features @ state.whiten  # (N, R)
    sq = (
        jnp.sum(z * z, axis=-1, keepdims=True)
        - 2.0 * z @ state.means_w.T
        + jnp.sum(state.means_w * state.means_w, axis=-1)[None, :]
    )
    return -jnp.min(jnp.maximum(sq, 0.0), axis=-1)


def _check_rcond(rcond: object) -> None:
    v = concrete_scalar(rcond)
    if v is None or not 0.0 <= v < 1.0:
        raise ValueError(f"rcond (the relative eigenvalue cut-off) must be a number in [0, 1), got {rcond!r}")


@register("mahalanobis")
def _mahalanobis(rcond: float = 1e-10) -> Scorer:
    _check_rcond(rcond)
    def fit(data: FitData) -> MahalanobisState:
        if data.labels is None:
            raise ValueError("mahalanobis needs FitData.labels (training labels)")
        return fit_mahalanobis(data.train.features, data.labels, data.train.logits.shape[1], rcond)

    def score(state: MahalanobisState, out: ModelOutputs) -> jax.Array:
        return mahalanobis(out.features, state)

    return Scorer(fit, score, frozenset({FEATURES, LOGITS, LABELS, TRAIN}))


class RmdsState(NamedTuple):
    """center: (D,) mu_0; classes: the class-conditional Gaussians (tied covariance); background: one
    Gaussian of all training features, as a one-class MahalanobisState; both fitted on h - mu_0 (the
    distances are the same, and their float32 difference loses less to cancellation)."""

    center: jax.Array
    classes: MahalanobisState
    background: MahalanobisState


def fit_rmds(features: jax.Array, labels: jax.Array, num_classes: int, rcond: float = 1e-10) -> RmdsState:
    """The class Gaussians of `fit_mahalanobis` and the background N(mu_0, Sigma_0) of all features."""
    check_finite_rows("the training features", features, "drop those samples or fix the model")
    h = np.asarray(features, np.float64)
    center = h.mean(axis=0)
    centred = jnp.asarray(h - center, features.dtype)
    return RmdsState(jnp.asarray(center, features.dtype), fit_mahalanobis(centred, labels, num_classes, rcond),
                     fit_mahalanobis(centred, np.zeros(features.shape[0], np.int64), 1, rcond))


def rmds(features: jax.Array, state: RmdsState) -> jax.Array:
    """RMDS (Ren et al. 2021, "A simple fix to Mahalanobis distance", arXiv:2106.09022): -min_c (MD_c(h) - MD_0(h)),
    MD_c the class-c Mahalanobis distance (tied covariance), MD_0 the background one. Returns (N,)."""
    centred = features - state.center[None, :]
    return mahalanobis(centred, state.classes) - mahalanobis(centred, state.background)


@register("rmds")
def _rmds(rcond: float = 1e-10) -> Scorer:
    _check_rcond(rcond)
    def fit(data: FitData) -> RmdsState:
        if data.labels is None:
            raise ValueError("rmds needs FitData.labels (training labels)")
        return fit_rmds(data.train.features, data.labels, data.train.logits.shape[1], rcond)

    def score(state: RmdsState, out: ModelOutputs) -> jax.Array:
        return rmds(out.features, state)

    return Scorer(fit, score, frozenset({FEATURES, LOGITS, LABELS, TRAIN}))
