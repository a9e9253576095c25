"""NAC-UE (Liu et al., "Neuron Activation Coverage: Rethinking Out-of-distribution Detection and
Generalization", ICLR 2024, arXiv:2306.02879, sec. 3), on the penultimate layer.

A neuron's state is s = sigmoid(alpha h g), h its (pooled) activation and g the gradient of the
cross-entropy to the uniform distribution, -(1/C) sum_c log p_c, with respect to it; for the
penultimate features that gradient is g = (p - 1/C) W^T in closed form. Each neuron's states on a
class-balanced building set of ID training samples are counted in M - 1 bins (log-spaced edges,
dense near 0 and 1, as the official code's); the coverage of a bin is min(count / O, 1), and the
score of a sample is its states' coverages averaged over neurons.

The leaderboard's NAC-UE averages this over four layers (layer1-3 and the pooled features, each
with its own O, M, alpha); this scorer is its penultimate-layer term only (defaults: the official
CIFAR-10 ResNet-18 values for that layer, O = 50, M = 50, alpha = 100, 1000 building samples).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._checks import check_int, check_logits_features, check_positive
from oodjax.scores._mahalanobis import check_labels
from oodjax.scores._registry import register
from oodjax.scores._types import FitData, ModelOutputs, Scorer
from oodjax.types import FEATURES, HEAD, KEY, LABELS, LOGITS, TRAIN


def nac_edges(m: int) -> np.ndarray:
    """The official code's M bin edges on [0, 1.2]: log_1000 of linspace(1, sqrt(1000), M // 2) (0 to
    0.5) and its mirror 1 - ... (0.5 to 1), the last raised to 1.01, then 1.2."""
    check_int("the number of bin edges M", m, 4)
    if m % 2:
        raise ValueError(f"the number of bin edges M must be an even integer >= 4, got {m!r}")
    x = np.log(np.linspace(1.0, np.sqrt(1000.0), m // 2)) / np.log(1000.0)
    edges = np.concatenate([x[:-1], (1.0 - x)[::-1]])
    edges[-1] += 0.01
    return np.append(edges, 1.2)


def nac_states(logits: jax.Array, features: jax.Array, kernel: jax.Array, alpha: float) -> jax.Array:
    """sigmoid(alpha h (p - 1/C) W^T): the penultimate neurons' states. Returns (N, D)."""
    check_logits_features(logits, features)
    p = jax.nn.softmax(logits, axis=-1)
    grad = (p - 1.0 / logits.shape[1]) @ kernel.T
    return jax.nn.sigmoid(alpha * features * grad)


class NacState(NamedTuple):
    """kernel: (D, C) the head's W; edges: (M,) bin edges; coverage: (M - 1, D) min(count / O, 1)."""

    kernel: jax.Array
    edges: jax.Array
    coverage: jax.Array


def balanced_subset(key: jax.Array, labels: np.ndarray, size: int, num_classes: int) -> np.ndarray:
    """Indices of about size / C random samples of each class (all of a class that has fewer)."""
    per_class = max(size // num_classes, 1)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    idx = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(num_classes)]
    return np.sort(np.concatenate(idx))


def fit_nac(states: jax.Array, edges: np.ndarray, min_count: float) -> jax.Array:
    """(M - 1, D) coverage min(count / O, 1) of each bin [e_m, e_m+1) and neuron. states: (N, D)."""
    s = np.asarray(states, np.float64)
    bins = np.searchsorted(edges, s, side="right") - 1  # [e_m, e_m+1) -> m
    counts = np.zeros((edges.size - 1, s.shape[1]))
    inside = (bins >= 0) & (bins < edges.size - 1)
    cols = np.broadcast_to(np.arange(s.shape[1]), s.shape)
    np.add.at(counts, (bins[inside], cols[inside]), 1.0)
    return jnp.asarray(np.minimum(counts / min_count, 1.0), states.dtype)


def nac(logits: jax.Array, features: jax.Array, state: NacState, alpha: float) -> jax.Array:
    """The mean over neurons of the coverage of each neuron's state bin. Returns (N,)."""
    s = nac_states(logits, features, state.kernel, alpha)
    bins = jnp.clip(jnp.searchsorted(state.edges, s, side="right") - 1, 0, state.coverage.shape[0] - 1)
    return jnp.mean(state.coverage[bins, jnp.arange(s.shape[1])[None, :]], axis=-1)


@register("nac_ue")
def _nac_ue(alpha: float = 100.0, num_edges: int = 50, min_count: float = 50.0, build_size: int = 1000) -> Scorer:
    check_positive("alpha", alpha)
    check_positive("min_count", min_count)
    edges = nac_edges(num_edges)
    check_int("build_size", build_size)

    def fit(data: FitData) -> NacState:
        if data.head is None or data.labels is None or data.key is None:
            raise ValueError("nac_ue needs FitData.head, .labels and .key (a class-balanced building set)")
        num_classes = data.train.logits.shape[1]
        labels = check_labels(data.labels, data.train.logits.shape[0], num_classes)
        idx = balanced_subset(data.key, labels, build_size, num_classes)
        states = nac_states(data.train.logits[idx], data.train.features[idx], data.head.kernel, alpha)
        used = np.asarray(jnp.asarray(edges, states.dtype), np.float64)  # the edges the score compares with
        return NacState(data.head.kernel, jnp.asarray(used, states.dtype), fit_nac(states, used, min_count))

    def score(state: NacState, out: ModelOutputs) -> jax.Array:
        return nac(out.logits, out.features, state, alpha)

    return Scorer(fit, score, frozenset({LOGITS, FEATURES, HEAD, TRAIN, LABELS, KEY}))
