"""The OpenOOD v1.5 leaderboard's post-hoc methods on ImageNet-1K (issue 15), post hoc on
torchvision's ResNet-50 (V1 weights, the leaderboard's network), next to the baselines: near OOD
SSB-hard and NINCO, far OOD iNaturalist, Textures and OpenImage-O, as OpenOOD v1.5 splits them
(image folders under data/imagenet_ood/: ssb_hard/, ninco/, iNaturalist/, dtd/images/,
openimage_o/; experiments/presets/imagenet.py). Methods that fit on ID data fit on 1% of the
training images (KNN with k = 10, as Sun et al. 2022's alpha = 1%); NAC-UE reads layer1-3 and the
pooled features with the official ImageNet settings (`nac_ue_penultimate`: the last alone); tunable hyper-parameters (ASH's
and SCALE's percentiles, ...) are tuned on each OOD set's validation split (20%), never its test split.

    python -m experiments.run experiments/configs/imagenet_leaderboard.py --data-dir ~/tensorflow_datasets
"""

from experiments.presets.common import BASELINES, LEADERBOARD
from experiments.presets.imagenet import checkpoint_model, experiment, folder, imagenet

SCORERS = {name: (name, {"k": 10} if name == "knn" else {}) for name in BASELINES + LEADERBOARD}
SCORERS["nac_ue"] = ("nac_ue", {"layers": "imagenet"})
SCORERS["nac_ue_penultimate"] = ("nac_ue", {})
OOD = (folder("SSB-hard", "ssb_hard", "near"), folder("NINCO", "ninco", "near"),
       folder("iNaturalist", "iNaturalist"), folder("Textures", "dtd/images"), folder("OpenImage-O", "openimage_o"))


def get_config(variant: str = "default"):
    if variant != "default":
        raise ValueError(f"unknown variant {variant!r}; choose 'default'")
    return experiment("imagenet_leaderboard", imagenet(OOD), (checkpoint_model("resnet50", SCORERS),),
                      "OpenOOD v1.5 methods on ImageNet-1K, ResNet-50 (ID positive)", fit_size=0.01)
