"""One test per plot type: the files (PNG at 150 dpi and a vector PDF), the panels, at most 8 lines
per panel, labelled axes, legends outside the data, titles that say what was scored."""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from oodjax import calibration, plots

SETS = (["digits", "textures", "photo_crop", "gaussian_noise", "fmnist-heldout-classes", "digits_nearest"]
        + [f"fmnist-{c}-{s}" for c in ("gaussian_blur", "gaussian_noise") for s in range(1, 6)])
KIND = {n: "near" if "heldout" in n else "resize" if n.startswith("digits_") else
        "covariate" if n[-1].isdigit() else "far" for n in SETS}


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions save, inspected before they are closed."""
    seen = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: seen.append(fig) or save(fig, path))
    return seen


def _pairs(rng, n_sets=len(SETS)):
    return {name: (rng.normal(1, 1, 200), rng.normal(0, 1, 150)) for name in SETS[:n_sets]}


def _records(scorers):
    return [{"scorer": s, "ood_set": n, "kind": KIND[n], "auroc": 0.5 + 0.01 * i,
             "severity": int(n[-1]) if KIND[n] == "covariate" else None}
            for i, s in enumerate(scorers) for n in SETS]


def _check(fig, path, max_lines=plots.MAX_LINES):
    assert path.exists() and path.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    assert Image.open(path).info["dpi"][0] == pytest.approx(plots.DPI, abs=1)
    used = [ax for ax in fig.axes if ax.axison]
    for ax in used:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
        assert len([l for l in ax.get_lines() if l.get_label() and not l.get_label().startswith("_")]) <= max_lines
    return used


def test_roc_small_multiples(tmp_path, figures):
    path = plots.plot_roc(_pairs(np.random.default_rng(0)), "msp, small_cnn on fmnist", tmp_path / "roc.png", KIND)
    axes = _check(figures[0], path)
    assert [ax.get_title() for ax in axes] == ["far", "near", "covariate: fmnist-gaussian_blur",
                                               "covariate: fmnist-gaussian_noise", "resize"]
    assert "small_cnn on fmnist" in figures[0].get_suptitle()
    for ax in axes:  # the legend sits right of the panel, outside the data
        assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.get_window_extent().x1 - 1


def test_densities_one_panel_per_set(tmp_path, figures):
    path = plots.plot_densities(_pairs(np.random.default_rng(1)), "energy, small_cnn on fmnist", tmp_path / "d.png")
    axes = _check(figures[0], path)
    assert len(axes) == len(SETS) and figures[0].legends  # one figure legend
    assert all(ax.get_xlabel() == "score (higher = ID)" for ax in axes)
    # A fixed layout: title, then legend, then the panels' titles, none overlapping; the y labels
    # (long tick labels: densities of scores in the thousands) inside the figure and their panel's gap.
    for n_sets, scale in ((2, 1.0), (len(SETS), 1.0), (7, 1000.0)):
        figures.clear()
        pairs = {k: (a * scale, b * scale) for k, (a, b) in _pairs(np.random.default_rng(1), n_sets).items()}
        plots.plot_densities(pairs, "energy, small_cnn on fmnist", tmp_path / "e.png")
        fig = figures[0]
        canvas = FigureCanvasAgg(fig)
        canvas.draw()  # positions at the figure's dpi (the saved PNG's draw left them at 150 dpi)
        renderer = canvas.get_renderer()
        legend, title = fig.legends[0].get_window_extent(renderer), fig._suptitle.get_window_extent(renderer)
        used = [ax for ax in fig.axes if ax.axison]
        top_panel = max(ax.title.get_window_extent(renderer).y1 for ax in used)
        assert title.y0 > legend.y1 and legend.y0 > top_panel and title.y1 <= fig.bbox.y1
        for left, right in zip(used, used[1:]):
            label = right.yaxis.label.get_window_extent(renderer)
            assert label.x0 >= 0 and (label.x0 > left.bbox.x1 or label.y1 < left.bbox.y0)  # right of it, or a row below


def test_write_plots_in_worker_processes_draws_the_same_files(tmp_path):
    rng = np.random.default_rng(2)
    scores = {f"s{i}": _pairs(rng, 3) for i in range(3)}
    records = _records(list(scores))
    one = plots.write_plots(scores, records, tmp_path / "one", "t", workers=1)
    two = plots.write_plots(scores, records, tmp_path / "two", "t", workers=2)
    assert [p.name for p in one] == [p.name for p in two] and len(one) == 2 * 3 + 1
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    with pytest.raises(ValueError, match="workers must be >= 1"):
        plots.write_plots(scores, records, tmp_path / "x", workers=0)


def test_severity_groups_of_at_most_eight_scorers(tmp_path, figures):
    scorers = [f"s{i}" for i in range(11)]
    path = plots.plot_severity(_records(scorers), tmp_path / "sev.png", title="small_cnn on fmnist")
    axes = _check(figures[0], path)
    assert len(axes) == 2 * 2  # 2 groups (8 + 3 scorers) x 2 corruptions
    assert axes[0].get_title() == "fmnist-gaussian_blur, scorers 1-8"
    assert [l.get_label() for l in axes[0].get_lines()][:2] == ["s10", "s9"]  # best mean AUROC first


def test_severity_densities_and_reliability(tmp_path, figures):
    path = plots.plot_severity_densities(_pairs(np.random.default_rng(2)), "amp", tmp_path / "fig5a.png")
    _check(figures[0], path)
    rng = np.random.default_rng(3)
    logits, labels = rng.normal(size=(200, 5)) * 3, rng.integers(0, 5, 200)
    path = plots.plot_reliability({"T = 1": calibration.reliability(logits, labels)}, tmp_path / "rel.png", "small_cnn")
    _check(figures[1], path)
