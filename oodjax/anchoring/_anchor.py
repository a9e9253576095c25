"""Neural-network anchoring (paper 000, sec. 3.1): the anchored input, anchored training, and the
jit-compiled marginalization over anchors (eq. 1, Fig. 3).

The anchored input of x for an anchor c is E(x) = [c, x - c], concatenated on the channel axis: a
C-channel network becomes a 2C-channel one (only its first layer changes).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from oodjax.anchoring._augment import AUGMENTATIONS, check_augmentations, compose
from oodjax.anchoring._amp import anchor_temperature
from oodjax.models import Model, Variables

ANCHORS = "anchors"  # the variables collection that holds an anchored model's anchors


def anchor_input(x: jax.Array, anchors: jax.Array) -> jax.Array:
    """[c, x - c] on the channel axis. x: (N, H, W, C); anchors: (N, H, W, C) one per sample, or
    (H, W, C) one for all. Returns (N, H, W, 2C)."""
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, H, W, C), got {x.shape}")
    if anchors.shape not in (x.shape, x.shape[1:]):
        raise ValueError(f"anchors must have shape {x.shape} or {x.shape[1:]} like x, got {anchors.shape}")
    c = jnp.broadcast_to(anchors, x.shape)
    return jnp.concatenate([c, x - c], axis=-1)


class Marginal(NamedTuple):
    """The anchor-marginalized prediction of N inputs from K anchors (eq. 1).

    mean_logits: (N, C) H(y|x); tau: (N,) the temperature; samples: (N, K, C) the K anchored logits;
    features: (N, D) penultimate features averaged over the anchors (H = head(features)).
    """

    mean_logits: jax.Array
    tau: jax.Array
    samples: jax.Array
    features: jax.Array


def _check_anchors(x: jax.Array, anchors: jax.Array, key: jax.Array | None, num_anchors: int | None) -> int:
    if x.ndim != 4:
        raise ValueError(f"x must have shape (N, H, W, C), got {x.shape}")
    if anchors.ndim != 4 or anchors.shape[1:] != x.shape[1:]:
        raise ValueError(f"anchors must have shape (K, {', '.join(map(str, x.shape[1:]))}) like x, got {anchors.shape}")
    if (key is None) != (num_anchors is None):
        raise ValueError("give both key and num_anchors (a fresh draw per sample) or neither (a shared anchor set)")
    k = anchors.shape[0] if key is None else num_anchors
    if k < 2:
        raise ValueError(f"marginalizing needs K >= 2 anchors for a standard deviation, got K = {k}")
    return k


def anchored_batch(x: jax.Array, anchors: jax.Array, key: jax.Array | None = None,
                   num_anchors: int | None = None) -> jax.Array:
    """All K anchored copies of x folded into one batch: (K * N, H, W, 2C), anchor-major.

    anchors: (K, H, W, C), the same K anchors for every sample; or, with `key` and `num_anchors`,
    a pool (M, H, W, C) from which each sample draws its own num_anchors anchors with replacement
    (the official code's inference).
    """
    k = _check_anchors(x, anchors, key, num_anchors)
    n = x.shape[0]
    if key is None:
        c = jnp.broadcast_to(anchors[:, None], (k, *x.shape))
    else:
        c = anchors[jax.random.randint(key, (k, n), 0, anchors.shape[0])]
    return jnp.concatenate([c, x[None] - c], axis=-1).reshape(k * n, *x.shape[1:-1], 2 * x.shape[-1])


@functools.partial(jax.jit, static_argnames=("apply", "num_anchors", "reduce"))
def marginalize(apply: Callable[..., Any], variables: Variables, x: jax.Array, anchors: jax.Array,
                key: jax.Array | None = None, num_anchors: int | None = None, reduce: str = "sum") -> Marginal:
    """Eq. 1 in one jitted call: f([c_k, x - c_k]) for all K anchors as one batch of K * N.

    apply: (variables, (B, H, W, 2C)) -> (logits, features), a hashable function (`Model.apply`).
    x: (N, H, W, C). anchors: (K, H, W, C) shared by all samples, or a pool with key/num_anchors
    (see `anchored_batch`). reduce: "sum" over classes (paper) or "mean" (official code) for tau.
    """
    batch = anchored_batch(x, anchors, key, num_anchors)
    k = batch.shape[0] // x.shape[0]
    logits, features = apply(variables, batch)
    samples = jnp.swapaxes(logits.reshape(k, x.shape[0], logits.shape[-1]), 0, 1)
    features = features.reshape(k, x.shape[0], features.shape[-1])
    return Marginal(jnp.mean(samples, axis=1), anchor_temperature(samples, reduce), samples, jnp.mean(features, axis=0))


def draw_anchors(key: jax.Array, images: jax.Array, num: int) -> jax.Array:
    """`num` distinct training images as anchors. images: (M, H, W, C), M >= num. Returns (num, H, W, C)."""
    if not 1 <= num <= images.shape[0]:
        raise ValueError(f"num must be in [1, {images.shape[0]}] (the images given), got {num}")
    return images[jnp.sort(jax.random.choice(key, images.shape[0], (num,), replace=False))]


def with_anchors(variables: Variables, anchors: jax.Array) -> Variables:
    """A trained anchored network's variables plus its inference anchors (K, H, W, C)."""
    return {**variables, ANCHORS: jnp.asarray(anchors)}


def anchored_model(net: Model, *, num_anchors: int | None = None, key: jax.Array | None = None) -> Model:
    """The Model of an anchored network marginalized over anchors (eq. 1).

    net: the 2C-channel network, trained with `AnchoredTraining`. Its variables get the anchors
    with `with_anchors(variables, anchors)`. By default every input is marginalized over all the
    anchors held (a fixed set, K = len(anchors)); with num_anchors and key each input draws its own
    num_anchors anchors from them (with replacement; the draw is a function of the key and the row
    in the batch). apply returns (H, mean features); samples adds the (N, K, C) anchored logits
    that the AMP scores read; maps averages the net's maps over the anchors.
    """
    h, w, c2 = net.input_shape
    if c2 % 2:
        raise ValueError(f"an anchored network takes 2C channels, got a {c2}-channel net")
    if (key is None) != (num_anchors is None):
        raise ValueError("give both key and num_anchors (a fresh draw per sample) or neither (all anchors)")
    input_shape = (h, w, c2 // 2)

    def split(variables: Variables) -> tuple[Variables, jax.Array]:
        if ANCHORS not in variables:
            raise ValueError("the variables hold no anchors: use oodjax.anchoring.with_anchors(variables, anchors)")
        return {k: v for k, v in variables.items() if k != ANCHORS}, variables[ANCHORS]

    def samples(variables: Variables, x: jax.Array):
        net_vars, anchors = split(variables)
        m = marginalize(net.apply, net_vars, x, anchors, key, num_anchors)
        return m.mean_logits, m.features, m.samples

    def apply(variables: Variables, x: jax.Array, train: bool = False):
        if train:
            raise ValueError("train the 2C-channel net with AnchoredTraining, not the marginalized model")
        return samples(variables, x)[:2]

    def maps(variables: Variables, x: jax.Array):
        net_vars, anchors = split(variables)
        batch = anchored_batch(x, anchors, key, num_anchors)
        k = batch.shape[0] // x.shape[0]
        logits, features, stage_maps = net.maps(net_vars, batch)
        mean = lambda a: jnp.mean(a.reshape(k, x.shape[0], *a.shape[1:]), axis=0)  # noqa: E731
        return mean(logits), mean(features), tuple(mean(m) for m in stage_maps)

    # No init or training mode: train the 2C-channel net with AnchoredTraining, then add anchors
    # with with_anchors. A batch row mixes the K anchors' rows: no per-sample weight gradients.
    return Model(apply, input_shape, head=net.head, maps=maps if net.maps is not None else None, samples=samples)


@dataclasses.dataclass(frozen=True)
class AnchoredTraining:
    """The input transform of anchored training (Fig. 2), `(key, x (N, H, W, C), step) -> (N, H, W, 2C)`,
    for `oodjax.training.train(..., input_transform=...)`.

    Each sample gets one anchor from the same batch: a shuffle of the batch (replacement=False, the
    paper's Fig. 2 and the default), or a draw with replacement (the official code; a sample can then
    be its own anchor). Consistency training: on every `every`-th step (official code: 5) the anchor
    channel gets T(c), the `corruptions` composed in order, while the residual keeps the clean
    anchor: [T(c), x - c]. corruptions=() is plain anchoring.
    """

    replacement: bool = False
    corruptions: tuple[str, ...] = tuple(AUGMENTATIONS)
    every: int = 5

    def __post_init__(self):
        check_augmentations(self.corruptions)
        if self.every < 1:
            raise ValueError(f"every must be >= 1 (1: corrupt the anchors on every step), got {self.every}")

    def __call__(self, key: jax.Array, x: jax.Array, step: jax.Array) -> jax.Array:
        n = x.shape[0]
        k_anchor, k_corrupt = jax.random.split(key)
        if self.replacement:
            idx = jax.random.randint(k_anchor, (n,), 0, n)
        else:
            idx = jax.random.permutation(k_anchor, n)
        c = x[idx]
        t_c = c
        if self.corruptions:
            t_c = jax.lax.cond(step % self.every == 0, compose(self.corruptions), lambda _, a: a, k_corrupt, c)
        return jnp.concatenate([t_c, x - c], axis=-1)
