"""Host memory of a tfds experiment as its dataset grows 4x: streamed (ArrayRecord) vs in memory.

    python -m experiments.benchmarks.streaming_bench                    # 5k and 20k training images
    python -m experiments.benchmarks.streaming_bench --sizes 5000,20000 --image-size 32

Builds oodjax's synthetic tfds dataset (oodjax.data.build_synthetic_tfds, 32x32 RGB, 10 classes)
at each size twice, as ArrayRecord (read by index, batch by batch) and as TFRecord (read into
memory: the fallback for datasets that cannot be read by index), then runs the same experiment on
each in a fresh process (small CNN, one epoch, batch 256; MSP, Energy, KNN and Mahalanobis fit on
a quarter of the training set; ID test set = a quarter of the size; Gaussian-noise OOD) and prints
that process's peak resident memory (ru_maxrss) and the dataset's size as float32 arrays.
Goal: the streamed column stays flat as the dataset grows 4x; the in-memory column grows with it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child(data_dir: str, image_size: int) -> dict:
    from oodjax.experiment import Experiment, ModelSpec, OODSpec, TfdsData, run
    from oodjax.training import TrainConfig

    exp = Experiment(
        name="streaming_bench", results_dir=str(Path(data_dir) / "results"), arch="small_cnn", progress=False,
        views=(), model_kwargs={"widths": (16, 32), "feature_dim": 64}, fit_size=0.25, batch_size=500,
        data=TfdsData("oodjax_synthetic_images", data_dir=data_dir, image_size=image_size, val_size=500,
                      normalization=((0.45,) * 3, (0.25,) * 3), ood=(OODSpec("gaussian_noise", size=1000),)),
        models=(ModelSpec("m", {s: (s, {}) for s in ("msp", "energy", "knn", "mahalanobis")}),),
        train=TrainConfig(epochs=1, batch_size=256))
    t = time.time()
    result = run(exp)
    return {"seconds": time.time() - t, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "accuracy": result["id_accuracies"]["m"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="5000,20000", help="training-set sizes, comma-separated")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        print("RESULT " + json.dumps(child(a.child, a.image_size)), flush=True)
        return 0
    try:
        sizes = [int(s) for s in a.sizes.split(",")]
    except ValueError:
        p.error(f"--sizes must be comma-separated integers, got {a.sizes!r}")
    if any(s < 2000 for s in sizes):
        p.error("every size must be >= 2000 (500 are held out for validation, a batch is 256)")
    from oodjax.data import build_synthetic_tfds

    env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for fmt in ("array_record", "tfrecord"):
                d = Path(tmp) / f"{fmt}_{n}"
                t = time.time()
                build_synthetic_tfds(d, n_train=n, n_test=n // 4, size=a.image_size, file_format=fmt)
                print(f"built {n} + {n // 4} images as {fmt} in {time.time() - t:.0f} s; running ...", flush=True)
                proc = subprocess.run([sys.executable, "-m", "experiments.benchmarks.streaming_bench", "--child", str(d),
                                       "--image-size", str(a.image_size)], capture_output=True, text=True, env=env,
                                      check=False)
                lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
                if proc.returncode or not lines:
                    print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
                    return 1
                rows.append({"n": n, "format": fmt, **json.loads(lines[-1].removeprefix("RESULT "))})
    mib = lambda n: n * 1.25 * a.image_size**2 * 3 * 4 / 2**20  # noqa: E731  (train + test as float32)
    print("\n| training images | dataset as float32 (MiB) | streamed (ArrayRecord): peak RSS (MiB) | "
          "in memory (TFRecord): peak RSS (MiB) | streamed / in-memory run time |")
    print("|---|---|---|---|---|")
    for n in sizes:
        ar, tf = (next(r for r in rows if r["n"] == n and r["format"] == f) for f in ("array_record", "tfrecord"))
        print(f"| {n} | {mib(n):.0f} | {ar['peak_rss_mib']:.0f} | {tf['peak_rss_mib']:.0f} | "
              f"{ar['seconds']:.0f} s / {tf['seconds']:.0f} s |")
    first, last = (next(r for r in rows if r["n"] == n and r["format"] == "array_record") for n in (sizes[0], sizes[-1]))
    print(f"\nstreamed: peak RSS x{last['peak_rss_mib'] / first['peak_rss_mib']:.2f} as the dataset grows "
          f"x{sizes[-1] / sizes[0]:.0f}; accuracies {[round(r['accuracy'], 3) for r in rows]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
