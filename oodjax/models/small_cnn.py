"""A small CNN for 28x28 inputs (~110k parameters): the CPU backbone of the embedded suite."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from oodjax.models._types import Model, from_flax, tap


class SmallCNN(nn.Module):
    """3x3 conv + ReLU stages (max-pool between them), global average pool, dense features, head.

    dropout: rate of the dropout on the features before the head (0: none; training mode only,
    unless mc_dropout, which keeps it on in evaluation too: Gal & Ghahramani's MC-dropout).
    """

    num_classes: int
    widths: Sequence[int] = (32, 64, 128)
    feature_dim: int = 128
    dropout: float = 0.0
    mc_dropout: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        for i, width in enumerate(self.widths):
            x = nn.relu(nn.Conv(width, (3, 3))(x))
            x = tap(self, x, i)
            if i < len(self.widths) - 1:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = jnp.mean(x, axis=(1, 2))
        features = nn.relu(nn.Dense(self.feature_dim)(x))
        dropped = nn.Dropout(self.dropout, deterministic=not (train or self.mc_dropout))(features)
        logits = nn.Dense(self.num_classes, name="head")(dropped)
        return logits, features


def small_cnn(
    num_classes: int = 10, in_channels: int = 1, image_size: int = 28, **kwargs
) -> Model:
    """The SmallCNN as a `Model`; `in_channels` sets the first conv's input (2 for anchoring)."""
    if num_classes < 2 or in_channels < 1 or image_size < 4:
        raise ValueError(
            f"need num_classes >= 2, in_channels >= 1, image_size >= 4; got {num_classes}, "
            f"{in_channels}, {image_size}"
        )
    return from_flax(SmallCNN(num_classes, **kwargs), (image_size, image_size, in_channels))
