"""Test configuration: 4 forced CPU devices, strict dtype and rank promotion, a fixed key."""

import os

# Must be set before jax is imported anywhere, so that sharded code is tested on 4 devices.
_flag = "--xla_force_host_platform_device_count=4"
if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from experiments import xla_cpu  # noqa: E402

xla_cpu.apply()  # the entry points' XLA:CPU flags, so tests run what users run

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key() -> jax.Array:
    """A fixed PRNG key; tests split it, never seed globally."""
    return jax.random.key(0)
