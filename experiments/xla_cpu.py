"""XLA:CPU flags for this lock, added to XLA_FLAGS by the entry points before jax starts.

jaxlib 0.10 hands convolutions and dots on the CPU to YNNPACK fusions; on our 2-core CPU that made a
training step 1.4-1.7x slower than jax 0.5.3 (experiments/benchmarks/stack_bench.py measures it),
and `--xla_cpu_experimental_ynn_fusion_type=` (no YNNPACK fusions) makes it faster than 0.5.3
again. The flag is experimental, so it is added only for the jaxlib versions it was verified on, and
not when JAX_PLATFORMS names another platform first (it only affects XLA's CPU compiler, so
a GPU host with JAX_PLATFORMS unset gets it harmlessly); a user's own XLA_FLAGS setting of it wins, and OODJAX_XLA_DEFAULTS=0
turns this off. No jax import here: XLA reads XLA_FLAGS when its CPU client starts.
"""

from __future__ import annotations

import os
from importlib import metadata

YNN_OFF = "--xla_cpu_experimental_ynn_fusion_type="
VERIFIED_JAXLIB = ("0.10.",)  # where the flag exists and was measured to help


def cpu_flags(environ: dict[str, str] | None = None) -> str:
    """XLA_FLAGS with the flags above added (unchanged where they do not apply)."""
    env = os.environ if environ is None else environ
    flags = env.get("XLA_FLAGS", "")
    if env.get("OODJAX_XLA_DEFAULTS", "1") == "0" or "xla_cpu_experimental_ynn_fusion_type" in flags:
        return flags
    if env.get("JAX_PLATFORMS", "cpu").split(",")[0] not in ("cpu", ""):
        return flags
    try:
        version = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return flags
    return f"{flags} {YNN_OFF}".strip() if version.startswith(VERIFIED_JAXLIB) else flags


def apply() -> None:
    """Sets os.environ["XLA_FLAGS"] = cpu_flags(); call before jax's first computation."""
    os.environ["XLA_FLAGS"] = cpu_flags()
