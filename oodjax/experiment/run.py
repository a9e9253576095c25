"""Train-or-restore and evaluate every model of an experiment, after validating all of it.

Keys, one layout for every experiment (the embedded demo's; the golden test pins it):
key(seed) -> (data split, ID test subset, models, held-out-class models); each model's key ->
(training, fit subset, evaluation), fold_in(training key, i) for ensemble member i > 0, and
fold_in(model key, 1) for its anchors / dropout masks. Models of one experiment share their keys,
so anchored models that differ only in K (Table 8) draw nested anchor sets (K = 2 within K = 5 ...):
the columns differ by K alone. Every model trains in its own resumable workdir (a killed run
resumes, a finished one is reused).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from oodjax.data import ArraySource, rows
from oodjax.evaluate import EvalData, EvalResult, evaluate
from oodjax.experiment import views
from oodjax.experiment.build import Built, build, for_inference
from oodjax.experiment.config import EmbeddedData, Experiment, ModelSpec, count
from oodjax.experiment.data import (
    Data, as_source, assemble, check_sources, head, heldout_classes, normalized, outlier_images,
)
from oodjax.experiment.report import write_report
from oodjax.files import RunLock, check_writable
from oodjax.parallel import is_leader
from oodjax.training import train


def train_dir(exp: Experiment) -> Path:
    return Path(exp.train_dir) if exp.train_dir else Path(exp.results_dir) / exp.name


def validate(exp: Experiment, check_data: bool = True) -> list[Built]:
    """Everything that can be checked before any data is loaded or any model trained: scorer names
    and hyper-parameters, every scorer's needs against its model's provisions, view names, OOD set
    names of the embedded suite, and (check_data) that every tfds dataset, split and data_dir and
    every image folder exists. Raises ValueError / KeyError / FileNotFoundError naming the problem."""
    views.check(exp.views)
    if check_data:
        check_sources(exp)
    # What a model provides does not depend on its class count: 10 stands in before the data is loaded.
    built = [build(exp, spec, num_classes=len(spec.classes) if spec.classes else 10) for spec in exp.models]
    if isinstance(exp.data, EmbeddedData):
        from oodjax.data import embedded  # noqa: PLC0415  (the suite's names, no images loaded)

        unknown = sorted(set(exp.data.far_sets) - set(embedded.FAR_SETS))
        if unknown:
            raise ValueError(f"unknown far OOD sets {unknown}; known: {list(embedded.FAR_SETS)}")
    return built


def _model_data(spec: ModelSpec, d: Data, exp: Experiment) -> Data:
    if spec.classes is not None:
        d = heldout_classes(d, spec.classes, exp.data.id_name, exp.data.ood_test_size)
    if spec.ood_sets is not None:
        missing = sorted(set(spec.ood_sets) - {s.name for s in d.ood_sets})
        if missing:
            raise ValueError(f"model {spec.name!r}: OOD sets {missing} are not in the experiment: "
                             f"{[s.name for s in d.ood_sets]}")
        d = d._replace(ood_sets=[s for s in d.ood_sets if s.name in spec.ood_sets])
    return d


def _train(exp: Experiment, b: Built, x: np.ndarray, y: np.ndarray, key: jax.Array, trained: dict[str, Any],
           outliers: np.ndarray | None) -> Any:
    """The trained variables (a list of the members' for an ensemble)."""
    spec = b.spec
    members = []
    for i in range(max(spec.members, 1)):
        workdir = train_dir(exp) / (f"train_{spec.train_name or spec.name}" + (f"_m{i}" if spec.members else ""))
        members.append(train(
            b.net, x, y, spec.train or exp.train, key=key if i == 0 else jax.random.fold_in(key, i), workdir=workdir,
            progress=exp.progress, objective=spec.objective, outliers=outliers if spec.outliers else None,
            init_variables=trained[spec.finetune_from] if spec.finetune_from else None,
            input_transform=spec.anchoring.training if spec.anchoring is not None else None,
        ).variables)
    return members if spec.members else members[0]


def _as_float32(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, np.float32)


def run(exp: Experiment) -> dict[str, Any]:
    """Runs the experiment and writes its report (`report.write_report`). Returns {'records',
    'id_accuracies', 'summary', 'out_dir', 'seconds'}.

    Before any work: the config is validated and the report and training directories are proved
    writable; the run holds a lock on its report directory (a second live run of the same
    experiment there is refused; a killed run's lock is taken over)."""
    start = time.time()
    validate(exp)
    check_writable(train_dir(exp), "training directory")
    out_dir = check_writable(Path(exp.results_dir) / exp.name)
    if not is_leader():
        return _run(exp, start)
    with RunLock(out_dir, "run of this experiment"):
        return _run(exp, start)


def _run(exp: Experiment, start: float) -> dict[str, Any]:
    phases: dict[str, float] = {}  # wall seconds per phase, for run.json
    k_split, k_test, k_main, k_near = jax.random.split(jax.random.key(exp.seed), 4)
    d = assemble(exp.data, k_split, k_test)
    outliers = outlier_images(exp, d)
    out_norm = d.normalize(outliers) if outliers is not None else None
    per_model = {spec.name: _model_data(spec, d, exp) for spec in exp.models}  # OOD set names checked before training
    phases["data"] = time.time() - start
    trained: dict[str, Any] = {}
    results: list[tuple[str, EvalResult]] = []
    for spec in exp.models:
        md = per_model[spec.name]
        (x_tr, y_tr), (x_te, y_te) = md.train_xy, md.test_xy
        base = k_near if spec.classes is not None else k_main
        k_train, k_fit, k_eval = jax.random.split(base, 3)
        b = build(exp, spec, num_classes=int(y_tr.max()) + 1)
        if b.own_normalization:  # an imported network takes [0, 1] images and normalizes them itself
            channels = md.train_xy[0].shape[-1]
            md = md._replace(normalize=_as_float32, input_std=(1.0,) * channels)
        x_norm = normalized(x_tr, md.normalize)
        t = time.time()
        if b.variables is not None and b.net.head is not None:  # an imported network must know the data's classes
            classes = int(b.net.head(b.variables).kernel.shape[-1])
            top = max(int(np.max(y_tr)), int(np.max(y_te)))
            if top >= classes:
                raise ValueError(f"model {spec.name!r}: the checkpoint has {classes} classes, but "
                                 f"{exp.data.id_name}'s labels go up to {top}: it was trained on other classes")
        variables = b.variables if b.variables is not None else _train(exp, b, x_norm, y_tr, k_train, trained, out_norm)
        phases[f"{spec.name}/train"], t = time.time() - t, time.time()
        trained[spec.name] = variables[0] if spec.members else variables
        model, variables = for_inference(b, variables, x_norm, jax.random.fold_in(base, 1))
        n = x_tr.shape[0]  # the experiment's random subset, then the model's cap on it
        fit_idx = np.sort(np.asarray(jax.random.permutation(k_fit, n))[: count(exp.fit_size, n)])[
            : count(spec.fit_size, n)]
        data = EvalData(as_source(rows(x_tr, fit_idx), "fit_images"), y_tr[fit_idx],
                        as_source(head(md.val_xy[0], spec.val_size), "id_val"), as_source(x_te, "id_test"),
                        md.ood_sets, md.normalize, md.input_std, id_test_labels=y_te,
                        outliers=ArraySource(outliers, "outliers") if outliers is not None else None,
                        id_val_labels=md.val_xy[1][: spec.val_size])
        res = evaluate(model, variables, b.scorers, data, key=k_eval, batch_size=exp.batch_size,
                       bootstrap=exp.bootstrap, progress=exp.progress, model_label=spec.name,
                       trained_with=spec.objective.provides)
        phases[f"{spec.name}/evaluate"] = time.time() - t
        for r in res.records:
            r.update({"model": spec.name, **dict(spec.tags)})
        results.append((spec.name, res))
    return write_report(exp, results, start, phases)
