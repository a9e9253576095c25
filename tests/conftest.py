"""Test configuration: 4 forced CPU devices, strict dtype and rank promotion, a fixed key."""

import os
from pathlib import Path

# Must be set before jax is imported anywhere, so that sharded code is tested on 4 devices.
_flag = "--xla_force_host_platform_device_count=4"
if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# One XLA compilation cache for the session's pytest workers and the processes tests start: a
# program compiled by one test (the small CNN's scorers in the golden and end-to-end experiments)
# is loaded by the next. It lives in this checkout's .pytest_cache, so a fresh clone starts empty
# (about 20 MB after a run; a half-written entry read by another worker is a warning and a recompile).
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".pytest_cache" / "xla"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from experiments import xla_cpu  # noqa: E402

xla_cpu.apply()  # the entry points' XLA:CPU flags, so tests run what users run

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")
if jax.default_backend() != "cpu":
    # XLA's GPU backend multiplies float32 in TF32 by default; the tests compare against float32/64
    # references at 1e-4..1e-6. On an H200 (2026-11-28) 33 tests failed at the default precision and
    # all 33 passed at "highest". CI and `make test` run on the CPU, where this line does not run.
    jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture
def key() -> jax.Array:
    """A fixed PRNG key; tests split it, never seed globally."""
    return jax.random.key(0)
