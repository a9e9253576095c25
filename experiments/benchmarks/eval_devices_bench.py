"""Evaluation sharded over 4 (forced) CPU devices vs 1, in one run.

    python -m experiments.benchmarks.eval_devices_bench [--devices 4]

Forces --devices host devices (XLA's --xla_force_host_platform_device_count; on a GPU/TPU host it
uses the real ones) and times stack_bench's evaluation workload (small CNN; MSP, Energy, KNN,
Mahalanobis, ODIN 2 x 2, GradNorm; 2000 fit / 500 validation / 2000 ID test / 2 x 1000 OOD images)
with `evaluate(..., mesh=batch_mesh(devices[:1]))` and with all devices: wall seconds of a first
(compiling) and a second call each, and the ratio all / one. Forced CPU devices share the same
cores, so on a CPU this measures the cost of sharding, not a speed-up.
"""

from __future__ import annotations

import argparse
import os


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=4)
    a = p.parse_args(argv)
    if a.devices < 2:
        p.error("--devices must be >= 2")
    flag = f"--xla_force_host_platform_device_count={a.devices}"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()
    import jax

    from experiments.benchmarks.stack_bench import evaluate_seconds
    from oodjax.parallel import batch_mesh

    devices = jax.devices()
    one = evaluate_seconds(batch_mesh(devices[:1]))
    every = evaluate_seconds(batch_mesh(devices))
    print(f"jax {jax.__version__}, {devices[0].platform} ({devices[0].device_kind}), {os.cpu_count()} cores")
    print("| mesh | first call (s) | second call (s) |\n|---|---|---|")
    print(f"| 1 device | {one[0]:.1f} | {one[1]:.1f} |\n| {len(devices)} devices | {every[0]:.1f} | {every[1]:.1f} |")
    print(f"ratio {len(devices)} devices / 1: {every[0] / one[0]:.2f} (first call), {every[1] / one[1]:.2f} (second)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
