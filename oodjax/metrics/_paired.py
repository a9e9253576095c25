"""Paired bootstrap of an OOD metric's difference between two scorers (the claims report's test).

Both scorers score the same ID test images and the same OOD images, so one resample of image
indices serves both: the interval is that of metric(a) - metric(b) with the image sampling noise
shared, far narrower than two independent intervals. One ID resample is shared by every OOD set
(the sets share the ID test set); each OOD set draws its own indices.

The resampled metric is computed from counts rather than resampled copies: each resample's ID
draws are counted per distinct ID value, and every OOD draw looks up how many ID draws lie above
and at it (`_fast_metrics`), for AUROC and FPR95 (ID positive) vectorized over resamples. It equals
`ood_metrics` on the resampled arrays exactly (tests/test_paired_bootstrap.py, against a loop).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import numpy as np
from numpy.typing import ArrayLike

from oodjax.metrics._ood import METRIC_NAMES, _count_at_least, check_scores, ood_metrics

FAST_METRICS = ("auroc", "fpr95")
Reduce = Callable[[np.ndarray], np.ndarray]  # (..., S) per-set metrics -> (...) one statistic


class PairedBootstrap(NamedTuple):
    """metric: the metric compared. a, b: the statistic (default: the metric averaged over the OOD
    sets) of each scorer on the data; observed = a - b. low, high: the `level` percentile interval
    of the resampled differences. differences: (n,) resampled a - b. b is a constant when the
    comparison is against one (e.g. AUROC 0.5)."""

    metric: str
    a: float
    b: float
    observed: float
    low: float
    high: float
    differences: np.ndarray


def _as_sets(name: str, ood: ArrayLike | Sequence[ArrayLike]) -> list[np.ndarray]:
    if isinstance(ood, (list, tuple)):
        if not ood:
            raise ValueError(f"{name} is an empty list: give one array of OOD scores per OOD set")
        return [check_scores(f"{name}[{i}]", s) for i, s in enumerate(ood)]
    return [check_scores(name, ood)]


def _fast_metrics(metric: str, id_s: np.ndarray, oods: list[np.ndarray], id_idx: np.ndarray,
                  ood_idx: list[np.ndarray]) -> np.ndarray:
    """(B, S) `metric` of the B resamples id_s[id_idx[b]], oods[s][ood_idx[s][b]], exactly as
    `ood_metrics` counts them, from the ID draws' counts per distinct ID value (integers throughout)."""
    n, n_id = id_idx.shape
    values, group = np.unique(id_s, return_inverse=True)  # ascending distinct ID scores
    rows = np.arange(n, dtype=np.int64)[:, None] * values.size
    counts = np.bincount((rows + group[id_idx]).ravel(), minlength=n * values.size).reshape(n, values.size)
    at_most = np.concatenate([np.zeros((n, 1), np.int64), np.cumsum(counts, axis=1)], axis=1)  # [:, j]: draws < values[j]
    b = np.arange(n)[:, None]
    if metric == "fpr95":  # the largest ID value t with >= 95% of the ID draws >= t; OOD draws >= t
        g = np.sum(at_most[:, 1:-1] <= n_id - _count_at_least(n_id), axis=1)
        return np.stack([np.mean(np.searchsorted(values, o, side="right")[idx] > g[:, None], axis=1)
                         for o, idx in zip(oods, ood_idx)], axis=1)
    cols = []  # AUROC: sum over OOD draws of (2 x ID draws above + ID draws equal) / (2 n_id n_ood)
    for o, idx in zip(oods, ood_idx):
        le = at_most[b, np.searchsorted(values, o, side="right")[idx]]  # ID draws <= each OOD draw
        lt = at_most[b, np.searchsorted(values, o, side="left")[idx]]  # ID draws < it
        cols.append(np.sum(2 * (n_id - le) + (le - lt), axis=1) / (2.0 * n_id * idx.shape[1]))
    return np.stack(cols, axis=1)


def resample_indices(key: jax.Array, n: int, n_id: int, ood_sizes: Sequence[int]):
    """The resamples' indices: (n, n_id) into the ID scores and, per OOD set, (n, size); a pure
    function of `key` (what `paired_bootstrap` draws, for a brute-force check)."""
    k_id, *k_ood = jax.random.split(key, 1 + len(ood_sizes))
    return (np.asarray(jax.random.randint(k_id, (n, n_id), 0, n_id)),
            [np.asarray(jax.random.randint(k, (n, m), 0, m)) for k, m in zip(k_ood, ood_sizes)])


def _resampled_metric(metric: str, ids: list[np.ndarray], oods: list[np.ndarray], id_idx: np.ndarray,
                      ood_idx: list[np.ndarray]) -> np.ndarray:
    """(n, S): the metric of every resample on every OOD set (set s against ID scores ids[s])."""
    if metric not in FAST_METRICS:
        return np.array([[ood_metrics(i[id_idx[b]], o[idx[b]])[metric] for i, o, idx in zip(ids, oods, ood_idx)]
                         for b in range(id_idx.shape[0])])
    cols, s = [], 0
    while s < len(oods):  # consecutive sets with the same ID scores (an untuned scorer) share one count
        e = s + 1
        while e < len(oods) and np.array_equal(ids[e], ids[s]):
            e += 1
        cols.append(_fast_metrics(metric, ids[s], oods[s:e], id_idx, ood_idx[s:e]))
        s = e
    return np.concatenate(cols, axis=1)


def _id_sets(name: str, ids: ArrayLike | Sequence[ArrayLike], num_sets: int) -> list[np.ndarray]:
    """One ID-score array per OOD set: the same array for all, or one each (a scorer tuned per set
    scores the same ID images differently for each set)."""
    if isinstance(ids, (list, tuple)):
        out = [check_scores(f"{name}[{i}]", s) for i, s in enumerate(ids)]
        if len(out) != num_sets or len({a.size for a in out}) != 1:
            raise ValueError(f"{name}: give one ID array, or one per OOD set ({num_sets}) over the same ID images; "
                             f"got sizes {[a.size for a in out]}")
        return out
    return [check_scores(name, ids)] * num_sets


def paired_bootstrap(id_a: ArrayLike | Sequence[ArrayLike], ood_a: ArrayLike | Sequence[ArrayLike],
                     id_b: ArrayLike | Sequence[ArrayLike] | None = None,
                     ood_b: ArrayLike | Sequence[ArrayLike] | None = None, *, key: jax.Array, metric: str = "auroc",
                     n: int = 1000, level: float = 0.95, reduce: Reduce | None = None,
                     constant: float | None = None) -> PairedBootstrap:
    """Paired bootstrap interval of statistic(a) - statistic(b).

    Args:
      id_a, id_b: (N_id,) each scorer's scores of the same ID test images (higher = more ID), or
        one such array per OOD set (a scorer tuned on each set's validation split).
      ood_a, ood_b: (N_ood,) scores of the same OOD images, or one such array per OOD set (the
        sets' sizes must match between a and b).
      key: a `jax.random` key; the resamples are a pure function of it.
      metric: one of METRIC_NAMES (auroc and fpr95 vectorized, the others a loop of ood_metrics).
      n: resamples (at least 100). level: interval coverage (percentile interval).
      reduce: per-set metrics (..., S) -> the statistic (...); default: the mean over the sets.
      constant: compare a against this number instead of a second scorer (omit id_b and ood_b).
    Returns:
      PairedBootstrap(metric, a, b, observed, low, high, differences).
    """
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRIC_NAMES}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 100:
        raise ValueError(f"paired_bootstrap needs n >= 100 resamples for a 95% percentile interval, got n={n!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    has_b = (id_b is not None, ood_b is not None)
    if (constant is None and not all(has_b)) or (constant is not None and any(has_b)):
        raise ValueError("give either a second scorer (id_b and ood_b) or a constant, not both or neither")
    reduce = reduce or (lambda m: np.mean(m, axis=-1))
    oods_a = _as_sets("ood_a", ood_a)
    ids_a = _id_sets("id_a", id_a, len(oods_a))
    id_idx, ood_idx = resample_indices(key, n, ids_a[0].size, [o.size for o in oods_a])
    stat_a = float(reduce(np.array([ood_metrics(i, o)[metric] for i, o in zip(ids_a, oods_a)])))
    boot_a = reduce(_resampled_metric(metric, ids_a, oods_a, id_idx, ood_idx))
    if constant is not None:
        stat_b, boot_b = float(constant), np.full(n, float(constant))
    else:
        oods_b = _as_sets("ood_b", ood_b)
        ids_b = _id_sets("id_b", id_b, len(oods_b))
        if ids_b[0].size != ids_a[0].size or [o.size for o in oods_b] != [o.size for o in oods_a]:
            raise ValueError(f"a paired bootstrap needs both scorers on the same images: ID {ids_a[0].size} vs "
                             f"{ids_b[0].size}, OOD sets {[o.size for o in oods_a]} vs {[o.size for o in oods_b]}")
        stat_b = float(reduce(np.array([ood_metrics(i, o)[metric] for i, o in zip(ids_b, oods_b)])))
        boot_b = reduce(_resampled_metric(metric, ids_b, oods_b, id_idx, ood_idx))
    diff = np.asarray(boot_a - boot_b, np.float64)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(diff, [tail, 100.0 - tail])
    return PairedBootstrap(metric, stat_a, stat_b, stat_a - stat_b, float(low), float(high), diff)


def verdict(result: PairedBootstrap, expect: str) -> str:
    """The claims report's rule, fixed in advance: 'confirmed' if the interval excludes 0 on the
    claimed side (expect 'greater': a > b; 'less': a < b), 'contradicted' if it excludes 0 on the
    other side, 'inconclusive' otherwise."""
    if expect not in ("greater", "less"):
        raise ValueError(f"expect must be 'greater' or 'less', got {expect!r}")
    if result.low > 0.0:
        return "confirmed" if expect == "greater" else "contradicted"
    if result.high < 0.0:
        return "confirmed" if expect == "less" else "contradicted"
    return "inconclusive"
