"""Offline far-OOD sets for 28x28 grayscale in-distribution data. Pixels in [0, 1], (N, 28, 28, 1)."""

from __future__ import annotations

import jax
import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


def resize(images: np.ndarray, size: int, method: str = "bilinear") -> np.ndarray:
    """Resizes (N, H, W) float images in [0, 1] with Pillow; returns (N, size, size, 1) in [0, 1]."""
    if method not in RESAMPLING:
        raise ValueError(f"method must be one of {sorted(RESAMPLING)}, got {method!r}")
    out = [
        np.asarray(Image.fromarray(im.astype(np.float32), mode="F").resize((size, size), RESAMPLING[method]))
        for im in images
    ]
    return np.clip(np.stack(out), 0.0, 1.0)[..., None].astype(np.float32)


def digits(size: int = 28, method: str = "bilinear") -> np.ndarray:
    """sklearn's 1797 handwritten 8x8 digits (values 0..16), upsampled to size x size."""
    return resize(load_digits().images / 16.0, size, method)


def gaussian_noise(key: jax.Array, n: int, size: int = 28) -> np.ndarray:
    """N(0.5, 1) per pixel, clipped to [0, 1] (paper 001)."""
    x = 0.5 + np.asarray(jax.random.normal(key, (n, size, size, 1)))
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def uniform_noise(key: jax.Array, n: int, size: int = 28) -> np.ndarray:
    """U[0, 1] per pixel."""
    return np.asarray(jax.random.uniform(key, (n, size, size, 1)), np.float32)
