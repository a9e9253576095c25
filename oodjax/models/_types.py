"""What every oodjax model exposes: pure functions over a variables pytree."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax.linen as nn
from flax import traverse_util
from flax.core import unfreeze
import jax
import jax.numpy as jnp

from oodjax import types as T
from oodjax.types import Head

Variables = Any


EXTRAS = "extras"  # the Flax collection a module sows its extra named outputs into
PERTURBATIONS = "perturbations"  # the Flax collection of the zero perturbations `tap` adds to the maps


def tap(module: nn.Module, value: jax.Array, index: int) -> jax.Array:
    """Sows `value` as the module's intermediate map `index` (ModelOutputs.maps) and returns it plus
    a zero perturbation variable "maps_<index>" (Flax `perturb`) when the "perturbations" collection
    is given, so that the gradient with respect to that variable is the gradient with respect to the
    map (`Model.map_grads`). Without the collection it returns `value` itself (no extra work)."""
    module.sow("intermediates", "maps", value)
    return module.perturb(f"maps_{index}", value, collection=PERTURBATIONS)


class Model(NamedTuple):
    """A classifier as pure functions; a field is None where the model has no such function.

    apply: (variables, x (N, H, W, C_in), train=False) -> (logits (N, C), features (N, D)),
      features being the penultimate activations fed to the final dense layer.
    input_shape: (H, W, C_in) of one image.
    init: key -> variables (a pytree: {'params': ..., maybe 'batch_stats': ...}).
    head: variables -> Head, that final dense layer (logits = features @ kernel + bias).
    train_apply: (variables, x, key) -> ((logits, features, extras), updates), training mode with
      dropout (and stochastic layers) drawn from `key`; `extras` is a dict of the extra named outputs
      a training objective may need (VIB's KL, BINC's binary logits; {} for a plain classifier);
      `updates` holds the new non-parameter collections (e.g. batch_stats).
    maps: (variables, x) -> (logits, features, intermediate maps): the (N, H_l, W_l, C_l) outputs
      of the stages, for Gram matrices and multi-layer Mahalanobis.
    map_grads: (variables, x, loss) -> (logits, features, maps, grads): also the gradient of
      sum_n loss(logits)_n with respect to each map, loss: (N, C) logits -> (N,) per-sample losses;
      with `per_sample`, row n of each gradient is sample n's own (NAC's neuron states).
    samples: (variables, x) -> (logits, features, samples (N, K, C)) for a model whose prediction
      combines K stochastic ones (K anchors, K ensemble members, K dropout masks).
    extras: (variables, x) -> (logits, features, {name: (N, ...)}) for a model with the extra named
      outputs `extra_names` that its scorers read (`ModelOutputs.extras`).
    dropout_apply: (variables, x, key) -> (logits, features): evaluation mode (running batch
      statistics) with dropout on, for MC-dropout (`oodjax.models.mc_dropout`).
    per_sample: every row of a batch depends on its own input only, through Flax layers, so
      per-sample weight gradients are meaningful (provides "weights").
    """

    apply: Callable[..., tuple[jax.Array, jax.Array]]
    input_shape: tuple[int, int, int]
    init: Callable[[jax.Array], Variables] | None = None
    head: Callable[[Variables], Head] | None = None
    train_apply: Callable[..., tuple[tuple[jax.Array, jax.Array, dict[str, jax.Array]], dict[str, Any]]] | None = None
    maps: Callable[..., tuple[jax.Array, jax.Array, tuple[jax.Array, ...]]] | None = None
    map_grads: Callable[..., tuple[jax.Array, jax.Array, tuple[jax.Array, ...], tuple[jax.Array, ...]]] | None = None
    samples: Callable[..., tuple[jax.Array, jax.Array, jax.Array]] | None = None
    extras: Callable[..., tuple[jax.Array, jax.Array, dict[str, jax.Array]]] | None = None
    dropout_apply: Callable[..., tuple[jax.Array, jax.Array]] | None = None
    extra_names: tuple[str, ...] = ()
    per_sample: bool = False

    @property
    def provides(self) -> frozenset[str]:
        """What scorers can read from this model (the vocabulary of `oodjax.types`)."""
        out = {T.LOGITS, T.FEATURES, T.INPUTS, T.MODEL}
        out |= {T.HEAD} if self.head is not None else set()
        out |= {T.MAPS} if self.maps is not None else set()
        out |= {T.MAP_GRADS} if self.map_grads is not None else set()
        out |= {T.SAMPLES} if self.samples is not None else set()
        out |= {T.WEIGHTS} if self.per_sample else set()
        out |= {T.extra(n) for n in self.extra_names} if self.extras is not None else set()
        return frozenset(out)


def sown(collection: Mapping[str, Any] | None, name: str) -> list[jax.Array]:
    """The values sown under `name` anywhere in a (nested) Flax collection, in the order sown."""
    if not collection:
        return []
    out = []
    for path, value in traverse_util.flatten_dict(unfreeze(collection)).items():
        if path[-1] == name:
            out.extend(value)
    return out


def _extras(collection: Mapping[str, Any] | None) -> dict[str, jax.Array]:
    """{name: value} of a module's sown extras (each name sown once, by any submodule)."""
    out: dict[str, jax.Array] = {}
    for path, value in traverse_util.flatten_dict(unfreeze(collection or {})).items():
        if path[-1] in out:
            raise ValueError(f"extra output {path[-1]!r} is sown twice")
        out[path[-1]] = value[-1]
    return out


def _ordered_grads(grads: Mapping[str, Any], maps: tuple[jax.Array, ...], module: nn.Module) -> tuple[jax.Array, ...]:
    """The gradients of the perturbations "maps_<i>" in the order of i, checked against the maps."""
    flat = traverse_util.flatten_dict(unfreeze(grads))
    try:
        out = tuple(v for _, v in sorted(flat.items(), key=lambda kv: int(kv[0][-1].rsplit("_", 1)[1])))
    except (IndexError, ValueError):
        out = ()
    if len(out) != len(maps) or any(g.shape != m.shape for g, m in zip(out, maps)):
        raise ValueError(f"{type(module).__name__} sows {len(maps)} maps but has perturbations "
                         f"{['/'.join(k) for k in flat]}: sow each map with models.tap(self, x, i) "
                         "(i = 0, 1, ... in order) for map gradients")
    return out


def from_flax(module: nn.Module, input_shape: tuple[int, int, int], head_name: str = "head",
              extras: tuple[str, ...] = ()) -> Model:
    """Wraps a Flax module whose __call__(x, train) returns (logits, features) as a `Model`.

    The module sows its intermediate maps with `x = tap(self, x, i)` (or, without map gradients,
    `self.sow("intermediates", "maps", x)`) and, with
    extras (their names), its extra named outputs with `self.sow("extras", name, value)`. head_name: the
    path of the final Dense layer in params ("head", or "a/b" for a nested one). A module with a
    `mc_dropout` attribute (SmallCNN, WideResNet) gets a `dropout_apply` for MC-dropout.
    """
    head_path = tuple(head_name.split("/"))

    def check(x: jax.Array) -> None:
        if x.shape[1:] != tuple(input_shape):
            raise ValueError(f"expected images of shape (N, {', '.join(map(str, input_shape))}), got {x.shape}")

    def init(key: jax.Array) -> Variables:
        variables = module.init({"params": key, "dropout": key, "sample": key}, jnp.zeros((1, *input_shape), jnp.float32))
        return {k: v for k, v in variables.items() if k not in (EXTRAS, PERTURBATIONS)}

    def apply(variables: Variables, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        check(x)
        return module.apply(variables, x, train=train)

    def train_apply(variables: Variables, x: jax.Array, key: jax.Array):
        check(x)
        mutable = [c for c in variables if c != "params"] + [EXTRAS]
        k_drop, k_sample = jax.random.split(key)
        (logits, features), updates = module.apply(variables, x, train=True, mutable=mutable,
                                                   rngs={"dropout": k_drop, "sample": k_sample})
        updates = dict(updates)
        return (logits, features, _extras(updates.pop(EXTRAS, None))), updates

    def maps(variables: Variables, x: jax.Array):
        check(x)
        (logits, features), inter = module.apply(variables, x, train=False, mutable=["intermediates"])
        return logits, features, tuple(sown(inter.get("intermediates"), "maps"))

    def map_grads(variables: Variables, x: jax.Array, loss: Callable[[jax.Array], jax.Array]):
        check(x)
        shapes = jax.eval_shape(lambda: module.apply(variables, x, train=False, mutable=[PERTURBATIONS])[1])
        zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), dict(shapes).get(PERTURBATIONS, {}))

        def total(perturbations):
            (logits, features), inter = module.apply({**variables, PERTURBATIONS: perturbations}, x, train=False,
                                                     mutable=["intermediates"])
            return jnp.sum(loss(logits)), (logits, features, tuple(sown(inter.get("intermediates"), "maps")))

        grads, (logits, features, maps) = jax.grad(total, has_aux=True)(zeros)
        return logits, features, maps, _ordered_grads(grads, maps, module)

    def extra_outputs(variables: Variables, x: jax.Array):
        check(x)
        (logits, features), out = module.apply(variables, x, train=False, mutable=[EXTRAS])
        return logits, features, _extras(out.get(EXTRAS))

    def head(variables: Variables) -> Head:
        p = variables["params"]
        for part in head_path:
            p = p[part]
        return Head(p["kernel"], p["bias"])

    def dropout_apply(variables: Variables, x: jax.Array, key: jax.Array):
        check(x)
        return module.clone(mc_dropout=True).apply(variables, x, train=False, rngs={"dropout": key})

    return Model(apply, tuple(input_shape), init=init, head=head, train_apply=train_apply, maps=maps, map_grads=map_grads,
                 extras=extra_outputs if extras else None, extra_names=tuple(extras),
                 dropout_apply=dropout_apply if hasattr(module, "mc_dropout") else None, per_sample=True)
