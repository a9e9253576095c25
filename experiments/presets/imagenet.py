"""ImageNet-1k benchmarks of papers 002-004, post hoc on pretrained checkpoints (no training).

Data: tfds `imagenet2012` (its validation split is the ID test set; a subset of its train split is
what Mahalanobis / KNN fit on; prepare it with `tfds build imagenet2012 --file_format=array_record`
and the archives in <data_dir>/downloads/manual), tfds `imagenet_a`, `imagenet_r`,
`imagenet2012_corrupted`, and image folders under OOD_DIR for the sets tfds does not have:
ImageNet-O (imagenet-o/) and the MOS subsets of iNaturalist, SUN, Places and Textures
(iNaturalist/, SUN/, Places/, dtd/images/). Images are resized to image_size x image_size (no
256-resize-then-224-crop: top-1 is about 1 point below torchvision's reported accuracy).

Checkpoints: put the files in CHECKPOINT_DIR (or pass --checkpoint PATH); nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oodjax.experiment import Experiment, ModelSpec, OODSpec, TfdsData

CHECKPOINT_DIR = "checkpoints"
OOD_DIR = "data/imagenet_ood"
# file name -> where it is published (the import reads these layouts; see models.import_checkpoint)
CHECKPOINTS: dict[str, tuple[str, str]] = {
    "resnet18": ("resnet18-f37072fd.pth", "https://download.pytorch.org/models/resnet18-f37072fd.pth"),
    "resnet34": ("resnet34-b627a593.pth", "https://download.pytorch.org/models/resnet34-b627a593.pth"),
    "resnet50": ("resnet50-0676ba61.pth", "https://download.pytorch.org/models/resnet50-0676ba61.pth"),
    "resnet101": ("resnet101-63fe2227.pth", "https://download.pytorch.org/models/resnet101-63fe2227.pth"),
    "resnet152": ("resnet152-394f9c45.pth", "https://download.pytorch.org/models/resnet152-394f9c45.pth"),
    "wide_resnet50_2": ("wide_resnet50_2-95faca4d.pth",
                        "https://download.pytorch.org/models/wide_resnet50_2-95faca4d.pth"),
    "densenet121": ("densenet121-a639ec97.pth", "https://download.pytorch.org/models/densenet121-a639ec97.pth"),
    "bit_r101x1": ("BiT-S-R101x1.npz", "https://storage.googleapis.com/bit_models/BiT-S-R101x1.npz"),
}
METRICS = ("fpr95", "auroc", "aupr_in", "aupr_out")


def checkpoint_model(arch: str, scorers: Mapping[str, tuple[str, Mapping[str, Any]]], **kw: Any) -> ModelSpec:
    """A ModelSpec scoring the published `arch` checkpoint from CHECKPOINT_DIR."""
    return ModelSpec(arch, scorers, checkpoint=f"{CHECKPOINT_DIR}/{CHECKPOINTS[arch][0]}", checkpoint_arch=arch, **kw)


def folder(name: str, sub: str, kind: str = "far") -> OODSpec:
    return OODSpec(name, folder=f"{OOD_DIR}/{sub}", kind=kind)


def imagenet(ood: tuple[OODSpec, ...], image_size: int = 224, **kw: Any) -> TfdsData:
    return TfdsData("imagenet", ood=ood, image_size=image_size, val_size=kw.pop("val_size", 3000), **kw)


def experiment(name: str, data: TfdsData, models: tuple[ModelSpec, ...], title: str, **kw: Any) -> Experiment:
    return Experiment(name=name, data=data, models=models, title=title, metrics=kw.pop("metrics", METRICS),
                      views=("summary", "table", "plots"), batch_size=kw.pop("batch_size", 128), **kw)
