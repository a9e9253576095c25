"""Fashion-MNIST from its IDX files: a given folder, $OODJAX_FASHION_MNIST, the Debian package
`dataset-fashion-mnist`, or the user cache that `python -m oodjax.data.fashion_mnist_tfds` fills from
tfds (`make demo`'s fallback where apt cannot be used)."""

from __future__ import annotations

import gzip
import zlib
import os
from pathlib import Path

import numpy as np

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "OODJAX_FASHION_MNIST"


def cache_dir() -> Path:
    """Where the tfds fallback writes the IDX files: $XDG_CACHE_HOME (or ~/.cache)/oodjax/fashion-mnist."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "oodjax" / "fashion-mnist"

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
# Per-channel statistics of the training images in [0, 1]; used for ID and OOD alike (paper 000).
MEAN, STD = 0.2860, 0.3530


def normalize(images: np.ndarray) -> np.ndarray:
    """Fashion-MNIST's normalization, the same for ID and OOD images (paper 000): (x - MEAN) / STD,
    in float32, in one new array (it runs on every batch, in the reading threads)."""
    out = np.subtract(images, np.float32(MEAN), dtype=np.float32)
    return np.divide(out, np.float32(STD), out=out)

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Writes `array` (uint8) as a gzipped IDX file, the format `read_idx` reads."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"write_idx writes uint8 arrays, got {array.dtype}")
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    path = Path(path)
    with gzip.open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array).tobytes())
    return path


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (optionally gzipped): magic 0x0000 <dtype> <ndim>, dims (big-endian)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # a damaged or truncated .gz, an unreadable file
        raise ValueError(f"{path}: cannot read this file ({type(e).__name__}: {e}); it is damaged or truncated: "
                         "delete it and fetch it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    data = np.frombuffer(raw, _DTYPES[raw[2]], offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says shape {tuple(dims)}, found {data.size} values")
    return data.reshape(dims)


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def find_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding the IDX files: `data_dir`, else $OODJAX_FASHION_MNIST, else Debian's folder,
    else the tfds fallback's `cache_dir()`."""
    candidates = [Path(data_dir)] if data_dir else []
    if not candidates and os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    candidates = candidates or [DEBIAN_DIR, cache_dir()]
    for d in candidates:
        if all(_find(d, stem) for pair in FILES.values() for stem in pair):
            return d
    raise FileNotFoundError(
        f"Fashion-MNIST IDX files not found in {', '.join(map(str, candidates))}. Install them with "
        f"`sudo apt-get install dataset-fashion-mnist` (files land in {DEBIAN_DIR}), or fetch them with "
        f"`python -m oodjax.data.fashion_mnist_tfds` (tfds, into {cache_dir()}), or put "
        f"{', '.join(s + '[.gz]' for pair in FILES.values() for s in pair)} in a folder and pass "
        f"data_dir=... or set ${ENV_VAR}."
    )


def load_fashion_mnist(
    split: str, data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28, 1) float32 in [0, 1] and labels (N,) int32 of `split` ('train'/'test')."""
    if split not in FILES:
        raise ValueError(f"split must be one of {sorted(FILES)}, got {split!r}")
    d = find_data_dir(data_dir)
    images = read_idx(_find(d, FILES[split][0]))
    labels = read_idx(_find(d, FILES[split][1]))
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise ValueError(f"{d}: images {images.shape} and labels {labels.shape} do not match")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        bad = np.flatnonzero((labels < 0) | (labels > 9))
        raise ValueError(f"{_find(d, FILES[split][1])}: {bad.size} labels outside Fashion-MNIST's 0..9 (first at "
                         f"index {bad[0]}: {labels[bad[0]]}); the file is damaged: fetch it again")
    return (images[..., None].astype(np.float32) / 255.0), labels.astype(np.int32)
