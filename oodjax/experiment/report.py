"""Report writing: metrics.json (one record per model x scorer x OOD set), the views, then run.json
(with provenance)."""

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
from oodjax.experiment.provenance import provenance
from oodjax.files import write_atomic
from oodjax.parallel import barrier, is_leader


class Report(NamedTuple):
    """What a view sees: the experiment, every record, each model's ID accuracy, and scorer ->
    OOD set -> (ID scores, OOD scores) over all models (for plots); model_scores: the same per
    model (model -> scorer -> OOD set -> (ID, OOD)), where labels may repeat across models."""

    experiment: Experiment
    records: list[dict[str, Any]]
    accuracies: dict[str, float | None]
    scores: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
    out_dir: Path
    model_scores: dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]] = {}


def merged_scores(results: list[tuple[str, EvalResult]]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for _, result in results:
        for k, v in result.scores.items():
            out.setdefault(k, {}).update(v)
    return out


def write_report(exp: Experiment, results: list[tuple[str, EvalResult]], start: float,
                 phases: dict[str, float] | None = None) -> dict[str, Any]:
    """Writes results_dir/name/{metrics.json, run.json} and the views; returns {'records',
    'id_accuracies', 'summary' (what the views return, for the terminal), 'out_dir', 'seconds'}.

    run.json: the resolved config (seed included: every key derives from it, `run` says how), each
    model's ID accuracy, wall seconds in total and per phase, and the provenance (git commit and
    whether the checkout had uncommitted changes, package versions, devices and processes).

    In a multi-process run only process 0 writes, and the others wait for it (their summary is empty)."""
    out_dir = Path(exp.results_dir) / exp.name
    report = Report(exp, [r for _, res in results for r in res.records],
                    {name: res.id_accuracy for name, res in results}, merged_scores(results), out_dir,
                    {name: res.scores for name, res in results})
    summary = _write(report, start, phases or {}) if is_leader() else ""
    barrier("oodjax: the report is written")
    return {"records": report.records, "id_accuracies": report.accuracies, "out_dir": out_dir,
            "summary": summary, "seconds": time.time() - start}


def _write(report: Report, start: float, phases: dict[str, float]) -> str:
    """Writes the files of `write_report`; returns the views' text for the terminal."""
    exp, out_dir = report.experiment, report.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "metrics.json", json.dumps(report.records, indent=1))
    t = time.time()
    texts = [views.get(name)(report) for name in exp.views]
    tuned = [r for r in report.records if "tuned" in r]
    if tuned:  # the hyper-parameters each tunable scorer chose on each OOD set's validation split
        rows = "".join(f"| {r.get('model', '')} | {r['scorer']} | {r['ood_set']} | "
                       + ", ".join(f"{k} = {v:g}" for k, v in r["tuned"].items()) + " |\n" for r in tuned)
        write_atomic(out_dir / "tuned.md", "Tuned on each OOD set's validation split (never its test split)\n\n"
                                          "| Model | Scorer | OOD set | values |\n|---|---|---|---|\n" + rows)
        texts.append(f"Tuned hyper-parameters ({len(tuned)} model x scorer x OOD set): {out_dir / 'tuned.md'}")
    phases = {**phases, "report": time.time() - t}
    write_atomic(out_dir / "run.json", json.dumps(
        {"config": dataclasses.asdict(exp), "seed": exp.seed, "id_accuracies": report.accuracies,
         "seconds": time.time() - start, "phases": phases, "provenance": provenance()}, indent=1, default=str))
    return "\n".join(t for t in texts if t)
