"""Scores from where a feature lies relative to the classifier's geometry: fDBD (distance to the
decision boundaries), NCI (neural collapse: alignment with the predicted class's weight), SHE
(Hopfield energy with stored class patterns), NNGuide (nearest-neighbour guidance of the energy).

All return (N,) ID-scores (higher = more in-distribution). h: (N, D) penultimate features; the head
is logits = h W + b with W (D, C).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._checks import check_int, check_logits_features, check_nonnegative, check_rank
from oodjax.scores._knn import l2_normalize, top_similarities
from oodjax.scores._logits import energy
from oodjax.scores._mahalanobis import check_labels
from oodjax.scores._registry import register
from oodjax.scores._tune import grid_tuner
from oodjax.scores._types import FitData, Head, ModelOutputs, Scorer
from oodjax.types import FEATURES, HEAD, LABELS, LOGITS, TRAIN


def _train_mean(data: FitData) -> jax.Array:
    h = np.asarray(data.train.features, np.float64)
    return jnp.asarray(h.mean(axis=0), data.train.features.dtype)


def _need_head(data: FitData, name: str) -> Head:
    if data.head is None:
        raise ValueError(f"{name} reads the classifier's weights: it needs FitData.head (the final dense layer)")
    return data.head


# --- fDBD -----------------------------------------------------------------------------------------

class FdbdState(NamedTuple):
    """pair_dist: (C, C) ||w_a - w_c||, 1 on the diagonal; mean: (D,) mean training feature."""

    pair_dist: jax.Array
    mean: jax.Array


def weight_distances(kernel: jax.Array) -> jax.Array:
    """(C, C) ||w_a - w_c|| between the head's class columns (float64 Gram), 1 on the diagonal."""
    w = np.asarray(kernel, np.float64)
    gram = w.T @ w
    sq = np.diag(gram)[:, None] + np.diag(gram)[None, :] - 2 * gram
    dist = np.sqrt(np.maximum(sq, 0.0))
    np.fill_diagonal(dist, 1.0)
    return jnp.asarray(dist, kernel.dtype)


FDBD_NORMALIZERS = ("distance", "norm")


def _check_normalizer(normalizer: str) -> None:
    if normalizer not in FDBD_NORMALIZERS:
        raise ValueError(f"normalizer must be one of {FDBD_NORMALIZERS}, got {normalizer!r}")


def fdbd(logits: jax.Array, features: jax.Array, state: FdbdState, normalizer: str = "distance") -> jax.Array:
    """fDBD (Liu & Qin, ICML 2024): the mean over classes c != y^ of the distance from h to the
    decision boundary between y^ = argmax z and c, |z_y^ - z_c| / ||w_y^ - w_c||, divided by
    ||h - mu_train|| (normalizer="distance", the paper's) or by ||h|| ("norm", an option of OpenOOD's
    code). The official code sums instead of averaging: the same ranking. Returns (N,)."""
    check_logits_features(logits, features)
    _check_normalizer(normalizer)
    num_classes = logits.shape[1]
    pred = jnp.argmax(logits, axis=-1)
    z_pred = jnp.take_along_axis(logits, pred[:, None], axis=-1)
    dist = jnp.abs(z_pred - logits) / state.pair_dist[pred]  # (N, C), 0 at c = y^
    mean_dist = jnp.sum(dist, axis=-1) / (num_classes - 1)
    ref = features - state.mean[None, :] if normalizer == "distance" else features
    return mean_dist / jnp.linalg.norm(ref, axis=-1)


@register("fdbd")
def _fdbd(normalizer: str = "distance") -> Scorer:
    _check_normalizer(normalizer)

    def fit(data: FitData) -> FdbdState:
        return FdbdState(weight_distances(_need_head(data, "fdbd").kernel), _train_mean(data))

    def score(state: FdbdState, out: ModelOutputs) -> jax.Array:
        return fdbd(out.logits, out.features, state, normalizer)

    return Scorer(fit, score, frozenset({LOGITS, FEATURES, HEAD, TRAIN}))


# --- NCI ------------------------------------------------------------------------------------------

class NciState(NamedTuple):
    """kernel: (D, C) the head's W; mean: (D,) the global mean training feature mu_G."""

    kernel: jax.Array
    mean: jax.Array


def nci(logits: jax.Array, features: jax.Array, state: NciState, alpha: float = 1e-4,
        cosine: bool = False) -> jax.Array:
    """NCI (Liu & Qin, CVPR 2025): pScore + alpha ||h||_1, pScore = w_y^ . (h - mu_G) / ||h - mu_G||,
    the projection of the centred feature's direction on the predicted class's weight vector
    (y^ = argmax z). cosine=True also divides by ||w_y^|| (a true cosine). Returns (N,)."""
    check_logits_features(logits, features)
    pred = jnp.argmax(logits, axis=-1)
    w = state.kernel.T[pred]  # (N, D)
    centred = features - state.mean[None, :]
    p = jnp.sum(w * centred, axis=-1) / jnp.linalg.norm(centred, axis=-1)
    if cosine:
        p = p / jnp.linalg.norm(w, axis=-1)
    return p + alpha * jnp.sum(jnp.abs(features), axis=-1)


@register("nci")
def _nci(alpha: float = 1e-4, cosine: bool = False, grid: Sequence[float] | None = None, criterion: str = "auroc",
         tune_size: int | None = None) -> Scorer:
    """grid: alphas to tune over on each OOD validation split (OpenOOD's sweep: 1e-4, 1e-3, 1e-2, 0.1)."""
    for a in (alpha, *(grid or ())):
        check_nonnegative("alpha", a)

    def fit(data: FitData) -> dict:
        return {"nci": NciState(_need_head(data, "nci").kernel, _train_mean(data)),
                "alpha": jnp.asarray(alpha, jnp.float32)}

    def score(state: dict, out: ModelOutputs) -> jax.Array:
        return nci(out.logits, out.features, state["nci"], state["alpha"], cosine)

    tune = grid_tuner({"alpha": tuple(grid)}, criterion, tune_size, score=score) if grid else None
    return Scorer(fit, score, frozenset({LOGITS, FEATURES, HEAD, TRAIN}), tune=tune)


# --- SHE ------------------------------------------------------------------------------------------

def fit_she(features: jax.Array, logits: jax.Array, labels: jax.Array) -> jax.Array:
    """SHE's stored patterns (Zhang et al., ICLR 2023): per class c, the mean feature of the training
    samples labelled c AND predicted c. A class with no correctly classified sample falls back to
    the mean of all samples labelled c; one with no sample at all is an error. Returns (C, D)."""
    check_logits_features(logits, features)
    h = np.asarray(features, np.float64)
    num_classes = logits.shape[1]
    y = check_labels(labels, h.shape[0], num_classes)
    pred = np.asarray(jnp.argmax(logits, axis=-1))
    patterns = np.empty((num_classes, h.shape[1]))
    for c in range(num_classes):
        rows = (y == c) & (pred == c)
        if not rows.any():
            rows = y == c
        if not rows.any():
            raise ValueError(f"class {c} has no training sample: SHE cannot store its pattern")
        patterns[c] = h[rows].mean(axis=0)
    return jnp.asarray(patterns, features.dtype)


def she(logits: jax.Array, features: jax.Array, patterns: jax.Array) -> jax.Array:
    """SHE with one stored pattern per class: h . s_y^, y^ = argmax z (the simplified Hopfield
    energy, its sign made an ID-score). patterns: (C, D). Returns (N,)."""
    check_logits_features(logits, features)
    check_rank("patterns", patterns, 2, "(C, D)")
    return jnp.sum(features * patterns[jnp.argmax(logits, axis=-1)], axis=-1)


@register("she")
def _she() -> Scorer:
    def fit(data: FitData) -> jax.Array:
        if data.labels is None:
            raise ValueError("she needs FitData.labels (training labels)")
        return fit_she(data.train.features, data.train.logits, data.labels)

    def score(patterns: jax.Array, out: ModelOutputs) -> jax.Array:
        return she(out.logits, out.features, patterns)

    return Scorer(fit, score, frozenset({LOGITS, FEATURES, TRAIN, LABELS}))


# --- NNGuide --------------------------------------------------------------------------------------

def nnguide_bank(features: jax.Array, logits: jax.Array) -> jax.Array:
    """NNGuide's bank (Park et al., ICCV 2023): normalized training features scaled by their
    confidence, the energy logsumexp(z). Returns (M, D)."""
    check_logits_features(logits, features)
    return l2_normalize(features) * energy(logits)[:, None]


def nnguide(logits: jax.Array, features: jax.Array, bank: jax.Array, k: int = 100) -> jax.Array:
    """NNGuide: energy(z) x guidance, guidance = the mean of the k largest ĥ . b over the bank
    (ĥ = h / ||h||). Returns (N,)."""
    check_logits_features(logits, features)
    guidance = jnp.mean(top_similarities(l2_normalize(features), bank, k), axis=-1)
    return energy(logits) * guidance


@register("nnguide")
def _nnguide(k: int = 100) -> Scorer:
    """k = 100 neighbours (OpenOOD v1.5; the official code uses 10). The bank is the fit set, every
    sample of it (OpenOOD: the first 1% of ImageNet's training set; set the experiment's fit_size)."""
    check_int("k", k)

    def fit(data: FitData) -> jax.Array:
        bank = nnguide_bank(data.train.features, data.train.logits)
        if bank.shape[0] < k:
            raise ValueError(f"nnguide with k={k} needs at least k fit samples, got {bank.shape[0]}: lower k")
        return bank

    def score(bank: jax.Array, out: ModelOutputs) -> jax.Array:
        return nnguide(out.logits, out.features, bank, k)

    return Scorer(fit, score, frozenset({LOGITS, FEATURES, TRAIN}))
