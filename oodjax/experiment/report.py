"""Report writing: metrics.json (one record per model x scorer x OOD set), run.json, then the
experiment's views in order."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from oodjax.evaluate import EvalResult
from oodjax.experiment import views
from oodjax.experiment.config import Experiment


class Report(NamedTuple):
    """What a view sees: the experiment, every record, each model's ID accuracy, and scorer ->
    OOD set -> (ID scores, OOD scores) over all models (for plots)."""

    experiment: Experiment
    records: list[dict[str, Any]]
    accuracies: dict[str, float | None]
    scores: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
    out_dir: Path


def merged_scores(results: list[tuple[str, EvalResult]]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for _, result in results:
        for k, v in result.scores.items():
            out.setdefault(k, {}).update(v)
    return out


def write_report(exp: Experiment, results: list[tuple[str, EvalResult]], start: float) -> dict[str, Any]:
    """Writes results_dir/name/{metrics.json, run.json} and the views; returns {'records',
    'id_accuracies', 'summary' (what the views return, for the terminal), 'out_dir', 'seconds'}."""
    out_dir = Path(exp.results_dir) / exp.name
    out_dir.mkdir(parents=True, exist_ok=True)
    report = Report(exp, [r for _, res in results for r in res.records],
                    {name: res.id_accuracy for name, res in results}, merged_scores(results), out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(report.records, indent=1))
    (out_dir / "run.json").write_text(json.dumps(
        {"config": dataclasses.asdict(exp), "id_accuracies": report.accuracies, "seconds": time.time() - start},
        indent=1, default=str))
    texts = [views.get(name)(report) for name in exp.views]
    return {"records": report.records, "id_accuracies": report.accuracies, "out_dir": out_dir,
            "summary": "\n".join(t for t in texts if t), "seconds": time.time() - start}
