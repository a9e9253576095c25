"""Offline OOD images for 28x28 grayscale in-distribution data. Pixels in [0, 1], (N, 28, 28, 1).

Every generator is deterministic given its key; the embedded suite passes each set's fixed
definition key, so the images are part of the set's definition.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
import scipy.ndimage
import skimage.data
from PIL import Image
from sklearn.datasets import load_digits, load_sample_images

from oodjax.data.sources import RESAMPLING


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


def gaussian_noise(key: jax.Array, n: int, size: int = 28, channels: int = 1) -> np.ndarray:
    """N(0.5, 1) per pixel and channel, clipped to [0, 1] (paper 001)."""
    x = 0.5 + np.asarray(jax.random.normal(key, (n, size, size, channels)))
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def uniform_noise(key: jax.Array, n: int, size: int = 28, channels: int = 1) -> np.ndarray:
    """U[0, 1] per pixel and channel."""
    return np.asarray(jax.random.uniform(key, (n, size, size, channels)), np.float32)


SYNTHETIC: dict[str, Callable[..., np.ndarray]] = {"gaussian_noise": gaussian_noise, "uniform_noise": uniform_noise}


def _gray(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float32) / 255.0
    return image @ np.asarray([0.299, 0.587, 0.114], np.float32) if image.ndim == 3 else image


def texture_images() -> list[np.ndarray]:
    """scikit-image's brick, grass and gravel textures, grayscale in [0, 1]."""
    return [_gray(skimage.data.brick()), _gray(skimage.data.grass()), _gray(skimage.data.gravel())]


def photo_images() -> list[np.ndarray]:
    """scikit-image's camera, astronaut, coffee, chelsea and sklearn's two sample photos, grayscale."""
    photos = [skimage.data.camera(), skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    return [_gray(p) for p in photos + list(load_sample_images().images)]


def outlier_images() -> list[np.ndarray]:
    """Images for the auxiliary outlier set (outlier exposure, a flow's OOD term), none of them in a
    test set: scikit-image's rocket, coins, moon, page, text, clock, hubble_deep_field,
    immunohistochemistry and cell, grayscale in [0, 1]."""
    names = ("rocket", "coins", "moon", "page", "text", "clock", "hubble_deep_field", "immunohistochemistry", "cell")
    return [_gray(getattr(skimage.data, n)()) for n in names]


def random_crops(
    key: jax.Array, images: list[np.ndarray], n: int, crop: tuple[int, int], size: int = 28
) -> np.ndarray:
    """n crops, drawn uniformly over `images`, of side in [crop[0], crop[1]] (clipped to the image),
    each resized to size x size (bilinear): crop = (size, size) is LSUN(C)-like, large crops LSUN(R)."""
    k_img, k_side, k_pos = jax.random.split(key, 3)
    which = np.asarray(jax.random.randint(k_img, (n,), 0, len(images)))
    sides = np.asarray(jax.random.randint(k_side, (n,), crop[0], crop[1] + 1))
    pos = np.asarray(jax.random.uniform(k_pos, (n, 2)))
    out = []
    for i in range(n):
        img = images[which[i]]
        s = int(min(sides[i], *img.shape))
        r, c = (pos[i] * (np.asarray(img.shape) - s + 1)).astype(int)
        out.append(img[r : r + s, c : c + s])
    return np.concatenate([resize(o[None], size) for o in out]) if out else np.zeros((0, size, size, 1), np.float32)


# Severity parameters for 28x28 images (ImageNet-C's noise levels; blur sigmas scaled down).
CORRUPTIONS: dict[str, tuple[float, ...]] = {
    "gaussian_blur": (0.5, 0.75, 1.0, 1.5, 2.0),  # sigma in pixels
    "gaussian_noise": (0.08, 0.12, 0.18, 0.26, 0.38),  # std added to pixels in [0, 1]
    "contrast": (0.4, 0.3, 0.2, 0.1, 0.05),  # (x - mean) * c + mean
}


def corrupt(images: np.ndarray, corruption: str, severity: int, key: jax.Array) -> np.ndarray:
    """ImageNet-C-style corruption of (N, H, W, C) images in [0, 1] at severity 1..5."""
    if corruption not in CORRUPTIONS:
        raise ValueError(f"corruption must be one of {sorted(CORRUPTIONS)}, got {corruption!r}")
    if not 1 <= severity <= 5:
        raise ValueError(f"severity must be 1..5, got {severity}")
    p = CORRUPTIONS[corruption][severity - 1]
    apply: dict[str, Callable[[], np.ndarray]] = {
        "gaussian_blur": lambda: scipy.ndimage.gaussian_filter(images, sigma=(0, p, p, 0)),
        "gaussian_noise": lambda: images + p * np.asarray(jax.random.normal(key, images.shape), np.float32),
        "contrast": lambda: (images - images.mean(axis=(1, 2, 3), keepdims=True)) * p
        + images.mean(axis=(1, 2, 3), keepdims=True),
    }
    return np.clip(apply[corruption](), 0.0, 1.0).astype(np.float32)
