"""Two jax stacks side by side, in one run: training step and evaluation time of this working tree.

    python -m experiments.benchmarks.stack_bench --python /old/venv/bin/python --python .venv/bin/python
    python -m experiments.benchmarks.stack_bench --python .venv/bin/python --xla-flags "" \
        --python .venv/bin/python --xla-flags="--xla_cpu_experimental_ynn_fusion_type="

Each interpreter runs the same child measurement (`--child`) in its own process, one after the
other, on the same data and keys, and the parent prints per stack:
  training: median seconds per step of `oodjax.training.train` (small CNN on 28x28x1 and ResNet-20
    on 32x32x3, batch 256, after the first 3 steps, which compile), images/s;
  evaluation: wall seconds of one `oodjax.evaluate.evaluate` call (small CNN; MSP, Energy, KNN,
    Mahalanobis, ODIN with a 2 x 2 grid, GradNorm; 2000 fit, 500 validation, 2000 ID test and two
    OOD sets of 1000 images), compilation included, as a user sees it, and once more warm;
and the ratio of the later stacks' times to the first's. --xla-flags (one per --python, in order)
sets each child's XLA_FLAGS exactly (experiments/xla_cpu.py adds nothing; an old jaxlib refuses
flags it does not know); without it the children inherit XLA_FLAGS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _train_step_seconds(arch: str, image_size: int, channels: int, steps: int) -> float:
    import jax
    import numpy as np

    from oodjax import models
    from oodjax.training import TrainConfig, train

    net = models.get(arch, num_classes=10, in_channels=channels, image_size=image_size)
    rng = np.random.default_rng(0)
    n = 256 * steps
    x = rng.random((n, image_size, image_size, channels), np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    stamps: list[float] = []
    train(net, x, y, TrainConfig(epochs=1, batch_size=256, augment=False), key=jax.random.key(0), progress=False,
          on_step=lambda step, m: stamps.append(time.perf_counter()))
    return statistics.median(np.diff(stamps[2:]))


def evaluate_seconds(mesh=None) -> tuple[float, float]:
    """(first call, second call) wall seconds of the evaluation workload above (mesh: evaluate's)."""
    import jax
    import numpy as np

    from oodjax import data, models
    from oodjax.evaluate import EvalData, build_scorers, evaluate

    rng = np.random.default_rng(1)
    net = models.get("small_cnn", num_classes=10, in_channels=1, image_size=28)
    variables = net.init(jax.random.key(0))

    def images(n: int) -> np.ndarray:
        return rng.random((n, 28, 28, 1), np.float32)

    oods = [data.ood_set_from_arrays(f"ood{i}", images(1250), val_fraction=0.2) for i in range(2)]
    ev = EvalData(images(2000), rng.integers(0, 10, 2000).astype(np.int32), data.ArraySource(images(500)),
                  data.ArraySource(images(2000)), oods, data.normalize, (float(data.STD),))
    spec = {"msp": ("msp", {}), "energy": ("energy", {}), "knn": ("knn", {}), "mahalanobis": ("mahalanobis", {}),
            "odin": ("odin", {"temperatures": (1.0, 1000.0), "epsilons": (0.0, 0.002)}),
            "gradnorm": ("gradnorm", {})}
    times = []
    for _ in range(2):
        t = time.perf_counter()
        evaluate(net, variables, build_scorers(spec), ev, key=jax.random.key(2), batch_size=500, progress=False,
                 mesh=mesh)
        times.append(time.perf_counter() - t)
    return times[0], times[1]


def child(steps: int) -> dict:
    import jax

    out = {"python": sys.executable, "jax": jax.__version__, "device": jax.devices()[0].device_kind}
    import flax

    out["flax"] = flax.__version__
    out["small_cnn_step_s"] = _train_step_seconds("small_cnn", 28, 1, steps)
    out["resnet20_step_s"] = _train_step_seconds("resnet20", 32, 3, steps)
    out["evaluate_cold_s"], out["evaluate_warm_s"] = evaluate_seconds()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", action="append", default=[], help="an interpreter with a stack installed (repeat)")
    p.add_argument("--xla-flags", action="append", default=None, help="XLA_FLAGS of the matching --python")
    p.add_argument("--steps", type=int, default=12, help="training steps per model (the first 3 compile)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.steps < 5:
        p.error("--steps must be >= 5 (the first 3 steps compile)")
    if a.child:
        print("RESULT " + json.dumps(child(a.steps)), flush=True)
        return 0
    pythons = a.python or [sys.executable]
    missing = [py for py in pythons if not os.access(py, os.X_OK)]
    if missing:
        p.error(f"not executable interpreters: {missing}")
    flags = a.xla_flags if a.xla_flags is not None else [os.environ.get("XLA_FLAGS", "")] * len(pythons)
    if len(flags) != len(pythons):
        p.error(f"give one --xla-flags per --python ({len(pythons)}), got {len(flags)}")
    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    rows = []
    for py, fl in zip(pythons, flags):
        print(f"measuring with {py} (XLA_FLAGS={fl!r}) ...", flush=True)
        proc = subprocess.run([py, "-m", "experiments.benchmarks.stack_bench", "--child", "--steps", str(a.steps)],
                              capture_output=True, text=True, check=False,
                              env={**env, "XLA_FLAGS": fl, "OODJAX_XLA_DEFAULTS": "0"})
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        rows.append({**json.loads(lines[-1].removeprefix("RESULT ")), "flags": fl})
    keys = [("small_cnn_step_s", "small CNN train step, batch 256 (ms)", 1e3),
            ("resnet20_step_s", "ResNet-20 train step, batch 256 (ms)", 1e3),
            ("evaluate_cold_s", "evaluate, compilation included (s)", 1.0),
            ("evaluate_warm_s", "evaluate, warm (s)", 1.0)]
    names = [f"jax {r['jax']}" + (f" `{r['flags']}`" if r["flags"] else "") for r in rows]
    print(f"\n| measure | {' | '.join(names)} | " + " | ".join(f"ratio {i + 2} / 1" for i in range(len(rows) - 1)) + " |")
    print("|---" * (1 + 2 * len(rows) - 1) + "|")
    for k, label, scale in keys:
        vals = [r[k] * scale for r in rows]
        print(f"| {label} | " + " | ".join(f"{v:.1f}" for v in vals) + " | "
              + " | ".join(f"{v / vals[0]:.2f}" for v in vals[1:]) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
