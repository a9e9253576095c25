"""Evaluation pipeline: one call scores an ID test set against many OOD sets with many scorers.

Outputs are computed in batches; fit and validation data are held in memory (they are subsets),
the test sets are streamed and only their scores are kept. Scorers that tune on OOD data (ODIN)
tune on each OOD set's validation split and are reported on its test split.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from oodjax import metrics, scores
from oodjax.data import ArraySource, ImageSource, OODSet
from oodjax.gradients import logits_of
from oodjax.models import Model, Variables
from oodjax.scores import FitData, ModelOutputs, Scorer

Normalizer = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass
class EvalResult:
    """records: one dict per (scorer, OOD set): the metrics (+ `<metric>_std` with bootstrap) and
    `tuned` hyper-parameters; id_accuracy: top-1 on the ID test set (if labels were given);
    scores: scorer -> OOD set -> (ID test scores, OOD test scores), for plots."""

    records: list[dict[str, Any]]
    id_accuracy: float | None
    scores: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]


def build_scorers(spec: Mapping[str, tuple[str, Mapping[str, Any]]]) -> dict[str, Scorer]:
    """{label: (registered name, hyperparameters)} -> {label: Scorer}."""
    return {label: scores.get(name, **dict(kw)) for label, (name, kw) in spec.items()}


def pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """Pads (n, ...) with zeros to (rows, ...), n <= rows."""
    return x if x.shape[0] == rows else np.concatenate([x, np.zeros((rows - x.shape[0], *x.shape[1:]), x.dtype)])


class _Runner:
    """Runs the model batch by batch, with the intermediate maps reduced for the scorers that ask."""

    def __init__(self, model: Model, variables: Variables, scorers: Mapping[str, Scorer],
                 normalize: Normalizer, batch_size: int):
        self.variables, self.normalize, self.batch_size = variables, normalize, batch_size
        self.reducers = {k: jax.jit(s.map_reduce) for k, s in scorers.items() if s.map_reduce is not None}
        self.apply = jax.jit(model.apply)
        self.maps = jax.jit(model.maps)
        self.samples = jax.jit(model.samples) if model.samples is not None else None
        self.extras = jax.jit(model.extras) if model.extras is not None else None
        self.shape = model.input_shape

    def batches(self, source: ImageSource, keep_inputs: bool) -> Iterator[tuple[ModelOutputs, dict[str, Any], int]]:
        """(outputs, reduced maps, n): every batch is padded to batch_size rows (one compiled shape
        per function); only the first n rows are real."""
        for xb in source.batches(self.batch_size):
            if xb.shape[1:] != self.shape:
                raise ValueError(f"images of shape {xb.shape[1:]}, but the model takes {self.shape}")
            n = xb.shape[0]
            x = jnp.asarray(pad_rows(self.normalize(xb), self.batch_size))
            reduced, samples, extras = {}, None, None
            if self.reducers:
                logits, features, maps = self.maps(self.variables, x)
                reduced = {k: f(maps) for k, f in self.reducers.items()}
            if self.samples is not None:
                logits, features, samples = self.samples(self.variables, x)
            elif self.extras is not None:
                logits, features, extras = self.extras(self.variables, x)
            elif not self.reducers:
                logits, features = self.apply(self.variables, x)
            yield ModelOutputs(logits, features, x if keep_inputs else None, samples=samples, extras=extras), reduced, n

    def collect(self, source: ImageSource, keep_inputs: bool = False) -> tuple[ModelOutputs, dict[str, Any]]:
        parts = [jax.tree.map(lambda a, n=n: a[:n], (b, r)) for b, r, n in self.batches(source, keep_inputs)]
        if not parts:
            raise ValueError("an image source yielded no images")
        return jax.tree.map(lambda *a: jnp.concatenate(a), *parts)


def _view(base: ModelOutputs, reduced: Mapping[str, Any], label: str) -> ModelOutputs:
    return base._replace(maps=reduced.get(label))


def _state_key(state: Any) -> tuple:
    """A hashable summary of a state's small leaves, to score the ID set once per distinct state."""
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(state) if hasattr(x, "shape")]
    return tuple(x.tobytes() for x in leaves if x.size <= 16)


def _tuned_values(state: Any) -> dict[str, float]:
    fields = getattr(state, "_asdict", lambda: {})()
    return {k: float(v) for k, v in fields.items() if hasattr(v, "shape") and np.ndim(v) == 0}


def evaluate(
    model: Model,
    variables: Variables,
    scorers: Mapping[str, Scorer],
    *,
    fit_images: np.ndarray,
    fit_labels: np.ndarray,
    id_val: ImageSource,
    id_test: ImageSource,
    ood_sets: Sequence[OODSet],
    normalize: Normalizer,
    input_std: Sequence[float],
    key: jax.Array,
    id_test_labels: np.ndarray | None = None,
    batch_size: int = 500,
    bootstrap: int = 0,
    progress: bool = True,
    outliers: ImageSource | None = None,
) -> EvalResult:
    """Fits every scorer on (fit_images, fit_labels) and ID validation data, tunes the tunable ones on
    each OOD validation split, and scores the ID test set against each OOD test set.

    fit_images: (N, H, W, C) training images in [0, 1] (a subset is enough); fit_labels: (N,).
    normalize: pixel [0, 1] -> model input, the same for ID and OOD; input_std: its per-channel std.
    bootstrap: if > 0, adds `<metric>_std` over that many resamplings to each record.
    outliers: a designated auxiliary OOD set (disjoint from ood_sets) for scorers that train with
      one (FitData.outliers: a flow's OOD term).
    """
    names = [s.name for s in ood_sets]
    if len(set(names)) != len(names):
        raise ValueError(f"OOD set names must be unique, got {names}")
    runner = _Runner(model, variables, scorers, normalize, batch_size)
    fit_out, fit_red = runner.collect(ArraySource(fit_images, "fit_images"))
    num_classes = fit_out.logits.shape[1]
    fit_labels = np.asarray(fit_labels)
    if fit_labels.shape != (fit_out.logits.shape[0],) or fit_labels.min() < 0 or fit_labels.max() >= num_classes:
        raise ValueError(f"fit_labels must be {fit_out.logits.shape[0]} integers in [0, {num_classes})")
    val_out, val_red = runner.collect(id_val, keep_inputs=True)
    out_out, out_red = runner.collect(outliers, keep_inputs=True) if outliers is not None else (None, {})
    apply_fn = functools.partial(logits_of, model.apply)  # one hashable function for all scorers
    logits_fn = jax.tree_util.Partial(apply_fn, variables)
    try:
        head = model.head(variables)
    except ValueError:  # e.g. an ensemble: no single head; scorers that need one say so
        head = None

    states: dict[str, dict[str, Any]] = {}
    tuned = {k: s for k, s in scorers.items() if s.tune is not None}
    ood_val = {}
    if tuned:
        missing = [s.name for s in ood_sets if s.val is None]
        if missing:
            raise ValueError(
                f"OOD sets {missing} have no validation split, but {sorted(tuned)} tune on it: give them one "
                "(ood_set_from_arrays(..., val_fraction > 0)) or leave those scorers out"
            )
        ood_val = {s.name: runner.collect(s.val, keep_inputs=True) for s in ood_sets}
    for i, (label, scorer) in enumerate(tqdm(scorers.items(), desc="fit scorers", disable=not progress)):
        fit_data = FitData(
            train=_view(fit_out, fit_red, label), labels=jnp.asarray(fit_labels), head=head,
            val=_view(val_out, val_red, label), key=jax.random.fold_in(key, i), logits_fn=logits_fn,
            input_std=tuple(float(s) for s in input_std), apply_fn=apply_fn, variables=variables,
            outliers=_view(out_out, out_red, label) if out_out is not None else None,
        )
        state = scorer.fit(fit_data)
        if scorer.tune is not None:
            vals = {n: _view(o, r, label) for n, (o, r) in ood_val.items()}
            states[label] = scorer.tune(state, _view(val_out, val_red, label), vals)
        else:
            states[label] = {n: state for n in names}

    score_fns = {label: jax.jit(s.score) for label, s in scorers.items()}
    # ID test: one pass, each distinct state scored once.
    distinct = {label: {} for label in scorers}
    for label, per_set in states.items():
        for n, st in per_set.items():
            distinct[label].setdefault(_state_key(st), st)
    id_scores: dict[str, dict[tuple, list]] = {label: {k: [] for k in d} for label, d in distinct.items()}
    correct = []
    for base, red, n in tqdm(runner.batches(id_test, True), desc="score ID test", disable=not progress):
        if id_test_labels is not None:
            correct.append(np.asarray(jnp.argmax(base.logits, -1))[:n])
        for label, d in distinct.items():
            for k, st in d.items():
                id_scores[label][k].append(np.asarray(score_fns[label](st, _view(base, red, label)))[:n])
    id_accuracy = None
    if id_test_labels is not None:
        pred = np.concatenate(correct)
        if pred.shape != np.shape(id_test_labels):
            raise ValueError(f"id_test_labels has shape {np.shape(id_test_labels)}, the ID test set {pred.shape}")
        id_accuracy = float(np.mean(pred == np.asarray(id_test_labels)))

    records, all_scores = [], {label: {} for label in scorers}
    for j, oset in enumerate(tqdm(ood_sets, desc="score OOD sets", disable=not progress)):
        ood_scores = {label: [] for label in scorers}
        for base, red, n in runner.batches(oset.test, True):
            for label in scorers:
                st = states[label][oset.name]
                ood_scores[label].append(np.asarray(score_fns[label](st, _view(base, red, label)))[:n])
        for label in scorers:
            st = states[label][oset.name]
            s_id = np.concatenate(id_scores[label][_state_key(st)])
            s_ood = np.concatenate(ood_scores[label])
            rec = {"scorer": label, "ood_set": oset.name, "kind": oset.kind, "severity": oset.severity,
                   **metrics.ood_metrics(s_id, s_ood)}
            if bootstrap:
                boot = metrics.bootstrap(s_id, s_ood, key=jax.random.fold_in(key, 1000 + j), n=bootstrap)
                rec.update({f"{m}_std": std for m, (_, std) in boot.items()})
            if scorers[label].tune is not None:
                rec["tuned"] = _tuned_values(st)
            if id_accuracy is not None:
                rec["id_accuracy"] = id_accuracy
            records.append(rec)
            all_scores[label][oset.name] = (s_id, s_ood)
    return EvalResult(records, id_accuracy, all_scores)
