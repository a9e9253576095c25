"""What every oodjax model exposes: pure functions over a variables pytree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from oodjax.scores import Head

Variables = Any


class Model(NamedTuple):
    """A classifier as pure functions.

    init: key -> variables (a pytree: {'params': ..., maybe 'batch_stats': ...}).
    apply: (variables, x (N, H, W, C_in), train=False) -> (logits (N, C), features (N, D)),
      features being the penultimate activations fed to the final dense layer.
    head: variables -> Head, that final dense layer (logits = features @ kernel + bias).
    input_shape: (H, W, C_in) of one image.
    train_apply: (variables, x, key) -> ((logits, features), updates), training mode with dropout
      drawn from `key`; `updates` holds the new non-parameter collections (e.g. batch_stats).
    maps: (variables, x) -> (logits, features, intermediate maps): the (N, H_l, W_l, C_l) outputs
      of the stages, for Gram matrices and multi-layer Mahalanobis.
    samples: None, or (variables, x) -> (logits, features, samples (N, K, C)) for a model whose
      prediction is the mean of K stochastic ones (an anchored network marginalized over K anchors).
    """

    init: Callable[[jax.Array], Variables]
    apply: Callable[..., tuple[jax.Array, jax.Array]]
    head: Callable[[Variables], Head]
    input_shape: tuple[int, int, int]
    train_apply: Callable[..., tuple[tuple[jax.Array, jax.Array], dict[str, Any]]]
    maps: Callable[..., tuple[jax.Array, jax.Array, tuple[jax.Array, ...]]]
    samples: Callable[..., tuple[jax.Array, jax.Array, jax.Array]] | None = None


def from_flax(module: nn.Module, input_shape: tuple[int, int, int], head_name: str = "head") -> Model:
    """Wraps a Flax module whose __call__(x, train) returns (logits, features) as a `Model`.

    The module sows its intermediate maps with `self.sow("intermediates", "maps", x)`.
    """

    def check(x: jax.Array) -> None:
        if x.shape[1:] != tuple(input_shape):
            raise ValueError(f"expected images of shape (N, {', '.join(map(str, input_shape))}), got {x.shape}")

    def init(key: jax.Array) -> Variables:
        return module.init({"params": key, "dropout": key}, jnp.zeros((1, *input_shape), jnp.float32))

    def apply(variables: Variables, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        check(x)
        return module.apply(variables, x, train=train)

    def train_apply(variables: Variables, x: jax.Array, key: jax.Array):
        check(x)
        mutable = [c for c in variables if c != "params"]
        return module.apply(variables, x, train=True, mutable=mutable, rngs={"dropout": key})

    def maps(variables: Variables, x: jax.Array):
        check(x)
        (logits, features), inter = module.apply(variables, x, train=False, mutable=["intermediates"])
        return logits, features, tuple(inter["intermediates"]["maps"]) if inter else ()

    def head(variables: Variables) -> Head:
        p = variables["params"][head_name]
        return Head(p["kernel"], p["bias"])

    return Model(init, apply, head, tuple(input_shape), train_apply, maps)
