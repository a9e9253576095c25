"""Paper 002 (RG) on ImageNet-1k, post hoc: Table 1 (BiT-S-R101x1 at 480 px, the default), Table 6
(DenseNet-121, variant densenet121) and Table 7 (ResNet-50 with KNN, variant resnet50), against the
MOS subsets of iNaturalist, SUN, Places and Textures (image folders, experiments/presets/imagenet.py).
ODIN at the GradNorm paper's T = 1000, eps = 0 (no tuning on OOD data: every OOD image is scored);
KNN with k = 10 on 1% of the training images (Sun et al. 2022's alpha = 1%); Mahalanobis on the same
1%. ReAct clips at the 90th percentile of those images' activations (the ReAct paper's rule; paper 002
reports ReAct from earlier papers). DenseNet-121 runs at 224 px (the resolution it was trained at;
the paper resizes to 480 px for BiT).

    python -m experiments.run experiments/configs/imagenet_rg.py --data-dir ~/tensorflow_datasets
    python -m experiments.run experiments/configs/imagenet_rg.py --variant densenet121 --data-dir ...
"""

from experiments.presets.imagenet import checkpoint_model, experiment, folder, imagenet

SCORERS = {
    "MSP": ("msp", {}), "ODIN": ("odin", {"temperature": 1000.0, "epsilon": 0.0, "temperatures": None, "epsilons": None}),
    "Energy": ("energy", {}), "Mahalanobis": ("mahalanobis", {}), "GradNorm": ("gradnorm", {}),
    "ReAct": ("react", {}), "KL matching": ("kl_matching", {}), "RG": ("rg", {}),
    "eq. 4 (expected GradNorm)": ("expected_gradnorm", {}), "eq. 5 (exp-sum GradNorm)": ("expsum_gradnorm", {}),
}
OOD = (folder("iNaturalist", "iNaturalist"), folder("SUN", "SUN"), folder("Places", "Places"),
       folder("Textures", "dtd/images"))
VARIANTS = {"default": ("bit_r101x1", 480, {}), "densenet121": ("densenet121", 224, {}),
            "resnet50": ("resnet50", 224, {"KNN": ("knn", {"k": 10})})}


def get_config(variant: str = "default"):
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {sorted(VARIANTS)}")
    arch, size, extra = VARIANTS[variant]
    return experiment(f"imagenet_rg_{arch}", imagenet(OOD, size, ood_val_percent=0), (checkpoint_model(arch, {**SCORERS, **extra}),),
                      "Paper 002 on ImageNet-1k (ID positive; FPR at 95% TPR of ID)", fit_size=0.01)
