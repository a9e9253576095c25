"""metrics.paired_bootstrap against a brute-force loop over resampled copies, and the verdict rule."""

import jax
import numpy as np
import pytest

from oodjax import metrics


def _brute(id_a, oods_a, id_b, oods_b, key, metric, n, reduce=np.mean):
    """The definition: resample the images' indices, recompute each scorer's metric on the copies.
    id_a / id_b: one array, or one per OOD set."""
    ids_a = id_a if isinstance(id_a, list) else [id_a] * len(oods_a)
    ids_b = id_b if isinstance(id_b, list) else [id_b] * len(oods_b)
    id_idx, ood_idx = metrics.resample_indices(key, n, ids_a[0].size, [o.size for o in oods_a])
    out = []
    for r in range(n):
        ma = [metrics.ood_metrics(i[id_idx[r]], o[idx[r]])[metric] for i, o, idx in zip(ids_a, oods_a, ood_idx)]
        mb = [metrics.ood_metrics(i[id_idx[r]], o[idx[r]])[metric] for i, o, idx in zip(ids_b, oods_b, ood_idx)]
        out.append(reduce(np.array(ma)) - reduce(np.array(mb)))
    return np.array(out)


@pytest.mark.parametrize("metric", ["auroc", "fpr95"])
def test_one_id_array_per_set_for_a_tuned_scorer(metric):
    """A scorer tuned per OOD set scores the same ID images once per set: each set is measured
    against its own ID scores, resampled with the same ID indices."""
    rng = np.random.default_rng(4)
    base = rng.normal(1, 1, 50)
    ids_a = [np.round(base * t, 1) for t in (1.0, 0.5, 2.0)]  # three "temperatures"
    oods = [np.round(rng.normal(0, 1, 30), 1) for _ in range(3)]
    key = jax.random.key(7)
    res = metrics.paired_bootstrap(ids_a, oods, base, oods, key=key, metric=metric, n=100)
    np.testing.assert_allclose(res.differences, _brute(ids_a, oods, base, oods, key, metric, 100), atol=1e-12)
    expect = np.mean([metrics.ood_metrics(i, o)[metric] for i, o in zip(ids_a, oods)])
    assert res.a == pytest.approx(expect)
    with pytest.raises(ValueError, match="one per OOD set"):
        metrics.paired_bootstrap(ids_a[:2], oods, key=key, constant=0.5)


@pytest.mark.parametrize("metric", ["auroc", "fpr95", "aupr_in"])
def test_matches_a_brute_force_loop(metric):
    rng = np.random.default_rng(0)
    # Rounded scores: ties inside and across ID / OOD, the case a weighted ROC gets wrong first.
    id_a, id_b = np.round(rng.normal(1, 1, 60), 1), np.round(rng.normal(0.5, 1, 60), 1)
    oods_a = [np.round(rng.normal(0, 1, 40), 1), np.round(rng.normal(-1, 1, 25), 1)]
    oods_b = [np.round(rng.normal(0, 1, 40), 1), np.round(rng.normal(0, 1, 25), 1)]
    key = jax.random.key(3)
    res = metrics.paired_bootstrap(id_a, oods_a, id_b, oods_b, key=key, metric=metric, n=120)
    np.testing.assert_allclose(res.differences, _brute(id_a, oods_a, id_b, oods_b, key, metric, 120), rtol=0, atol=1e-12)
    ma = np.mean([metrics.ood_metrics(id_a, o)[metric] for o in oods_a])
    mb = np.mean([metrics.ood_metrics(id_b, o)[metric] for o in oods_b])
    assert res.a == pytest.approx(ma) and res.b == pytest.approx(mb) and res.observed == pytest.approx(ma - mb)
    assert res.low == pytest.approx(np.percentile(res.differences, 2.5))
    assert res.high == pytest.approx(np.percentile(res.differences, 97.5))


def test_a_custom_statistic_and_a_constant():
    rng = np.random.default_rng(1)
    id_s = rng.normal(1, 1, 50)
    oods = [rng.normal(0, 1, 30), rng.normal(0.5, 1, 30), rng.normal(-1, 1, 30)]
    key = jax.random.key(0)
    id_b, oods_b = id_s + rng.normal(0, 0.3, 50), [o * 2 for o in oods]
    spread = metrics.paired_bootstrap(id_s, oods, id_b, oods_b, key=key, n=100, reduce=lambda m: np.ptp(m, axis=-1))
    np.testing.assert_allclose(spread.differences, _brute(id_s, oods, id_b, oods_b, key, "auroc", 100, reduce=np.ptp),
                               atol=1e-12)
    half = metrics.paired_bootstrap(id_s, oods[0], key=key, n=200, constant=0.5)
    assert half.b == 0.5 and half.observed == pytest.approx(metrics.ood_metrics(id_s, oods[0])["auroc"] - 0.5)
    assert metrics.verdict(half, "greater") == "confirmed"  # ID mean 1 vs OOD mean 0: AUROC well above 0.5
    assert metrics.verdict(half, "less") == "contradicted"


def test_the_pairing_narrows_the_interval():
    """Two scorers that differ by a small shift of the OOD scores: paired, the difference is
    certain; two independent intervals would overlap widely."""
    rng = np.random.default_rng(2)
    id_s, ood = rng.normal(1, 1, 300), rng.normal(0, 1, 300)
    res = metrics.paired_bootstrap(id_s, ood - 0.05, id_s, ood, key=jax.random.key(1), n=300)
    assert 0 < res.low <= res.observed <= res.high
    assert metrics.verdict(res, "greater") == "confirmed"
    same = metrics.paired_bootstrap(id_s, ood, id_s, ood, key=jax.random.key(1), n=300)
    assert same.low == same.high == 0.0 and metrics.verdict(same, "greater") == "inconclusive"


@pytest.mark.parametrize("kwargs, match", [
    (dict(n=10), "n >= 100"),
    (dict(metric="accuracy"), "unknown metric"),
    (dict(level=1.5), "level must be"),
    (dict(id_b=np.zeros(5), ood_b=np.zeros(4)), "same images"),
    (dict(id_b=np.zeros(6), ood_b=np.zeros(4), constant=0.5), "not both"),
    (dict(), "not both or neither"),
    (dict(id_b=np.zeros(6), constant=0.5), "not both or neither"),
    (dict(id_b=np.zeros(6)), "not both or neither"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        metrics.paired_bootstrap(np.zeros(6), np.zeros(4), key=jax.random.key(0), **kwargs)
    with pytest.raises(ValueError, match="expect must be"):
        metrics.verdict(metrics.PairedBootstrap("auroc", 0, 0, 0, 0, 0, np.zeros(1)), "bigger")
