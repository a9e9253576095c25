"""Images per second of a full ImageNet-val-sized evaluation pass (50k images at 224 px) through
`evaluate`, for MSP, GradNorm and GRODIN, one scorer per pass.

    python -m experiments.benchmarks.imagenet_pass_bench                    # ResNet-50, 50000 images (a GPU)
    python -m experiments.benchmarks.imagenet_pass_bench --images 512 --small 128 --image-size 32 --model resnet20
    python -m experiments.benchmarks.imagenet_pass_bench --checkpoint resnet50-0676ba61.pth   # an imported network

The images are synthetic (uniform pixels, a pool of --pool distinct images cycled by index; a batch
that does not wrap around the pool is a view, so no decoding or copying is timed), streamed by
`evaluate` as any source is: read by index, normalized on the host and put on the devices by
--workers reading threads while the devices compute, sharded over the devices.
Each scorer runs twice, on --small and on --images ID test images (the
same 1024 + 256 OOD test/validation images both times), after a first --small pass that compiles;
the marginal rate (images - small) / (seconds - small seconds) leaves out compilation and the fixed
costs, and the seconds of each pass are printed beside it (the compiling one too). GRODIN is GRODIN-G over all weights at
one (T, eps) = (1000, 0.0014): its input step and its per-sample gradient norms, no grid search.
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from oodjax import data, models
from oodjax.evaluate import EvalData, build_scorers, evaluate

SCORERS = {
    "msp": ("msp", {}),
    "gradnorm": ("gradnorm", {}),
    "grodin": ("grodin_g", {"temperatures": (1000.0,), "epsilons": (0.0014,)}),
}


class Synthetic:
    """n images (S, S, 3) in [0, 1]: image i is pool[i % len(pool)]; readable by index like data.Rows."""

    def __init__(self, pool: np.ndarray, n: int):
        self.pool, self.n = pool, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, rows: slice) -> np.ndarray:
        a, b, _ = rows.indices(self.n)
        lo = a % len(self.pool)
        if lo + (b - a) <= len(self.pool):
            return self.pool[lo : lo + b - a]
        return np.take(self.pool, np.arange(a, b) % len(self.pool), axis=0)

    def batches(self, batch_size: int):
        for i in range(0, self.n, batch_size):
            yield self[i : i + batch_size]


def seconds(model, variables, scorer: str, pool: np.ndarray, n: int, batch: int, workers: int,
            own_normalization: bool = False) -> float:
    ood = data.OODSet("synthetic_ood", Synthetic(pool[::-1], 256), Synthetic(pool[::-1], 1024))
    normalize, std = (np.asarray, (1.0,) * 3) if own_normalization else (data.normalize, (float(data.STD),))
    ev = EvalData(pool[:1], np.zeros(1, np.int32), Synthetic(pool, 256), Synthetic(pool, n), [ood], normalize, std)
    t = time.perf_counter()
    evaluate(model, variables, build_scorers({scorer: SCORERS[scorer]}), ev, key=jax.random.key(2),
             batch_size=batch, progress=False, read_workers=workers)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--images", type=int, default=50_000)
    p.add_argument("--small", type=int, default=2048, help="ID test images of the pass subtracted")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--pool", type=int, default=512)
    p.add_argument("--scorers", default=",".join(SCORERS))
    p.add_argument("--workers", type=int, default=8, help="evaluate's reading threads")
    p.add_argument("--checkpoint", default=None, help="time this imported network (models.import_checkpoint) instead")
    a = p.parse_args(argv)
    chosen = a.scorers.split(",")
    if not set(chosen) <= set(SCORERS) or not 0 < a.small < a.images or a.batch < 1 or a.pool < 1 or a.workers < 1:
        p.error(f"--scorers from {sorted(SCORERS)}; need 0 < --small < --images, --batch, --pool, --workers >= 1")
    if a.checkpoint:
        m, v = models.import_checkpoint(a.checkpoint, image_size=a.image_size)
        a.model, classes = a.checkpoint, None
    else:
        stem = {"stem": "imagenet"} if a.image_size >= 128 and a.model.startswith("resnet") else {}
        classes = 1000 if a.image_size >= 128 else 10
        m = models.get(a.model, num_classes=classes, image_size=a.image_size, **stem)
        v = m.init(jax.random.key(0))
    pool = np.random.default_rng(0).random((a.pool, a.image_size, a.image_size, 3), np.float32)
    dev = jax.devices()
    print(f"{a.model} ({classes or 'its'} classes), {a.image_size} px, batch {a.batch}, {len(dev)} x {dev[0].platform} "
          f"({dev[0].device_kind}), jax {jax.__version__}, {a.workers} reading threads; {a.images} ID test images "
          f"(marginal over {a.small})")
    print("| scorer | images/s (marginal) | s, big pass | s, small pass | s, first (compiling) small pass |")
    print("|---|---|---|---|---|")
    for name in chosen:
        first = seconds(m, v, name, pool, a.small, a.batch, a.workers, bool(a.checkpoint))
        small = seconds(m, v, name, pool, a.small, a.batch, a.workers, bool(a.checkpoint))
        big = seconds(m, v, name, pool, a.images, a.batch, a.workers, bool(a.checkpoint))
        rate = f"{(a.images - a.small) / (big - small):.0f}" if big > small else "too few images to tell"
        print(f"| {name} | {rate} | {big:.1f} | {small:.1f} | {first:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
