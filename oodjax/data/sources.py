"""Image sources: in-memory arrays, tensorflow-datasets splits, folders of image files.

Every source yields float32 batches (B, H, W, C) with pixels in [0, 1]; normalization is applied
later, with the in-distribution statistics, to ID and OOD data alike (paper 000).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from oodjax.validation import check_int

# Pillow's resampling filters by name (the resize-artifact sets of paper 000, Table 7).
RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class ImageSource(Protocol):
    """Anything that streams images: `batches(batch_size)` of (B, H, W, C) float32 in [0, 1]."""

    def batches(self, batch_size: int) -> Iterator[np.ndarray]: ...


def check_images(name: str, images: np.ndarray, shape: tuple[int, int, int] | None = None) -> np.ndarray:
    """(N, H, W, C) float32 in [0, 1], of `shape` per image if given; ValueError says what is wrong."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"{name}: images must have shape (N, H, W, C), got {images.shape}")
    if shape is not None and images.shape[1:] != tuple(shape):
        raise ValueError(
            f"{name}: images have shape {images.shape[1:]} but the model takes {tuple(shape)}; resize them "
            "(oodjax.data.resize) or convert channels (to_channels) first"
        )
    if images.size and (np.nanmin(images) < 0 or np.nanmax(images) > 1 or not np.isfinite(images).all()):
        raise ValueError(f"{name}: pixels must be finite and in [0, 1] (divide uint8 images by 255)")
    return images.astype(np.float32, copy=False)


class ArraySource:
    """Images held in memory: (N, H, W, C) in [0, 1]."""

    def __init__(self, images: np.ndarray, name: str = "images"):
        self.images = check_images(name, images)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        return self.images[rows]

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        for i in range(0, len(self), batch_size):
            yield self.images[i : i + batch_size]


def to_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Converts (N, H, W, C) between grayscale (ITU-R 601 luma) and RGB (repeated)."""
    c = images.shape[-1]
    if c == channels:
        return images
    if c == 3 and channels == 1:
        return (images @ np.asarray([0.299, 0.587, 0.114], images.dtype))[..., None]
    if c == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    raise ValueError(f"cannot convert {c} channels to {channels}")


def image_files(path: str | os.PathLike) -> list[Path]:
    """The image files below `path`, sorted by path; FileNotFoundError if there are none."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return files


HIGH_DEPTH = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I;16N": 65535.0, "I": 65535.0, "F": 1.0}


def _read_one(f: Path, image_size: int, channels: int, resample: str) -> np.ndarray:
    """(S, S, channels) float32 in [0, 1]. 8-bit modes go through Pillow's conversion; 16-bit
    grayscale ("I;16", and "I", as Pillow opens 16-bit PNGs) is divided by 65535 and a float image
    ("F", e.g. a float TIFF) must already lie in [0, 1]: converting those to 8 bits would clip them
    to white or truncate them to black."""
    with Image.open(f) as im:
        size, filt = (image_size, image_size), RESAMPLING[resample]
        if im.mode in HIGH_DEPTH:
            a = np.asarray(im, np.float32) / np.float32(HIGH_DEPTH[im.mode])
            if not (np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0):
                raise ValueError(f"a {im.mode} image with values in [{a.min():g}, {a.max():g}] (want [0, 1] for a "
                                 "float image, 0..65535 for 16 bits): rescale it")
            x = np.asarray(Image.fromarray(a, "F").resize(size, filt), np.float32)[..., None]
            return np.clip(x, 0.0, 1.0) if channels == 1 else np.repeat(np.clip(x, 0.0, 1.0), 3, axis=-1)
        x = np.asarray(im.convert("L" if channels == 1 else "RGB").resize(size, filt))
        return (x.reshape(image_size, image_size, channels) / 255.0).astype(np.float32)


def check_image_request(image_size: object, channels: object) -> None:
    """ValueError unless image_size is an integer >= 1 and channels is 1 (grayscale) or 3 (RGB)."""
    check_int("image_size", image_size)
    if channels not in (1, 3) or isinstance(channels, bool):
        raise ValueError(f"images are read as grayscale (channels=1) or RGB (channels=3), got channels={channels!r}")


def read_images(files: list[Path], image_size: int, channels: int, resample: str) -> np.ndarray:
    """(N, S, S, channels) float32 in [0, 1] of `files`, each resized with Pillow's `resample`
    (16-bit and float images keep their depth: `_read_one`); ValueError naming a file that
    cannot be read."""
    check_image_request(image_size, channels)
    out = []
    for f in files:
        try:
            out.append(_read_one(f, image_size, channels, resample))
        except (OSError, ValueError, SyntaxError) as e:  # Pillow's errors for damaged or unknown files
            raise ValueError(f"{f}: cannot read this image ({e}); remove or replace it") from e
    return np.stack(out) if out else np.zeros((0, image_size, image_size, channels), np.float32)


def load_image_folder(
    path: str | os.PathLike, image_size: int, channels: int = 3, limit: int | None = None,
    resample: str = "bilinear",
) -> np.ndarray:
    """All images below `path` (sorted by path; LSUN, iSUN, TinyImageNet, ImageNet-O folders),
    resized to image_size x image_size with Pillow's `resample` filter (nearest, bilinear, bicubic,
    lanczos: the resize-artifact sets of paper 000, Table 7). Returns (N, S, S, channels) in [0, 1].
    A large folder is better read batch by batch: `data.FolderImages`."""
    if resample not in RESAMPLING:
        raise ValueError(f"resample must be one of {sorted(RESAMPLING)}, got {resample!r}")
    files = image_files(path)[:limit]
    if not files:
        raise FileNotFoundError(f"no image files under {path} with limit={limit}")
    return read_images(files, image_size, channels, resample)
