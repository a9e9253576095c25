"""Input checks shared by the scorers. Shapes are static, so they also run under jit."""

from __future__ import annotations

import numbers

import jax


def check_positive(name: str, value: object) -> None:
    """Raises ValueError if a concrete Python/NumPy number `value` is not > 0 (tracers pass)."""
    if isinstance(value, numbers.Real) and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def check_int(name: str, value: object, low: int = 1) -> None:
    """Raises ValueError unless `value` is a Python integer (not a bool) >= low."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def check_rank(name: str, x: jax.Array, rank: int, what: str) -> None:
    if x.ndim != rank:
        raise ValueError(f"{name} must have shape {what}, got shape {x.shape}")


def check_logits_features(logits: jax.Array, features: jax.Array) -> None:
    check_rank("logits", logits, 2, "(N, C)")
    check_rank("features", features, 2, "(N, D)")
    if logits.shape[0] != features.shape[0]:
        raise ValueError(
            f"logits and features must have the same batch size, got {logits.shape[0]} and "
            f"{features.shape[0]}"
        )
