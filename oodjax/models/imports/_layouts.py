"""Checkpoint layouts: each recognizes its files by their parameter names, reads the architecture
off the names and shapes (depth, widths, growth), and maps the weights onto a zoo module.

A layout is `Layout(name, detect, build)`: detect(state) -> arch name or None; build(state) ->
(flax module, {flax path: array}, normalization (mean, std), default image size, source keys
read). PyTorch tensors are converted: convolutions (O, I, kh, kw) -> (kh, kw, I, O), linear
(out, in) -> (in, out), batch norm weight / bias / running_mean / running_var -> scale / bias /
mean / var.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import numpy as np

from oodjax.models.bit import ResNetV2
from oodjax.models.densenet import DenseNet
from oodjax.models.imports._read import CheckpointError
from oodjax.models.resnet import ResNet
from oodjax.models.wrn import WideResNet

State = dict[str, np.ndarray]
Flat = dict[tuple[str, ...], np.ndarray]
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CIFAR10 = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100 = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))


def _cifar_norm(classes: int):
    """CIFAR-100's statistics for a 100-class network, CIFAR-10's otherwise (override with mean=, std=)."""
    return CIFAR100 if classes == 100 else CIFAR10
BIT = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


class Built(NamedTuple):
    module: nn.Module
    variables: Flat
    norm: tuple[tuple[float, ...], tuple[float, ...]]
    image_size: int
    read: frozenset[str]
    origin: dict[tuple[str, ...], str]  # flax path -> the file's parameter name


class Layout(NamedTuple):
    name: str
    detect: Callable[[State], str | None]
    build: Callable[[State, int | None], Built]
    rename: Callable[[str], str] | None = None  # old parameter names -> the ones build reads


class _Reader:
    """Takes tensors out of a state dict, converted, remembering which keys were read."""

    def __init__(self, state: State):
        self.state, self.read, self.out, self.missing, self.origin = state, set(), {}, [], {}

    def get(self, key: str) -> np.ndarray:
        if key not in self.state:  # collected, so that one error lists every missing name
            self.missing.append(key)
            return np.zeros((1, 1, 1, 1) if key.endswith(("kernel", "conv1.weight")) else (1,), np.float32)
        self.read.add(key)
        self.last = key
        return np.asarray(self.state[key], np.float32)

    def put(self, path: tuple[str, ...], value: np.ndarray) -> None:
        self.out[path] = value
        self.origin[path] = self.last

    def conv(self, key: str, *path: str) -> None:
        w = self.get(key)
        self.put(("params", *path, "kernel"), w.transpose(2, 3, 1, 0) if w.ndim == 4 else w)

    def dense(self, prefix: str, *path: str) -> None:
        self.put(("params", *path, "kernel"), self.get(f"{prefix}.weight").T)
        self.put(("params", *path, "bias"), self.get(f"{prefix}.bias"))

    def bn(self, prefix: str, *path: str) -> None:
        for collection, name, key in (("params", "scale", "weight"), ("params", "bias", "bias"),
                                      ("batch_stats", "mean", "running_mean"), ("batch_stats", "var", "running_var")):
            self.put((collection, *path, name), self.get(f"{prefix}.{key}"))
        self.read.add(f"{prefix}.num_batches_tracked")

    def built(self, module, norm, image_size) -> Built:
        if self.missing:
            raise CheckpointError(f"the checkpoint lacks {len(self.missing)} parameters its architecture needs: "
                                  f"{', '.join(self.missing[:12])}{' ...' if len(self.missing) > 12 else ''}")
        return Built(module, self.out, norm, image_size, frozenset(self.read), self.origin)


def _count(state: State, pattern: str) -> int:
    """How many distinct integers fill the one group of `pattern` over the keys."""
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.match(k))})


def _shape(state: State, key: str) -> tuple[int, ...]:
    """The shape of a parameter the layout reads its architecture off (CheckpointError if absent)."""
    if key not in state:
        raise CheckpointError(f"the checkpoint lacks {key!r}, which its layout needs")
    return tuple(int(n) for n in np.shape(state[key]))


def _out(state: State, key: str) -> int:
    return _shape(state, key)[0]


# --- torchvision ResNet-18/34/50/101/152, Wide ResNet-50-2/101-2 (and the same layout at any width)

_TV_DEPTHS = {(False, (2, 2, 2, 2)): 18, (False, (3, 4, 6, 3)): 34, (True, (3, 4, 6, 3)): 50,
              (True, (3, 4, 23, 3)): 101, (True, (3, 8, 36, 3)): 152}


def _tv_stages(state: State) -> tuple[int, ...]:
    return tuple(_count(state, rf"layer{i}\.(\d+)\.conv1\.weight$") for i in range(1, 5))


def _tv_resnet_arch(state: State) -> str | None:
    if "conv1.weight" not in state or "fc.weight" not in state or "layer1.0.conv1.weight" not in state:
        return None
    if state["conv1.weight"].shape[-1] != 7 or any(".shortcut." in k for k in state):
        return None
    bottleneck = "layer1.0.conv3.weight" in state
    if bottleneck and _shape(state, "layer1.0.conv2.weight")[1] != _out(state, "layer1.0.conv1.weight"):
        return "resnext (grouped convolutions)"
    depth = _TV_DEPTHS.get((bottleneck, _tv_stages(state)))
    if depth is None:
        return f"resnet with {'bottleneck' if bottleneck else 'basic'} blocks {_tv_stages(state)}"
    if bottleneck and _out(state, "layer1.0.conv1.weight") == 2 * _out(state, "layer1.0.conv3.weight") // 4:
        return f"wide_resnet{depth}_2"
    return f"resnet{depth}"


def _tv_resnet(state: State, image_size: int | None) -> Built:
    r = _Reader(state)
    bottleneck = "layer1.0.conv3.weight" in state
    if bottleneck and _shape(state, "layer1.0.conv2.weight")[1] != _out(state, "layer1.0.conv1.weight"):
        raise CheckpointError("grouped 3x3 convolutions (ResNeXt) are not in the zoo")
    stages = _tv_stages(state)
    last = "conv3" if bottleneck else "conv2"
    widths = tuple(_out(state, f"layer{i}.0.{last}.weight") // (4 if bottleneck else 1) for i in range(1, 5))
    base = 64 * _out(state, "layer1.0.conv1.weight") // widths[0] if bottleneck else 64
    r.conv("conv1.weight", "Conv_0")
    r.bn("bn1", "BatchNorm_0")
    block_type = "Bottleneck" if bottleneck else "BasicBlock"
    b = 0
    for i, n in enumerate(stages, start=1):
        for j in range(n):
            p = f"layer{i}.{j}"
            convs = ("conv1", "conv2", "conv3") if bottleneck else ("conv1", "conv2")
            for c, name in enumerate(convs):
                r.conv(f"{p}.{name}.weight", f"{block_type}_{b}", f"Conv_{c}")
                r.bn(f"{p}.bn{c + 1}", f"{block_type}_{b}", f"BatchNorm_{c}")
            if f"{p}.downsample.0.weight" in state:
                r.conv(f"{p}.downsample.0.weight", f"{block_type}_{b}", f"Conv_{len(convs)}")
                r.bn(f"{p}.downsample.1", f"{block_type}_{b}", f"BatchNorm_{len(convs)}")
            b += 1
    r.dense("fc", "head")
    module = ResNet(_out(state, "fc.weight"), stages, widths, bottleneck=bottleneck, stem="imagenet", base_width=base)
    return r.built(module, IMAGENET, image_size or 224)


# --- torchvision DenseNet-121/161/169/201 (old "norm.1"-style names are read too)

_DN_DEPTHS = {(6, 12, 24, 16): 121, (6, 12, 36, 24): 161, (6, 12, 32, 32): 169, (6, 12, 48, 32): 201}


def _dn_key(key: str) -> str:
    return re.sub(r"(denselayer\d+\.(?:norm|relu|conv))\.(\d)", r"\1\2", key)


def _dn_arch(state: State) -> str | None:
    if "features.conv0.weight" not in state or "classifier.weight" not in state:
        return None
    blocks = tuple(_count(state, rf"features\.denseblock{i}\.denselayer(\d+)\.") for i in range(1, 5))
    return f"densenet{_DN_DEPTHS[blocks]}" if blocks in _DN_DEPTHS else f"densenet with blocks {blocks}"


def _densenet(state: State, image_size: int | None) -> Built:
    r = _Reader(state)
    blocks = tuple(_count(state, rf"features\.denseblock{i}\.denselayer(\d+)\.") for i in range(1, 5))
    growth = _out(state, "features.denseblock1.denselayer1.conv2.weight")
    bn_size = _out(state, "features.denseblock1.denselayer1.conv1.weight") // growth
    r.conv("features.conv0.weight", "Conv_0")
    r.bn("features.norm0", "BatchNorm_0")
    layer = 0
    for i, n in enumerate(blocks, start=1):
        for j in range(1, n + 1):
            p = f"features.denseblock{i}.denselayer{j}"
            for c in (1, 2):
                r.conv(f"{p}.conv{c}.weight", f"DenseLayer_{layer}", f"Conv_{c - 1}")
                r.bn(f"{p}.norm{c}", f"DenseLayer_{layer}", f"BatchNorm_{c - 1}")
            layer += 1
        if i < len(blocks):
            r.conv(f"features.transition{i}.conv.weight", f"Conv_{i}")
            r.bn(f"features.transition{i}.norm", f"BatchNorm_{i}")
    r.bn("features.norm5", f"BatchNorm_{len(blocks)}")
    r.dense("classifier", "head")
    module = DenseNet(_out(state, "classifier.weight"), blocks, growth, _out(state, "features.conv0.weight"),
                      bn_size=bn_size)
    return r.built(module, IMAGENET, image_size or 224)


# --- the CIFAR Wide ResNet of the OOD repositories (Outlier Exposure, Energy, OpenOOD): WRN-40-2, WRN-28-10


def _wrn_arch(state: State) -> str | None:
    if "block1.layer.0.conv1.weight" not in state or "fc.weight" not in state:
        return None
    n = _count(state, r"block1\.layer\.(\d+)\.conv1\.weight$")
    return f"wrn{6 * n + 4}_{_out(state, 'block1.layer.0.conv1.weight') // 16}"


def _cifar_wrn(state: State, image_size: int | None) -> Built:
    r = _Reader(state)
    n = _count(state, r"block1\.layer\.(\d+)\.conv1\.weight$")
    widen = _out(state, "block1.layer.0.conv1.weight") // 16
    r.conv("conv1.weight", "Conv_0")
    b = 0
    for i in (1, 2, 3):
        for j in range(n):
            p, blk = f"block{i}.layer.{j}", f"WideBlock_{b}"
            r.bn(f"{p}.bn1", blk, "BatchNorm_0")
            r.conv(f"{p}.conv1.weight", blk, "Conv_0")
            r.bn(f"{p}.bn2", blk, "BatchNorm_1")
            r.conv(f"{p}.conv2.weight", blk, "Conv_1")
            if f"{p}.convShortcut.weight" in state:
                r.conv(f"{p}.convShortcut.weight", blk, "Conv_2")
            b += 1
    r.bn("bn1", "BatchNorm_0")
    r.dense("fc", "head")
    classes = _out(state, "fc.weight")
    return r.built(WideResNet(classes, 6 * n + 4, widen), _cifar_norm(classes), image_size or 32)


# --- OpenOOD's ResNet18_32x32 (3x3 stem, no max-pool, "shortcut" projections)


def _cifar_resnet_arch(state: State) -> str | None:
    if "conv1.weight" not in state or state["conv1.weight"].shape[-1] != 3 or "layer1.0.conv1.weight" not in state:
        return None
    stages = _tv_stages(state)
    return "cifar_resnet18" if stages == (2, 2, 2, 2) else f"cifar resnet with blocks {stages}"


def _cifar_resnet(state: State, image_size: int | None) -> Built:
    r = _Reader(state)
    stages = _tv_stages(state)
    widths = tuple(_out(state, f"layer{i}.0.conv2.weight") for i in range(1, 5))
    r.conv("conv1.weight", "Conv_0")
    r.bn("bn1", "BatchNorm_0")
    b = 0
    for i, n in enumerate(stages, start=1):
        for j in range(n):
            p, blk = f"layer{i}.{j}", f"BasicBlock_{b}"
            for c in (1, 2):
                r.conv(f"{p}.conv{c}.weight", blk, f"Conv_{c - 1}")
                r.bn(f"{p}.bn{c}", blk, f"BatchNorm_{c - 1}")
            if f"{p}.shortcut.0.weight" in state:
                r.conv(f"{p}.shortcut.0.weight", blk, "Conv_2")
                r.bn(f"{p}.shortcut.1", blk, "BatchNorm_2")
            b += 1
    r.dense("fc", "head")
    classes = _out(state, "fc.weight")
    return r.built(ResNet(classes, stages, widths, stem="cifar"), _cifar_norm(classes), image_size or 32)


# --- BiT ResNetV2 (.npz of the official big_transfer release: BiT-S/M R50x1, R101x1, ...)

_BIT = "resnet/"
_BIT_DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}


def _bit_units(state: State) -> tuple[int, ...]:
    return tuple(_count(state, rf"{_BIT}block{i}/unit(\d+)/a/standardized_conv2d/kernel$") for i in range(1, 5))


def _bit_arch(state: State) -> str | None:
    if f"{_BIT}root_block/standardized_conv2d/kernel" not in state:
        return None
    units = _bit_units(state)
    wf = _shape(state, f"{_BIT}root_block/standardized_conv2d/kernel")[-1] // 64
    return f"bit_r{_BIT_DEPTHS[units]}x{max(wf, 1)}" if units in _BIT_DEPTHS else f"bit resnetv2 with units {units}"


def _bit(state: State, image_size: int | None) -> Built:
    r = _Reader(state)
    units = _bit_units(state)
    conv, gn = "standardized_conv2d/kernel", "group_norm"

    def norm(key: str, *path: str) -> None:
        r.put(("params", *path, "scale"), r.get(f"{key}/gamma").reshape(-1))
        r.put(("params", *path, "bias"), r.get(f"{key}/beta").reshape(-1))

    r.put(("params", "root", "kernel"), r.get(f"{_BIT}root_block/{conv}"))
    b = 0
    for i, n in enumerate(units, start=1):
        for j in range(1, n + 1):
            p, blk = f"{_BIT}block{i}/unit{j:02d}/", f"PreActBottleneck_{b}"
            for c, part in enumerate("abc"):
                norm(f"{p}{part}/{gn}", blk, f"GroupNorm_{c}")
                r.put(("params", blk, f"StdConv_{c}", "kernel"), r.get(f"{p}{part}/{conv}"))
            if f"{p}a/proj/{conv}" in state:
                r.put(("params", blk, "proj", "kernel"), r.get(f"{p}a/proj/{conv}"))
            b += 1
    norm(f"{_BIT}{gn}", "GroupNorm_0")
    head = r.get(f"{_BIT}head/conv2d/kernel")
    r.put(("params", "head", "kernel"), head.reshape(head.shape[-2], head.shape[-1]))
    r.put(("params", "head", "bias"), r.get(f"{_BIT}head/conv2d/bias"))
    widths = tuple(_shape(state, f"{_BIT}block{i}/unit01/a/{conv}")[-1] for i in range(1, 5))
    root = _shape(state, f"{_BIT}root_block/{conv}")[-1]
    module = ResNetV2(int(head.shape[-1]), units, widths=widths, root_width=root)
    return r.built(module, BIT, image_size or 224)


# --- big_vision ViT (.npz: "params/..." names; encoder blocks one by one or scanned into one stack)

_BV = "params/"


def _bv_blocks(state: State) -> tuple[int, bool]:
    """(depth, whether the blocks are stacked on a leading axis: big_vision's scan=True)."""
    stacked = f"{_BV}Transformer/encoderblock/LayerNorm_0/scale"
    if stacked in state:
        return _shape(state, stacked)[0], True
    return _count(state, rf"{_BV}Transformer/encoderblock_(\d+)/LayerNorm_0/scale$"), False


def _vit_arch(state: State) -> str | None:
    if f"{_BV}embedding/kernel" not in state or f"{_BV}Transformer/encoder_norm/scale" not in state:
        return None
    kernel = _shape(state, f"{_BV}embedding/kernel")
    patch, width, depth = kernel[0], kernel[-1], _bv_blocks(state)[0]
    known = {(16, 768, 12): "vit_b16", (32, 768, 12): "vit_b32", (16, 1024, 24): "vit_l16", (16, 384, 12): "vit_s16"}
    return known.get((patch, width, depth), f"vit with patch {patch}, width {width}, depth {depth}")


def _vit(state: State, image_size: int | None) -> Built:
    from oodjax.models.vit import VisionTransformer

    r = _Reader(state)
    depth, stacked = _bv_blocks(state)
    block_keys = sorted(k for k in state if k.startswith(f"{_BV}Transformer/encoderblock"))
    for key in sorted(state):
        if not key.startswith(_BV) or key in block_keys:
            continue
        r.put(("params", *key[len(_BV):].split("/")), r.get(key))
    for key in block_keys:
        rest = key[len(f"{_BV}Transformer/"):].split("/")
        value = r.get(key)
        if stacked:  # Transformer/encoderblock/<...>: (depth, ...) -> encoderblock_i/<...>
            for i in range(depth):
                r.put(("params", "Transformer", f"encoderblock_{i}", *rest[1:]), value[i])
        else:
            r.put(("params", "Transformer", *rest), value)
    kernel = _shape(state, f"{_BV}embedding/kernel")
    patch, width = kernel[0], kernel[-1]
    q = f"{_BV}Transformer/encoderblock{'' if stacked else '_0'}/MultiHeadDotProductAttention_0/query/kernel"
    mlp = f"{_BV}Transformer/encoderblock{'' if stacked else '_0'}/MlpBlock_0/Dense_0/kernel"
    heads, mlp_dim = _shape(state, q)[-2], _shape(state, mlp)[-1]
    tokens = _shape(state, f"{_BV}pos_embedding")[1]
    cls = f"{_BV}cls" in state
    covers_cls = cls and round((tokens - 1) ** 0.5) ** 2 == tokens - 1  # vit_jax: the class token has a position
    side = round((tokens - covers_cls) ** 0.5)
    module = VisionTransformer(_shape(state, f"{_BV}head/bias")[-1], patch, width, depth, heads, mlp_dim,
                               pool="tok" if cls else "gap", posemb_cls=covers_cls)
    return r.built(module, BIT, image_size or patch * side)


# --- vit_jax ViT (.npz of google-research/vision_transformer, the augreg ViT-B/16 files): read as
# big_vision's names (its sublayers are numbered 0-3 where big_vision's restart at 0 per kind)

_VJ_SUBLAYERS = {"LayerNorm_0": "LayerNorm_0", "MultiHeadDotProductAttention_1": "MultiHeadDotProductAttention_0",
                 "LayerNorm_2": "LayerNorm_1", "MlpBlock_3": "MlpBlock_0"}


def _vj_key(key: str) -> str:
    key = key.removeprefix("opt/target/")
    if key == "Transformer/posembed_input/pos_embedding":
        return f"{_BV}pos_embedding"
    parts = key.split("/")
    if len(parts) > 2 and parts[0] == "Transformer" and parts[1].startswith("encoderblock_"):
        parts[2] = _VJ_SUBLAYERS.get(parts[2], parts[2])
    return _BV + "/".join(parts)


def _vj_arch(state: State) -> str | None:
    if not any(k.removeprefix("opt/target/") == "Transformer/posembed_input/pos_embedding" for k in state):
        return None
    return _vit_arch({_vj_key(k): v for k, v in state.items()})


LAYOUTS: tuple[Layout, ...] = (
    Layout("torchvision_resnet", _tv_resnet_arch, _tv_resnet),
    Layout("torchvision_densenet", _dn_arch, _densenet, _dn_key),
    Layout("cifar_wrn", _wrn_arch, _cifar_wrn),
    Layout("cifar_resnet", _cifar_resnet_arch, _cifar_resnet),
    Layout("bit", _bit_arch, _bit),
    Layout("big_vision_vit", _vit_arch, _vit),
    Layout("vit_jax_vit", _vj_arch, _vit, _vj_key),
)


def detect(state: State) -> tuple[Layout, str] | None:
    """(the layout, the architecture) of a state dict, or None if no layout knows its names."""
    for layout in LAYOUTS:
        arch = layout.detect(state)
        if arch is not None:
            return layout, arch
    return None


def describe(state: Any) -> str:
    keys = sorted(state)
    return ", ".join(keys[:6]) + (f", ... ({len(keys)} in all)" if len(keys) > 6 else "")
