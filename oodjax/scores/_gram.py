"""Gram-matrix deviations (Sastry & Oore 2020) on a model's intermediate maps.

For layer l with map F (HW x C) and power p: G_p = (F^p)^T (F^p), G_p <- sign(G_p) |G_p|^(1/p), and
the layer's statistic for p is the row sums of the upper triangle of G_p (C values), as the
authors' code. Per predicted class c the training minima/maxima of every statistic are kept; a
sample's deviation in layer l is
  delta_l = sum relu(min - v) / |min + 1e-6| + relu(v - max) / |max + 1e-6|,
and the OOD score is sum_l delta_l / E_val[delta_l]. The ID-score is its negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._registry import register
from oodjax.scores._types import FitData, ModelOutputs, Scorer
from oodjax.types import ID_VAL, LOGITS, MAPS, TRAIN


def gram_features(maps: Sequence[jax.Array], powers: Sequence[int] = tuple(range(1, 11))) -> tuple[jax.Array, ...]:
    """Per layer, (N, P * C_l) Gram statistics of the (N, H, W, C_l) maps for each power.

    Computed as m^2 (sum_k (F_k/m)^p (F_k/m)^p)^(1/p) with m = max |F| per sample, which equals
    (sum_k F_k^p F_k^p)^(1/p) without overflow at high powers.
    """
    out = []
    for f in maps:
        if f.ndim != 4:
            raise ValueError(f"Gram statistics need (N, H, W, C) maps, got shape {f.shape}")
        f = f.reshape(f.shape[0], -1, f.shape[-1])
        m = jnp.maximum(jnp.max(jnp.abs(f), axis=(1, 2), keepdims=True), 1e-12)
        g = f / m
        stats = []
        for p in powers:
            gp = g**p
            gram = jnp.einsum("nkc,nkd->ncd", gp, gp)
            if p == 2:
                gram = jnp.sign(gram) * jnp.sqrt(jnp.abs(gram))
            elif p > 2:  # pow is the costly part: ~10x a forward pass at p = 1..10 on a CPU
                gram = jnp.sign(gram) * jnp.abs(gram) ** (1.0 / p)
            gram = gram * (m * m)
            stats.append(jnp.sum(jnp.triu(gram), axis=-1))
        out.append(jnp.concatenate(stats, axis=-1))
    return tuple(out)


class GramState(NamedTuple):
    mins: tuple[jax.Array, ...]  # per layer (K, F_l)
    maxs: tuple[jax.Array, ...]
    expected: jax.Array  # (L,) E_val[delta_l]


def _deviations(stats, pred, mins, maxs) -> jax.Array:
    """(N, L) per-layer deviations of the statistics from the predicted class's [min, max]."""
    devs = []
    for v, lo, hi in zip(stats, mins, maxs):
        lo, hi = lo[pred], hi[pred]
        d = jax.nn.relu(lo - v) / jnp.abs(lo + 1e-6) + jax.nn.relu(v - hi) / jnp.abs(hi + 1e-6)
        devs.append(jnp.sum(d, axis=-1))
    return jnp.stack(devs, axis=-1)


def fit_gram(train: ModelOutputs, val: ModelOutputs) -> GramState:
    """Class-wise minima/maxima on `train` (by predicted class); layer normalizers on `val`."""
    pred = np.asarray(jnp.argmax(train.logits, -1))
    num_classes = train.logits.shape[1]
    mins, maxs = [], []
    for v in train.maps:
        v = np.asarray(v)
        lo = np.tile(v.min(0), (num_classes, 1))  # classes never predicted: the global range
        hi = np.tile(v.max(0), (num_classes, 1))
        for c in np.unique(pred):
            lo[c], hi[c] = v[pred == c].min(0), v[pred == c].max(0)
        mins.append(jnp.asarray(lo))
        maxs.append(jnp.asarray(hi))
    dev = _deviations(val.maps, jnp.argmax(val.logits, -1), mins, maxs)
    expected = jnp.mean(dev, axis=0)
    return GramState(tuple(mins), tuple(maxs), jnp.where(expected > 0, expected, 1.0))


def gram(out: ModelOutputs, state: GramState) -> jax.Array:
    """-sum_l delta_l / E_val[delta_l]; out.maps are `gram_features` of the maps. Returns (N,)."""
    dev = _deviations(out.maps, jnp.argmax(out.logits, -1), state.mins, state.maxs)
    return -jnp.sum(dev / state.expected[None, :], axis=-1)


@register("gram")
def _gram(powers: Sequence[int] = tuple(range(1, 11))) -> Scorer:
    """Gram matrices with `powers` (the paper uses 1..10). Needs the model's intermediate maps."""
    powers = tuple(int(p) for p in powers)
    if not powers or min(powers) < 1:
        raise ValueError(f"powers must be positive integers, got {powers}")

    def fit(data: FitData) -> GramState:
        if data.train.maps is None:
            raise ValueError("gram needs the reduced intermediate maps in FitData.train.maps")
        return fit_gram(data.train, data.val)

    return Scorer(fit, lambda state, out: gram(out, state), frozenset({LOGITS, MAPS, TRAIN, ID_VAL}),
                  map_reduce=partial(gram_features, powers=powers))
