"""The locked stack works: the installed versions are requirements.txt's, neural-tangents imports and runs on
today's jax (through ntk_analysis._compat), all three NTK implementations agree."""

import os
from importlib import metadata
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntk_analysis  # noqa: F401  (makes neural-tangents work on this jax)
import neural_tangents as nt
from neural_tangents import stax


def test_installed_versions_are_the_lock():
    lock = Path(__file__).parents[1] / "requirements.txt"
    pins = dict(line.split("==") for line in lock.read_text().split() if "==" in line)
    assert {"jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "neural-tangents"} <= set(pins)
    installed = {name: metadata.version(name) for name in pins}
    assert installed == pins
    assert jax.__version__ == pins["jax"] and tuple(map(int, pins["jax"].split(".")[:2])) >= (0, 10)


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


def test_xla_cpu_flags_only_where_verified(monkeypatch):
    from experiments import xla_cpu

    assert xla_cpu.YNN_OFF in os.environ["XLA_FLAGS"]  # conftest applied it: this jaxlib is 0.10.x
    base = {"XLA_FLAGS": "--a=1", "JAX_PLATFORMS": "cpu"}
    assert xla_cpu.cpu_flags(base) == f"--a=1 {xla_cpu.YNN_OFF}"
    assert xla_cpu.cpu_flags({**base, "OODJAX_XLA_DEFAULTS": "0"}) == "--a=1"
    assert xla_cpu.cpu_flags({**base, "JAX_PLATFORMS": "cuda"}) == "--a=1"
    own = {**base, "XLA_FLAGS": "--xla_cpu_experimental_ynn_fusion_type=FUSION_TYPE_INDIVIDUAL_DOT"}
    assert xla_cpu.cpu_flags(own) == own["XLA_FLAGS"]
    monkeypatch.setattr(xla_cpu.metadata, "version", lambda name: "0.11.0")
    assert xla_cpu.cpu_flags(base) == "--a=1"  # not verified there: left alone
