"""Evaluation pipeline: one call scores an ID test set against many OOD sets with many scorers.

Only what the chosen scorers need is computed (the union of their `needs`): intermediate maps,
K-sample predictions, extra outputs, kept inputs, fit / validation / outlier outputs. A scorer
whose needs the model and the data cannot meet is an error before anything runs. Outputs are
computed in batches; fit and validation data are held in memory (they are subsets), the test sets
are streamed and only their scores are kept. Scorers that tune on OOD data (ODIN, GRODIN) tune on
each OOD set's validation split and are reported on its test split.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from oodjax import metrics, scores
from oodjax import types as T
from oodjax.data import ArraySource, ImageSource, OODSet, prefetch
from oodjax.data.prefetch import prefetch_map
from oodjax.models import Model, Variables
from oodjax.parallel import batch_mesh, global_batch, in_pieces, local_rows, replicate, to_host
from oodjax.types import FitData, ModelOutputs, Predict, Scorer, check_needs, restrict
from oodjax.validation import check_finite_rows, check_positive_values

Normalizer = Callable[[np.ndarray], np.ndarray]
ALWAYS = frozenset({T.TRAIN, T.LABELS, T.ID_VAL, T.KEY})  # what the evaluation data always gives
LABELLED = ALWAYS | {T.VAL_LABELS}  # ... with id_val_labels, as the experiment pipeline always passes


@dataclasses.dataclass
class EvalResult:
    """records: one dict per (scorer, OOD set): the metrics (+ `<metric>_std` with bootstrap) and
    `tuned` hyper-parameters; id_accuracy: top-1 on the ID test set (if labels were given);
    scores: scorer -> OOD set -> (ID test scores, OOD test scores), for plots."""

    records: list[dict[str, Any]]
    id_accuracy: float | None
    scores: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]


class EvalData(NamedTuple):
    """The images of one evaluation, in [0, 1], and how the model sees them.

    fit_images: (N, H, W, C) training images (a subset is enough), an array or an ImageSource
    streamed in batches (data.Rows of an Indexed dataset); fit_labels: (N,).
    id_val: ID validation images held out of training; id_test / id_test_labels: the ID test set.
    ood_sets: the OOD sets (test splits scored; validation splits for the tunable scorers).
    normalize: pixel [0, 1] -> model input, the same for ID and OOD; input_std: its per-channel std.
    outliers: a designated auxiliary OOD set (disjoint from ood_sets) for scorers that fit on one.
    id_val_labels: the labels of id_val, for scorers that fit on them (need `val_labels`: TempScale).
    """

    fit_images: np.ndarray | ImageSource
    fit_labels: np.ndarray
    id_val: ImageSource
    id_test: ImageSource
    ood_sets: Sequence[OODSet]
    normalize: Normalizer
    input_std: Sequence[float]
    id_test_labels: np.ndarray | None = None
    outliers: ImageSource | None = None
    id_val_labels: np.ndarray | None = None


def build_scorers(spec: Mapping[str, tuple[str, Mapping[str, Any]]]) -> dict[str, Scorer]:
    """{label: (registered name, hyperparameters)} -> {label: Scorer}."""
    return {label: scores.get(name, **dict(kw)) for label, (name, kw) in spec.items()}


def pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """Pads (n, ...) with zeros to (rows, ...), n <= rows."""
    return x if x.shape[0] == rows else np.concatenate([x, np.zeros((rows - x.shape[0], *x.shape[1:]), x.dtype)])


def data_provides(model: Model, has_outliers: bool, trained_with: frozenset[str] = frozenset(),
                  has_val_labels: bool = False) -> frozenset[str]:
    """What a model and the evaluation data give scorers together; trained_with: what the model's
    training objective adds (`Objective.provides`, e.g. objective:bin)."""
    extra = ({T.OUTLIERS} if has_outliers else set()) | ({T.VAL_LABELS} if has_val_labels else set())
    return model.provides | ALWAYS | extra | trained_with


def check_scorers(scorers: Mapping[str, Scorer], provides: frozenset[str], model_label: str = "model") -> None:
    """ValueError naming the scorer, the model and the missing names if a scorer's needs are not met."""
    for label, scorer in scorers.items():
        if scorer.map_loss is not None and not {T.MAPS, T.MAP_GRADS} <= scorer.needs:
            raise ValueError(f"scorer {label!r} has a map_loss but does not declare needs 'maps' and 'map_grads'")
        if scorer.chunk is not None and (not isinstance(scorer.chunk, int) or isinstance(scorer.chunk, bool)
                                         or scorer.chunk < 1):
            raise ValueError(f"scorer {label!r} has chunk={scorer.chunk!r}: give a positive int (the rows its score "
                             "takes at once) or None")
        check_needs(label, scorer.needs, model_label, provides)


def _nothing() -> None:
    return None


def _reads(source: ImageSource, batch_size: int, lo: int, hi: int) -> Iterator[tuple[Callable[[], np.ndarray | None], int]]:
    """(a function that reads rows [lo, hi) of a batch of `source` that are real images, or None if
    none are; the batch's n real rows), for each batch.

    A source that reads rows by index (data.Rows, ArraySource) reads only these rows, when the
    function is called (in the reading threads); any other source is read whole, in order, by one
    thread ahead of the consumer, and sliced (with several processes, every process reads it)."""
    if hasattr(source, "__getitem__") and hasattr(source, "__len__"):
        total = len(source)
        for start in range(0, total, batch_size):
            n = min(batch_size, total - start)
            a, b = start + min(lo, n), start + min(hi, n)
            yield (functools.partial(source.__getitem__, slice(a, b)) if b > a else _nothing), n
    else:
        for xb in prefetch(source.batches(batch_size)):
            yield (functools.partial(lambda x: x, xb[lo:hi]) if xb.shape[0] > lo else _nothing), xb.shape[0]


def _reduced_grads(map_grads: Callable, loss: Callable, reduce: Callable | None, variables: Variables,
                   x: jax.Array) -> tuple[jax.Array, jax.Array, Any]:
    """(logits, features, reduce((maps, grads))): the maps and the gradients of `loss` on them."""
    logits, features, maps, grads = map_grads(variables, x, loss)
    return logits, features, (maps, grads) if reduce is None else reduce((maps, grads))


class _Runner:
    """Runs the model batch by batch, computing only what `needs` (the union of the scorers') asks:
    intermediate maps reduced for the scorers that have a map_reduce, K-sample predictions, extras.

    Every batch is padded to `rows` (batch_size rounded up to a multiple of the mesh's devices) and
    sharded over the mesh's batch axis, each process reading its own rows (`parallel`); the
    variables are replicated. `workers` threads read, normalize and transfer the next batches while
    the devices compute (`data.prefetch_map`)."""

    def __init__(self, model: Model, variables: Variables, scorers: Mapping[str, Scorer], needs: frozenset[str],
                 normalize: Normalizer, batch_size: int, mesh: Mesh, workers: int | None = None):
        n_dev = mesh.devices.size
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.normalize, self.batch_size, self.mesh = normalize, batch_size, mesh
        self.rows = -(-batch_size // n_dev) * n_dev
        self.sharded = NamedSharding(mesh, PartitionSpec("batch"))
        self.local = local_rows(self.sharded, self.rows)
        self.variables = replicate(variables, mesh)
        # Maps reach each scorer that needs them reduced by its map_reduce (Gram), or as they are; a
        # scorer with a map_loss gets (maps, gradients of its loss) reduced, one backward pass each.
        self.reducers = {k: jax.jit(s.map_reduce) if s.map_reduce is not None else (lambda maps: maps)
                         for k, s in scorers.items() if T.MAPS in s.needs and s.map_loss is None}
        self.graded = {k: jax.jit(functools.partial(_reduced_grads, model.map_grads, s.map_loss, s.map_reduce))
                       for k, s in scorers.items() if s.map_loss is not None}
        self.apply = jax.jit(model.apply)
        self.maps = jax.jit(model.maps) if self.reducers else None
        self.samples = jax.jit(model.samples) if T.SAMPLES in needs else None
        wants_extras = any(n.startswith(T.EXTRAS_PREFIX) for n in needs)
        self.extras = jax.jit(model.extras) if wants_extras else None
        self.keep_inputs = T.INPUTS in needs
        self.shape = model.input_shape

    def _check_shape(self, xb: np.ndarray) -> None:
        if xb.shape[1:] != self.shape:
            raise ValueError(f"images of shape {xb.shape[1:]}, but the model takes {self.shape}")

    def batches(self, source: ImageSource) -> Iterator[tuple[ModelOutputs, dict[str, Any], int]]:
        """(outputs, reduced maps, n): every batch is padded to `rows` rows (one compiled shape per
        function) and sharded over the mesh; only the first n rows are real."""
        lo, hi = self.local
        if jax.process_count() > 1 and hasattr(source, "__getitem__") and len(source):
            self._check_shape(source[0:1])  # on every process, before any collective (some may hold no rows)
        none = np.asarray(self.normalize(np.zeros((0, *self.shape), np.float32)))  # a process's rows when it has none

        def ready(read_n: tuple[Callable[[], np.ndarray | None], int]) -> tuple[jax.Array, int]:
            read, n = read_n  # in a reading thread: read, check, normalize, pad, put on the devices
            xb = read()
            if xb is not None:
                self._check_shape(xb)
            xb = none if xb is None else np.asarray(self.normalize(xb))
            return global_batch(pad_rows(xb, hi - lo), self.sharded, self.rows), n

        for x, n in prefetch_map(ready, _reads(source, self.batch_size, lo, hi), self.workers):
            reduced, samples, extras = {}, None, None
            if self.maps is not None:
                logits, features, maps = self.maps(self.variables, x)
                reduced = {k: f(maps) for k, f in self.reducers.items()}
            for k, f in self.graded.items():
                logits, features, reduced[k] = f(self.variables, x)
            if self.samples is not None:
                logits, features, samples = self.samples(self.variables, x)
            elif self.extras is not None:
                logits, features, extras = self.extras(self.variables, x)
            elif self.maps is None and not self.graded:
                logits, features = self.apply(self.variables, x)
            out = ModelOutputs(logits, features, x if self.keep_inputs else None, samples=samples, extras=extras)
            yield out, reduced, n

    def collect(self, source: ImageSource) -> tuple[ModelOutputs, dict[str, Any]]:
        """Everything the model gives for a (fit / validation) source, on this host."""
        parts = [jax.tree.map(lambda a, n=n: to_host(a)[:n], (b, r)) for b, r, n in self.batches(source)]
        if not parts:
            raise ValueError("an image source yielded no images")
        return jax.tree.map(lambda *a: jnp.asarray(np.concatenate(a)), *parts)


def _check_outputs(out: ModelOutputs | None, what: str) -> None:
    """ValueError naming the rows where the model's logits or features on `what` are not finite:
    a scorer fitted on them would give NaN (or shifted) scores everywhere."""
    if out is not None:
        for name in ("logits", "features"):
            check_finite_rows(f"the model's {name} on {what}", getattr(out, name),
                              "check those images (NaN pixels?) and the model's weights")


def _view(base: ModelOutputs | None, reduced: Mapping[str, Any], label: str, scorer: Scorer,
          predict: Predict) -> ModelOutputs | None:
    """What scorer `label` sees of a batch: its reduced maps, the model handle, and only its needs."""
    if base is None:
        return None
    return restrict(base._replace(maps=reduced.get(label), model=predict), scorer.needs)


def _in_pieces(score: Callable, piece: int | None, mesh: Mesh) -> Callable:
    """score(state, view), called on pieces of `piece` rows (the last piece ends at the last row:
    one compiled shape) where the scorer asks for it and every device is a CPU (XLA:CPU runs a
    compiled loop, such as the norm trick's chunks, several times slower than the same calls
    dispatched one by one; docs/norm_trick.md); else score as it is."""
    if piece is None or jax.process_count() > 1 or any(d.platform != "cpu" for d in mesh.devices.flat):
        return score

    def pieces(state: Any, view: ModelOutputs) -> jax.Array:
        data = view._replace(model=None)
        rows = {a.shape[0] for a in jax.tree_util.tree_leaves(data)}
        if len(rows) != 1 or (n := rows.pop()) <= piece:
            return score(state, view)
        return in_pieces(lambda i: score(state, jax.tree.map(lambda a: a[i:i + piece], data)._replace(model=view.model)),
                         n, piece)

    return pieces


def _state_key(state: Any) -> tuple:
    """A hashable summary of a state's small leaves, to score the ID set once per distinct state."""
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(state) if hasattr(x, "shape")]
    return tuple(x.tobytes() for x in leaves if x.size <= 16)


def _tuned_values(state: Any) -> dict[str, float]:
    fields = state if isinstance(state, Mapping) else getattr(state, "_asdict", lambda: {})()
    return {k: float(v) for k, v in fields.items() if hasattr(v, "shape") and np.ndim(v) == 0}


def evaluate(
    model: Model,
    variables: Variables,
    scorers: Mapping[str, Scorer],
    data: EvalData,
    *,
    key: jax.Array,
    batch_size: int = 500,
    bootstrap: int = 0,
    progress: bool = True,
    model_label: str = "model",
    trained_with: frozenset[str] = frozenset(),
    mesh: Mesh | None = None,
    read_workers: int | None = None,
) -> EvalResult:
    """Fits every scorer on the fit images, their labels and the ID validation images (only what
    each needs), tunes the tunable ones on each OOD validation split, and scores the ID test set
    against each OOD test set.

    bootstrap: if > 0, adds `<metric>_std` over that many resamplings to each record.
    model_label: the model's name in error messages. trained_with: what the model's training
    objective provides to scorers (`Objective.provides`: objective:bin for BIN's sigmoid classifiers).
    mesh: the devices each batch is sharded over (default `parallel.batch_mesh()`: all devices); batches are
    padded to a multiple of its size, and the scores do not depend on it.
    read_workers: threads that read, normalize and transfer the next batches while the devices compute
    (default min(4, CPUs)).
    """
    names = [s.name for s in data.ood_sets]
    if len(set(names)) != len(names):
        raise ValueError(f"OOD sets must have unique names, got {names}")
    check_scorers(scorers, data_provides(model, data.outliers is not None, trained_with,
                                         data.id_val_labels is not None), model_label)
    tuned = sorted(k for k, s in scorers.items() if s.tune is not None)
    missing = [s.name for s in data.ood_sets if s.val is None]
    if tuned and missing:
        raise ValueError(
            f"OOD sets {missing} have no validation split, but {tuned} tune on it: give them one "
            "(ood_set_from_arrays(..., val_fraction > 0)) or leave those scorers out"
        )
    check_positive_values("EvalData.input_std", data.input_std)
    empty = [name for name, src in [("id_test", data.id_test), *((s.name, s.test) for s in data.ood_sets)]
             if hasattr(src, "__len__") and len(src) == 0]
    if empty:
        raise ValueError(f"image sets {empty} are empty: every scored set needs at least one image")
    needs = frozenset().union(*(s.needs for s in scorers.values()))
    runner = _Runner(model, variables, scorers, needs, data.normalize, batch_size, mesh or batch_mesh(), read_workers)
    variables = runner.variables  # replicated on the mesh: what the scorers' model and head read too
    predict = Predict(model.apply, variables, tuple(float(s) for s in data.input_std))

    fit_out, fit_red = None, {}
    if T.TRAIN in needs or T.LABELS in needs:
        fit_src = data.fit_images if hasattr(data.fit_images, "batches") else ArraySource(data.fit_images, "fit_images")
        fit_out, fit_red = runner.collect(fit_src)
        _check_outputs(fit_out, "the fit images")
        num_classes = fit_out.logits.shape[1]
        fit_labels = np.asarray(data.fit_labels)
        if fit_labels.shape != (fit_out.logits.shape[0],) or fit_labels.min() < 0 or fit_labels.max() >= num_classes:
            raise ValueError(f"fit_labels must be {fit_out.logits.shape[0]} integers in [0, {num_classes})")
    wants_val = T.ID_VAL in needs or T.VAL_LABELS in needs or tuned
    val_out, val_red = runner.collect(data.id_val) if wants_val else (None, {})
    _check_outputs(val_out, "the ID validation images")
    val_labels = None
    if T.VAL_LABELS in needs:
        val_labels = np.asarray(data.id_val_labels)
        n_val, num_classes = val_out.logits.shape
        if val_labels.shape != (n_val,) or val_labels.min() < 0 or val_labels.max() >= num_classes:
            raise ValueError(f"id_val_labels must be {n_val} integers in [0, {num_classes}) (one per id_val image), "
                             f"got shape {val_labels.shape}")
    out_out, out_red = runner.collect(data.outliers) if T.OUTLIERS in needs else (None, {})
    _check_outputs(out_out, "the outlier images")
    head = model.head(variables) if T.HEAD in needs else None
    ood_val = {s.name: runner.collect(s.val) for s in data.ood_sets} if tuned else {}

    states: dict[str, dict[str, Any]] = {}
    bar = tqdm(scorers.items(), desc=f"{model_label}: fit", disable=not progress, dynamic_ncols=True)
    for i, (label, scorer) in enumerate(bar):
        bar.set_description(f"{model_label}: fit {label}" + (" (tune on OOD validation)" if scorer.tune else ""))
        has = scorer.needs.__contains__
        fit_data = FitData(
            train=_view(fit_out, fit_red, label, scorer, predict) if has(T.TRAIN) else None,
            labels=jnp.asarray(data.fit_labels) if has(T.LABELS) else None,
            head=head if has(T.HEAD) else None,
            val=_view(val_out, val_red, label, scorer, predict) if has(T.ID_VAL) else None,
            key=jax.random.fold_in(key, i) if has(T.KEY) else None,
            model=predict if has(T.MODEL) else None,
            outliers=_view(out_out, out_red, label, scorer, predict) if has(T.OUTLIERS) else None,
            val_labels=jnp.asarray(val_labels) if has(T.VAL_LABELS) else None,
        )
        state = scorer.fit(fit_data)
        if scorer.tune is not None:
            vals = {n: _view(o, r, label, scorer, predict) for n, (o, r) in ood_val.items()}
            states[label] = scorer.tune(state, _view(val_out, val_red, label, scorer, predict), vals)
        else:
            states[label] = {n: state for n in names}

    score_fns = {label: _in_pieces(jax.jit(s.score), s.chunk, runner.mesh) for label, s in scorers.items()}
    # ID test: one pass, each distinct state scored once.
    distinct = {label: {} for label in scorers}
    for label, per_set in states.items():
        for n, st in per_set.items():
            distinct[label].setdefault(_state_key(st), st)
    id_scores: dict[str, dict[tuple, list]] = {label: {k: [] for k in d} for label, d in distinct.items()}
    correct = []
    n_test = len(data.id_test) if hasattr(data.id_test, "__len__") else None  # a total gives the bar an ETA
    for base, red, n in tqdm(runner.batches(data.id_test), desc=f"{model_label}: score ID test", disable=not progress,
                             total=None if n_test is None else -(-n_test // batch_size), dynamic_ncols=True):
        if data.id_test_labels is not None:
            correct.append(to_host(jnp.argmax(base.logits, -1))[:n])
        for label, d in distinct.items():
            view = _view(base, red, label, scorers[label], predict)
            for k, st in d.items():
                id_scores[label][k].append(to_host(score_fns[label](st, view))[:n])
    id_accuracy = None
    if data.id_test_labels is not None:
        pred = np.concatenate(correct)
        if pred.shape != np.shape(data.id_test_labels):
            raise ValueError(f"id_test_labels has shape {np.shape(data.id_test_labels)}, the ID test set {pred.shape}")
        id_accuracy = float(np.mean(pred == np.asarray(data.id_test_labels)))

    records, all_scores = [], {label: {} for label in scorers}
    bar = tqdm(data.ood_sets, desc=f"{model_label}: score", disable=not progress, dynamic_ncols=True)
    for j, oset in enumerate(bar):
        bar.set_description(f"{model_label}: score {oset.name}")
        ood_scores = {label: [] for label in scorers}
        for base, red, n in runner.batches(oset.test):
            for label in scorers:
                st = states[label][oset.name]
                view = _view(base, red, label, scorers[label], predict)
                ood_scores[label].append(to_host(score_fns[label](st, view))[:n])
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
