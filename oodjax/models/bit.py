"""BiT ResNetV2 (Kolesnikov et al. 2020): pre-activation bottlenecks with GroupNorm(32) and
weight-standardized convolutions; R101x1 is the backbone of the GradNorm and RG papers."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class StdConv(nn.Conv):
    """A convolution whose kernel is standardized per output channel before use."""

    def param(self, name: str, *args, **kwargs):
        p = super().param(name, *args, **kwargs)
        if name == "kernel":
            mean = jnp.mean(p, axis=(0, 1, 2), keepdims=True)
            var = jnp.var(p, axis=(0, 1, 2), keepdims=True)
            p = (p - mean) / jnp.sqrt(var + 1e-10)
        return p


class PreActBottleneck(nn.Module):
    width: int
    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        out = 4 * self.width
        pre = nn.relu(nn.GroupNorm(32)(x))
        shortcut = x
        if self.stride != 1 or x.shape[-1] != out:
            shortcut = StdConv(out, (1, 1), self.stride, use_bias=False, name="proj")(pre)
        y = StdConv(self.width, (1, 1), use_bias=False)(pre)
        y = StdConv(self.width, (3, 3), self.stride, padding=1, use_bias=False)(nn.relu(nn.GroupNorm(32)(y)))
        y = StdConv(out, (1, 1), use_bias=False)(nn.relu(nn.GroupNorm(32)(y)))
        return shortcut + y


class ResNetV2(nn.Module):
    num_classes: int
    blocks: Sequence[int] = (3, 4, 23, 3)
    width_factor: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        del train  # GroupNorm: no batch statistics
        wf = self.width_factor
        x = StdConv(64 * wf, (7, 7), 2, padding=3, use_bias=False, name="root")(x)
        x = nn.max_pool(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), (3, 3), strides=(2, 2))
        for i, n in enumerate(self.blocks):
            for j in range(n):
                x = PreActBottleneck(64 * wf * 2**i, 2 if i > 0 and j == 0 else 1)(x)
            self.sow("intermediates", "maps", x)
        x = nn.relu(nn.GroupNorm(32)(x))
        features = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="head")(features), features
