"""Papers 003 and 004 baselines side by side: MSP, ODIN, energy, RealNVP likelihoods (pixels with
checkerboard masks, + the OOD-likelihood term, + cyclic masks, + a bottleneck; embeddings, +
the OOD term), energy-bounded fine-tuning with outlier exposure, MC-dropout and a deep ensemble
(the six uncertainty measures of paper 004).

The outlier exposure and the flows' OOD term use a designated auxiliary set disjoint from the test
sets: on the embedded suite, crops of scikit-image photos no test set uses
(`data.auxiliary_outliers`).

Variants:
  default  the embedded suite's far OOD sets on a CPU (6 small CNNs of one epoch, 6 flows of 500 steps)
  small    fewer images and steps, for smoke tests
  cifar10  GPU/TPU: CIFAR-10 via tfds with WRN-40-2, OE fine-tuning (10 epochs, lr 0.001, cosine;
           Liu et al.'s lambda 0.1, m_in -25, m_out -7) on the folder $OODJAX_OOD_ROOT/300K_random_images.

    python -m experiments.run experiments/configs/uncertainty.py
"""

import dataclasses
import os

from experiments.presets.common import CIFAR_TRAIN
from experiments.presets.papers003_004 import METRICS, TITLE, uncertainty_models
from oodjax import data
from oodjax.experiment import EmbeddedData, Experiment, OODSpec, TfdsData
from oodjax.training import EnergyOE, TrainConfig

CPU_ODIN = {"tune_size": 100, "temperatures": (1.0, 10.0, 100.0, 1000.0), "epsilons": (0.0, 0.001, 0.002, 0.004)}


def get_config(variant: str = "default") -> Experiment:
    common = dict(title=TITLE, metrics=METRICS, views=("methods_table", "plots"))
    if variant in ("default", "small"):
        finetune = TrainConfig(epochs=1, batch_size=64, learning_rate=0.005)
        # One-epoch small CNN on Fashion-MNIST: median ID energy -7.5, outliers -4.1 (measured), not -25 / -7
        # as for Liu et al.'s CIFAR WRN.
        oe = EnergyOE(lam=0.1, m_in=-12.0, m_out=-4.0)
        noise = 1.0 / (256 * float(data.STD))  # one 8-bit level of the normalized pixels
        models = uncertainty_models(flow_steps=500, flow_hidden=128, pixel_noise=noise, finetune=finetune, oe=oe,
                                    odin=CPU_ODIN)
        exp = Experiment(
            name="uncertainty", models=models, outliers=OODSpec("auxiliary_outliers"),
            data=EmbeddedData(test_size=2000, resize_sets=False, corruptions=(), ood_test_size=400),
            train=TrainConfig(epochs=1, batch_size=64, learning_rate=0.05, checkpoint_every=200), **common,
        )
        if variant == "small":
            exp = dataclasses.replace(
                exp, name="uncertainty_small", fit_size=1000, train=TrainConfig(epochs=2, batch_size=64, learning_rate=0.05),
                data=dataclasses.replace(exp.data, train_size=4096, val_size=1000,
                                         far_sets=("digits", "textures", "gaussian_noise")),
                models=uncertainty_models(flow_steps=200, flow_hidden=64, pixel_noise=noise, finetune=finetune, oe=oe,
                                          members=2, mc_samples=4, odin=CPU_ODIN))
        return exp
    if variant == "cifar10":
        root = os.environ.get("OODJAX_OOD_ROOT", "data/ood")
        data_spec = TfdsData("cifar10", ood=(OODSpec("svhn"), OODSpec("dtd"), OODSpec("places365"),
                                             OODSpec("gaussian_noise")))
        models = uncertainty_models(finetune=TrainConfig(epochs=10, batch_size=128, learning_rate=0.001, augment=True),
                                    dropout=0.3, members=5)
        return Experiment(
            name="uncertainty_cifar10", data=data_spec, models=models, arch="wrn40_2", train=CIFAR_TRAIN,
            outliers=OODSpec("300K random images", folder=os.path.join(root, "300K_random_images")),
            outlier_size=300000, **common)
    raise ValueError(f"unknown variant {variant!r}; choose 'default', 'small' or 'cifar10'")
