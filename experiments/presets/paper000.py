"""Paper 000 (AMP, neural-network anchoring): its scorer list, and its report views, registered on
import: Table 7 (resize-artifact sets), Table 8 (anchor corruptions x number of anchors) and Fig. 5
(AMP variants and baselines across corruption severities)."""

from __future__ import annotations

from typing import Any

from oodjax import metrics
from oodjax.experiment import register_view
from oodjax.experiment.views import plot_title
from oodjax.plots import plot_severity, plot_severity_densities

FIG5_SCORERS = ("amp", "amp_tau_mean", "amp_msp", "amp_energy", "amp_entropy", "amp_tau", "msp", "odin", "energy",
                "gram")
TABLE7_SCORERS = ("msp", "energy", "gram", "amp", "amp_tau_mean")


def amp_scorers() -> dict[str, tuple[str, dict[str, Any]]]:
    """The AMP family on an anchored model: eq. 2 with tau summed over classes (paper) and averaged
    (official code), the H / (1 + exp(tau)) calibration, the Fig. 5b variants, tau alone, and MSP /
    energy of the marginalized logits H (anchoring without the temperature)."""
    return {
        "amp": ("amp", {}),
        "amp_tau_mean": ("amp", {"reduce": "mean"}),
        "amp_one_plus_exp": ("amp", {"calibration": "one_plus_exp"}),
        "amp_msp": ("amp_msp", {}),
        "amp_energy": ("amp_energy", {}),
        "amp_entropy": ("amp_entropy", {}),
        "amp_tau": ("amp_tau", {}),  # tau summed or averaged over classes ranks alike: one entry
        "anchored_msp": ("msp", {}),
        "anchored_energy": ("energy", {}),
    }


@register_view("table7")
def table7(report) -> None:
    """table7.md: paper 000's Table 7, the resize-artifact OOD sets (FPR95 ID+, AUROC)."""
    resize = [r for r in report.records if r.get("kind") == "resize" and r["scorer"] in TABLE7_SCORERS]
    if resize:
        (report.out_dir / "table7.md").write_text(
            "Paper 000, Table 7: resize-artifact OOD sets\n\n" + metrics.format_grid(resize))


@register_view("fig5")
def fig5(report) -> None:
    """plots/fig5b_auroc_vs_severity.png and fig5a_densities_<scorer>.png (paper 000, Fig. 5)."""
    fig5 = [k for k in FIG5_SCORERS if k in report.scores]
    plots = report.out_dir / "plots"
    title = plot_title(report)
    plot_severity([r for r in report.records if r["scorer"] in fig5], plots / "fig5b_auroc_vs_severity.png",
                  title=f"{title} (paper 000, Fig. 5b)")
    for k in fig5[:2]:
        plot_severity_densities(report.scores[k], f"{k}, {title} (paper 000, Fig. 5a)",
                                plots / f"fig5a_densities_{k}.png")


@register_view("table8")
def table8(report) -> str:
    """table8.md: paper 000's Table 8, FPR95 (ID+) of AMP averaged over the OOD sets; rows: the
    consistency corruptions (record tag "corruption"), columns: the number of anchors ("anchors")."""
    n_sets = len({r["ood_set"] for r in report.records})
    table = metrics.format_grid(report.records, row="corruption", col="anchors", metrics=("fpr95",), average=False)
    summary = (f"Paper 000, Table 8: FPR95 of AMP (eq. 2), mean over {n_sets} OOD sets; rows: consistency "
               f"corruptions, columns: number of anchors\n\n{table}")
    (report.out_dir / "table8.md").write_text(summary)
    return summary
