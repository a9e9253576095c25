"""Fashion-MNIST's IDX files made from the tfds `fashion_mnist` dataset: `make demo`'s fallback on a
machine where the Debian package cannot be installed (no root, no sudo, no apt).

    python -m oodjax.data.fashion_mnist_tfds [--out DIR] [--data-dir TFDS_DIR]

downloads the dataset with tfds (into its usual data_dir, or --data-dir) and writes the four IDX
files into DIR (default: `oodjax.data.fashion_mnist.cache_dir()`, which `load_fashion_mnist` looks in).
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import numpy as np

from oodjax.data.fashion_mnist import FILES, cache_dir, write_idx

def export_idx(out_dir: str | os.PathLike | None = None, *, data_dir: str | None = None,
               download: bool = True) -> Path:
    """Writes train/test images (N, 28, 28) uint8 and labels (N,) uint8 as gzipped IDX files."""
    import tensorflow_datasets as tfds

    out = Path(out_dir) if out_dir is not None else cache_dir()
    # Written into a temporary folder renamed at the end: a killed export never looks complete.
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for split, (image_stem, label_stem) in FILES.items():
        ds = tfds.load("fashion_mnist", split=split, data_dir=data_dir, download=download,
                       batch_size=4096, shuffle_files=False)
        batches = list(tfds.as_numpy(ds))
        images = np.concatenate([b["image"] for b in batches]).astype(np.uint8)
        labels = np.concatenate([b["label"] for b in batches])
        if images.ndim != 4 or images.shape[1:] != (28, 28, 1) or labels.shape != images.shape[:1]:
            raise ValueError(f"tfds fashion_mnist/{split}: unexpected shapes {images.shape}, {labels.shape}")
        if labels.min() < 0 or labels.max() > 9:
            raise ValueError(f"tfds fashion_mnist/{split}: labels outside 0..9")
        write_idx(tmp / f"{label_stem}.gz", labels.astype(np.uint8))
        write_idx(tmp / f"{image_stem}.gz", images[..., 0])
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help=f"folder for the IDX files (default {cache_dir()})")
    parser.add_argument("--data-dir", default=None, help="tfds data_dir (default: tfds's own)")
    args = parser.parse_args(argv)
    out = export_idx(args.out, data_dir=args.data_dir)
    print(f"Fashion-MNIST: written from tfds 'fashion_mnist' into {out}")


if __name__ == "__main__":
    main()
