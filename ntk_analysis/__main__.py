"""ntk_analysis CLI: the figures of paper 000, section 4, into results/ntk/ (PNG + .npz + .csv).

    python -m ntk_analysis all                      # everything, small CPU defaults (a few minutes)
    python -m ntk_analysis spectrum --points-1d 1024 --points-2d 48
    python -m ntk_analysis gamma --dim 64
    python -m ntk_analysis toy2d --anchors 8
    python -m ntk_analysis empirical --n 128 --train-size 60000 --epochs 10 --implementation STRUCTURED_DERIVATIVES
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jax

from ntk_analysis import figures
from ntk_analysis._kernels import Implementation


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ntk_analysis", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("figure", choices=("spectrum", "gamma", "toy2d", "empirical", "all"))
    p.add_argument("--out", default="results/ntk")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--points-1d", type=int, default=256, help="spectrum: 1-D grid points")
    p.add_argument("--points-2d", type=int, default=24, help="spectrum: 2-D grid points per axis")
    p.add_argument("--anchors", type=int, default=4)
    p.add_argument("--dim", type=int, default=16, help="gamma: input dimension")
    p.add_argument("--n", type=int, default=48, help="empirical: test images in the NTK")
    p.add_argument("--train-size", type=int, default=5000, help="empirical: Fashion-MNIST training images")
    p.add_argument("--epochs", type=int, default=2, help="empirical: training epochs")
    p.add_argument("--implementation", default="JACOBIAN_CONTRACTION", choices=[i.name for i in Implementation])
    p.add_argument("--data-dir", default=None, help="empirical: Fashion-MNIST IDX folder")
    a = p.parse_args(argv)
    for name, low in (("points_1d", 2), ("points_2d", 2), ("anchors", 1), ("dim", 2), ("n", 2), ("train_size", 64),
                      ("epochs", 1)):
        if getattr(a, name) < low:
            p.error(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(a, name)}")  # before any work
    out = Path(a.out)
    key = jax.random.key(a.seed)
    todo = ("spectrum", "gamma", "toy2d", "empirical") if a.figure == "all" else (a.figure,)
    for name in todo:
        t = time.time()
        if name == "spectrum":
            with jax.enable_x64(True):
                figures.spectrum(out, key, a.points_1d, a.points_2d, a.anchors)
        elif name == "gamma":
            with jax.enable_x64(True):
                r = figures.gamma(out, key, d=a.dim)
            print(f"eq. 4 vs neural-tangents: max |error| = {float(r['eq4_max_abs_error']):.2e}")
            for c, e in zip(r["anchor_norm"], r["median_relative_error"]):
                print(f"  |c| = {c:.4f}: median relative error of the Taylor Gamma = {e:.2e}")
        elif name == "toy2d":
            r = figures.toy2d(out, key, anchors=max(a.anchors, 2), workdir=out / "train")
            print("mean tau by distance to the data (quintiles):", " ".join(f"{v:.3f}" for v in r["tau_by_distance"]))
        else:
            try:
                figures.empirical(out, key, n=a.n, train_size=a.train_size, epochs=a.epochs, anchors=min(a.anchors, 3),
                                  implementation=Implementation[a.implementation], data_dir=a.data_dir,
                                  workdir=out / "train")
            except FileNotFoundError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
        print(f"{name}: {out}/ntk_{'empirical_fmnist' if name == 'empirical' else name}.png "
              f"(+ .npz, .csv) in {time.time() - t:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
