"""OOD detection metrics. Scores are ID-scores: higher = more in-distribution.

`ood_metrics` gives AUROC, AUPR-In/Out, FPR95 in both conventions (ID positive, as in
ODIN/Energy/AMP; OOD positive, as in OpenOOD v1.5), detection error (paper 001) and DTACC.
"""

from oodjax.metrics._bootstrap import bootstrap
from oodjax.metrics._ood import METRIC_NAMES, check_scores, ood_metrics, roc_curve
from oodjax.metrics._paired import PairedBootstrap, paired_bootstrap, resample_indices, verdict
from oodjax.metrics._table import HEADERS, average_records, format_grid, format_table

__all__ = [
    "HEADERS",
    "METRIC_NAMES",
    "PairedBootstrap",
    "average_records",
    "bootstrap",
    "check_scores",
    "format_grid",
    "format_table",
    "ood_metrics",
    "paired_bootstrap",
    "resample_indices",
    "roc_curve",
    "verdict",
]
