"""The small types every scorer shares: what a model gives, what a fit sees, a scorer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

PyTree = Any


class ModelOutputs(NamedTuple):
    """What `apply(variables, x) -> (logits, features)` returns for a batch.

    logits: (N, C) pre-softmax outputs.
    features: (N, D) penultimate activations, the input of the final dense layer.
    """

    logits: jax.Array
    features: jax.Array


class Head(NamedTuple):
    """The final dense layer: logits = features @ kernel + bias.

    kernel: (D, C). bias: (C,).
    """

    kernel: jax.Array
    bias: jax.Array


class FitData(NamedTuple):
    """Everything a scorer may fit on; all of it in-distribution.

    train: model outputs on (a subset of) the training set.
    labels: (N_train,) integer labels of `train`, or None.
    head: the final dense layer, for scorers that recompute logits (ReAct, ViM), or None.
    val: model outputs on held-out ID validation data (KL-matching), or None to use `train`.
    key: a jax.random key for scorers that subsample (RG additive alpha_s), or None.
    """

    train: ModelOutputs
    labels: jax.Array | None = None
    head: Head | None = None
    val: ModelOutputs | None = None
    key: jax.Array | None = None


class Scorer(NamedTuple):
    """A scoring method, optax style: two pure functions and a pytree of state.

    fit: FitData -> state (a pytree; `()` for stateless scorers).
    score: (state, ModelOutputs) -> (N,) ID-scores, higher = more in-distribution. Jit-able.
    """

    fit: Callable[[FitData], PyTree]
    score: Callable[[PyTree, ModelOutputs], jax.Array]
