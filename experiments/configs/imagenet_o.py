"""Paper 003 on ImageNet-O across architectures, post hoc: MSP, and ODIN at every (T, eps) of the
paper's grid (T in {100, 1000} x eps in {0.001, 0.0014, 0.002, 0.0024, 0.005}, and the baseline
T = 1000, eps = 0), each its own column as in its Figures 5-7 (no tuning: all 2000 ImageNet-O images
are scored); ImageNet-O is an image folder (experiments/presets/imagenet.py). The paper counts OOD as the positive class: fpr95_ood_positive.

    python -m experiments.run experiments/configs/imagenet_o.py --data-dir ~/tensorflow_datasets
    python -m experiments.run experiments/configs/imagenet_o.py --variant resnet50 ...   # one architecture
"""

from experiments.presets.imagenet import checkpoint_model, experiment, folder, imagenet

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "densenet121")
GRID = [(1000.0, 0.0)] + [(t, e) for t in (100.0, 1000.0) for e in (0.001, 0.0014, 0.002, 0.0024, 0.005)]
SCORERS = {"MSP": ("msp", {}),
           **{f"ODIN T={t:g} eps={e:g}": ("odin", {"temperature": t, "epsilon": e, "temperatures": None,
                                                   "epsilons": None}) for t, e in GRID}}


def get_config(variant: str = "default"):
    archs = ARCHS if variant == "default" else (variant,)
    if not set(archs) <= set(ARCHS):
        raise ValueError(f"unknown variant {variant!r}; choose 'default' (all) or one of {ARCHS}")
    return experiment(f"imagenet_o{'' if variant == 'default' else '_' + variant}",
                      imagenet((folder("ImageNet-O", "imagenet-o"),), ood_val_percent=0), tuple(checkpoint_model(a, SCORERS) for a in archs),
                      "Paper 003: ImageNet vs ImageNet-O (OOD positive: fpr95_ood_positive)",
                      metrics=("auroc", "aupr_out", "fpr95_ood_positive", "aupr_in"))
