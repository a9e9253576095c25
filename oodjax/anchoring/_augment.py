"""The anchor corruptions T(c) of consistency training (paper 000, Fig. 2 and Table 8), in JAX.

Each is `(key, images (N, H, W, C)) -> (N, H, W, C)` with independent random parameters per image,
so they run inside the jitted training step. They act on the arrays the step sees (normalized
inputs) and do not clip values. Parameter ranges follow torchvision's transforms of the same name:
  color_jitter      brightness, contrast, saturation factors in [1 - 0.4, 1 + 0.4], hue shift in
                    [-0.1, 0.1] turns (applied in that fixed order; hue as a rotation in YIQ space;
                    saturation and hue only for 3 channels)
  gaussian_blur     sigma ~ U[0.1, 2.0], odd kernel of ~10% of the image side, reflect padding
  horizontal_flip   p = 0.5
  grayscale         p = 0.2 (identity for 1-channel images)
  resized_crop      area fraction ~ U[0.08, 1], log aspect ratio ~ U[log 3/4, log 4/3], the box
                    clipped to the image (torchvision retries instead), bilinear resize back
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

Augmentation = Callable[[jax.Array, jax.Array], jax.Array]

_LUMA = (0.299, 0.587, 0.114)


def _uniform(key: jax.Array, n: int, low: float, high: float, dtype) -> jax.Array:
    return jax.random.uniform(key, (n,), dtype, low, high)


def _gray(x: jax.Array) -> jax.Array:
    """(N, H, W, 3) -> (N, H, W, 1) luminance."""
    return jnp.einsum("nhwc,c->nhw", x, jnp.asarray(_LUMA, x.dtype))[..., None]


def _per_image(v: jax.Array) -> jax.Array:
    return v[:, None, None, None]


def color_jitter(key: jax.Array, x: jax.Array, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4, hue: float = 0.1) -> jax.Array:
    """Random brightness, contrast, saturation and hue per image."""
    n, channels = x.shape[0], x.shape[-1]
    kb, kc, ks, kh = jax.random.split(key, 4)
    x = x * _per_image(_uniform(kb, n, 1 - brightness, 1 + brightness, x.dtype))
    gray = _gray(x) if channels == 3 else x
    mean = jnp.mean(gray, axis=(1, 2, 3), keepdims=True)
    c = _per_image(_uniform(kc, n, 1 - contrast, 1 + contrast, x.dtype))
    x = c * x + (1 - c) * mean
    if channels != 3:
        return x
    s = _per_image(_uniform(ks, n, 1 - saturation, 1 + saturation, x.dtype))
    x = s * x + (1 - s) * _gray(x)
    angle = _uniform(kh, n, -hue, hue, x.dtype) * (2 * math.pi)
    to_yiq = jnp.asarray([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], x.dtype)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    one, zero = jnp.ones_like(cos), jnp.zeros_like(cos)
    rot = jnp.stack([jnp.stack([one, zero, zero], -1), jnp.stack([zero, cos, -sin], -1),
                     jnp.stack([zero, sin, cos], -1)], -2)  # (N, 3, 3): rotates the chroma (I, Q) plane
    m = jnp.einsum("ij,njk,kl->nil", jnp.linalg.inv(to_yiq), rot, to_yiq)
    return jnp.einsum("nij,nhwj->nhwi", m, x)


def gaussian_blur(key: jax.Array, x: jax.Array, sigma: tuple[float, float] = (0.1, 2.0),
                  kernel_size: int | None = None) -> jax.Array:
    """Separable Gaussian blur with a random sigma per image. kernel_size: odd; None: ~10% of the side."""
    n, h, w, _ = x.shape
    k = kernel_size or max(3, int(0.1 * min(h, w)) // 2 * 2 + 1)
    if k % 2 == 0 or k > min(h, w):
        raise ValueError(f"kernel_size must be odd and at most the image side {min(h, w)}, got {k}")
    s = _uniform(key, n, *sigma, x.dtype)
    t = jnp.arange(k, dtype=x.dtype) - (k // 2)
    weights = jnp.exp(-0.5 * (t[None, :] / s[:, None]) ** 2)
    weights = weights / jnp.sum(weights, axis=1, keepdims=True)  # (N, k)
    r = k // 2
    xp = jnp.pad(x, ((0, 0), (r, r), (0, 0), (0, 0)), mode="reflect")
    x = sum(_per_image(weights[:, i]) * xp[:, i : i + h] for i in range(k))
    xp = jnp.pad(x, ((0, 0), (0, 0), (r, r), (0, 0)), mode="reflect")
    return sum(_per_image(weights[:, i]) * xp[:, :, i : i + w] for i in range(k))


def horizontal_flip(key: jax.Array, x: jax.Array, p: float = 0.5) -> jax.Array:
    """Flips each image left-right with probability p."""
    flip = jax.random.bernoulli(key, p, (x.shape[0],))
    return jnp.where(flip[:, None, None, None], x[:, :, ::-1, :], x)


def grayscale(key: jax.Array, x: jax.Array, p: float = 0.2) -> jax.Array:
    """Replaces each RGB image by its luminance (in all 3 channels) with probability p."""
    if x.shape[-1] != 3:
        return x
    gray = jax.random.bernoulli(key, p, (x.shape[0],))
    return jnp.where(gray[:, None, None, None], jnp.broadcast_to(_gray(x), x.shape), x)


def resized_crop(key: jax.Array, x: jax.Array, scale: tuple[float, float] = (0.08, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> jax.Array:
    """A random box of area fraction ~ U[scale] and aspect ~ log-U[ratio], resized back (bilinear)."""
    n, h, w, c = x.shape
    ka, kr, ky, kx = jax.random.split(key, 4)
    area = _uniform(ka, n, *scale, x.dtype) * (h * w)
    aspect = jnp.exp(_uniform(kr, n, math.log(ratio[0]), math.log(ratio[1]), x.dtype))
    bw = jnp.minimum(jnp.sqrt(area * aspect), w)
    bh = jnp.minimum(jnp.sqrt(area / aspect), h)
    y0 = jax.random.uniform(ky, (n,), x.dtype) * (h - bh)
    x0 = jax.random.uniform(kx, (n,), x.dtype) * (w - bw)

    def crop(img, y0, x0, bh, bw):
        # Output pixel centres mapped into the box, in input pixel coordinates.
        ys = y0 + (jnp.arange(h, dtype=x.dtype) + 0.5) * (bh / h) - 0.5
        xs = x0 + (jnp.arange(w, dtype=x.dtype) + 0.5) * (bw / w) - 0.5
        yy, xx = jnp.meshgrid(ys, xs, indexing="ij")
        return jnp.stack([jax.scipy.ndimage.map_coordinates(img[..., ch], [yy, xx], order=1, mode="nearest")
                          for ch in range(c)], -1)

    return jax.vmap(crop)(x, y0, x0, bh, bw)


AUGMENTATIONS: dict[str, Augmentation] = {
    "color_jitter": color_jitter,
    "gaussian_blur": gaussian_blur,
    "horizontal_flip": horizontal_flip,
    "grayscale": grayscale,
    "resized_crop": resized_crop,
}
# The corruption sets of Table 8; the paper's experiments use all five.
TABLE8_CORRUPTIONS: dict[str, tuple[str, ...]] = {
    "none": (),
    "color_jitter+gaussian_blur": ("color_jitter", "gaussian_blur"),
    "horizontal_flip+grayscale": ("horizontal_flip", "grayscale"),
    "resized_crop": ("resized_crop",),
    "all": tuple(AUGMENTATIONS),
}


def check_augmentations(names: Sequence[str]) -> tuple[str, ...]:
    unknown = [a for a in names if a not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentations {unknown}; known: {sorted(AUGMENTATIONS)}")
    return tuple(names)


def compose(names: Sequence[str]) -> Augmentation:
    """The augmentations `names` applied in order, each with its own key."""
    fns = [AUGMENTATIONS[a] for a in check_augmentations(names)]

    def apply(key: jax.Array, x: jax.Array) -> jax.Array:
        for i, fn in enumerate(fns):
            x = fn(jax.random.fold_in(key, i), x)
        return x

    return apply
