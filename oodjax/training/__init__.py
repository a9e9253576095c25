"""Training: data-parallel SGD + Nesterov with schedules, augmentation, resumable checkpoints."""

from oodjax.parallel import batch_mesh
from oodjax.training.augment import random_crop_flip
from oodjax.training.loop import TrainConfig, TrainResult, TrainState, make_optimizer, train
from oodjax.training.objectives import (
    BIN, BINC, VIB, CrossEntropy, EnergyOE, Objective, TrainOutputs, bin_loss, binary_mmce, cross_entropy, energy_hinges,
    free_energy, mmce_weighted,
)
from oodjax.training.schedules import get_schedule, register_schedule

__all__ = [
    "BIN", "BINC", "VIB", "CrossEntropy", "EnergyOE", "Objective", "TrainOutputs", "bin_loss", "binary_mmce",
    "cross_entropy", "energy_hinges", "free_energy", "mmce_weighted",
    "TrainConfig", "TrainResult", "TrainState", "batch_mesh", "get_schedule", "make_optimizer",
    "random_crop_flip", "register_schedule", "train",
]
