"""GRODIN's G score through `evaluate` on the CPU: batches scored in one compiled call (the norm
trick's chunks in XLA's loop) against the same batches scored in pieces of the scorer's chunk
(what `evaluate` does on a CPU since issue 19), measured in one run.

    python -m experiments.benchmarks.grodin_eval_bench                  # ResNet-20, 2 x 1000 images
    python -m experiments.benchmarks.grodin_eval_bench --model small_cnn --image-size 28

Random weights and N(0, 1)-like images (the time does not depend on them); T and epsilon fixed
(T = 1000, eps = 0.0014, one grid point: no tuning pass), batch 500, chunks of 64. Each variant
runs once to compile and then --repeats times; the median is reported, with MSP's pass over the
same images as the floor (one forward pass per batch).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from oodjax import data, models, scores
from oodjax.evaluate import EvalData, evaluate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--images", type=int, default=1000, help="ID test images, and as many OOD")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    if min(a.images, a.batch, a.chunk, a.repeats) < 1:
        raise SystemExit("--images, --batch, --chunk and --repeats must be positive")
    channels = 1 if a.model == "small_cnn" else 3
    m = models.get(a.model, num_classes=10, in_channels=channels, image_size=a.image_size)
    variables = m.init(jax.random.key(0))
    rng = np.random.default_rng(0)
    img = lambda n: rng.uniform(0, 1, (n, a.image_size, a.image_size, channels)).astype(np.float32)  # noqa: E731
    ood = data.OODSet("noise", data.ArraySource(img(10)), data.ArraySource(img(a.images)), "far", None)
    eval_data = EvalData(fit_images=img(10), fit_labels=np.zeros(10, int), id_val=data.ArraySource(img(10)),
                         id_test=data.ArraySource(img(a.images)), ood_sets=[ood], normalize=lambda x: (x - 0.5) / 0.25,
                         input_std=(0.25,))
    g = scores.get("grodin_g", temperatures=(1000.0,), epsilons=(0.0014,), chunk_size=a.chunk)
    variants = {"MSP (floor)": scores.get("msp"), "G, one call per batch (lax.map)": g._replace(chunk=None),
                f"G, in pieces of {a.chunk} (evaluate on a CPU)": g}
    dev = jax.devices()[0]
    print(f"== {a.model}, {a.images} ID + {a.images} OOD images, batch {a.batch}, {dev.platform} ({dev.device_kind})")
    times = {}
    for name, scorer in variants.items():
        run = lambda s=scorer: evaluate(m, variables, {"s": s}, eval_data, key=jax.random.key(1),  # noqa: E731
                                        batch_size=a.batch, progress=False)
        run()  # compile
        ts = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            run()
            ts.append(time.perf_counter() - t0)
        times[name] = statistics.median(ts)
    floor = times["MSP (floor)"]
    print("\n| variant | seconds | / MSP |\n|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {t:.2f} | {t / floor:.1f} |")
    one, split = list(times.values())[1:]
    print(f"\nin pieces / one call: {split / one:.2f}")


if __name__ == "__main__":
    main()
