"""Paper 001, Tables 1 and 2: Baseline (MSP), Baseline+T, ODIN, BIN, BINC, VIB, VIBY-I and VIBY-II
against Gaussian noise and crop / resize OOD sets: FPR95, Detection Error, AUROC, AUPR-In/Out,
and each model's accuracy.

Variants:
  default  the embedded suite on a CPU: Fashion-MNIST small CNNs (1 epoch each) against
           gaussian_noise, photo_crop (TinyImageNet-crop analogue) and photo_resize (-resize); ~8 min
  small    fewer images, for smoke tests
  cifar10  the paper's setting (GPU/TPU): CIFAR-10 (45k/5k/10k) via tfds, WRN-28-10 without dropout,
           200 epochs of SGD + Nesterov at lr 0.1 dropped x0.1 at 50% and 75%, batch 128; OOD:
           Gaussian noise (1500 images, N(0.5, 1) clipped) and TinyImageNet crop / resize folders
           under $OODJAX_OOD_ROOT (ODIN's releases), 1000 test / 500 validation each.

    python -m experiments.run experiments/configs/survey_table1.py [--variant cifar10 --data-dir ...]
"""

import dataclasses
import os

from oodjax.experiment import BenchmarkConfig, EmbeddedConfig, OODSpec
from oodjax.methods import MethodsConfig, survey_methods
from oodjax.training import TrainConfig

TITLE = "Paper 001, Table 1 (OOD detection, ID positive) and Table 2 (accuracy)"
CPU_ODIN = {"tune_size": 100, "temperatures": (1.0, 10.0, 100.0, 1000.0), "epsilons": (0.0, 0.001, 0.002, 0.004)}


def get_config(variant: str = "default") -> MethodsConfig:
    if variant in ("default", "small"):
        base = EmbeddedConfig(
            name="survey_table1", test_size=2000, near_ood_classes=None, resize_sets=False, corruptions=(),
            far_sets=("gaussian_noise", "photo_crop", "photo_resize"),
            train=TrainConfig(epochs=1, batch_size=64, learning_rate=0.05, checkpoint_every=200), amp=None,
        )
        if variant == "small":
            base = dataclasses.replace(base, name="survey_table1_small", train_size=4096, val_size=1000, fit_size=1000,
                                       train=TrainConfig(epochs=2, batch_size=64, learning_rate=0.05))
        return MethodsConfig(base=base, methods=survey_methods(CPU_ODIN), name=base.name, title=TITLE)
    if variant == "cifar10":
        root = os.environ.get("OODJAX_OOD_ROOT", "data/ood")
        base = BenchmarkConfig(
            name="survey_table1_cifar10", id_dataset="cifar10", model="wrn28_10", val_size=5000,
            ood=(OODSpec("gaussian_noise", size=1500),
                 OODSpec("TinyImageNet (crop)", folder=os.path.join(root, "TinyImageNet_crop")),
                 OODSpec("TinyImageNet (resize)", folder=os.path.join(root, "TinyImageNet_resize"))),
            ood_val_percent=33,  # 1000 test / 500 validation of 1500
            train=TrainConfig(epochs=200, batch_size=128, learning_rate=0.1, augment=True, schedule="step",
                              schedule_kwargs={"milestones": (100, 150), "gamma": 0.1}, checkpoint_every=1000),
        )
        return MethodsConfig(base=base, methods=survey_methods(), name=base.name, title=TITLE)
    raise ValueError(f"unknown variant {variant!r}; choose 'default', 'small' or 'cifar10'")
