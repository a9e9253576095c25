"""BiT ResNetV2 (Kolesnikov et al. 2020): pre-activation bottlenecks with GroupNorm(32) and
weight-standardized convolutions; R101x1 is the backbone of the GradNorm and RG papers."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from oodjax.models._types import tap


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
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        out = 4 * self.width
        gn = lambda: nn.GroupNorm(32, epsilon=self.epsilon, use_fast_variance=False)  # noqa: E731
        pre = nn.relu(gn()(x))
        shortcut = x
        if self.stride != 1 or x.shape[-1] != out:
            shortcut = StdConv(out, (1, 1), self.stride, use_bias=False, name="proj")(pre)
        y = StdConv(self.width, (1, 1), use_bias=False)(pre)
        y = StdConv(self.width, (3, 3), self.stride, padding=1, use_bias=False)(nn.relu(gn()(y)))
        y = StdConv(out, (1, 1), use_bias=False)(nn.relu(gn()(y)))
        return shortcut + y


class ResNetV2(nn.Module):
    """BiT-S/M R{50,101,152}x{width_factor}. widths (the bottlenecks' inner widths per stage) and
    root_width default to 64 * width_factor * (1, 2, 4, 8) and 64 * width_factor. GroupNorm's
    epsilon is 1e-5, as in BiT's PyTorch code (the GradNorm and RG papers' backbone)."""

    num_classes: int
    blocks: Sequence[int] = (3, 4, 23, 3)
    width_factor: int = 1
    widths: Sequence[int] | None = None
    root_width: int | None = None
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        del train  # GroupNorm: no batch statistics
        wf = self.width_factor
        widths = self.widths or tuple(64 * wf * 2**i for i in range(len(self.blocks)))
        x = StdConv(self.root_width or 64 * wf, (7, 7), 2, padding=3, use_bias=False, name="root")(x)
        x = nn.max_pool(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), (3, 3), strides=(2, 2))
        for i, n in enumerate(self.blocks):
            for j in range(n):
                x = PreActBottleneck(widths[i], 2 if i > 0 and j == 0 else 1, self.epsilon)(x)
            x = tap(self, x, i)
        x = nn.relu(nn.GroupNorm(32, epsilon=self.epsilon, use_fast_variance=False)(x))
        features = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="head")(features), features
