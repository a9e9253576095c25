"""RealNVP (Dinh et al. 2017) with the OOD fixes of Kirichenko et al. 2020 (paper 003, section 3.4).

Affine coupling layers on flattened inputs (a (D,) embedding or an (H, W, C) image): layer l
transforms the coordinates of `trans` given those of `cond`,

    y = x on the other coordinates,   y_T = x_T * exp(s(x_cond)) + t(x_cond),
    log |det dy/dx| = sum_T s(x_cond),

with s = tanh(.) * scale, and an s-t network (an MLP) that only sees x_cond. Masks
(`coupling_masks`):
  checkerboard  pixels (or coordinates) by parity, alternating: RealNVP's default
  horizontal    top half / bottom half of the image (first / second half of a vector), alternating
  cyclic        four quadrants (quarters); layer l transforms quadrant l mod 4 given quadrant
                l - 1 mod 4 only (Kirichenko et al.'s cycle-mask: no co-adaptation of neighbours)
A `bottleneck` width in the s-t network (Kirichenko et al.) limits how much local detail it passes.
Inputs are first standardized with fixed statistics (part of the log-det).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

MASKS = ("checkerboard", "horizontal", "cyclic")


def _parts(shape: tuple[int, ...], kind: str) -> list[np.ndarray]:
    """The boolean partition of a tensor of `shape` that a mask kind alternates / cycles over."""
    if len(shape) == 3:  # image (H, W, C)
        h, w, _ = shape
        i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        if kind == "checkerboard":
            parity = (i + j) % 2 == 0
            parts = [parity, ~parity]
        elif kind == "horizontal":
            parts = [i < h // 2, i >= h // 2]
        else:
            top, left = i < h // 2, j < w // 2
            parts = [top & left, top & ~left, ~top & ~left, ~top & left]  # clockwise quadrants
        return [np.broadcast_to(p[:, :, None], shape).reshape(-1) for p in parts]
    if len(shape) == 1:
        d = shape[0]
        idx = np.arange(d)
        if kind == "checkerboard":
            return [idx % 2 == 0, idx % 2 == 1]
        if kind == "horizontal":
            return [idx < d // 2, idx >= d // 2]
        return [(idx * 4) // d == q for q in range(4)]
    raise ValueError(f"flows take (D,) vectors or (H, W, C) images, got shape {shape}")


def coupling_masks(shape: tuple[int, ...], kind: str, num_layers: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(cond, trans) boolean masks over the flattened input, one pair per coupling layer."""
    if kind not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {kind!r}")
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    parts = _parts(tuple(shape), kind)
    if min(p.sum() for p in parts) == 0:
        raise ValueError(f"shape {shape} is too small for {kind} masks")
    if kind == "cyclic":
        return [(parts[(l - 1) % 4], parts[l % 4]) for l in range(num_layers)]
    return [(parts[(l + 1) % 2], parts[l % 2]) for l in range(num_layers)]


class Coupling(nn.Module):
    """One affine coupling layer; cond / trans are boolean masks of length D (tuples: hashable)."""

    cond: tuple[bool, ...]
    trans: tuple[bool, ...]
    hidden: int = 256
    bottleneck: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        cond = jnp.asarray(self.cond, x.dtype)[None, :]
        trans = jnp.asarray(self.trans, x.dtype)[None, :]
        h = nn.relu(nn.Dense(self.hidden)(x * cond))
        if self.bottleneck is not None:
            h = nn.relu(nn.Dense(self.bottleneck, name="bottleneck")(h))
        h = nn.relu(nn.Dense(self.hidden)(h))
        st = nn.Dense(2 * x.shape[-1], kernel_init=nn.initializers.zeros, name="st")(h)  # identity at init
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],), jnp.float32)
        s = jnp.tanh(st[:, : x.shape[-1]]) * scale[None, :] * trans
        t = st[:, x.shape[-1] :] * trans
        return x * jnp.exp(s) + t, jnp.sum(s, axis=-1)


class RealNVP(nn.Module):
    """A stack of couplings on inputs of `shape`; __call__(x (N, *shape)) -> (z (N, D), log-det (N,))."""

    shape: tuple[int, ...]
    mask: str = "checkerboard"
    num_layers: int = 6
    hidden: int = 256
    bottleneck: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        z = x.reshape(x.shape[0], -1)
        log_det = jnp.zeros(z.shape[0], z.dtype)
        for cond, trans in coupling_masks(self.shape, self.mask, self.num_layers):
            z, ld = Coupling(tuple(cond.tolist()), tuple(trans.tolist()), self.hidden, self.bottleneck)(z)
            log_det = log_det + ld
        return z, log_det


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    """sum_d log N(z_d; 0, 1), (N,) for z (N, D)."""
    return -0.5 * jnp.sum(z**2, axis=-1) - 0.5 * z.shape[-1] * jnp.log(2.0 * jnp.pi)


def flow_log_prob(flow: RealNVP, params, mean: jax.Array, std: jax.Array, x: jax.Array) -> jax.Array:
    """log p(x) (nats) = log N(f((x - mean) / std)) + log|det df| - sum log std, (N,).
    mean, std: arrays of the flattened input size D (or broadcastable)."""
    u = (x.reshape(x.shape[0], -1) - mean[None, :]) / std[None, :]
    z, log_det = flow.apply({"params": params}, u)
    return standard_normal_log_prob(z) + log_det - jnp.sum(jnp.log(std))

