"""Paper 000's benchmark tables on real data (GPU/TPU): a plain and an anchored network of the same
backbone, the baselines on the plain one and the AMP family on the anchored one.

  table2_cifar10 / table2_cifar100   WRN-40-2; iSUN, LSUN (R), LSUN (C), Places365, Texture, SVHN
  table3_cifar10 / table3_cifar100   ResNet-34; iSUN, LSUN (R), LSUN (C), TinyImageNet (R) and (C),
                                     the other CIFAR, SVHN (Sastry & Oore's seven)
  table4_c10_c100 / table4_c100_c10  ResNet-34; near OOD: the other CIFAR (reuses table3's models)
  table6_cifar10 / table6_cifar100   ResNet-18; the SCOOD test sets (Yang et al. 2021)
  table7_cifar10 / table7_cifar100   ResNet-34; original LSUN images resized with Pillow nearest,
                                     bilinear, bicubic and lanczos (reuses table3's models)

Training as in the paper: 200 epochs, SGD lr 0.1, decay 0.2 at epochs 60, 120, 160, crop + flip;
consistency training with all five corruptions every 5th batch, 5 anchors at inference.

Data: tfds datasets from --data-dir (`tfds build cifar10 cifar100 svhn_cropped dtd places365_small
--data_dir <dir>`), and the image-folder sets under $OODJAX_OOD_ROOT (default data/ood):
  iSUN/  LSUN_resize/  LSUN/  TinyImageNet_resize/  TinyImageNet_crop/   (ODIN's released sets)
  LSUN_original/   (full-size LSUN test images, for Table 7)
  scood/{texture,svhn,cifar,tin,lsun,places365}/   (the SCOOD benchmark's test images; Table 6
  trains on CIFAR itself, not on SCOOD's re-labelled training sets)

    python -m experiments.run experiments/configs/amp_paper.py --variant table2_cifar10 --data-dir ~/tfds
"""

import os

from experiments.presets import paper000
from experiments.presets.common import CIFAR_TRAIN
from oodjax.experiment import Anchoring, Experiment, ModelSpec, OODSpec, TfdsData

OOD_ROOT = os.environ.get("OODJAX_OOD_ROOT", "data/ood")
BASELINES = {
    "msp": ("msp", {}),
    "odin": ("odin", {"tune_size": 1000}),
    "energy": ("energy", {}),
    "gram": ("gram", {}),
    "mahalanobis": ("mahalanobis", {}),
}
MODELS = {"table2": "wrn40_2", "table3": "resnet34", "table4": "resnet34", "table6": "resnet18", "table7": "resnet34"}


def _folder(name: str, sub: str, **kw) -> OODSpec:
    return OODSpec(name, folder=os.path.join(OOD_ROOT, sub), **kw)


def _ood_sets(table: str, id_dataset: str) -> tuple[OODSpec, ...]:
    other = "cifar100" if id_dataset == "cifar10" else "cifar10"
    odin_sets = (_folder("iSUN", "iSUN"), _folder("LSUN (R)", "LSUN_resize"), _folder("LSUN (C)", "LSUN"))
    if table == "table2":
        return (*odin_sets, OODSpec("places365"), OODSpec("dtd"), OODSpec("svhn"))
    if table == "table3":
        return (*odin_sets, _folder("TinyImageNet (R)", "TinyImageNet_resize"),
                _folder("TinyImageNet (C)", "TinyImageNet_crop"), OODSpec(other, kind="near"), OODSpec("svhn"))
    if table == "table4":
        return (OODSpec(other, kind="near"),)
    if table == "table6":
        return tuple(_folder(f"scood-{s}", os.path.join("scood", s)) for s in
                     ("texture", "svhn", "cifar", "tin", "lsun", "places365"))
    if table == "table7":
        return tuple(_folder(f"LSUN-{m}", "LSUN_original", resample=m, kind="resize")
                     for m in ("nearest", "bilinear", "bicubic", "lanczos"))
    raise ValueError(table)


VARIANTS = {
    "table2_cifar10": ("table2", "cifar10"), "table2_cifar100": ("table2", "cifar100"),
    "table3_cifar10": ("table3", "cifar10"), "table3_cifar100": ("table3", "cifar100"),
    "table4_c10_c100": ("table4", "cifar10"), "table4_c100_c10": ("table4", "cifar100"),
    "table6_cifar10": ("table6", "cifar10"), "table6_cifar100": ("table6", "cifar100"),
    "table7_cifar10": ("table7", "cifar10"), "table7_cifar100": ("table7", "cifar100"),
}


def get_config(variant: str = "table2_cifar10") -> Experiment:
    if variant == "default":
        variant = "table2_cifar10"
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    table, id_dataset = VARIANTS[variant]
    # Tables 3, 4 and 7 share the ResNet-34 models: one training run per ID dataset.
    shared = f"results/amp_resnet34_{id_dataset}" if MODELS[table] == "resnet34" else None
    return Experiment(
        name=f"amp_{variant}", data=TfdsData(id_dataset, ood=_ood_sets(table, id_dataset), ood_test_size=10000),
        models=(ModelSpec(id_dataset, BASELINES),
                ModelSpec(f"{id_dataset}_anchored", paper000.amp_scorers(), anchoring=Anchoring(), fit_size=1000,
                          val_size=1000)),
        arch=MODELS[table], train=CIFAR_TRAIN, train_dir=shared,
        views=("summary", "table", "plots", "table7", "fig5"),
    )
