"""NAC-UE (Liu et al., "Neuron Activation Coverage: Rethinking Out-of-distribution Detection and
Generalization", ICLR 2024, arXiv:2306.02879, sec. 3-4).

A neuron's state is (eq. 2) s = sigmoid(alpha z dKL(u || p)/dz), z its activation and the gradient
that of the KL divergence of the softmax p from the uniform distribution u, per sample (the same as
the gradient of -(1/C) sum_c log p_c). For the penultimate features that gradient is
(p - 1/C) W^T in closed form; for an intermediate map (N, H, W, C_l) z and the gradient are each
summed over the H x W positions first (the official code's pooling for ResNet/BiT, "the
denominator can be absorbed by alpha"), the gradient by autodiff (`Model.map_grads`). Each
neuron's states on a class-balanced building set of ID training samples are counted in M - 1 bins
(log-spaced edges, dense near 0 and 1, as the official code's); the coverage of a bin is
min(count / O, 1) (eq. 4-5), and a layer's score is its states' coverages averaged over neurons.
NAC-UE (eq. 6) averages the layers' scores, unweighted.

Layers (`NacLayer`): the penultimate features (map=None), and intermediate maps by their index in
the model's maps (the stage outputs of the zoo's ResNet/WRN/DenseNet/BiT). `NAC_LAYERS` holds the
official code's settings (layers and each one's alpha, M, O) for a four-stage ResNet:
"cifar10" / "cifar100" (ResNet-18: layer1-3 and avgpool) and "imagenet" (ResNet-50, the same
layers). Without `layers` the scorer is the penultimate term alone (O = 50, M = 50, alpha = 100:
the official CIFAR-10 values for that layer), which any model provides.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._checks import check_int, check_logits_features, check_positive
from oodjax.scores._mahalanobis import check_labels
from oodjax.scores._registry import register
from oodjax.scores._types import FitData, ModelOutputs, Scorer
from oodjax.types import FEATURES, HEAD, KEY, LABELS, LOGITS, MAP_GRADS, MAPS, TRAIN


class NacLayer(NamedTuple):
    """One layer of NAC-UE: map None (penultimate features) or an index into the model's maps
    (negative from the last); alpha the sigmoid's steepness; num_edges M; min_count O."""

    map: int | None
    alpha: float
    num_edges: int
    min_count: float


# The official code's settings (BierOne/ood_coverage, OpenOOD v1.5's nac configs): maps -4, -3, -2
# are layer1, layer2, layer3 of a four-stage ResNet; None is the pooled penultimate features.
NAC_LAYERS: dict[str, tuple[NacLayer, ...]] = {
    "cifar10": (NacLayer(None, 100.0, 50, 50.0), NacLayer(-2, 1000.0, 500, 100.0),
                NacLayer(-3, 0.001, 50, 5.0), NacLayer(-4, 0.001, 500, 100.0)),
    "cifar100": (NacLayer(None, 50.0, 50, 50.0), NacLayer(-2, 10.0, 1000, 500.0),
                 NacLayer(-3, 1.0, 50, 500.0), NacLayer(-4, 0.005, 50, 5.0)),
    "imagenet": (NacLayer(None, 3000.0, 50, 10.0), NacLayer(-2, 300.0, 50, 500.0),
                 NacLayer(-3, 0.01, 500, 50.0), NacLayer(-4, 1.0, 1000, 5000.0)),
}


def uniform_kl_loss(logits: jax.Array) -> jax.Array:
    """(N,) -(1/C) sum_c log softmax(logits)_c: KL(u || p) up to the constant -log C."""
    return -jnp.mean(jax.nn.log_softmax(logits, axis=-1), axis=-1)


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
    """kernel: (D, C) the head's W; edges: per layer (M_l,) bin edges; coverage: per layer
    (M_l - 1, D_l) min(count / O_l, 1); the layers in the order of the scorer's `layers`."""

    kernel: jax.Array
    edges: tuple[jax.Array, ...]
    coverage: tuple[jax.Array, ...]


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


def coverage_score(states: jax.Array, edges: jax.Array, coverage: jax.Array) -> jax.Array:
    """(N,) the mean over neurons of the coverage of each neuron's state bin. states: (N, D)."""
    bins = jnp.clip(jnp.searchsorted(edges, states, side="right") - 1, 0, coverage.shape[0] - 1)
    return jnp.mean(coverage[bins, jnp.arange(states.shape[1])[None, :]], axis=-1)


def nac(logits: jax.Array, features: jax.Array, state: NacState, alpha: float) -> jax.Array:
    """The single-layer (penultimate) NAC score of `state`'s first layer. Returns (N,)."""
    return coverage_score(nac_states(logits, features, state.kernel, alpha), state.edges[0], state.coverage[0])


def _layers(layers: str | Sequence[NacLayer] | None, alpha: float, num_edges: int,
            min_count: float) -> tuple[NacLayer, ...]:
    if layers is None:
        return (NacLayer(None, alpha, num_edges, min_count),)
    if isinstance(layers, str):
        if layers not in NAC_LAYERS:
            raise ValueError(f"unknown NAC layer setting {layers!r}; known: {sorted(NAC_LAYERS)} "
                             "(or a sequence of scores.NacLayer)")
        return NAC_LAYERS[layers]
    out = tuple(NacLayer(*layer) for layer in layers)
    if not out:
        raise ValueError("layers must hold at least one NacLayer")
    maps = [layer.map for layer in out]
    if len(set(maps)) != len(maps) or any(m is not None and not isinstance(m, (int, np.integer)) for m in maps):
        raise ValueError(f"each layer's map must be None or a distinct integer index, got {maps}")
    for layer in out:
        check_positive("alpha", layer.alpha)
        check_positive("min_count", layer.min_count)
    return out


@register("nac_ue")
def _nac_ue(alpha: float = 100.0, num_edges: int = 50, min_count: float = 50.0, build_size: int = 1000,
            layers: str | Sequence[NacLayer] | None = None) -> Scorer:
    """layers: None (the penultimate features with alpha, num_edges, min_count), a name in
    `NAC_LAYERS` ("cifar10", "cifar100", "imagenet"), or a sequence of `NacLayer`s."""
    check_positive("alpha", alpha)
    check_positive("min_count", min_count)
    check_int("build_size", build_size)
    spec = _layers(layers, alpha, num_edges, min_count)
    edges = [nac_edges(layer.num_edges) for layer in spec]
    map_ids = tuple(layer.map for layer in spec if layer.map is not None)

    def map_reduce(maps_grads):
        maps, grads = maps_grads
        if map_ids and not -len(maps) <= min(map_ids) <= max(map_ids) < len(maps):
            raise ValueError(f"nac_ue's layers read maps {list(map_ids)}, but the model has {len(maps)} maps; "
                             "pick layers for this model (scores.NacLayer)")
        return tuple((jnp.sum(maps[i], axis=(1, 2)), jnp.sum(grads[i], axis=(1, 2))) if maps[i].ndim == 4
                     else (maps[i], grads[i]) for i in map_ids)

    def all_states(state_kernel, out: ModelOutputs) -> list[jax.Array]:
        pooled = iter(out.maps if map_ids else ())
        states = []
        for layer in spec:
            if layer.map is None:
                states.append(nac_states(out.logits, out.features, state_kernel, layer.alpha))
            else:
                z, g = next(pooled)
                states.append(jax.nn.sigmoid(layer.alpha * z * g))
        return states

    def fit(data: FitData) -> NacState:
        if data.head is None or data.labels is None or data.key is None:
            raise ValueError("nac_ue needs FitData.head, .labels and .key (a class-balanced building set)")
        if map_ids and data.train.maps is None:
            raise ValueError("nac_ue with intermediate layers needs the maps and their gradients (FitData.train.maps)")
        num_classes = data.train.logits.shape[1]
        labels = check_labels(data.labels, data.train.logits.shape[0], num_classes)
        idx = balanced_subset(data.key, labels, build_size, num_classes)
        t = data.train
        sub = ModelOutputs(t.logits[idx], t.features[idx], maps=jax.tree.map(lambda a: a[idx], t.maps))
        used, coverage = [], []
        for layer, e, st in zip(spec, edges, all_states(data.head.kernel, sub)):
            e_used = np.asarray(jnp.asarray(e, st.dtype), np.float64)  # the edges the score compares with
            used.append(jnp.asarray(e_used, st.dtype))
            coverage.append(fit_nac(st, e_used, layer.min_count))
        return NacState(data.head.kernel, tuple(used), tuple(coverage))

    def score(state: NacState, out: ModelOutputs) -> jax.Array:
        per_layer = [coverage_score(st, e, c) for st, e, c in zip(all_states(state.kernel, out), state.edges,
                                                                 state.coverage)]
        return jnp.mean(jnp.stack(per_layer, axis=-1), axis=-1)

    needs = frozenset({LOGITS, FEATURES, HEAD, TRAIN, LABELS, KEY})
    if not map_ids:
        return Scorer(fit, score, needs)
    return Scorer(fit, score, needs | {MAPS, MAP_GRADS}, map_reduce=map_reduce, map_loss=uniform_kl_loss)
