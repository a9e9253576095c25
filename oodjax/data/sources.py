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


def read_images(files: list[Path], image_size: int, channels: int, resample: str) -> np.ndarray:
    """(N, S, S, channels) float32 in [0, 1] of `files`, each resized with Pillow's `resample`;
    ValueError naming a file Pillow cannot read."""
    mode = "L" if channels == 1 else "RGB"
    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                out.append(np.asarray(im.convert(mode).resize((image_size, image_size), RESAMPLING[resample])))
        except (OSError, ValueError, SyntaxError) as e:  # Pillow's errors for damaged or unknown files
            raise ValueError(f"{f}: cannot read this image ({e}); remove or replace it") from e
    stacked = np.stack(out) if out else np.zeros((0, image_size, image_size), np.uint8)
    return (stacked.reshape(len(files), image_size, image_size, channels) / 255.0).astype(np.float32)


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
