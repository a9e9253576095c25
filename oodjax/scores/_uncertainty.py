"""The six uncertainty measures of an ensemble of K predictions (paper 004's ensemble baseline;
Malinin & Gales 2018/2021), as ID-scores (higher = more in-distribution).

With p_k = softmax(samples[:, k]) the K members' predictive distributions and p_bar their mean:
  confidence               max_c p_bar_c                                   (score as is)
  entropy of expected      H(p_bar)                                        (score: -H)
  expected entropy         mean_k H(p_k)                                   (score: -)
  mutual information       H(p_bar) - mean_k H(p_k) = mean_k KL(p_k || p_bar)   (score: -)
  EPKL                     mean_{k,l} KL(p_k || p_l) = MI + MKL            (score: -)
  MKL                      mean_k KL(p_bar || p_k), the reverse mutual information (score: -)
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from oodjax.scores._checks import check_rank
from oodjax.scores._registry import register, stateless
from oodjax.probability import log_mean_softmax  # noqa: F401  (re-exported)
from oodjax.scores._types import ModelOutputs
from oodjax.types import SAMPLES


def _log_probs(samples: jax.Array) -> jax.Array:
    check_rank("samples", samples, 3, "(N, K, C): K member predictions of N inputs")
    if samples.shape[1] < 2:
        raise ValueError(f"ensemble measures need K >= 2 members, got K = {samples.shape[1]}")
    return jax.nn.log_softmax(samples, axis=-1)


def _mean_log(log_p: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(p_bar, log p_bar) from (N, K, C) log-probabilities."""
    log_bar = jax.nn.logsumexp(log_p, axis=1) - jnp.log(log_p.shape[1])
    return jnp.exp(log_bar), log_bar


def _entropy(p: jax.Array, log_p: jax.Array) -> jax.Array:
    return -jnp.sum(p * log_p, axis=-1)


def confidence(samples: jax.Array) -> jax.Array:
    """max_c of the mean predictive distribution. samples: (N, K, C) logits. Returns (N,)."""
    return jnp.max(_mean_log(_log_probs(samples))[0], axis=-1)


def entropy_of_expected(samples: jax.Array) -> jax.Array:
    """H(p_bar), (N,)."""
    return _entropy(*_mean_log(_log_probs(samples)))


def expected_entropy(samples: jax.Array) -> jax.Array:
    """mean_k H(p_k), (N,)."""
    log_p = _log_probs(samples)
    return jnp.mean(_entropy(jnp.exp(log_p), log_p), axis=1)


def mutual_information(samples: jax.Array) -> jax.Array:
    """H(p_bar) - mean_k H(p_k) >= 0, (N,)."""
    return entropy_of_expected(samples) - expected_entropy(samples)


def mkl(samples: jax.Array) -> jax.Array:
    """mean_k KL(p_bar || p_k) >= 0 (reverse mutual information), (N,)."""
    log_p = _log_probs(samples)
    p_bar, log_bar = _mean_log(log_p)
    return jnp.sum(p_bar * (log_bar - jnp.mean(log_p, axis=1)), axis=-1)


def epkl(samples: jax.Array) -> jax.Array:
    """mean_{k,l} KL(p_k || p_l) = -mean_k H(p_k) - sum_c p_bar_c mean_k log p_k,c, (N,)."""
    log_p = _log_probs(samples)
    p_bar, _ = _mean_log(log_p)
    return -expected_entropy(samples) - jnp.sum(p_bar * jnp.mean(log_p, axis=1), axis=-1)


# Registered name -> ID-score of the (N, K, C) samples.
ENSEMBLE_MEASURES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "ens_confidence": confidence,
    "ens_entropy_of_expected": lambda s: -entropy_of_expected(s),
    "ens_expected_entropy": lambda s: -expected_entropy(s),
    "ens_mutual_information": lambda s: -mutual_information(s),
    "ens_epkl": lambda s: -epkl(s),
    "ens_mkl": lambda s: -mkl(s),
}


def _samples(out: ModelOutputs, name: str) -> jax.Array:
    if out.samples is None:
        raise ValueError(f"{name} needs K member predictions per input (ModelOutputs.samples): score an "
                         "ensemble (oodjax.models.ensemble) or an anchored model")
    return out.samples


def _register_measure(name: str, fn: Callable[[jax.Array], jax.Array]) -> None:
    register(name)(lambda: stateless(lambda out: fn(_samples(out, name)), {SAMPLES}))


for _name, _fn in ENSEMBLE_MEASURES.items():
    _register_measure(_name, _fn)
