"""Scores from the logits alone: MSP, temperature-scaled MSP, MaxLogit, Energy, Entropy, KL-matching,
GEN, and TempScale (MSP at a temperature fitted on labelled ID validation data).

All return (N,) ID-scores (higher = more in-distribution).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._checks import check_int, check_positive, check_rank
from oodjax.scores._registry import register, stateless
from oodjax.scores._types import FitData, ModelOutputs, Scorer
from collections.abc import Sequence

from oodjax.calibration import fit_temperature
from oodjax.scores._tune import grid_tuner
from oodjax.types import ID_VAL, LOGITS, VAL_LABELS


def msp(logits: jax.Array, temperature: float = 1.0) -> jax.Array:
    """Maximum softmax probability max_c softmax(z / T)_c (Hendrycks & Gimpel 2017; T: paper 001).

    logits: (N, C). Returns (N,).
    """
    check_rank("logits", logits, 2, "(N, C)")
    check_positive("temperature", temperature)
    return jnp.max(jax.nn.softmax(logits / temperature, axis=-1), axis=-1)


def max_logit(logits: jax.Array) -> jax.Array:
    """max_c z_c (Hendrycks et al. 2022). logits: (N, C). Returns (N,)."""
    check_rank("logits", logits, 2, "(N, C)")
    return jnp.max(logits, axis=-1)


def energy(logits: jax.Array, temperature: float = 1.0) -> jax.Array:
    """Negative free energy T logsumexp(z / T) (Liu et al. 2020; eq. 7 of paper 002).

    logits: (N, C). Returns (N,).
    """
    check_rank("logits", logits, 2, "(N, C)")
    check_positive("temperature", temperature)
    return temperature * jax.nn.logsumexp(logits / temperature, axis=-1)


def entropy(logits: jax.Array) -> jax.Array:
    """Negative predictive entropy sum_c p_c log p_c, p = softmax(z). logits: (N, C). Returns (N,)."""
    check_rank("logits", logits, 2, "(N, C)")
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def kl_matching(logits: jax.Array, class_means: jax.Array) -> jax.Array:
    """KL matching (Hendrycks et al. 2019, "Scaling OOD detection"): -min_k KL(p(x) || d_k).

    logits: (N, C). class_means: (K, C), row k the mean softmax d_k of the ID validation samples
    predicted as class k (K <= C: classes never predicted are left out). Returns (N,).
    d_k is floored at the smallest positive float so that log d_k stays finite.
    """
    check_rank("logits", logits, 2, "(N, C)")
    check_rank("class_means", class_means, 2, "(K, C)")
    if class_means.shape[1] != logits.shape[1]:
        raise ValueError(
            f"class_means has {class_means.shape[1]} classes, logits have {logits.shape[1]}"
        )
    log_p = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(log_p)
    log_d = jnp.log(jnp.maximum(class_means, jnp.finfo(class_means.dtype).tiny))
    kl = jnp.sum(p * log_p, axis=-1, keepdims=True) - p @ log_d.T  # (N, K)
    return -jnp.min(kl, axis=-1)


def fit_kl_matching(logits: jax.Array) -> jax.Array:
    """Class means d_k = mean softmax over the samples predicted as k. logits: (N, C) -> (K, C)."""
    check_rank("logits", logits, 2, "(N, C)")
    p = np.asarray(jax.nn.softmax(logits, axis=-1))
    pred = p.argmax(axis=-1)
    present = np.unique(pred)
    means = np.stack([p[pred == k].mean(axis=0) for k in present])
    return jnp.asarray(means, dtype=logits.dtype)


@register("msp")
def _msp(temperature: float = 1.0) -> Scorer:
    check_positive("temperature", temperature)
    return stateless(lambda out: msp(out.logits, temperature), {LOGITS})


@register("max_logit")
def _max_logit() -> Scorer:
    return stateless(lambda out: max_logit(out.logits))


@register("energy")
def _energy(temperature: float = 1.0) -> Scorer:
    check_positive("temperature", temperature)
    return stateless(lambda out: energy(out.logits, temperature))


@register("entropy")
def _entropy() -> Scorer:
    return stateless(lambda out: entropy(out.logits))


@register("kl_matching")
def _kl_matching() -> Scorer:
    def fit(data: FitData) -> jax.Array:
        return fit_kl_matching(data.val.logits)

    def score(class_means: jax.Array, out: ModelOutputs) -> jax.Array:
        return kl_matching(out.logits, class_means)

    return Scorer(fit, score, frozenset({LOGITS, ID_VAL}))


def gen(logits: jax.Array, gamma: float = 0.1, m: int = 100) -> jax.Array:
    """GEN (Liu, Lochman & Zach, CVPR 2023): minus the generalized entropy of the M largest
    softmax probabilities, -sum_{j <= M} p_(j)^gamma (1 - p_(j))^gamma, p = softmax(z).

    M larger than the number of classes C takes all of them (as the official code's slice does).
    logits: (N, C). Returns (N,).
    """
    check_rank("logits", logits, 2, "(N, C)")
    check_positive("gamma", gamma)
    check_int("m (the number of top classes)", m)
    p = jax.nn.softmax(logits, axis=-1)
    top = jax.lax.top_k(p, min(m, logits.shape[-1]))[0]
    return -jnp.sum(top**gamma * (1.0 - top) ** gamma, axis=-1)


@register("gen")
def _gen(gamma: float = 0.1, m: int = 100, grid: Sequence[float] | None = None, criterion: str = "auroc",
         tune_size: int | None = None) -> Scorer:
    """grid: gammas to tune over on each OOD validation split (OpenOOD's sweep: 0.01, 0.1, 0.5, 1, 2, 5,
    10); None uses `gamma`."""
    for g in (gamma, *(grid or ())):
        gen(jnp.zeros((1, 2)), g, m)  # validates the arguments now

    def fit(data: FitData) -> dict:
        del data
        return {"gamma": jnp.asarray(gamma, jnp.float32)}

    def score(state: dict, out: ModelOutputs) -> jax.Array:
        return gen(out.logits, state["gamma"], m)

    tune = grid_tuner({"gamma": tuple(grid)}, criterion, tune_size, score=score) if grid else None
    return Scorer(fit, score, frozenset({LOGITS}), tune=tune)


@register("temp_scale")
def _temp_scale() -> Scorer:
    """TempScale (Guo et al. 2017, sec. 4.2; OpenOOD's "TempScale"): max softmax(z / T), with the one
    T that minimizes the NLL of the labelled ID validation split (`calibration.fit_temperature`:
    a bounded search over log T; OpenOOD runs L-BFGS from T = 1.5 to the same minimum)."""

    def fit(data: FitData) -> jax.Array:
        if data.val is None or data.val_labels is None:
            raise ValueError("temp_scale fits T on labelled ID validation data: it needs FitData.val and .val_labels")
        t = fit_temperature(np.asarray(data.val.logits, np.float64), np.asarray(data.val_labels))
        return jnp.asarray(t, data.val.logits.dtype)

    def score(t: jax.Array, out: ModelOutputs) -> jax.Array:
        return jnp.max(jax.nn.softmax(out.logits / t, axis=-1), axis=-1)

    return Scorer(fit, score, frozenset({LOGITS, ID_VAL, VAL_LABELS}))
