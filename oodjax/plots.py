"""Figures people would rather look at than read: ROC curves, score densities, AUROC vs severity."""

from __future__ import annotations

import io
import math
import multiprocessing
import os
import textwrap
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from oodjax.files import write_atomic  # noqa: E402
from oodjax.metrics import roc_curve  # noqa: E402

ScorePairs = Mapping[str, tuple[np.ndarray, np.ndarray]]
MAX_LINES = 8  # lines per panel: more cannot be told apart
# 8 colours that stay distinct (Okabe-Ito) and a line style per colour, so that print in grey works too
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
STYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2, 2, 2)))
KINDS = ("far", "near", "covariate", "resize")
DPI = 150


def _style(i: int) -> dict[str, Any]:
    return {"color": COLORS[i % MAX_LINES], "ls": STYLES[i % MAX_LINES]}


def _grid(n: int, cols: int = 4, size: tuple[float, float] = (3.4, 3.0),
          margins: tuple[float, float, float, float] | None = None) -> tuple[plt.Figure, np.ndarray]:
    """n panels of `size` inches, `cols` per row. margins: (left, right, bottom, top) inches around
    the grid, for a fixed layout (no layout pass: many small panels draw 2x faster); None: matplotlib's
    constrained layout (legends beside panels)."""
    cols = max(1, min(n, cols))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False,
                             layout="constrained" if margins is None else None)
    if margins is not None:
        (left, right, bottom, top), (w, h) = margins, fig.get_size_inches()
        fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                            wspace=0.45, hspace=0.65)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes.flat


def _suptitle(fig: plt.Figure, text: str, fontsize: float = 11, **kw: Any) -> None:
    """The figure's title, wrapped to its width (a long model or dataset name is not cut off)."""
    chars = max(20, int(fig.get_size_inches()[0] * 72 / (0.6 * fontsize)))
    fig.suptitle(textwrap.fill(text, chars), fontsize=fontsize, **kw)


def _chunks(items: Sequence[Any], n: int = MAX_LINES) -> list[Sequence[Any]]:
    return [items[i : i + n] for i in range(0, len(items), n)] or [items]


def _kind_panels(names: Sequence[str], kinds: Mapping[str, str] | None) -> list[tuple[str, Sequence[str]]]:
    """(panel title, OOD set names): one panel per kind of shift (per corruption for covariate
    shift), at most MAX_LINES sets each."""
    kinds = kinds or {}
    groups: dict[str, list[str]] = {}
    for n in names:  # covariate sets "<corruption>-<severity>": one panel per corruption
        kind = kinds.get(n, "OOD")
        key = f"{kind}: {n.rsplit('-', 1)[0]}" if kind == "covariate" and n.rsplit("-", 1)[-1].isdigit() else kind
        groups.setdefault(key, []).append(n)
    rank = {k: i for i, k in enumerate(KINDS)}
    order = sorted(groups, key=lambda g: rank.get(g.split(":")[0], len(KINDS)))
    panels = []
    for kind in order:
        parts = _chunks(groups[kind])
        panels += [(kind if len(parts) == 1 else f"{kind} ({i + 1}/{len(parts)})", part) for i, part in enumerate(parts)]
    return panels


def plot_roc(pairs: ScorePairs, title: str, path: str | Path, kinds: Mapping[str, str] | None = None) -> Path:
    """ROC curves (ID positive), one panel per kind of shift (`kinds`: OOD set -> kind) with at most
    8 OOD sets each, the 95% TPR line of FPR95 (ID+), legends beside the panels."""
    panels = _kind_panels(list(pairs), kinds)
    fig, axes = _grid(len(panels), cols=2, size=(5.4, 3.6))
    for ax, (panel, names) in zip(axes, panels):
        for i, name in enumerate(names):
            fpr, tpr = roc_curve(*pairs[name])
            ax.plot(fpr, tpr, lw=1.3, label=name, **_style(i))
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":")
        ax.axhline(0.95, color="0.6", lw=0.6, ls="--")
        ax.set(xlabel="FPR: OOD accepted as ID (fraction)", ylabel="TPR: ID accepted (fraction)", title=panel,
               xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    _suptitle(fig, f"ROC, {title} (ID positive; dashed: TPR 0.95)")
    return _save(fig, path)


def plot_densities(pairs: ScorePairs, title: str, path: str | Path) -> Path:
    """Histogram densities of ID versus OOD scores, one panel per OOD set, one legend."""
    fig, axes = _grid(len(pairs), cols=5, size=(3.0, 2.4), margins=(0.8, 0.15, 0.4, 0.9))
    for ax, (name, (id_s, ood_s)) in zip(axes, pairs.items()):
        lo, hi = np.percentile(np.concatenate([id_s, ood_s]), [0.5, 99.5])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 50)
        for i, (values, label) in enumerate(((id_s, "ID test"), (ood_s, "OOD test"))):  # histogram + stairs: fast
            ax.stairs(np.histogram(values, bins, density=True)[0], bins, lw=1.3, label=label, **_style(i))
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("score (higher = ID)", fontsize=7)
        ax.set_ylabel("density", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.locator_params(axis="x", nbins=5)  # wide score ranges: tick labels that do not collide
    handles, labels = axes[0].get_legend_handles_labels()
    height = fig.get_size_inches()[1]  # the title, then the legend below it, in the top margin
    fig.suptitle(f"Score densities, {title}", fontsize=11, y=1 - 0.08 / height, va="top")
    fig.legend(handles, labels, loc="upper right", bbox_to_anchor=(1, 1 - 0.34 / height), ncols=2, fontsize=8,
               frameon=False)
    return _save(fig, path)


def plot_severity(records: Sequence[Mapping[str, Any]], path: str | Path, metric: str = "auroc",
                  title: str = "") -> Path | None:
    """`metric` versus corruption severity 1-5: one column per corruption, one row per group of at
    most 8 scorers (scorers ordered by their mean over the covariate sets, best first)."""
    cov = [r for r in records if r.get("kind") == "covariate" and r.get("severity")]
    if not cov:
        return None
    corruptions = sorted({r["ood_set"].rsplit("-", 1)[0] for r in cov})
    scorers = list(dict.fromkeys(r["scorer"] for r in cov))
    mean = {s: np.mean([r[metric] for r in cov if r["scorer"] == s]) for s in scorers}
    groups = _chunks(sorted(scorers, key=lambda s: -mean[s]))
    fig, axes = plt.subplots(len(groups), len(corruptions), squeeze=False, layout="constrained",
                             figsize=(4.2 * len(corruptions) + 2.2, 3.0 * len(groups)))
    for row, group in enumerate(groups):
        for col, corruption in enumerate(corruptions):
            ax = axes[row, col]
            for i, scorer in enumerate(group):
                pts = sorted((r["severity"], r[metric]) for r in cov
                             if r["scorer"] == scorer and r["ood_set"].rsplit("-", 1)[0] == corruption)
                if pts:
                    ax.plot(*zip(*pts), marker="o", ms=3, lw=1.2, label=scorer, **_style(i))
            ax.set(xlabel="corruption severity", ylabel=f"{metric.upper()} (fraction)", xticks=range(1, 6),
                   title=f"{corruption}, scorers {row * MAX_LINES + 1}-{row * MAX_LINES + len(group)}")
        axes[row, -1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    _suptitle(fig, f"{metric.upper()} versus severity{', ' + title if title else ''}")
    return _save(fig, path)


def plot_severity_densities(pairs: ScorePairs, title: str, path: str | Path) -> Path | None:
    """Fig. 5a of paper 000: the ID score density and one per severity 1-5, a panel per corruption.

    pairs: OOD set name -> (ID scores, OOD scores); covariate sets are named "<corruption>-<severity>".
    """
    sets = {n: p for n, p in pairs.items() if n.rsplit("-", 1)[-1].isdigit()}
    if not sets:
        return None
    corruptions = sorted({n.rsplit("-", 1)[0] for n in sets})
    fig, axes = _grid(len(corruptions), cols=4, size=(4.2, 3.2))
    for ax, corruption in zip(axes, corruptions):
        levels = sorted((int(n.rsplit("-", 1)[1]), p) for n, p in sets.items() if n.rsplit("-", 1)[0] == corruption)
        id_s = levels[0][1][0]
        values = np.concatenate([id_s, *(p[1] for _, p in levels)])
        lo, hi = np.percentile(values, [0.5, 99.5])
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 50)
        ax.stairs(np.histogram(id_s, bins, density=True)[0], bins, lw=1.8, color="k", label="ID test")
        colors = plt.cm.viridis(np.linspace(0.15, 0.9, len(levels)))
        for (level, (_, ood_s)), color in zip(levels, colors):
            ax.stairs(np.histogram(ood_s, bins, density=True)[0], bins, lw=1.1, color=color, label=f"severity {level}")
        ax.set(title=corruption, xlabel="score (higher = ID)", ylabel="density")
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    _suptitle(fig, f"{title}: ID versus corruption severities")
    return _save(fig, path)


def plot_reliability(curves: Mapping[str, Mapping[str, np.ndarray]], path: str | Path, title: str = "") -> Path:
    """Reliability diagram: accuracy versus confidence per bin, one line per `curves` entry
    (e.g. {"T = 1": calibration.reliability(...), "T = 1.7": ...}), with the diagonal."""
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    for label, r in curves.items():
        used = r["count"] > 0
        ax.plot(r["confidence"][used], r["accuracy"][used], "o-", ms=3, lw=1, label=label)
    ax.set(xlabel="confidence (max softmax)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.legend(fontsize=7)
    return _save(fig, path)


VERDICT_COLORS = {"confirmed": "tab:green", "contradicted": "tab:red", "inconclusive": "tab:gray"}


def plot_intervals(rows: Sequence[Mapping[str, Any]], path: str | Path, title: str = "",
                   xlabel: str = "difference in the claimed direction") -> Path:
    """A forest plot: one row per test ({label, value, low, high, verdict}), the point and its
    interval, coloured by verdict, with the zero line; groups of rows separated by `group` changes."""
    fig, ax = plt.subplots(figsize=(8.0, 1.0 + 0.22 * len(rows)))
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows):
        c = VERDICT_COLORS.get(r["verdict"], "k")
        ax.plot([r["low"], r["high"]], [yi, yi], color=c, lw=2.0, solid_capstyle="butt")
        ax.plot(r["value"], yi, "o", color=c, ms=3.5)
    for i in range(1, len(rows)):
        if rows[i].get("group") != rows[i - 1].get("group"):
            ax.axhline(y[i] + 0.5, color="0.85", lw=0.6)
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_yticks(y, [r["label"] for r in rows], fontsize=6.5)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    handles = [plt.Line2D([], [], color=c, lw=2, marker="o", ms=3.5, label=v) for v, c in VERDICT_COLORS.items()]
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    """`path` as a PNG at DPI and, next to it, the same figure as a vector PDF."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = io.BytesIO(), io.BytesIO()
    fig.savefig(png, dpi=DPI, format="png")
    fig.set_layout_engine("none")  # the PDF keeps the PNG's layout instead of computing it again
    fig.savefig(pdf, format="pdf")
    plt.close(fig)
    write_atomic(path, png.getvalue())  # a killed run leaves the old figure or the new one
    write_atomic(path.with_suffix(".pdf"), pdf.getvalue())
    return path


def _scorer_plots(pairs: ScorePairs, label: str, roc_path: Path, density_path: Path,
                  kinds: Mapping[str, str]) -> list[Path]:
    return [plot_roc(pairs, label, roc_path, kinds), plot_densities(pairs, label, density_path)]


def _workers(workers: int | None, jobs: int) -> int:
    """How many processes draw `jobs` scorers' figures: `workers`, or one per CPU (at most 8)."""
    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(cpus, 8)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return min(workers, jobs)


def write_plots(scores: Mapping[str, ScorePairs], records: Sequence[Mapping[str, Any]], out_dir: str | Path,
                title: str = "", workers: int | None = 1) -> list[Path]:
    """roc_<scorer>.png and density_<scorer>.png per scorer, and auroc_vs_severity.png (each with a
    PDF); title: what was scored (model and ID set), in every figure's title.

    workers: processes drawing the scorers' figures at once (1: all in this process; None: one per
    CPU, at most 8). matplotlib draws on one core and the figures are independent, so the demo's ~50
    scorers' figures take about 1/workers of the time. The workers are spawned: they import the
    calling script again, so a script that calls this with workers != 1 needs the
    `if __name__ == "__main__":` guard."""
    out_dir = Path(out_dir)
    kinds = {r["ood_set"]: r.get("kind", "OOD") for r in records}
    jobs = [(pairs, f"{scorer}{', ' + title if title else ''}", out_dir / f"roc_{scorer}.png",
             out_dir / f"density_{scorer}.png", kinds) for scorer, pairs in scores.items()]
    workers = _workers(workers, len(jobs))
    if workers > 1:  # spawned, not forked: the parent runs jax's threads
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = list(pool.map(_scorer_plots, *zip(*jobs, strict=True)))
    else:
        done = [_scorer_plots(*job) for job in jobs]
    severity = plot_severity(records, out_dir / "auroc_vs_severity.png", title=title)
    return [p for paths in done for p in paths] + ([severity] if severity else [])
