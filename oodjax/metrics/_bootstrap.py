"""Bootstrap mean and standard deviation of the OOD metrics (GRODIN, paper 004, Tables 4-7)."""

from __future__ import annotations

import jax
import numpy as np
from numpy.typing import ArrayLike

from oodjax.metrics._ood import METRIC_NAMES, check_scores, ood_metrics


def bootstrap(
    id_scores: ArrayLike, ood_scores: ArrayLike, *, key: jax.Array, n: int = 100
) -> dict[str, tuple[float, float]]:
    """Resamples ID and OOD scores with replacement `n` times (each set on its own).

    Args:
      id_scores: (N_id,) ID-scores, higher = more in-distribution.
      ood_scores: (N_ood,) OOD-set scores.
      key: a `jax.random` key; the resamples are a pure function of it.
      n: number of resamplings (paper 004 uses 100); at least 2.
    Returns:
      {metric: (mean, std)} over the resamples, std with ddof=1 (the bootstrap standard error).
    """
    if n < 2:
        raise ValueError(f"bootstrap needs n >= 2 resamplings for a standard deviation, got n={n}")
    id_s = check_scores("id_scores", id_scores)
    ood_s = check_scores("ood_scores", ood_scores)
    values = np.empty((n, len(METRIC_NAMES)))
    for i, k in enumerate(jax.random.split(key, n)):
        k_id, k_ood = jax.random.split(k)
        id_idx = np.asarray(jax.random.randint(k_id, (id_s.size,), 0, id_s.size))
        ood_idx = np.asarray(jax.random.randint(k_ood, (ood_s.size,), 0, ood_s.size))
        m = ood_metrics(id_s[id_idx], ood_s[ood_idx])
        values[i] = [m[name] for name in METRIC_NAMES]
    mean, std = values.mean(axis=0), values.std(axis=0, ddof=1)
    return {name: (float(mean[i]), float(std[i])) for i, name in enumerate(METRIC_NAMES)}
