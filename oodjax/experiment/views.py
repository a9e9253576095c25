"""Report views, found by name: `@register_view("name")` on `fn(report: Report) -> str | None`
(files written under report.out_dir; a returned string is added to the terminal summary).

Generic views live here; a paper's own views (paper 000's Table 7, Table 8, Fig. 5) are
registered next to that paper's presets under `experiments/presets/`.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from oodjax import metrics
from oodjax.files import write_atomic
from oodjax.plots import write_plots
from oodjax.registry import Registry

if TYPE_CHECKING:
    from oodjax.experiment.report import Report

View = Callable[["Report"], "str | None"]
_VIEWS: Registry[View] = Registry("report view", " (a paper's views are registered by importing its presets, e.g. "
                                                 "experiments.presets.paper000)")
KINDS = ("far", "near", "covariate", "resize")
register_view, get = _VIEWS.register, _VIEWS.get


def check(names: Iterable[str]) -> None:
    for name in names:
        get(name)


def summary_table(records: list[dict]) -> list[dict]:
    """Per scorer and kind of shift (far / near / covariate / resize): metrics averaged over the sets."""
    out = []
    for kind in KINDS:
        rows = [r for r in records if r.get("kind") == kind]
        out += metrics.average_records(rows, name=f"{kind} (avg of {len({r['ood_set'] for r in rows})})") if rows else []
    return out


def accuracy_table(report: "Report", header: str = "Model | ID test top-1 (%)") -> str:
    rows = "".join(f"| {k} | {a * 100:.2f} |\n" for k, a in report.accuracies.items() if a is not None)
    return f"| {header} |\n|---|---|\n{rows}"


def best_per_kind(records: list[dict], top: int = 3) -> str:
    """A few lines for the terminal: per kind of shift, the `top` scorers by mean AUROC (with their
    FPR95, ID positive), over every model."""
    lines = []
    for kind in KINDS:
        rows = [r for r in records if r.get("kind") == kind]
        if not rows:
            continue
        avg = metrics.average_records(rows)
        best = sorted(avg, key=lambda r: -r["auroc"])[:top]
        n_sets = len({r["ood_set"] for r in rows})
        cells = ", ".join(f"{r['scorer']} {100 * r['auroc']:.1f} ({100 * r['fpr95']:.1f})" for r in best)
        lines.append(f"  {kind} ({n_sets} sets): {cells}")
    return "Best mean AUROC per kind of shift, % (FPR95, ID positive, in brackets):\n" + "\n".join(lines)


@register_view("summary")
def _summary(report: "Report") -> str:
    """summary.md: each model's accuracy and the metrics averaged per kind of shift (far, near,
    covariate, resize); for the terminal, the best few scorers per kind."""
    summary = metrics.format_table(summary_table(report.records), average=False)
    write_atomic(report.out_dir / "summary.md", f"{accuracy_table(report)}\n{summary}")
    return best_per_kind(report.records) + f"\n(all scorers per kind: {report.out_dir / 'summary.md'})"


@register_view("table")
def _table(report: "Report") -> None:
    """table.md / table.csv: every (scorer, OOD set), then each scorer's averages per kind of shift
    (never across kinds). Both FPR95 conventions."""
    kw = {"metrics": report.experiment.metrics} if report.experiment.metrics else {}
    rows = report.records + summary_table(report.records)
    write_atomic(report.out_dir / "table.md", metrics.format_table(rows, average=False, **kw))
    write_atomic(report.out_dir / "table.csv", metrics.format_table(rows, fmt="csv", average=False, **kw))


@register_view("methods_table")
def _methods_table(report: "Report") -> str:
    """table.md (the title, rows grouped by OOD set, then each model's accuracy), accuracy.md, table.csv."""
    exp = report.experiment
    kw = {"metrics": exp.metrics} if exp.metrics else {}
    order = list(dict.fromkeys(r["ood_set"] for r in report.records))
    by_set = sorted(report.records, key=lambda r: order.index(r["ood_set"]))
    acc = accuracy_table(report, "Model | Accuracy (%)")
    summary = f"{exp.title}\n\n{metrics.format_table(by_set, **kw)}\n{acc}"
    write_atomic(report.out_dir / "table.md", summary)
    write_atomic(report.out_dir / "accuracy.md", acc)
    write_atomic(report.out_dir / "table.csv", metrics.format_table(by_set, fmt="csv", **kw))
    return summary


@register_view("scores")
def _scores(report: "Report") -> None:
    """scores.npz: every model's per-sample test scores (`read_scores` reads them back), for tests
    that need the samples, not the metrics (the claims report's paired bootstrap)."""
    index, arrays, seen = [], {}, {}
    for model, by_scorer in report.model_scores.items():
        for scorer, by_set in by_scorer.items():
            for ood_set, (s_id, s_ood) in by_set.items():
                s_id = np.asarray(s_id)
                digest = hashlib.sha256(s_id.tobytes() + str(s_id.dtype).encode()).hexdigest()
                if digest not in seen:  # the ID scores repeat across sets unless a scorer is tuned per set
                    seen[digest] = f"id_{len(seen)}"
                    arrays[seen[digest]] = s_id
                arrays[f"ood_{len(index)}"] = s_ood
                index.append([model, scorer, ood_set, seen[digest]])
    buf = io.BytesIO()
    np.savez_compressed(buf, index=np.array(json.dumps(index)), **arrays)
    write_atomic(report.out_dir / "scores.npz", buf.getvalue())


def read_scores(path: str | Path) -> dict[str, dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    """model -> scorer -> OOD set -> (ID test scores, OOD test scores), from a run's scores.npz."""
    with np.load(path) as z:
        out: dict = {}
        for i, (model, scorer, ood_set, id_key) in enumerate(json.loads(str(z["index"]))):
            out.setdefault(model, {}).setdefault(scorer, {})[ood_set] = (z[id_key], z[f"ood_{i}"])
    return out


@register_view("plots")
def _plots(report: "Report") -> None:
    """plots/: ROC curves and score densities per scorer, AUROC versus severity."""
    write_plots(report.scores, report.records, report.out_dir / "plots", title=plot_title(report),
                workers=report.experiment.plot_workers)


def plot_title(report: "Report") -> str:
    """What the plots show: the backbone(s) and the ID data."""
    exp = report.experiment
    archs = sorted({(m.checkpoint_arch or Path(m.checkpoint).stem) if m.checkpoint else (m.arch or exp.arch)
                    for m in exp.models})
    return f"{' / '.join(archs)} on {exp.data.id_name}"
