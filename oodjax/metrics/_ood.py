"""Threshold-free and threshold-based OOD detection metrics from one sort.

Convention: scores are ID-scores, higher = more in-distribution. Every metric is
computed in float64 on the host from a single descending sort of the pooled scores,
so ties are handled exactly (they form one threshold group).

Metrics (all in [0, 1]):
  auroc               P(s_id > s_ood) + 0.5 P(s_id = s_ood)   (= sklearn roc_auc_score, ID positive)
  aupr_in             average precision, ID positive           (= sklearn average_precision_score)
  aupr_out            average precision, OOD positive, on -s
  fpr95               ID-positive FPR at 95% TPR (ODIN, Energy, GradNorm, AMP papers): with t the
                      largest value such that at least 95% of ID scores are >= t, the fraction of OOD
                      scores >= t
  fpr95_ood_positive  OpenOOD v1.5: with t the smallest value such that at least 95% of OOD scores
                      are <= t (an OOD is flagged when s <= t, i.e. s < t' for t' just above t), the
                      fraction of ID scores flagged
  detection_error     0.5 (1 - TPR) + 0.5 FPR at the fpr95 threshold (paper 001, P_e)
  dtacc               max over thresholds of 0.5 TPR + 0.5 (1 - FPR) (Lee et al. 2018; paper 000)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

METRIC_NAMES: tuple[str, ...] = (
    "auroc",
    "aupr_in",
    "aupr_out",
    "fpr95",
    "fpr95_ood_positive",
    "detection_error",
    "dtacc",
)

# The recall level of FPR95 as an exact fraction, so that `ceil(0.95 n)` has no rounding error.
_TPR_NUM, _TPR_DEN = 95, 100


def check_scores(name: str, scores: ArrayLike) -> np.ndarray:
    """Returns `scores` as a float64 (N,) array; raises ValueError naming the problem."""
    a = np.asarray(scores)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{name} must be a numeric array, got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one score per sample), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty: need at least one score")
    a = a.astype(np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        n_nan = int(np.isnan(a).sum())
        n_inf = int((~finite).sum()) - n_nan
        raise ValueError(
            f"{name} has {n_nan} NaN and {n_inf} inf values out of {a.size}; "
            "a scorer produced non-finite scores (check temperatures, log of zero, overflow)"
        )
    return a


def _count_at_least(n: int) -> int:
    """Smallest m with m / n >= 95/100, in integer arithmetic."""
    return -(-_TPR_NUM * n // _TPR_DEN)


class RocGroups(NamedTuple):
    """Pooled scores grouped by distinct value, in descending order.

    values: (G,) distinct score values, descending.
    tp: (G,) number of ID scores >= values[g].
    fp: (G,) number of OOD scores >= values[g].
    """

    values: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    n_id: int
    n_ood: int


def roc_groups(id_scores: np.ndarray, ood_scores: np.ndarray) -> RocGroups:
    """Groups the pooled, validated float64 scores by distinct value (one argsort)."""
    scores = np.concatenate([id_scores, ood_scores])
    is_id = np.zeros(scores.size, dtype=np.int64)
    is_id[: id_scores.size] = 1
    order = np.argsort(-scores)
    s = scores[order]
    ends = np.flatnonzero(np.diff(s))  # last index of every group but the final one
    ends = np.append(ends, s.size - 1)
    tp = np.cumsum(is_id[order])[ends]
    fp = ends + 1 - tp
    return RocGroups(s[ends], tp, fp, id_scores.size, ood_scores.size)


def roc_curve(id_scores: ArrayLike, ood_scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """ROC points (FPR, TPR) with ID positive, from (0, 0) to (1, 1), one per distinct score."""
    g = roc_groups(check_scores("id_scores", id_scores), check_scores("ood_scores", ood_scores))
    return np.concatenate([[0.0], g.fp / g.n_ood]), np.concatenate([[0.0], g.tp / g.n_id])


def _average_precision(tp: np.ndarray, fp: np.ndarray, n_pos: int) -> float:
    """sum_g (R_g - R_{g-1}) P_g over threshold groups ordered from strictest to loosest."""
    precision = tp / (tp + fp)
    return math.fsum(np.diff(tp, prepend=0) * precision) / n_pos  # one rounding at the end


def ood_metrics(id_scores: ArrayLike, ood_scores: ArrayLike) -> dict[str, float]:
    """All OOD metrics of `METRIC_NAMES` for ID-scores (higher = more in-distribution).

    Args:
      id_scores: (N_id,) scores of in-distribution samples.
      ood_scores: (N_ood,) scores of out-of-distribution samples.
    Returns:
      dict with exactly the keys of METRIC_NAMES, each a float in [0, 1].
    Raises:
      ValueError: empty input, non-1-D input, NaN or inf scores.
    """
    id_s = check_scores("id_scores", id_scores)
    ood_s = check_scores("ood_scores", ood_scores)
    g = roc_groups(id_s, ood_s)

    fpr = np.concatenate([[0.0], g.fp / g.n_ood])
    tpr = np.concatenate([[0.0], g.tp / g.n_id])
    # The trapezoid rule on the ROC points, in integers: sum over groups of (OOD in the group) x
    # (ID above it + half the ID in it), over n_id n_ood; exact (1 for a perfect separation).
    d_tp, d_fp = np.diff(g.tp, prepend=0), np.diff(g.fp, prepend=0)
    auroc = float(np.sum(d_fp * (2 * (g.tp - d_tp) + d_tp))) / (2.0 * g.n_id * g.n_ood)
    dtacc = float(np.max(0.5 * (tpr + 1.0 - fpr)))

    aupr_in = _average_precision(g.tp, g.fp, g.n_id)
    # OOD positive on -s: groups from the lowest score upwards.
    id_per_group = np.diff(g.tp, prepend=0)[::-1]
    ood_per_group = np.diff(g.fp, prepend=0)[::-1]
    aupr_out = _average_precision(np.cumsum(ood_per_group), np.cumsum(id_per_group), g.n_ood)

    # ID-positive FPR95: first group (strictest threshold) whose TPR reaches 95%.
    k = int(np.searchsorted(g.tp, _count_at_least(g.n_id), side="left"))
    tpr95, fpr95 = g.tp[k] / g.n_id, g.fp[k] / g.n_ood
    detection_error = 0.5 * (1.0 - tpr95) + 0.5 * fpr95

    # OOD-positive FPR95: loosest-from-below group where 95% of OOD are flagged (s <= t).
    ood_below = np.cumsum(ood_per_group)  # number of OOD <= value, ascending values
    j = int(np.searchsorted(ood_below, _count_at_least(g.n_ood), side="left"))
    id_below = np.cumsum(id_per_group)
    fpr95_ood_positive = id_below[j] / g.n_id

    out = {
        "auroc": auroc,
        "aupr_in": aupr_in,
        "aupr_out": aupr_out,
        "fpr95": float(fpr95),
        "fpr95_ood_positive": float(fpr95_ood_positive),
        "detection_error": float(detection_error),
        "dtacc": dtacc,
    }
    # A sum of float64 terms can round a hair past its bound (AUPR 1.0000000000000002 when every
    # ID score is above every OOD one): every metric is a fraction, so clip it to [0, 1].
    return {k: min(max(v, 0.0), 1.0) for k, v in out.items()}
