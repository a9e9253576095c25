"""sklearn / oodjax time ratio of the OOD metrics, measured in one run (goal >= 1, identical values).

    python -m experiments.benchmarks.metrics_bench [--n 1000000] [--repeats 3]

sklearn computes what it can (AUROC, AUPR-In, AUPR-Out, both FPR95 conventions via roc_curve);
oodjax's `ood_metrics` computes all seven metrics from one sort.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from oodjax.metrics import ood_metrics


def sklearn_metrics(id_s: np.ndarray, ood_s: np.ndarray) -> dict[str, float]:
    s = np.concatenate([id_s, ood_s])
    y = np.concatenate([np.ones(id_s.size), np.zeros(ood_s.size)])
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    fpr_o, tpr_o, _ = roc_curve(1 - y, -s, drop_intermediate=False)
    return {
        "auroc": roc_auc_score(y, s),
        "aupr_in": average_precision_score(y, s),
        "aupr_out": average_precision_score(1 - y, -s),
        "fpr95": float(fpr[np.argmax(tpr >= 0.95)]),
        "fpr95_ood_positive": float(fpr_o[np.argmax(tpr_o >= 0.95)]),
    }


def best_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000, help="ID and OOD scores, each")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # Rounded to 4 decimals so that there are ties, as real float32 scores have.
    id_s = np.round(rng.normal(1.0, 1.0, args.n), 4)
    ood_s = np.round(rng.normal(0.0, 1.0, args.n), 4)

    t_ours, ours = best_time(lambda: ood_metrics(id_s, ood_s), args.repeats)
    t_sk, sk = best_time(lambda: sklearn_metrics(id_s, ood_s), args.repeats)
    s = np.concatenate([id_s, ood_s])
    y = np.concatenate([np.ones(args.n), np.zeros(args.n)])
    t_sk_auroc, _ = best_time(lambda: roc_auc_score(y, s), args.repeats)

    print(f"{args.n:,} ID + {args.n:,} OOD scores, best of {args.repeats}")
    print(f"oodjax ood_metrics (all 7 metrics):          {t_ours:8.3f} s")
    print(f"sklearn (AUROC, AUPR-In/Out, 2 x FPR95):     {t_sk:8.3f} s")
    print(f"sklearn roc_auc_score alone:                 {t_sk_auroc:8.3f} s")
    print(f"ratio sklearn / oodjax, same 5 metrics:      {t_sk / t_ours:8.2f}  (goal >= 1)")
    print(f"ratio sklearn AUROC alone / oodjax all 7:    {t_sk_auroc / t_ours:8.2f}")
    diff = max(abs(ours[k] - v) for k, v in sk.items())
    print(f"max |oodjax - sklearn| over the 5 metrics:   {diff:.2e}")


if __name__ == "__main__":
    main()
