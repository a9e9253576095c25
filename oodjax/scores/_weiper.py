"""WeiPer (Granz, Heurich & Landgraf, "WeiPer: OOD Detection using Weight Perturbations of Class
Projections", NeurIPS 2024, sec. 3).

The head's class projections are perturbed r times: W~_j = W + delta ||w_c|| u_jc column by column
(u_jc a random unit vector in R^D; the bias is kept), giving r C perturbed logits z~ = h W~ + b.
- MSP_W (`weiper`): the mean over the r repeats of max softmax(z~_j).
- WeiPer+KLD (`weiper_kld`): each sample's values (its D features, its r C perturbed logits) are
  binned into a histogram over the global training range [min, max] (n_bins equal bins, counts
  divided by the number of values, out-of-range values dropped); the training density is the mean
  of the training samples' histograms. A test histogram is box-smoothed (width s, replicate
  padding), eps is added to both, both are normalized, and their symmetric KL divergence is taken:
  score = -(KLD_s1(h) + lambda1 KLD_s2(z~) - lambda2 MSP_W).
W~ is drawn once, at fit, from the key (the authors' code draws it anew per batch; a per-sample
histogram of r C values hardly depends on the draw). eps = 0.01 (features) and 0.025 (logits)
are the code's defaults; the box filter averages (a normalized kernel).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._checks import check_int, check_nonnegative, check_positive, check_rank
from oodjax.scores._registry import register
from oodjax.scores._types import FitData, Head, ModelOutputs, Scorer
from oodjax.types import FEATURES, HEAD, KEY, TRAIN

EPS_FEATURES, EPS_LOGITS = 0.01, 0.025
FIT_CHUNK = 1024  # training rows whose r C perturbed logits are held at once


def perturbed_head(key: jax.Array, head: Head, repeats: int = 100, delta: float = 1.8) -> Head:
    """(D, r C) kernel [W + P_1, ..., W + P_r] and (r C,) bias [b, ..., b]; column c of P_j is
    delta ||w_c|| times a uniformly random unit vector."""
    d, c = head.kernel.shape
    u = jax.random.normal(key, (repeats, d, c), head.kernel.dtype)
    u = u / jnp.linalg.norm(u, axis=1, keepdims=True)
    perturbed = head.kernel[None] + delta * jnp.linalg.norm(head.kernel, axis=0)[None, None, :] * u
    return Head(jnp.moveaxis(perturbed, 0, 1).reshape(d, repeats * c), jnp.tile(head.bias, repeats))


def msp_w(perturbed_logits: jax.Array, num_classes: int) -> jax.Array:
    """Mean over repeats of the max softmax of each repeat's C logits. (N, r C) -> (N,)."""
    z = perturbed_logits.reshape(perturbed_logits.shape[0], -1, num_classes)
    return jnp.mean(jnp.max(jax.nn.softmax(z, axis=-1), axis=-1), axis=-1)


def histograms(values: jax.Array, low: jax.Array, high: jax.Array, n_bins: int) -> jax.Array:
    """Per row, the fraction of its values in each of n_bins equal bins of [low, high] (high itself in
    the last bin, as numpy.histogram); values outside are dropped (the row need not sum to 1; the
    authors' code bins [low, high + 1e-8), the same in float64; in float32 it would drop the maximum).
    (N, V) -> (N, n_bins)."""
    width = (high - low) / n_bins
    inside = (values >= low) & (values <= high)
    idx = jnp.clip(jnp.floor((values - low) / width).astype(jnp.int32), 0, n_bins - 1)  # float32: v < high can
    # round up to n_bins
    counts = jax.vmap(lambda i, w: jnp.bincount(i, w, length=n_bins))(jnp.where(inside, idx, 0),
                                                                       inside.astype(values.dtype))
    return counts / values.shape[1]


def box_smooth(h: jax.Array, width: int) -> jax.Array:
    """Moving average of width `width` along the last axis, replicate padding, same length (left pad
    (width - 1) // 2)."""
    left = (width - 1) // 2
    padded = jnp.pad(h, ((0, 0), (left, width - 1 - left)), mode="edge")
    csum = jnp.cumsum(jnp.pad(padded, ((0, 0), (1, 0))), axis=-1)
    return (csum[:, width:] - csum[:, :-width]) / width


def symmetric_kl(p: jax.Array, q: jax.Array, eps: float) -> jax.Array:
    """KL(p||q) + KL(q||p) after adding eps to both and normalizing. p: (B,) or (N, B); q: (N, B)."""
    p = jnp.broadcast_to(p + eps, q.shape)
    q = q + eps
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    q = q / jnp.sum(q, axis=-1, keepdims=True)
    return jnp.sum((p - q) * (jnp.log(p) - jnp.log(q)), axis=-1)


class WeiperState(NamedTuple):
    """perturbed: the (D, r C) perturbed head; ranges: (4,) min/max of training features and perturbed
    logits; density_h / density_z: (n_bins,) mean training histograms."""

    perturbed: Head
    ranges: jax.Array
    density_h: jax.Array
    density_z: jax.Array


def fit_weiper(key: jax.Array, features: jax.Array, head: Head, repeats: int = 100, delta: float = 1.8,
               n_bins: int = 100) -> WeiperState:
    check_rank("features", features, 2, "(N, D)")
    perturbed = perturbed_head(key, head, repeats, delta)
    logits = jax.jit(lambda f: f @ perturbed.kernel + perturbed.bias[None, :])
    hist = jax.jit(lambda v, lo, hi: jnp.sum(histograms(v, lo, hi, n_bins), axis=0))
    chunks = [features[i:i + FIT_CHUNK] for i in range(0, features.shape[0], FIT_CHUNK)]  # (chunk, r C) at a time
    bounds = np.array([(float(z.min()), float(z.max())) for z in map(logits, chunks)])
    ranges = jnp.asarray([features.min(), features.max(), bounds[:, 0].min(), bounds[:, 1].max()], features.dtype)
    dens_h = sum(hist(c, ranges[0], ranges[1]) for c in chunks) / features.shape[0]
    dens_z = sum(hist(logits(c), ranges[2], ranges[3]) for c in chunks) / features.shape[0]
    return WeiperState(perturbed, ranges, dens_h, dens_z)


def weiper_kld(features: jax.Array, state: WeiperState, num_classes: int, lambda1: float = 2.5,
               lambda2: float = 0.1, smoothing: int = 4, smoothing_perturbed: int = 15) -> jax.Array:
    """-(KLD_s1(h) + lambda1 KLD_s2(z~) - lambda2 MSP_W). features: (N, D). Returns (N,)."""
    check_rank("features", features, 2, "(N, D)")
    n_bins = state.density_h.shape[0]
    z = features @ state.perturbed.kernel + state.perturbed.bias[None, :]
    q_h = box_smooth(histograms(features, state.ranges[0], state.ranges[1], n_bins), smoothing)
    q_z = box_smooth(histograms(z, state.ranges[2], state.ranges[3], n_bins), smoothing_perturbed)
    kld_h = symmetric_kl(state.density_h, q_h, EPS_FEATURES)
    kld_z = symmetric_kl(state.density_z, q_z, EPS_LOGITS)
    return -(kld_h + lambda1 * kld_z - lambda2 * msp_w(z, num_classes))


@register("weiper")
def _weiper(repeats: int = 100, delta: float = 1.8) -> Scorer:
    """MSP_W with r = 100 repeats at delta = 1.8 (the authors' CIFAR-10 ResNet-18 setting)."""
    check_int("repeats", repeats)
    check_positive("delta", delta)

    def fit(data: FitData) -> Head:
        if data.head is None or data.key is None:
            raise ValueError("weiper perturbs the head at random: it needs FitData.head and FitData.key")
        return perturbed_head(data.key, data.head, repeats, delta)

    def score(perturbed: Head, out: ModelOutputs) -> jax.Array:
        z = out.features @ perturbed.kernel + perturbed.bias[None, :]
        return msp_w(z, perturbed.bias.shape[0] // repeats)

    return Scorer(fit, score, frozenset({FEATURES, HEAD, KEY}))


@register("weiper_kld")
def _weiper_kld(repeats: int = 100, delta: float = 1.8, n_bins: int = 100, lambda1: float = 2.5,
                lambda2: float = 0.1, smoothing: int = 4, smoothing_perturbed: int = 15) -> Scorer:
    """WeiPer+KLD at the authors' CIFAR-10 ResNet-18 setting (ImageNet ResNet-50: delta 2.4,
    lambda2 0.25, smoothing 40)."""
    check_int("repeats", repeats)
    check_int("n_bins", n_bins, 2)
    check_int("smoothing", smoothing)
    check_int("smoothing_perturbed", smoothing_perturbed)
    check_positive("delta", delta)
    for name, v in (("lambda1", lambda1), ("lambda2", lambda2)):
        check_nonnegative(name, v)

    def fit(data: FitData) -> WeiperState:
        if data.head is None or data.key is None:
            raise ValueError("weiper_kld perturbs the head at random: it needs FitData.head and FitData.key")
        return fit_weiper(data.key, data.train.features, data.head, repeats, delta, n_bins)

    def score(state: WeiperState, out: ModelOutputs) -> jax.Array:
        return weiper_kld(out.features, state, state.perturbed.bias.shape[0] // repeats, lambda1, lambda2, smoothing,
                          smoothing_perturbed)

    return Scorer(fit, score, frozenset({FEATURES, HEAD, KEY, TRAIN}))
