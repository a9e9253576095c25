"""The pinned stack works: neural-tangents imports and runs on jax 0.5.3, all three NTK impls agree."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntk_analysis  # noqa: F401  (applies the STRUCTURED_DERIVATIVES patch)
import neural_tangents as nt
from neural_tangents import stax


def test_pinned_versions():
    import flax
    import optax

    assert jax.__version__ == "0.5.3"
    assert flax.__version__ == "0.10.6" and optax.__version__ == "0.2.8"


def test_four_cpu_devices():
    assert jax.device_count() == 4


def test_analytic_kernel_runs(key):
    _, _, kernel_fn = stax.serial(stax.Dense(64), stax.Relu(), stax.Dense(1))
    x = jax.random.normal(key, (5, 3))
    k = kernel_fn(x, x, "ntk")
    assert k.shape == (5, 5)
    np.testing.assert_allclose(k, k.T, rtol=1e-5)
    assert np.all(np.linalg.eigvalsh(np.asarray(k, np.float64)) > -1e-4)


@pytest.mark.parametrize(
    "impl",
    [nt.NtkImplementation.NTK_VECTOR_PRODUCTS, nt.NtkImplementation.STRUCTURED_DERIVATIVES],
)
def test_empirical_ntk_implementations_agree(key, impl):
    init_fn, apply_fn, _ = stax.serial(stax.Dense(16), stax.Relu(), stax.Dense(3))
    k1, k2 = jax.random.split(key)
    _, params = init_fn(k1, (-1, 4))
    x = jax.random.normal(k2, (6, 4))
    ref = nt.empirical_ntk_fn(apply_fn, trace_axes=(), implementation=nt.NtkImplementation.JACOBIAN_CONTRACTION)
    got = nt.empirical_ntk_fn(apply_fn, trace_axes=(), implementation=impl)
    np.testing.assert_allclose(got(x, None, params), ref(x, None, params), rtol=1e-4, atol=1e-5)
    # And against jacrev + einsum, the definition.
    jac = jax.jacrev(apply_fn)(params, x)
    leaves = jax.tree_util.tree_leaves(jac)
    flat = jnp.concatenate([j.reshape(j.shape[0], j.shape[1], -1) for j in leaves], axis=-1)
    np.testing.assert_allclose(ref(x, None, params), jnp.einsum("iap,jbp->ijab", flat, flat), rtol=1e-4, atol=1e-5)
