"""Tables of OOD metrics as the papers print them: percentages with two decimals."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from oodjax.metrics._ood import METRIC_NAMES

HEADERS: dict[str, str] = {
    "auroc": "AUROC",
    "aupr_in": "AUPR-In",
    "aupr_out": "AUPR-Out",
    "fpr95": "FPR95 (ID+)",
    "fpr95_ood_positive": "FPR95 (OOD+)",
    "detection_error": "Det.Err",
    "dtacc": "DTACC",
}

Record = Mapping[str, Any]


def average_records(records: Sequence[Record], *, name: str = "average") -> list[dict[str, Any]]:
    """One record per scorer with every metric (and `<metric>_std`) averaged over its OOD sets."""
    by_scorer: dict[str, list[Record]] = {}
    for r in records:
        by_scorer.setdefault(r["scorer"], []).append(r)
    out = []
    for scorer, rows in by_scorer.items():
        avg: dict[str, Any] = {"scorer": scorer, "ood_set": name}
        for m in METRIC_NAMES:
            for key in (m, f"{m}_std"):
                vals = [r[key] for r in rows if key in r]
                if vals:
                    avg[key] = float(np.mean(vals))
        out.append(avg)
    return out


def _cell(record: Record, metric: str) -> str:
    std = record.get(f"{metric}_std")
    text = f"{100 * record[metric]:.2f}"
    return text if std is None else f"{text} ± {100 * std:.2f}"


def format_table(
    records: Sequence[Record],
    *,
    fmt: str = "markdown",
    metrics: Sequence[str] = ("fpr95", "fpr95_ood_positive", "auroc", "aupr_in", "aupr_out", "detection_error", "dtacc"),
    average: bool = True,
) -> str:
    """Formats metric records ({'scorer', 'ood_set', metric: float, optional '<metric>_std'}).

    Args:
      records: one mapping per (scorer, OOD set); metric values in [0, 1].
      fmt: "markdown" ("value ± std" cells where a std is given) or "csv" (std in `<metric>_std` columns).
      metrics: the columns, in order; names from METRIC_NAMES.
      average: append, per scorer, the average over its OOD sets.
    Returns:
      the table as a string, values as percentages with two decimals.
    """
    unknown = [m for m in metrics if m not in HEADERS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {list(HEADERS)}")
    rows = list(records) + (average_records(records) if average and records else [])
    if fmt == "markdown":
        head = ["Scorer", "OOD set"] + [HEADERS[m] for m in metrics]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in rows:
            cells = [str(r["scorer"]), str(r["ood_set"])] + [_cell(r, m) for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"
    if fmt == "csv":
        has_std = any(f"{m}_std" in r for r in rows for m in metrics)
        head = ["scorer", "ood_set"]
        for m in metrics:
            head += [m, f"{m}_std"] if has_std else [m]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(head)
        for r in rows:
            row = [r["scorer"], r["ood_set"]]
            for m in metrics:
                row.append(f"{100 * r[m]:.2f}")
                if has_std:
                    row.append("" if f"{m}_std" not in r else f"{100 * r[f'{m}_std']:.2f}")
            writer.writerow(row)
        return buf.getvalue()
    raise ValueError(f"fmt must be 'markdown' or 'csv', got {fmt!r}")


def format_grid(
    records: Sequence[Record],
    *,
    row: str = "scorer",
    col: str = "ood_set",
    metrics: Sequence[str] = ("fpr95", "auroc"),
    average: bool = True,
) -> str:
    """A markdown pivot as papers print comparison tables: one row per `row` value, one column per
    `col` value, cells "FPR95 (ID+) / AUROC" (the `metrics`, in %), and an Average column.

    Records with the same (row, col) are averaged.
    """
    unknown = [m for m in metrics if m not in HEADERS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {list(HEADERS)}")
    rows = list(dict.fromkeys(r[row] for r in records))
    cols = list(dict.fromkeys(r[col] for r in records))
    head = [row] + [str(c) for c in cols] + (["Average"] if average else [])
    lines = [f"{' / '.join(HEADERS[m] for m in metrics)} (%)\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for rv in rows:
        cells, per_col = [str(rv)], []
        for cv in cols:
            hits = [r for r in records if r[row] == rv and r[col] == cv]
            if not hits:
                cells.append("")
                continue
            vals = [float(np.mean([h[m] for h in hits])) for m in metrics]
            per_col.append(vals)
            cells.append(" / ".join(f"{100 * v:.2f}" for v in vals))
        if average:
            cells.append(" / ".join(f"{100 * v:.2f}" for v in np.mean(per_col, axis=0)) if per_col else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
