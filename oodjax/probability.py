"""Probability helpers shared by models and scorers (below both)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def log_mean_softmax(samples: jax.Array) -> jax.Array:
    """log p_bar = log mean_k softmax(samples[:, k]), the log of K predictions' mean distribution.

    samples: (N, K, C) logits, K >= 2. Returns (N, C).
    """
    if samples.ndim != 3:
        raise ValueError(f"samples must have shape (N, K, C): K member predictions of N inputs, got {samples.shape}")
    if samples.shape[1] < 2:
        raise ValueError(f"ensemble measures need K >= 2 members, got K = {samples.shape[1]}")
    log_p = jax.nn.log_softmax(samples, axis=-1)
    return jax.nn.logsumexp(log_p, axis=1) - jnp.log(log_p.shape[1])
