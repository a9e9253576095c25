"""Wide ResNets WRN-d-k (Zagoruyko & Komodakis 2016): pre-activation blocks, depth = 6n + 4."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from oodjax.models._types import tap
from oodjax.models.resnet import Conv, _bn


class WideBlock(nn.Module):
    width: int
    stride: int
    dropout: float = 0.0
    mc_dropout: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        o = nn.relu(_bn(train)(x))
        y = Conv(self.width, (3, 3), self.stride, padding=1)(o)
        y = nn.relu(_bn(train)(y))
        y = nn.Dropout(self.dropout, deterministic=not (train or self.mc_dropout))(y)
        y = Conv(self.width, (3, 3), padding=1)(y)
        if self.stride != 1 or x.shape[-1] != self.width:
            x = Conv(self.width, (1, 1), self.stride)(o)
        return x + y


class WideResNet(nn.Module):
    """dropout: rate inside each block (training mode; also in evaluation with mc_dropout)."""

    num_classes: int
    depth: int = 28
    widen: int = 10
    dropout: float = 0.0
    mc_dropout: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        if (self.depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4, got {self.depth}")
        n = (self.depth - 4) // 6
        x = Conv(16, (3, 3), padding=1)(x)
        for i, width in enumerate((16 * self.widen, 32 * self.widen, 64 * self.widen)):
            for j in range(n):
                x = WideBlock(width, 2 if i > 0 and j == 0 else 1, self.dropout, self.mc_dropout)(x, train)
            x = tap(self, x, i)
        x = nn.relu(_bn(train)(x))
        features = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="head")(features), features
