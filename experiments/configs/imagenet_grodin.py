"""Paper 004 (GRODIN) on ImageNet-1k, post hoc: its Table 5, GRODIN's G and SG against MSP, ODIN and
max-logit (ML), ResNet-18 (the default) or ResNet-50, on ImageNet-O (image folder), ImageNet-A,
ImageNet-R and ImageNet-C (glass blur, severity 5) from tfds; T and eps tuned per OOD set on its
validation split (10%: the paper holds out 600 images of each) and on 3000 ID validation images (held
out of the train split; the paper takes them from the validation split); mean and bootstrap std over
100 resamplings, as the paper reports.

    python -m experiments.run experiments/configs/imagenet_grodin.py --data-dir ~/tensorflow_datasets
"""

from experiments.presets.imagenet import checkpoint_model, experiment, folder, imagenet
from oodjax.experiment import OODSpec

TEMPERATURES = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
EPSILONS = tuple(round(0.0002 * i, 4) for i in range(21))  # 21 values in [0, 0.004]
GRID = {"temperatures": TEMPERATURES, "epsilons": EPSILONS, "criterion": "auroc"}  # the paper tunes on ROC-AUC
SCORERS = {"MSP": ("msp", {}), "ML": ("max_logit", {}), "ODIN": ("odin", GRID),
           "GRODIN G": ("grodin_g", GRID), "GRODIN SG": ("grodin_sg", GRID)}
OOD = (folder("ImageNet-O", "imagenet-o"), OODSpec("imagenet_a"), OODSpec("imagenet_r", kind="covariate"),
       OODSpec("imagenet_c/glass_blur/5", kind="covariate"))


def get_config(variant: str = "default"):
    arch = {"default": "resnet18", "resnet50": "resnet50"}.get(variant)
    if arch is None:
        raise ValueError(f"unknown variant {variant!r}; choose 'default' (ResNet-18) or 'resnet50'")
    return experiment(f"imagenet_grodin_{arch}", imagenet(OOD, ood_val_percent=10),
                      (checkpoint_model(arch, SCORERS),), "Paper 004 on ImageNet-1k (ID positive)", bootstrap=100)
