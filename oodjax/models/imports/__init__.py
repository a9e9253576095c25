"""Pretrained networks into the Flax zoo: `import_checkpoint(path, arch=None)` -> (model, variables).

Layouts (detected from the parameter names; the architecture is read off the names and shapes):
- torchvision `.pth`/`.pt`/`.safetensors`: ResNet-18/34/50/101/152, Wide ResNet-50-2/101-2,
  DenseNet-121/161/169/201 (ImageNet normalization);
- the CIFAR Wide ResNet of the OOD repositories (Outlier Exposure, Energy, OpenOOD: WRN-40-2,
  WRN-28-10) and OpenOOD's ResNet18_32x32 (CIFAR-10 normalization);
- BiT `.npz` (big_transfer: BiT-S/M R50x1, R101x1, ...; inputs scaled to [-1, 1]);
- big_vision ViT `.npz` (ViT-B/16 and any size; blocks one by one or scanned; inputs in [-1, 1]), and
  vit_jax's (google-research/vision_transformer, the augreg files: a position for the class token);
- our own orbax training checkpoints (a workdir, its checkpoints/ or one step; arch= a zoo name).
The model takes images in [0, 1] (NHWC) and applies the source's normalization itself.
"""

from oodjax.models.imports._api import ARCHS, import_checkpoint, normalized
from oodjax.models.imports._read import CheckpointError, read_state

__all__ = ["ARCHS", "CheckpointError", "import_checkpoint", "normalized", "read_state"]
