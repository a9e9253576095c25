"""RealNVP: masks, the log-determinant against a brute-force Jacobian, the density against the
change of variables, fitting, the OOD term and the registered `flow` scorer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oodjax import flows, scores
from oodjax.scores import FitData, ModelOutputs


@pytest.mark.parametrize("shape", [(6,), (4, 4, 2)])
@pytest.mark.parametrize("mask", flows.MASKS)
def test_masks_partition_and_chain(shape, mask):
    pairs = flows.coupling_masks(shape, mask, 8)
    size = int(np.prod(shape))
    for cond, trans in pairs:
        assert cond.shape == trans.shape == (size,) and trans.any() and cond.any()
        assert not (cond & trans).any()  # a layer never conditions on what it transforms
    covered = np.any([t for _, t in pairs], axis=0)
    assert covered.all()  # every coordinate is transformed by some layer
    if mask == "cyclic":  # each layer conditions on the quadrant the previous one transformed
        for (_, t_prev), (c_next, _) in zip(pairs, pairs[1:]):
            np.testing.assert_array_equal(t_prev, c_next)


def test_mask_errors():
    with pytest.raises(ValueError, match="mask must be one of"):
        flows.coupling_masks((4,), "diagonal", 2)
    with pytest.raises(ValueError, match="too small"):
        flows.coupling_masks((2,), "cyclic", 2)
    with pytest.raises(ValueError, match="vectors or"):
        flows.coupling_masks((2, 2), "checkerboard", 2)


def _random_flow(shape, mask, key, bottleneck=None):
    flow = flows.RealNVP(shape, mask, num_layers=4, hidden=16, bottleneck=bottleneck)
    size = int(np.prod(shape))
    params = flow.init(key, jnp.zeros((1, size), jnp.float32))["params"]
    leaves, tree = jax.tree.flatten(params)  # perturb every weight (the s-t output starts at zero)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
    params = jax.tree.unflatten(tree, [p + 0.3 * jax.random.normal(k, p.shape, p.dtype) for p, k in zip(leaves, keys)])
    return flow, params, size


@pytest.mark.parametrize("shape,mask,bottleneck", [((6,), "checkerboard", None), ((4, 4, 1), "cyclic", 3),
                                                    ((4, 4, 1), "horizontal", None)])
def test_log_det_against_brute_force_jacobian(shape, mask, bottleneck, key):
    with jax.enable_x64(True):
        flow, params, size = _random_flow(shape, mask, key, bottleneck)
        params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
        x = jax.random.normal(jax.random.fold_in(key, 2), (3, size), jnp.float64)
        z, log_det = flow.apply({"params": params}, x)
        for i in range(3):
            jac = jax.jacfwd(lambda v: flow.apply({"params": params}, v[None])[0][0])(x[i])
            sign, logabs = np.linalg.slogdet(np.asarray(jac))
            assert sign > 0
            np.testing.assert_allclose(log_det[i], logabs, rtol=1e-9, atol=1e-9)


def test_log_prob_is_the_change_of_variables(key):
    with jax.enable_x64(True):
        flow, params, size = _random_flow((5,), "checkerboard", key)
        params = jax.tree.map(lambda p: p.astype(jnp.float64), params)
        mean, std = jnp.arange(5.0) / 10, jnp.linspace(0.5, 2.0, 5)
        x = jax.random.normal(jax.random.fold_in(key, 3), (4, 5), jnp.float64)
        full = lambda v: flow.apply({"params": params}, ((v - mean) / std)[None])[0][0]  # noqa: E731
        for i in range(4):
            z = np.asarray(full(x[i]))
            logabs = np.linalg.slogdet(np.asarray(jax.jacfwd(full)(x[i])))[1]
            expected = -0.5 * z @ z - 2.5 * np.log(2 * np.pi) + logabs
            got = flows.flow_log_prob(flow, params, mean, std, x[i : i + 1])[0]
            np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_fit_learns_a_correlated_gaussian_and_the_ood_term(key):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    x = (rng.normal(size=(1500, 4)) @ a).astype(np.float32)
    cfg = flows.FlowConfig(num_layers=4, hidden=32, steps=400, learning_rate=3e-3)
    state = flows.fit_flow(x, cfg, key=key, progress=False)
    cov = a.T @ a  # the true log-density of N(0, A^T A)
    true_ll = np.mean(-0.5 * np.einsum("ni,ij,nj->n", x, np.linalg.inv(cov), x)
                      - 0.5 * np.linalg.slogdet(2 * np.pi * cov)[1])
    fitted = float(jnp.mean(flows.log_prob((4,), cfg, state, jnp.asarray(x))))
    assert abs(fitted - true_ll) < 0.15, (fitted, true_ll)
    # The OOD term lowers the likelihood of the outliers relative to a flow fitted without it.
    ood = (rng.normal(size=(500, 4)) * 0.3).astype(np.float32)  # the high-density core, made OOD
    with_term = flows.fit_flow(x, flows.FlowConfig(**{**cfg.__dict__, "ood_weight": 1.0, "ood_margin": 2.0}), key=key,
                               outliers=ood, progress=False)
    ll = lambda s: float(jnp.mean(flows.log_prob((4,), cfg, s, jnp.asarray(ood))))  # noqa: E731
    assert ll(with_term) < ll(state) - 1.0


def test_flow_config_and_scorer_errors():
    with pytest.raises(ValueError, match="mask must be one of"):
        flows.FlowConfig(mask="stripes")
    with pytest.raises(ValueError, match="bottleneck"):
        flows.FlowConfig(bottleneck=0)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        flows.FlowConfig(learning_rate=0.0)
    with pytest.raises(ValueError, match="on must be one of"):
        scores.get("flow", on="logits")
    with pytest.raises(ValueError, match="needs outliers"):
        flows.fit_flow(np.zeros((10, 3), np.float32), flows.FlowConfig(ood_weight=1.0), key=jax.random.key(0))
    out = ModelOutputs(jnp.zeros((20, 3)), jnp.asarray(np.random.default_rng(0).normal(size=(20, 4)), jnp.float32))
    with pytest.raises(ValueError, match="auxiliary OOD set"):
        scores.get("flow", ood_weight=1.0).fit(FitData(train=out, val=out, key=jax.random.key(0)))
    with pytest.raises(ValueError, match="FitData.key"):
        scores.get("flow").fit(FitData(train=out, val=out))


def test_flow_scorer_ranks_id_above_far_data():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(600, 4)).astype(np.float32)
    out = ModelOutputs(jnp.zeros((600, 3)), jnp.asarray(feats))
    scorer = scores.get("flow", steps=200, hidden=16, num_layers=2)
    state = scorer.fit(FitData(train=out, val=out, key=jax.random.key(0)))
    far = ModelOutputs(jnp.zeros((50, 3)), jnp.asarray(feats[:50] * 5 + 10))
    assert float(jnp.min(scorer.score(state, out._replace(features=out.features[:50])))) > float(
        jnp.max(scorer.score(state, far)))
