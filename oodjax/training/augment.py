"""Standard image augmentation in JAX (runs inside the jitted step): pad-and-crop, horizontal flip."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def random_crop_flip(key: jax.Array, images: jax.Array, pad: int = 4, flip: bool = True) -> jax.Array:
    """Per image: zero-pad by `pad`, crop back at a random offset, flip left-right with p = 1/2.

    images: (N, H, W, C). Returns (N, H, W, C).
    """
    n, h, w, _ = images.shape
    k_off, k_flip = jax.random.split(key)
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = jax.random.randint(k_off, (n, 2), 0, 2 * pad + 1)

    def crop(img: jax.Array, off: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(img, (off[0], off[1], 0), (h, w, img.shape[-1]))

    out = jax.vmap(crop)(padded, offsets)
    if flip:
        do_flip = jax.random.bernoulli(k_flip, 0.5, (n,))
        out = jnp.where(do_flip[:, None, None, None], out[:, :, ::-1, :], out)
    return out
