"""The small types every scorer shares: what a model gives, what a fit sees, a scorer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax

PyTree = Any


class ModelOutputs(NamedTuple):
    """What `apply(variables, x) -> (logits, features)` returns for a batch.

    logits: (N, C) pre-softmax outputs.
    features: (N, D) penultimate activations, the input of the final dense layer.
    inputs: (N, H, W, C_in) the normalized inputs, for scorers that perturb them (ODIN), or None.
    maps: the intermediate maps reduced by the scorer's `map_reduce` (Gram), or None.
    samples: (N, K, C) logits of K predictions of each input (K anchors for AMP, K ensemble members),
      which `logits` combines (AMP: their mean; an ensemble: log of the mean softmax); or None.
    extras: {name: (N, ...)} extra named outputs of a head variant (BINC's "binary_logits", VIB's
      "kl"), or None.
    """

    logits: jax.Array
    features: jax.Array
    inputs: jax.Array | None = None
    maps: Any = None
    samples: jax.Array | None = None
    extras: Mapping[str, jax.Array] | None = None


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
    logits_fn: a pytree function x -> logits (a `jax.tree_util.Partial` over the variables) for
      scorers that differentiate the model (ODIN), or None.
    input_std: (C_in,) per-channel std of the input normalization (ODIN's step is divided by it).
    apply_fn: a hashable function (variables, x) -> logits, for scorers that differentiate with
      respect to the weights (GRODIN), with `variables`; or None.
    outliers: model outputs (inputs included) on a designated auxiliary OOD set, disjoint from the
      test OOD sets, for scorers trained to push OOD data away (a flow's OOD term), or None.
    """

    train: ModelOutputs
    labels: jax.Array | None = None
    head: Head | None = None
    val: ModelOutputs | None = None
    key: jax.Array | None = None
    logits_fn: Callable[[jax.Array], jax.Array] | None = None
    input_std: tuple[float, ...] | None = None
    apply_fn: Callable[[Any, jax.Array], jax.Array] | None = None
    variables: Any = None
    outliers: ModelOutputs | None = None


class Scorer(NamedTuple):
    """A scoring method, optax style: two pure functions and a pytree of state.

    fit: FitData -> state (a pytree; `()` for stateless scorers).
    score: (state, ModelOutputs) -> (N,) ID-scores, higher = more in-distribution. Jit-able.
    tune: optional (state, id_val, {set: ood_val}) -> {set: state}: hyper-parameters tuned on each
      OOD set's validation split (with the ID validation outputs, inputs included).
    map_reduce: optional (intermediate maps) -> pytree, applied batch by batch; the result is what
      the scorer sees as ModelOutputs.maps (Gram matrices).
    """

    fit: Callable[[FitData], PyTree]
    score: Callable[[PyTree, ModelOutputs], jax.Array]
    tune: Callable[[PyTree, ModelOutputs, Mapping[str, ModelOutputs]], dict[str, PyTree]] | None = None
    map_reduce: Callable[[tuple[jax.Array, ...]], Any] | None = None
