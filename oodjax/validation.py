"""Checks of what public functions are given, in one place: numbers (finite, positive, integer) and
arrays (rank, finite rows). Each raises ValueError naming the argument, the problem and the value.

Values that are traced under jit pass the number checks (their value is not known); concrete
Python, NumPy and JAX scalars are checked alike (a jnp scalar 0 is refused like a Python 0).
"""

from __future__ import annotations

import math
import numbers

import jax
import numpy as np


def concrete_scalar(value: object) -> float | None:
    """A real scalar's value as a float, or None (a tracer, a non-scalar, not a number)."""
    if isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (np.ndarray, np.generic, jax.Array)) and np.ndim(value) == 0:
        a = np.asarray(value)
        if np.issubdtype(a.dtype, np.number) and not np.issubdtype(a.dtype, np.complexfloating):
            return float(a)
    return None


def check_positive(name: str, value: object, allow_inf: bool = False) -> None:
    """ValueError unless a concrete scalar `value` is finite (or +inf, with allow_inf: a clip
    threshold that clips nothing) and > 0 (tracers pass)."""
    v = concrete_scalar(value)
    if v is not None and not ((math.isfinite(v) or (allow_inf and v == math.inf)) and v > 0):
        raise ValueError(f"{name} must be a {'number' if allow_inf else 'finite number'} > 0, got {value!r}")


def check_nonnegative(name: str, value: object) -> None:
    """ValueError unless a concrete scalar `value` is finite and >= 0 (tracers pass)."""
    v = concrete_scalar(value)
    if v is not None and not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def check_positive_values(name: str, values: object) -> None:
    """ValueError unless every entry of concrete `values` (a scalar or sequence) is finite and > 0."""
    if isinstance(values, jax.core.Tracer):
        return
    a = np.asarray(values, dtype=np.float64) if not isinstance(values, jax.Array) else np.asarray(values, np.float64)
    if a.size == 0 or not np.all(np.isfinite(a) & (a > 0)):
        raise ValueError(f"{name} must hold finite numbers > 0 (one per channel, or one), got {values!r}")


def check_int(name: str, value: object, low: int = 1) -> None:
    """ValueError unless `value` is an integer (Python or NumPy, not a bool) >= low."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
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


def check_finite_rows(name: str, x: object, fix: str = "") -> None:
    """ValueError naming how many rows of a concrete (N, ...) array hold NaN or inf, and which
    (tracers pass): a fit on them would make every score NaN or shift them all."""
    if isinstance(x, jax.core.Tracer) or x is None:
        return
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.inexact) or a.size == 0:
        return
    bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1) if a.ndim else ~np.isfinite(a)[None]
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(map(str, rows[:8])) + (" ..." if rows.size > 8 else "")
        raise ValueError(f"{name}: {rows.size} of {bad.size} rows hold NaN or inf (rows {shown})"
                         + (f": {fix}" if fix else ""))


def check_feature_dim(name: str, x: jax.Array, want: int, fitted: str) -> None:
    """ValueError if the last axis of `x` is not the `want` of a fitted state."""
    if x.shape[-1] != want:
        raise ValueError(f"{name} has {x.shape[-1]} dimensions but {fitted} was fitted on {want}: "
                         "fit it on outputs of the same model (and layer)")
