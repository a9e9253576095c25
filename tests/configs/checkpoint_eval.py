"""A tiny tfds experiment whose model is meant to be replaced by `--checkpoint` (tests/test_import.py):
oodjax's synthetic 32x32 RGB tfds dataset (--data-dir), scored with post-hoc, tuned and gradient
scorers. Run as it is, it would train the small CNN."""

from oodjax.data.tfds_build import NAME
from oodjax.experiment import Experiment, ModelSpec, OODSpec, TfdsData
from oodjax.training import TrainConfig

SCORERS = {
    "msp": ("msp", {}), "energy": ("energy", {}), "knn": ("knn", {"k": 3}), "gradnorm": ("gradnorm", {}),
    "odin": ("odin", {"temperatures": (1.0, 100.0), "epsilons": (0.0, 0.002)}),
}


def get_config(variant: str = "default") -> Experiment:
    if variant != "default":
        raise ValueError(f"unknown variant {variant!r}; choose 'default'")
    return Experiment(
        name="checkpoint_eval", progress=False, fit_size=40, batch_size=16, views=("table",),
        data=TfdsData(NAME, image_size=32, val_size=20, test_size=30, normalization=((0.45,) * 3, (0.25,) * 3),
                      ood=(OODSpec("gaussian_noise", size=20),)),
        models=(ModelSpec("trained_here", SCORERS),), train=TrainConfig(epochs=1, batch_size=16),
    )
