"""Writes small Fashion-MNIST-shaped IDX files, so tests need no download and no Debian package."""

import gzip
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> None:
    """Writes a uint8 array as an IDX file (magic 0x0000 0x08 ndim, big-endian dims)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def make_fake_fashion_mnist(directory: Path, n_train: int = 640, n_test: int = 200, seed: int = 0) -> Path:
    """Ten easily learnt classes: stripes of a class-specific orientation and period, plus noise."""
    rng = np.random.default_rng(seed)
    r, c = np.mgrid[0:28, 0:28]
    angles = np.arange(10) % 5 * np.pi / 5
    periods = np.where(np.arange(10) < 5, 4.0, 9.0)
    phase = (np.cos(angles)[:, None, None] * r + np.sin(angles)[:, None, None] * c) / periods[:, None, None]
    templates = 255 * (0.5 + 0.5 * np.sin(2 * np.pi * phase))
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = np.clip(templates[labels] * 0.7 + rng.uniform(0, 80, (n, 28, 28)), 0, 255)
        write_idx(directory / f"{split}-images-idx3-ubyte", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte", labels)
    return directory



def build_tiny_tfds(data_dir: Path, n_train: int = 24, n_test: int = 10, size: int = 8,
                    file_format: str = "array_record") -> str:
    """A real prepared tfds dataset (oodjax.data.build_synthetic_tfds) in data_dir; returns its name."""
    from oodjax.data import build_synthetic_tfds

    return build_synthetic_tfds(data_dir, n_train=n_train, n_test=n_test, size=size, file_format=file_format)
