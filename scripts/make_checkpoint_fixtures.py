"""Makes the checkpoint-import fixtures of tests/test_import.py with the original frameworks.

Run once, in a venv outside the repo that has torch, torchvision, timm and safetensors (about 5.6 GB:
never a dependency of oodjax or its tests):

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch torchvision timm safetensors numpy
    /tmp/tv/bin/python scripts/make_checkpoint_fixtures.py tests/fixtures/checkpoints

For every layout `oodjax.models.import_checkpoint` reads, it builds the source framework's own
network (torchvision's ResNet / DenseNet classes, timm's BiT ResNetV2; the CIFAR layouts of the OOD
repositories as small torch modules written here with their parameter names), with widths shrunk
where the layout allows it (the file stays a few hundred KB), random weights and randomized
batch-norm statistics, and writes:
  <name>.<pth|safetensors|npz>   the checkpoint, in the layout its users have;
  <name>.ref.npz                 x (N, H, W, 3) in [0, 1], and the framework's logits and features
                                 (the input of the last linear layer) in eval mode, normalization
                                 included, float32.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm
from safetensors.torch import save_file
from timm.models import resnetv2

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CIFAR = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
# GroupNorm(32) needs >= 32 bottleneck channels; at 64 px the last stage is 2x2 and its groups hold
# 2 channels: a group of one value (1x1 maps, 1 channel) would divide rounding noise by sqrt(eps).
BIT_LAYERS, BIT_CHANNELS = [2, 1, 1, 1], (128, 128, 256, 256)


def shrunk_resnet(block, layers, k: int, **kw) -> tvm.ResNet:
    """torchvision's ResNet class with every width divided by k (its forward and its parameter names
    unchanged): the first `inplanes = 64` and each stage's planes are divided."""

    class Shrunk(tvm.ResNet):
        def __setattr__(self, name, value):
            if name == "inplanes" and not hasattr(self, "inplanes"):
                value //= k
            super().__setattr__(name, value)

        def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
            return super()._make_layer(block, planes // k, blocks, stride, dilate)

    net = Shrunk(block, layers, **kw)
    net.fc = nn.Linear(512 // k * block.expansion, kw.get("num_classes", 1000))
    return net


class HendrycksBlock(nn.Module):
    """The pre-activation block of the WRN in the OOD repositories (Outlier Exposure, Energy, ...)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(cout), nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.equal = cin == cout
        self.convShortcut = None if self.equal else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)

    def forward(self, x):
        o = self.relu1(self.bn1(x))
        y = self.conv2(self.relu2(self.bn2(self.conv1(o))))
        return (x if self.equal else self.convShortcut(o)) + y


class HendrycksStage(nn.Module):
    def __init__(self, n: int, cin: int, cout: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(*[HendrycksBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1)
                                     for i in range(n)])

    def forward(self, x):
        return self.layer(x)


class HendrycksWRN(nn.Module):
    def __init__(self, depth: int, widen: int, num_classes: int):
        super().__init__()
        n, w = (depth - 4) // 6, (16, 16 * widen, 32 * widen, 64 * widen)
        self.conv1 = nn.Conv2d(3, w[0], 3, 1, 1, bias=False)
        self.block1, self.block2, self.block3 = (HendrycksStage(n, w[i], w[i + 1], 1 if i == 0 else 2) for i in range(3))
        self.bn1, self.relu = nn.BatchNorm2d(w[3]), nn.ReLU()
        self.fc = nn.Linear(w[3], num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.block3(self.block2(self.block1(self.conv1(x))))))
        return self.fc(F.avg_pool2d(x, x.shape[-1]).flatten(1))


class OpenOODBlock(nn.Module):
    """The basic block of OpenOOD's ResNet18_32x32 (shortcut = Sequential(conv 1x1, bn))."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class OpenOODResNet18(nn.Module):
    def __init__(self, widths=(64, 128, 256, 512), num_classes: int = 10):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0])
        cin, stages = widths[0], []
        for i, w in enumerate(widths):
            stages.append(nn.Sequential(OpenOODBlock(cin, w, 1 if i == 0 else 2), OpenOODBlock(w, w, 1)))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def randomize(net: nn.Module, gen: torch.Generator) -> nn.Module:
    """Random weights and batch-norm statistics (so a wrong eps, mean or variance shows), eval mode."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.ndim > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif "weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    return net.eval()


def reference(net: nn.Module, norm, size: int, gen: torch.Generator, features_of) -> dict[str, np.ndarray]:
    """x in [0, 1] (N, H, W, 3) and the framework's (logits, features) on it, normalization included."""
    x = torch.rand((4, 3, size, size), generator=gen)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in norm)
    seen = {}
    handle = features_of(net).register_forward_hook(lambda m, inputs, out: seen.update(f=inputs[0]))
    with torch.no_grad():
        logits = net((x - mean) / std)
    handle.remove()
    return {"x": x.permute(0, 2, 3, 1).numpy(), "logits": logits.numpy(),
            "features": seen["f"].flatten(1).numpy(), "mean": np.asarray(norm[0], np.float32),
            "std": np.asarray(norm[1], np.float32)}


def bit_npz(net: nn.Module) -> dict[str, np.ndarray]:
    """timm's BiT ResNetV2 as the official big_transfer .npz (the inverse of timm's _load_weights)."""
    def hwio(t):
        a = t.detach().numpy()
        return a.transpose(2, 3, 1, 0) if a.ndim == 4 else a

    p, out = "resnet/", {}
    out[f"{p}root_block/standardized_conv2d/kernel"] = hwio(net.stem.conv.weight)
    out[f"{p}group_norm/gamma"], out[f"{p}group_norm/beta"] = hwio(net.norm.weight), hwio(net.norm.bias)
    out[f"{p}head/conv2d/kernel"], out[f"{p}head/conv2d/bias"] = hwio(net.head.fc.weight), hwio(net.head.fc.bias)
    for i, stage in enumerate(net.stages):
        for j, block in enumerate(stage.blocks):
            b = f"{p}block{i + 1}/unit{j + 1:02d}/"
            for part, conv, norm in (("a", block.conv1, block.norm1), ("b", block.conv2, block.norm2),
                                     ("c", block.conv3, block.norm3)):
                out[f"{b}{part}/standardized_conv2d/kernel"] = hwio(conv.weight)
                out[f"{b}{part}/group_norm/gamma"], out[f"{b}{part}/group_norm/beta"] = hwio(norm.weight), hwio(norm.bias)
            if block.downsample is not None:
                out[f"{b}a/proj/standardized_conv2d/kernel"] = hwio(block.downsample.conv.weight)
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def vit_npz(net: nn.Module, scanned: bool) -> dict[str, np.ndarray]:
    """timm's ViT (class token without a position embedding, tanh GELU: big_vision's model) as a
    big_vision .npz (the inverse of timm's _load_weights for such files); scanned: the encoder blocks
    stacked on a leading axis under Transformer/encoderblock/ (big_vision's scan=True)."""
    a = lambda t: t.detach().numpy()  # noqa: E731
    d = net.embed_dim
    h = net.blocks[0].attn.num_heads
    out = {"params/embedding/kernel": a(net.patch_embed.proj.weight).transpose(2, 3, 1, 0),
           "params/embedding/bias": a(net.patch_embed.proj.bias), "params/cls": a(net.cls_token),
           "params/pos_embedding": a(net.pos_embed),
           "params/Transformer/encoder_norm/scale": a(net.norm.weight),
           "params/Transformer/encoder_norm/bias": a(net.norm.bias),
           "params/head/kernel": a(net.head.weight).T, "params/head/bias": a(net.head.bias)}
    blocks = []
    for blk in net.blocks:
        qkv_w, qkv_b = a(blk.attn.qkv.weight), a(blk.attn.qkv.bias)
        b = {"LayerNorm_0/scale": a(blk.norm1.weight), "LayerNorm_0/bias": a(blk.norm1.bias),
             "LayerNorm_1/scale": a(blk.norm2.weight), "LayerNorm_1/bias": a(blk.norm2.bias),
             "MultiHeadDotProductAttention_0/out/kernel": a(blk.attn.proj.weight).reshape(d, h, d // h).transpose(1, 2, 0),
             "MultiHeadDotProductAttention_0/out/bias": a(blk.attn.proj.bias),
             "MlpBlock_0/Dense_0/kernel": a(blk.mlp.fc1.weight).T, "MlpBlock_0/Dense_0/bias": a(blk.mlp.fc1.bias),
             "MlpBlock_0/Dense_1/kernel": a(blk.mlp.fc2.weight).T, "MlpBlock_0/Dense_1/bias": a(blk.mlp.fc2.bias)}
        for i, n in enumerate(("query", "key", "value")):
            b[f"MultiHeadDotProductAttention_0/{n}/kernel"] = qkv_w[i * d : (i + 1) * d].T.reshape(d, h, d // h)
            b[f"MultiHeadDotProductAttention_0/{n}/bias"] = qkv_b[i * d : (i + 1) * d].reshape(h, d // h)
        blocks.append(b)
    if scanned:
        out.update({f"params/Transformer/encoderblock/{k}": np.stack([b[k] for b in blocks]) for k in blocks[0]})
    else:
        out.update({f"params/Transformer/encoderblock_{i}/{k}": v for i, b in enumerate(blocks) for k, v in b.items()})
    return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}


def vit_jax_npz(net: nn.Module) -> dict[str, np.ndarray]:
    """timm's ViT with a position for the class token as a vit_jax .npz (google-research/
    vision_transformer, the augreg files): no "params/" prefix, the position embedding under
    Transformer/posembed_input, the block's sublayers numbered LayerNorm_0, ..._1, LayerNorm_2, MlpBlock_3."""
    bv = vit_npz(net, scanned=False)
    rename = {"LayerNorm_1": "LayerNorm_2", "MultiHeadDotProductAttention_0": "MultiHeadDotProductAttention_1",
              "MlpBlock_0": "MlpBlock_3"}
    out = {}
    for k, v in bv.items():
        k = k.removeprefix("params/")
        if k == "pos_embedding":
            k = "Transformer/posembed_input/pos_embedding"
        parts = k.split("/")
        if len(parts) > 2 and parts[1].startswith("encoderblock_"):
            parts[2] = rename.get(parts[2], parts[2])
        out["/".join(parts)] = v
    return out


def small_vit_jax() -> nn.Module:
    return timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=10,
        class_token=True, no_embed_class=False, global_pool="token", act_layer="gelu_tanh")


def small_vit() -> nn.Module:
    return timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=10,
        class_token=True, no_embed_class=True, global_pool="token", act_layer="gelu_tanh")


def main(out_dir: str) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    fc = lambda net: net.fc  # noqa: E731
    made = {
        # name: (network, normalization, image size, the module whose input is the features, format)
        "torchvision_resnet18": (shrunk_resnet(tvm.resnet.BasicBlock, [2, 2, 2, 2], 16, num_classes=10), IMAGENET, 32, fc, "pth"),
        "torchvision_resnet50": (shrunk_resnet(tvm.resnet.Bottleneck, [3, 4, 6, 3], 16, num_classes=10), IMAGENET, 32, fc, "safetensors"),
        "torchvision_wide_resnet50_2": (shrunk_resnet(tvm.resnet.Bottleneck, [3, 4, 6, 3], 32, num_classes=10,
                                                      width_per_group=128), IMAGENET, 32, fc, "pth"),
        "torchvision_densenet121": (tvm.DenseNet(growth_rate=2, block_config=(6, 12, 24, 16), num_init_features=8,
                                                 num_classes=10), IMAGENET, 32, lambda net: net.classifier, "pth"),
        "cifar_wrn16_1": (HendrycksWRN(16, 1, 10), CIFAR, 32, fc, "pth-legacy"),  # as the OE repository's
        "cifar_resnet18": (OpenOODResNet18((8, 16, 16, 32), 10), CIFAR, 32, fc, "pth"),
        "big_vision_vit": (small_vit(), HALF, 32, lambda net: net.head, "vit"),
        "big_vision_vit_scanned": (small_vit(), HALF, 32, lambda net: net.head, "vit-scanned"),
        "vit_jax_vit": (small_vit_jax(), HALF, 32, lambda net: net.head, "vit-jax"),
        "bit_r50x1": (resnetv2.ResNetV2(BIT_LAYERS, channels=BIT_CHANNELS, stem_chs=32, num_classes=10,
                                        stem_type="fixed", conv_layer=resnetv2.partial(resnetv2.StdConv2d, eps=1e-8)),
                      HALF, 64, lambda net: net.head.fc, "npz"),
    }
    for name, (net, norm, size, features_of, fmt) in made.items():
        randomize(net, gen)
        if fmt.startswith("vit"):
            ref = reference(net, norm, size, gen, features_of)
            weights = vit_jax_npz(net) if fmt == "vit-jax" else vit_npz(net, scanned=fmt == "vit-scanned")
            np.savez(out / f"{name}.npz", **weights)
            again = randomize(small_vit_jax() if fmt == "vit-jax" else small_vit(), gen)
            timm.models.vision_transformer._load_weights(again, str(out / f"{name}.npz"))  # timm reads it back
            with torch.no_grad():
                check = again((torch.from_numpy(ref["x"]).permute(0, 3, 1, 2) - 0.5) / 0.5).numpy()
            assert np.allclose(check, ref["logits"], atol=1e-5), "timm does not read the .npz back"
        elif fmt == "npz":  # the features are the pooled input of BiT's 1x1-conv head
            ref = reference(net, norm, size, gen, features_of)
            weights = bit_npz(net)
            again = randomize(type(net)(BIT_LAYERS, channels=BIT_CHANNELS, stem_chs=32, num_classes=10,
                                        stem_type="fixed", conv_layer=resnetv2.partial(resnetv2.StdConv2d, eps=1e-8)),
                              gen)
            np.savez(out / f"{name}.npz", **weights)
            resnetv2._load_weights(again, str(out / f"{name}.npz"))  # timm reads our file back: the same network
            with torch.no_grad():
                x = torch.from_numpy(ref["x"]).permute(0, 3, 1, 2)
                check = again((x - 0.5) / 0.5).numpy()
            assert np.allclose(check, ref["logits"], atol=1e-5), "timm does not read the .npz back"
        else:
            ref = reference(net, norm, size, gen, features_of)
            state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
            if fmt == "safetensors":
                save_file(state, str(out / f"{name}.safetensors"))
            else:  # pth-legacy: the pre-1.6 format that older OOD checkpoints have
                torch.save(state, out / f"{name}.pth", _use_new_zipfile_serialization=fmt == "pth")
        np.savez(out / f"{name}.ref.npz", **ref)
        n = sum(p.numel() for p in net.parameters())
        print(f"{name}: {n} parameters, logits {ref['logits'].shape}, features {ref['features'].shape}")
    # The reader's cases: a training checkpoint dict around a DataParallel state dict, bfloat16 and
    # float16 tensors, a transposed (non-contiguous) view, an int64 buffer; and its expected arrays.
    w = torch.randn((3, 4), generator=gen)
    tensors = {"module.fc.weight": w.t(), "module.fc.bias": torch.randn(3, generator=gen).to(torch.bfloat16),
               "module.half": torch.randn((2, 2), generator=gen).half(), "module.count": torch.tensor(7)}
    torch.save({"epoch": 3, "arch": "demo", "state_dict": tensors}, out / "reader_cases.pth")
    np.savez(out / "reader_cases.expected.npz", **{k[len("module."):]: (v.float() if v.is_floating_point() else v).numpy()
                                                   for k, v in tensors.items()})
    print(f"timm {timm.__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/checkpoints")
