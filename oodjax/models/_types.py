"""What every oodjax model exposes: pure functions over a variables pytree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from oodjax.scores import Head

Variables = Any


class Model(NamedTuple):
    """A classifier as pure functions.

    init: key -> variables (a pytree: {'params': ..., maybe 'batch_stats': ...}).
    apply: (variables, x (N, H, W, C_in), train=False) -> (logits (N, C), features (N, D)),
      features being the penultimate activations fed to the final dense layer.
    head: variables -> Head, that final dense layer (logits = features @ kernel + bias).
    input_shape: (H, W, C_in) of one image.
    """

    init: Callable[[jax.Array], Variables]
    apply: Callable[..., tuple[jax.Array, jax.Array]]
    head: Callable[[Variables], Head]
    input_shape: tuple[int, int, int]
