"""ResNets (He et al. 2016): CIFAR ResNet-8/20 (6n+2 layers, option-A shortcuts) and
ResNet-18/34/50 with a CIFAR stem (3x3 conv) or an ImageNet stem (7x7/2 conv + 3x3/2 max-pool)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from oodjax.models._types import tap

Conv = partial(nn.Conv, use_bias=False, kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"))


def _bn(train: bool) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)


class BasicBlock(nn.Module):
    width: int
    stride: int = 1
    shortcut: str = "conv"  # "conv" (1x1 projection, option B) or "pad" (option A, parameter-free)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        y = nn.relu(_bn(train)(Conv(self.width, (3, 3), self.stride, padding=1)(x)))
        y = _bn(train)(Conv(self.width, (3, 3), padding=1)(y))
        if self.stride != 1 or x.shape[-1] != self.width:
            if self.shortcut == "pad":
                x = x[:, :: self.stride, :: self.stride, :]
                extra = self.width - x.shape[-1]
                x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
            else:
                x = _bn(train)(Conv(self.width, (1, 1), self.stride)(x))
        return nn.relu(x + y)


class Bottleneck(nn.Module):
    """width * 4 channels out; the inner 1x1 and 3x3 convolutions have width * base_width / 64
    (128 in Wide ResNet-50-2); the stride is on the 3x3 convolution (torchvision's ResNet v1.5)."""

    width: int
    stride: int = 1
    expansion: int = 4
    base_width: int = 64

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        out = self.width * self.expansion
        inner = self.width * self.base_width // 64
        y = nn.relu(_bn(train)(Conv(inner, (1, 1))(x)))
        y = nn.relu(_bn(train)(Conv(inner, (3, 3), self.stride, padding=1)(y)))
        y = _bn(train)(Conv(out, (1, 1))(y))
        if self.stride != 1 or x.shape[-1] != out:
            x = _bn(train)(Conv(out, (1, 1), self.stride)(x))
        return nn.relu(x + y)


class ResNet(nn.Module):
    """stage_sizes blocks per stage; widths per stage; stem "cifar" or "imagenet"."""

    num_classes: int
    stage_sizes: Sequence[int]
    widths: Sequence[int] = (64, 128, 256, 512)
    bottleneck: bool = False
    stem: str = "cifar"
    shortcut: str = "conv"
    base_width: int = 64

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        if self.stem == "imagenet":
            x = nn.relu(_bn(train)(Conv(self.widths[0], (7, 7), 2, padding=3)(x)))
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        elif self.stem == "cifar":
            x = nn.relu(_bn(train)(Conv(self.widths[0], (3, 3), padding=1)(x)))
        else:
            raise ValueError(f"stem must be 'cifar' or 'imagenet', got {self.stem!r}")
        for i, (n, width) in enumerate(zip(self.stage_sizes, self.widths)):
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                if self.bottleneck:
                    x = Bottleneck(width, stride, base_width=self.base_width)(x, train)
                else:
                    x = BasicBlock(width, stride, self.shortcut)(x, train)
            x = tap(self, x, i)
        features = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="head")(features), features


def cifar_resnet(depth: int, num_classes: int) -> ResNet:
    """He et al.'s CIFAR ResNet-(6n+2): widths 16/32/64, option-A shortcuts (ResNet-20: 0.27M)."""
    if (depth - 2) % 6:
        raise ValueError(f"CIFAR ResNet depth must be 6n+2, got {depth}")
    n = (depth - 2) // 6
    return ResNet(num_classes, (n, n, n), (16, 32, 64), stem="cifar", shortcut="pad")


def resnet(depth: int, num_classes: int, stem: str = "cifar") -> ResNet:
    """ResNet-18/34 (basic blocks) or ResNet-50/101/152 (bottlenecks), widths 64..512."""
    stages = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False), 50: ((3, 4, 6, 3), True),
              101: ((3, 4, 23, 3), True), 152: ((3, 8, 36, 3), True)}
    if depth not in stages:
        raise ValueError(f"depth must be one of {sorted(stages)}, got {depth}")
    sizes, bottleneck = stages[depth]
    return ResNet(num_classes, sizes, bottleneck=bottleneck, stem=stem)
