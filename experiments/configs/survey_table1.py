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

from experiments.presets.paper001 import METRICS, TITLE, survey_models
from oodjax.experiment import EmbeddedData, Experiment, OODSpec, TfdsData
from oodjax.training import TrainConfig

CPU_ODIN = {"tune_size": 100, "temperatures": (1.0, 10.0, 100.0, 1000.0), "epsilons": (0.0, 0.001, 0.002, 0.004)}


def get_config(variant: str = "default") -> Experiment:
    common = dict(title=TITLE, metrics=METRICS, views=("methods_table", "plots"))
    if variant in ("default", "small"):
        exp = Experiment(
            name="survey_table1", models=survey_models(CPU_ODIN),
            data=EmbeddedData(test_size=2000, resize_sets=False, corruptions=(),
                              far_sets=("gaussian_noise", "photo_crop", "photo_resize")),
            train=TrainConfig(epochs=1, batch_size=64, learning_rate=0.05, checkpoint_every=200), **common,
        )
        if variant == "small":
            exp = dataclasses.replace(exp, name="survey_table1_small", fit_size=1000,
                                      data=dataclasses.replace(exp.data, train_size=4096, val_size=1000),
                                      train=TrainConfig(epochs=2, batch_size=64, learning_rate=0.05))
        return exp
    if variant == "cifar10":
        root = os.environ.get("OODJAX_OOD_ROOT", "data/ood")
        data = TfdsData(
            "cifar10", val_size=5000, ood_val_percent=33,  # 1000 test / 500 validation of 1500
            ood=(OODSpec("gaussian_noise", size=1500),
                 OODSpec("TinyImageNet (crop)", folder=os.path.join(root, "TinyImageNet_crop")),
                 OODSpec("TinyImageNet (resize)", folder=os.path.join(root, "TinyImageNet_resize"))))
        return Experiment(
            name="survey_table1_cifar10", data=data, models=survey_models(), arch="wrn28_10",
            train=TrainConfig(epochs=200, batch_size=128, learning_rate=0.1, augment=True, schedule="step",
                              schedule_kwargs={"milestones": (100, 150), "gamma": 0.1}, checkpoint_every=1000),
            **common)
    raise ValueError(f"unknown variant {variant!r}; choose 'default', 'small' or 'cifar10'")
