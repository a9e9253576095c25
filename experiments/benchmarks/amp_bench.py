"""Speed of the anchor marginalization (paper 000, eq. 1), as ratios measured in one run.

    python -m experiments.benchmarks.amp_bench                                   # small CNN (CPU)
    python -m experiments.benchmarks.amp_bench --models resnet18,resnet34 --image-size 32 --batch 256

Prints, per model and K (times are medians of --repeats runs after compilation):
  (K-anchor marginalization: one jitted call, K folded into the batch, H and tau included)
  / (K x one plain forward of the same batch through the same 2C-channel net)       goal <= 1.1
and the same ratio for the per-sample anchor draws of the official code, and for a Python loop over
anchors (Fig. 3 of the paper, one jitted forward per anchor) for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

from oodjax import anchoring, models


def median_seconds(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(name: str, batch: int, image_size: int, ks: list[int], repeats: int) -> None:
    channels = 1 if name == "small_cnn" else 3
    net = models.get(name, num_classes=10, in_channels=2 * channels, image_size=image_size)
    variables = net.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (batch, image_size, image_size, channels))
    pool = jax.random.normal(jax.random.key(2), (64, image_size, image_size, channels))
    dev = jax.devices()[0]
    print(f"\n== {name}, batch {batch}, {image_size}x{image_size}x{channels} (anchored: x{2 * channels}), "
          f"{dev.platform} ({dev.device_kind}), jax {jax.__version__}")
    forward = jax.jit(lambda v, xa: net.apply(v, xa))
    xa = anchoring.anchor_input(x, pool[0])
    t_fwd = median_seconds(forward, variables, xa, repeats=repeats)
    print(f"one forward of the batch: {t_fwd * 1e3:.1f} ms")
    print(" K | marginalize / (K x forward) | per-sample draws / (K x forward) | loop over anchors / (K x forward)")
    for k in ks:
        anchors = pool[:k]
        t_m = median_seconds(lambda v, x: anchoring.marginalize(net.apply, v, x, anchors), variables, x,
                             repeats=repeats)
        key = jax.random.key(3)
        t_p = median_seconds(lambda v, x: anchoring.marginalize(net.apply, v, x, pool, key=key, num_anchors=k),
                             variables, x, repeats=repeats)

        def loop(v, x):
            return [forward(v, anchoring.anchor_input(x, c)) for c in anchors]

        t_l = median_seconds(loop, variables, x, repeats=repeats)
        base = k * t_fwd
        print(f"{k:2d} | {t_m / base:27.2f} | {t_p / base:32.2f} | {t_l / base:33.2f}"
              f"   ({t_m * 1e3:.1f} / {t_p * 1e3:.1f} / {t_l * 1e3:.1f} ms)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="small_cnn", help="comma-separated registered model names")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--anchors", default="2,5,10,20", help="comma-separated K")
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args()
    for name in a.models.split(","):
        bench(name, a.batch, a.image_size, [int(k) for k in a.anchors.split(",")], a.repeats)


if __name__ == "__main__":
    main()
