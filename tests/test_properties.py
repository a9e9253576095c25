"""Property-based tests (hypothesis): the metrics against sklearn on random sizes, ties and extreme
values, always in [0, 1], invariant to monotone maps, and refusing NaN/inf; the stateless scorers
finite on extreme logits, exact under the shifts they should ignore, and row by row (one bad row
never changes another row's score)."""

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import average_precision_score, roc_auc_score

from oodjax import metrics, scores

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Scores: from a handful of values (many ties) or anywhere in float64's range.
_values = st.one_of(
    st.sampled_from([-1e300, -1.0, 0.0, 0.5, 1.0, 1e300]),
    st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
    st.integers(-3, 3).map(float),
)
_scores = hnp.arrays(np.float64, st.integers(1, 40), elements=_values)


@SETTINGS
@given(_scores, _scores)
def test_metrics_match_sklearn_and_stay_in_the_unit_interval(id_s, ood_s):
    m = metrics.ood_metrics(id_s, ood_s)
    assert set(m) == set(metrics.METRIC_NAMES)
    assert all(0.0 <= v <= 1.0 for v in m.values()), m
    y = np.r_[np.ones(id_s.size), np.zeros(ood_s.size)]
    s = np.r_[id_s, ood_s]
    if 0 < y.sum() < y.size:
        assert m["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert m["aupr_in"] == pytest.approx(min(average_precision_score(y, s), 1.0), abs=1e-12)
        assert m["aupr_out"] == pytest.approx(min(average_precision_score(1 - y, -s), 1.0), abs=1e-12)
    # Swapping the roles mirrors the AUROC.
    assert metrics.ood_metrics(ood_s, id_s)["auroc"] == pytest.approx(1.0 - m["auroc"], abs=1e-12)


@SETTINGS
@given(_scores, _scores)
def test_metrics_depend_on_the_order_only(id_s, ood_s):
    pooled = np.r_[id_s, ood_s]
    ranks = np.searchsorted(np.unique(pooled), pooled).astype(np.float64)  # a monotone map, ties kept
    got = metrics.ood_metrics(ranks[: id_s.size], ranks[id_s.size:])
    want = metrics.ood_metrics(id_s, ood_s)
    assert got == pytest.approx(want, abs=1e-12)


@SETTINGS
@given(_scores, st.integers(0, 39), st.sampled_from([np.nan, np.inf, -np.inf]))
def test_metrics_refuse_a_non_finite_score_anywhere(id_s, where, bad):
    id_s = id_s.copy()
    id_s[where % id_s.size] = bad
    with pytest.raises(ValueError, match="id_scores has .* values out of"):
        metrics.ood_metrics(id_s, np.zeros(3))


def test_the_perfect_separation_that_rounded_past_one():
    """KNN against uniform noise in `make demo` gave AUPR-In 1.0000000000000002 before clipping."""
    rng = np.random.default_rng(0)
    for n in range(1, 400, 7):
        m = metrics.ood_metrics(rng.uniform(1, 2, n), rng.uniform(-2, -1, 3 * n + 1))
        assert m["aupr_in"] == 1.0 and m["aupr_out"] == 1.0 and m["auroc"] == 1.0


_logits = hnp.arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(2, 9)),
                     elements=st.floats(-1e4, 1e4, width=32, allow_nan=False, allow_infinity=False))
STATELESS = ["msp", "energy", "max_logit", "entropy", "gen"]


def _score(name, z):
    scorer = scores.get(name, **({"m": 3} if name == "gen" else {}))
    return np.asarray(scorer.score(scorer.fit(scores.FitData()), scores.ModelOutputs(jnp.asarray(z))))


@SETTINGS
@given(_logits, st.sampled_from(STATELESS))
def test_stateless_scores_are_finite_on_extreme_logits(z, name):
    s = _score(name, z)
    assert s.shape == (z.shape[0],) and np.isfinite(s).all(), (name, z, s)
    if name == "msp":
        assert np.all(s >= 1.0 / z.shape[1] - 1e-6) and np.all(s <= 1.0 + 1e-6)


@SETTINGS
@given(_logits, st.floats(-100, 100, width=32), st.sampled_from(["msp", "entropy", "gen"]))
def test_softmax_scores_ignore_a_shift_of_all_logits(z, c, name):
    """p = softmax(z) is the same for z + c: so are MSP, the entropy and GEN."""
    z = z / 100.0  # keep float32 resolution near the shift
    np.testing.assert_allclose(_score(name, z + np.float32(c)), _score(name, z), rtol=1e-4, atol=1e-5)


@SETTINGS
@given(_logits, st.integers(0, 11), st.sampled_from([np.nan, np.inf, -np.inf]), st.sampled_from(STATELESS))
def test_one_bad_row_changes_no_other_row(z, row, bad, name):
    row %= z.shape[0]
    damaged = z.copy()
    damaged[row, 0] = bad
    clean, got = _score(name, z), _score(name, damaged)
    keep = np.arange(z.shape[0]) != row
    np.testing.assert_array_equal(got[keep], clean[keep])
