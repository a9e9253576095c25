"""oodjax.metrics against sklearn and against brute-force numpy definitions."""

import csv
import io

import jax
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from experiments.benchmarks.metrics_bench import sklearn_metrics
from oodjax import metrics


def _random_scores(seed, n_id, n_ood, decimals=None):
    rng = np.random.default_rng(seed)
    id_s = rng.normal(1.0, 1.0, n_id)
    ood_s = rng.normal(0.0, 1.5, n_ood)
    if decimals is not None:  # coarse rounding creates many ties, across and within the sets
        id_s, ood_s = np.round(id_s, decimals), np.round(ood_s, decimals)
    return id_s, ood_s


def _brute_force(id_s, ood_s):
    """Each metric straight from its definition, O(N^2) or O(N * thresholds)."""
    diff = id_s[:, None] - ood_s[None, :]
    auroc = np.mean(diff > 0) + 0.5 * np.mean(diff == 0)
    # ID positive: t = the largest value with at least 95% of ID scores >= t.
    cands = np.unique(np.concatenate([id_s, ood_s]))
    ok = [v for v in cands if np.mean(id_s >= v) >= 0.95 - 1e-12]
    t = max(ok)
    fpr95 = np.mean(ood_s >= t)
    tpr = np.mean(id_s >= t)
    # OOD positive: t = the smallest value with at least 95% of OOD scores <= t.
    ok = [v for v in cands if np.mean(ood_s <= v) >= 0.95 - 1e-12]
    t_ood = min(ok)
    fpr95_ood = np.mean(id_s <= t_ood)
    thresholds = np.append(cands, np.inf)
    dtacc = max(0.5 * np.mean(id_s >= v) + 0.5 * np.mean(ood_s < v) for v in thresholds)
    return {
        "auroc": auroc,
        "fpr95": fpr95,
        "fpr95_ood_positive": fpr95_ood,
        "detection_error": 0.5 * (1 - tpr) + 0.5 * fpr95,
        "dtacc": dtacc,
    }


@pytest.mark.parametrize(
    "seed,n_id,n_ood,decimals",
    [(0, 500, 700, None), (1, 333, 101, 1), (2, 40, 2000, 0), (3, 1000, 1000, 2), (4, 20, 20, 1)],
)
def test_matches_sklearn(seed, n_id, n_ood, decimals):
    id_s, ood_s = _random_scores(seed, n_id, n_ood, decimals)
    got = metrics.ood_metrics(id_s, ood_s)
    for name, want in sklearn_metrics(id_s, ood_s).items():
        np.testing.assert_allclose(got[name], want, rtol=0, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("seed,n_id,n_ood,decimals", [(5, 300, 200, None), (6, 150, 350, 1), (7, 60, 80, 0)])
def test_matches_brute_force(seed, n_id, n_ood, decimals):
    id_s, ood_s = _random_scores(seed, n_id, n_ood, decimals)
    got = metrics.ood_metrics(id_s, ood_s)
    for name, want in _brute_force(id_s, ood_s).items():
        np.testing.assert_allclose(got[name], want, rtol=0, atol=1e-12, err_msg=name)


def test_keys_range_and_perfect_separation():
    got = metrics.ood_metrics(np.arange(10.0, 20.0), np.arange(0.0, 10.0))
    assert tuple(got) == metrics.METRIC_NAMES
    assert got["auroc"] == 1.0 and got["fpr95"] == 0.0 and got["fpr95_ood_positive"] == 0.0
    assert got["aupr_in"] == 1.0 and got["aupr_out"] == 1.0 and got["dtacc"] == 1.0
    reversed_ = metrics.ood_metrics(np.arange(0.0, 10.0), np.arange(10.0, 20.0))
    assert reversed_["auroc"] == 0.0 and reversed_["fpr95"] == 1.0
    assert reversed_["dtacc"] == 0.5  # the trivial threshold
    for v in got.values():
        assert isinstance(v, float) and 0.0 <= v <= 1.0


def test_all_equal_scores():
    got = metrics.ood_metrics(np.full(50, 3.0), np.full(70, 3.0))
    assert got["auroc"] == 0.5
    assert got["fpr95"] == 1.0 and got["dtacc"] == 0.5
    np.testing.assert_allclose(got["aupr_in"], 50 / 120)


def test_single_samples_and_ints():
    got = metrics.ood_metrics([2], [1])
    assert got["auroc"] == 1.0
    assert metrics.ood_metrics(np.array([1, 2, 3]), np.array([0, 1]))["auroc"] == pytest.approx(
        roc_auc_score([1, 1, 1, 0, 0], [1, 2, 3, 0, 1])
    )


@pytest.mark.parametrize(
    "id_s,ood_s,match",
    [
        ([], [1.0], "id_scores is empty"),
        ([1.0], np.array([]), "ood_scores is empty"),
        ([1.0, np.nan], [0.0], "1 NaN and 0 inf"),
        ([1.0], [0.0, np.inf, -np.inf], "0 NaN and 2 inf"),
        (np.ones((3, 2)), [0.0], r"1-D.*\(3, 2\)"),
        ([1.0], 0.5, "ood_scores must be 1-D"),
        (np.array([True, False]), [0.0], "numeric"),
        (np.array(["a"]), [0.0], "numeric"),
    ],
)
def test_bad_input(id_s, ood_s, match):
    with pytest.raises(ValueError, match=match):
        metrics.ood_metrics(id_s, ood_s)


def test_bootstrap_reference_and_determinism(key):
    id_s, ood_s = _random_scores(8, 200, 150, 1)
    got = metrics.bootstrap(id_s, ood_s, key=key, n=20)
    assert got == metrics.bootstrap(id_s, ood_s, key=key, n=20)
    assert got != metrics.bootstrap(id_s, ood_s, key=jax.random.key(1), n=20)
    # Reference: the same resamples, with sklearn's AUROC and numpy's sample std.
    aurocs = []
    for k in jax.random.split(key, 20):
        k_id, k_ood = jax.random.split(k)
        a = id_s[np.asarray(jax.random.randint(k_id, (200,), 0, 200))]
        b = ood_s[np.asarray(jax.random.randint(k_ood, (150,), 0, 150))]
        aurocs.append(roc_auc_score(np.r_[np.ones(200), np.zeros(150)], np.r_[a, b]))
    np.testing.assert_allclose(got["auroc"], (np.mean(aurocs), np.std(aurocs, ddof=1)), atol=1e-12)
    assert set(got) == set(metrics.METRIC_NAMES)
    full = metrics.ood_metrics(id_s, ood_s)["auroc"]
    assert abs(got["auroc"][0] - full) < 4 * got["auroc"][1]


def test_bootstrap_bad_n(key):
    with pytest.raises(ValueError, match="n >= 2"):
        metrics.bootstrap([1.0, 2.0], [0.0], key=key, n=1)


def _records():
    return [
        {"scorer": "msp", "ood_set": "a", **metrics.ood_metrics([3.0, 2.0, 1.5], [1.0, 2.5])},
        {"scorer": "msp", "ood_set": "b", **metrics.ood_metrics([3.0, 2.0], [0.0, 1.0])},
        {"scorer": "energy", "ood_set": "a", **metrics.ood_metrics([1.0, 2.0], [1.5, 0.0])},
    ]


def test_table_markdown_and_average():
    recs = _records()
    md = metrics.format_table(recs, metrics=("auroc", "fpr95"))
    lines = md.strip().splitlines()
    assert lines[0] == "| Scorer | OOD set | AUROC | FPR95 (ID+) |"
    assert len(lines) == 2 + 3 + 2  # header, rule, 3 records, 2 averages
    assert f"| msp | a | {100 * recs[0]['auroc']:.2f} |" in md
    avg = (recs[0]["auroc"] + recs[1]["auroc"]) / 2
    assert f"| msp | average | {100 * avg:.2f} |" in md


def test_table_csv_with_std(key):
    boot = metrics.bootstrap([3.0, 2.0, 1.0, 0.5], [1.2, 0.0, -1.0], key=key, n=5)
    rec = {"scorer": "msp", "ood_set": "a", "auroc": boot["auroc"][0], "auroc_std": boot["auroc"][1]}
    out = metrics.format_table([rec], fmt="csv", metrics=("auroc",), average=False)
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["scorer", "ood_set", "auroc", "auroc_std"]
    assert rows[1][2] == f"{100 * rec['auroc']:.2f}" and rows[1][3] == f"{100 * rec['auroc_std']:.2f}"
    assert f"{100 * rec['auroc']:.2f} ± {100 * rec['auroc_std']:.2f}" in metrics.format_table([rec], metrics=("auroc",))


def test_roc_curve_matches_sklearn():
    from sklearn.metrics import roc_curve as sk_roc

    id_s, ood_s = _random_scores(9, 80, 60, 1)
    fpr, tpr = metrics.roc_curve(id_s, ood_s)
    sk_fpr, sk_tpr, _ = sk_roc(np.r_[np.ones(80), np.zeros(60)], np.r_[id_s, ood_s], drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)


def test_table_bad_args():
    with pytest.raises(ValueError, match="unknown metrics"):
        metrics.format_table(_records(), metrics=("accuracy",))
    with pytest.raises(ValueError, match="fmt"):
        metrics.format_table(_records(), fmt="latex")
