"""The bottom of oodjax: the small types that models, scorers and the pipeline share.

A scorer declares what it reads (`Scorer.needs`, a frozenset of the names below); a model declares
what it provides (`Model.provides`); the pipeline computes only the union of what its scorers need,
and a need that nobody can provide is an error before any work starts (`check_needs`).

What a model gives for a batch (fields of `ModelOutputs`):
  logits, features, inputs   (N, C), (N, D) penultimate activations, (N, H, W, C_in) normalized inputs
  maps                       the intermediate maps, reduced by the scorer's `map_reduce` (Gram)
  map_grads                  with maps: map_reduce receives (maps, grads), grads the gradients of the scorer's
                             per-sample `map_loss` with respect to each map (NAC-UE's neuron states)
  samples                    (N, K, C): K predictions per input (anchors, ensemble members, dropout masks)
  extras:<name>              a named extra output of a head variant (extras:kl, extras:binary_logits)
  model                      a `Predict` handle: x -> logits, differentiable in x (ODIN's input step)
  weights                    (with model) per-sample weight gradients of `model` are meaningful: every row of a
                             batch depends on its own input only, through Flax layers (GRODIN, GradNorm
                             by autodiff); ensembles, MC-dropout and anchored models do not provide it
What the fit sees (fields of `FitData`; all in-distribution):
  train                      outputs on (a subset of) the ID training images
  labels                     their integer labels
  head                       the final dense layer (logits = features @ kernel + bias)
  id_val                     outputs on held-out ID validation images
  val_labels                 their integer labels (temperature scaling fits on them)
  outliers                   outputs on a designated auxiliary OOD set, disjoint from the test sets
  key                        a jax.random key (scorers that subsample or train)
  objective:<name>           the model was trained with that objective (BIN's sigmoid classifiers)
A scorer with a `tune` also reads the OOD validation splits (never the OOD test splits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import jax

PyTree = Any

# Score-time needs: fields of ModelOutputs (plus model / weights, which ride in ModelOutputs.model).
LOGITS, FEATURES, INPUTS, MAPS, SAMPLES, MODEL, WEIGHTS = (
    "logits", "features", "inputs", "maps", "samples", "model", "weights")
MAP_GRADS = "map_grads"
# Fit-time needs.
TRAIN, LABELS, HEAD, ID_VAL, OUTLIERS, KEY = "train", "labels", "head", "id_val", "outliers", "key"
VAL_LABELS = "val_labels"
OUTPUT_FIELDS = (LOGITS, FEATURES, INPUTS, MAPS, SAMPLES)
EXTRAS_PREFIX, OBJECTIVE_PREFIX = "extras:", "objective:"
KNOWN = frozenset({*OUTPUT_FIELDS, MODEL, WEIGHTS, MAP_GRADS, TRAIN, LABELS, HEAD, ID_VAL, VAL_LABELS, OUTLIERS, KEY})


def extra(name: str) -> str:
    """The need / provision of the extra named output `name` of a head variant."""
    return EXTRAS_PREFIX + name


def check_vocabulary(names: Iterable[str], who: str) -> frozenset[str]:
    """frozenset(names), or ValueError naming the unknown ones."""
    names = frozenset(names)
    unknown = sorted(n for n in names if n not in KNOWN and not n.startswith((EXTRAS_PREFIX, OBJECTIVE_PREFIX)))
    if unknown:
        raise ValueError(f"{who}: unknown names {unknown}; known: {sorted(KNOWN)}, '{EXTRAS_PREFIX}<name>' and "
                         f"'{OBJECTIVE_PREFIX}<name>'")
    return names


def check_needs(scorer_label: str, needs: frozenset[str], model_label: str, provides: frozenset[str]) -> None:
    """ValueError naming the scorer, the model and what is missing if needs is not a subset of provides."""
    missing = sorted(needs - provides)
    if not missing:
        return
    hints = []
    if OUTLIERS in missing:
        hints.append("an auxiliary outlier set: set Experiment.outliers (EvalData.outliers)")
    if any(n.startswith(OBJECTIVE_PREFIX) for n in missing):
        hints.append("a model trained with that objective (ModelSpec.objective)")
    hint = f"; it needs {' and '.join(hints)}" if hints else ""
    raise ValueError(f"scorer {scorer_label!r} needs {missing}, which model {model_label!r} does not provide "
                     f"(it provides {sorted(provides)}){hint}; drop the scorer or give it what it needs")


class Head(NamedTuple):
    """The final dense layer: logits = features @ kernel + bias. kernel: (D, C). bias: (C,)."""

    kernel: jax.Array
    bias: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Predict:
    """The predict handle, the one way a scorer reaches the model (big_vision's cacheable partial):
    a static, hashable `apply(variables, x) -> (logits, features)` and its `variables` as pytree
    leaves (the handle itself is a pytree, not hashable), so that it passes through `jax.jit` as an argument and one compiled function
    serves every set of weights. input_std: (C_in,) per-channel std of the input normalization
    (ODIN's step is divided by it).
    """

    apply: Callable[[PyTree, jax.Array], tuple[jax.Array, jax.Array]] = dataclasses.field(metadata={"static": True})
    variables: PyTree
    input_std: tuple[float, ...] = dataclasses.field(default=(1.0,), metadata={"static": True})

    def __call__(self, x: jax.Array) -> jax.Array:
        """logits (N, C) of normalized inputs x (N, H, W, C_in)."""
        return self.apply(self.variables, x)[0]


class ModelOutputs(NamedTuple):
    """What a scorer sees for a batch; a field a scorer did not declare in `needs` is None.

    logits: (N, C). features: (N, D). inputs: (N, H, W, C_in) normalized. maps: the intermediate
    maps reduced by the scorer's `map_reduce`. samples: (N, K, C) logits of K predictions that
    `logits` combines. extras: {name: (N, ...)}. model: the `Predict` handle (needs model).
    """

    logits: jax.Array | None = None
    features: jax.Array | None = None
    inputs: jax.Array | None = None
    maps: Any = None
    samples: jax.Array | None = None
    extras: Mapping[str, jax.Array] | None = None
    model: Predict | None = None


class FitData(NamedTuple):
    """Everything a scorer may fit on; all of it in-distribution (see the module docstring).

    train / val / outliers: ModelOutputs (with the fields the scorer needs at score time) on ID
    training images, ID validation images and the auxiliary outlier set. labels: (N_train,) ints.
    head: the final dense layer. key: a jax.random key. model: the `Predict` handle.
    val_labels: (N_val,) ints, the labels of `val`.
    """

    train: ModelOutputs | None = None
    labels: jax.Array | None = None
    head: Head | None = None
    val: ModelOutputs | None = None
    key: jax.Array | None = None
    model: Predict | None = None
    outliers: ModelOutputs | None = None
    val_labels: jax.Array | None = None


class Scorer(NamedTuple):
    """A scoring method, optax style: pure functions over a pytree state, and what it reads.

    fit: FitData -> state (a pytree; `()` for stateless scorers).
    score: (state, ModelOutputs) -> (N,) ID-scores, higher = more in-distribution. Jit-able.
    needs: frozenset of names (module docstring) of everything fit, tune and score read.
    tune: optional (state, id_val, {set: ood_val}) -> {set: state}: hyper-parameters tuned on each
      OOD set's validation split (`oodjax.scores.grid_tuner`).
    map_reduce: optional (intermediate maps) -> pytree, applied batch by batch; the result is what
      the scorer sees as ModelOutputs.maps (Gram matrices). With `map_loss` it receives (maps, grads).
    map_loss: optional (N, C) logits -> (N,) per-sample loss whose gradients with respect to the maps
      (`Model.map_grads`) map_reduce receives; a scorer with one needs "maps" and "map_grads".
    chunk: optional batch size at which `score` runs without a loop inside (a weight-gradient
      scorer's chunk): on the CPU backend, where a compiled loop runs several times slower than
      the same calls dispatched one by one, `oodjax.evaluate` scores a larger batch in pieces of
      this many rows. None: any batch as one call.
    """

    fit: Callable[[FitData], PyTree]
    score: Callable[[PyTree, ModelOutputs], jax.Array]
    needs: frozenset[str] = frozenset({LOGITS})
    tune: Callable[[PyTree, ModelOutputs, Mapping[str, ModelOutputs]], dict[str, PyTree]] | None = None
    map_reduce: Callable[[tuple[jax.Array, ...]], Any] | None = None
    map_loss: Callable[[jax.Array], jax.Array] | None = None
    chunk: int | None = None


def require(out: ModelOutputs, who: str, *fields: str) -> None:
    """ValueError naming the missing ModelOutputs fields a scorer reads (a static check, jit-safe)."""
    missing = [f for f in fields if getattr(out, f) is None]
    if missing:
        raise ValueError(f"{who} needs ModelOutputs.{', .'.join(missing)}: give it a model that provides "
                         f"{missing} (oodjax.evaluate passes each scorer the fields in its `needs`)")


def restrict(out: ModelOutputs | None, needs: frozenset[str]) -> ModelOutputs | None:
    """`out` with every field the needs do not name set to None (extras filtered by name)."""
    if out is None:
        return None
    fields = {f: getattr(out, f) if f in needs else None for f in OUTPUT_FIELDS}
    names = {n[len(EXTRAS_PREFIX):] for n in needs if n.startswith(EXTRAS_PREFIX)}
    extras = {k: v for k, v in (out.extras or {}).items() if k in names} or None
    model = out.model if MODEL in needs else None
    return ModelOutputs(**fields, extras=extras, model=model)
