"""Model registry: a name -> a Flax module factory; `get` returns the `Model` of pure functions."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn

from oodjax.models._types import Model, from_flax
from oodjax.models.bit import ResNetV2
from oodjax.models.densenet import DenseNet
from oodjax.models.heads import HEAD_EXTRAS, HEADS, WithHead
from oodjax.models.resnet import cifar_resnet, resnet
from oodjax.models.small_cnn import SmallCNN
from oodjax.models.vit import VisionTransformer
from oodjax.models.wrn import WideResNet

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    def decorate(factory: Callable[..., nn.Module]):
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered")
        _MODELS[name] = factory
        return factory

    return decorate


def names() -> list[str]:
    return sorted(_MODELS)


def get(name: str, *, num_classes: int, in_channels: int = 3, image_size: int = 32, head: str | None = None,
        head_kwargs: dict | None = None, **kwargs) -> Model:
    """The registered model `name` for (image_size, image_size, in_channels) inputs.

    in_channels: 3 for RGB, 6 for an anchored RGB network (AMP), 1/2 for grayscale.
    head: None (the backbone's own dense head), or a head variant of `heads.HEADS` on its features
      ("binc", "vib", "viby"; paper 001) with head_kwargs (e.g. {"z": 64}).
    kwargs go to the module factory (e.g. dropout for small_cnn / WRNs, stem for ResNet-18/34/50).
    """
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(names())}")
    if num_classes < 2 or in_channels < 1 or image_size < 4:
        raise ValueError(
            f"need num_classes >= 2, in_channels >= 1, image_size >= 4; got {num_classes}, {in_channels}, {image_size}"
        )
    shape = (image_size, image_size, in_channels)
    if head is None:
        return from_flax(_MODELS[name](num_classes, **kwargs), shape)
    if head not in HEADS:
        raise KeyError(f"unknown head {head!r}; known heads: {', '.join(sorted(HEADS))}")
    module = WithHead(_MODELS[name](num_classes, **kwargs), HEADS[head](num_classes, **dict(head_kwargs or {})))
    return from_flax(module, shape, head_name="head/classifier", extras=HEAD_EXTRAS[head])


register_model("small_cnn")(lambda num_classes, **kw: SmallCNN(num_classes, **kw))
register_model("resnet8")(lambda num_classes: cifar_resnet(8, num_classes))
register_model("resnet20")(lambda num_classes: cifar_resnet(20, num_classes))
register_model("resnet18")(lambda num_classes, stem="cifar": resnet(18, num_classes, stem))
register_model("resnet34")(lambda num_classes, stem="cifar": resnet(34, num_classes, stem))
register_model("resnet50")(lambda num_classes, stem="cifar": resnet(50, num_classes, stem))
register_model("wrn40_2")(lambda num_classes, dropout=0.0: WideResNet(num_classes, 40, 2, dropout))
register_model("wrn28_10")(lambda num_classes, dropout=0.0: WideResNet(num_classes, 28, 10, dropout))
register_model("densenet121")(lambda num_classes, stem="imagenet": DenseNet(num_classes, stem=stem))
register_model("bit_r101x1")(lambda num_classes: ResNetV2(num_classes, (3, 4, 23, 3), 1))
register_model("bit_r50x1")(lambda num_classes: ResNetV2(num_classes, (3, 4, 6, 3), 1))
register_model("vit_b16")(lambda num_classes, **kw: VisionTransformer(num_classes, **kw))
