"""DenseNet-BC (Huang et al. 2017); DenseNet-121: growth 32, blocks (6, 12, 24, 16), compression 0.5."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from oodjax.models._types import tap
from oodjax.models.resnet import Conv, _bn


class DenseLayer(nn.Module):
    growth: int
    bn_size: int = 4

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        y = Conv(self.bn_size * self.growth, (1, 1))(nn.relu(_bn(train)(x)))
        y = Conv(self.growth, (3, 3), padding=1)(nn.relu(_bn(train)(y)))
        return jnp.concatenate([x, y], axis=-1)


class DenseNet(nn.Module):
    num_classes: int
    blocks: Sequence[int] = (6, 12, 24, 16)
    growth: int = 32
    init_features: int = 64
    compression: float = 0.5
    stem: str = "imagenet"
    bn_size: int = 4

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        if self.stem == "imagenet":
            x = nn.relu(_bn(train)(Conv(self.init_features, (7, 7), 2, padding=3)(x)))
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        else:
            x = Conv(2 * self.growth, (3, 3), padding=1)(x)
        for i, n in enumerate(self.blocks):
            for _ in range(n):
                x = DenseLayer(self.growth, self.bn_size)(x, train)
            x = tap(self, x, i)
            if i < len(self.blocks) - 1:
                x = Conv(int(x.shape[-1] * self.compression), (1, 1))(nn.relu(_bn(train)(x)))
                # Sum-pool / 4: nn.avg_pool divides by an int, which strict dtype promotion rejects.
                x = nn.pool(x, 0.0, jax.lax.add, (2, 2), (2, 2), "VALID") / 4.0
        x = nn.relu(_bn(train)(x))
        features = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="head")(features), features
