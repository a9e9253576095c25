"""Scorer lists shared by the configs."""

from __future__ import annotations

from typing import Any

from oodjax import models, scores
from oodjax.evaluate import LABELLED
from oodjax.training import TrainConfig

# CIFAR training of papers 000 and 003/004 (WRN's schedule): 200 epochs, SGD lr 0.1, decay 0.2 at
# epochs 60, 120, 160, crop + flip.
CIFAR_TRAIN = TrainConfig(epochs=200, batch_size=128, learning_rate=0.1, augment=True, schedule="step",
                          schedule_kwargs={"milestones": (60, 120, 160), "gamma": 0.2})

# Registered scorers a plain classifier could feed that the default list leaves out: the flows
# (a density model trained per run; the uncertainty config runs them), the autodiff references
# of the closed-form gradient scores (the same scores, slower) and `uv`, whose defaults (energy x
# clipped L1) are `rg` itself (rg_ablation.py runs its other pairs).
NOT_BY_DEFAULT = ("flow", "gradnorm_autodiff", "expected_gradnorm_autodiff", "expsum_gradnorm_autodiff", "uv")


def default_scorers(exclude: tuple[str, ...] = NOT_BY_DEFAULT) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every registered scorer a plain classifier provides for (`scores.fitting`: derived from
    needs and provides), with the papers' defaults, plus MSP at T = 1000 (paper 001)."""
    provides = models.small_cnn(10).provides | LABELLED  # any plain Flax classifier provides the same
    spec: dict[str, tuple[str, dict[str, Any]]] = {name: (name, {}) for name in scores.fitting(provides, exclude)}
    spec["msp_T1000"] = ("msp", {"temperature": 1000.0})
    return spec


# The OpenOOD v1.5 leaderboard's post-hoc methods (issue 15) and the baselines they are compared with.
LEADERBOARD = ("temp_scale", "gen", "ash_p", "ash_b", "ash_s", "scale", "adascale_a", "adascale_l", "dice", "rmds",
               "fdbd", "nci", "she", "nnguide", "weiper", "weiper_kld", "nac_ue", "openmax")
BASELINES = ("msp", "energy", "react", "knn", "vim", "mahalanobis", "gradnorm")
