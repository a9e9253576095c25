"""Papers 003 and 004: likelihood (RealNVP flows), energy fine-tuning with outlier exposure,
MC-dropout and deep ensembles (the six uncertainty measures) as models of an experiment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oodjax.experiment import ModelSpec
from oodjax.scores import ENSEMBLE_MEASURES
from oodjax.training import EnergyOE, TrainConfig

TITLE = "Papers 003/004: likelihood, energy with outlier exposure, MC-dropout and ensembles (ID positive)"
METRICS = ("fpr95", "auroc", "aupr_in", "aupr_out", "fpr95_ood_positive")


def _ensemble_scorers(prefix: str) -> dict[str, tuple[str, dict]]:
    return {f"{prefix} {name.removeprefix('ens_')}": (name, {}) for name in ENSEMBLE_MEASURES}


def uncertainty_models(flow_steps: int = 1000, flow_hidden: int = 256, pixel_noise: float = 1.0 / 256,
                       finetune: TrainConfig | None = None, oe: EnergyOE = EnergyOE(), dropout: float = 0.3,
                       members: int = 3, mc_samples: int = 10,
                       odin: Mapping[str, Any] | None = None) -> tuple[ModelSpec, ...]:
    """MSP, ODIN, energy and RealNVP likelihoods (pixels with checkerboard masks; + the OOD term; +
    cyclic masks; + a bottleneck; embeddings; embeddings + the OOD term) on a softmax model; that
    model fine-tuned with energy-bounded outlier exposure; MC-dropout and a deep ensemble with the
    six uncertainty measures. pixel_noise: dequantization in the units of the normalized inputs;
    odin: ODIN's hyper-parameters (default: the papers' grid)."""
    pixels = {"on": "pixels", "steps": flow_steps, "hidden": flow_hidden, "dequantize": pixel_noise}
    embeds = {"on": "features", "steps": flow_steps, "hidden": flow_hidden}
    ood = {"ood_weight": 1.0}
    return (
        ModelSpec("baseline", {
            "MSP": ("msp", {}), "ODIN": ("odin", dict(odin or {})), "Energy": ("energy", {}),
            "Flow pixels": ("flow", pixels), "Flow pixels +OOD": ("flow", {**pixels, **ood}),
            "Flow pixels +OOD cyclic": ("flow", {**pixels, **ood, "mask": "cyclic"}),
            "Flow pixels bottleneck": ("flow", {**pixels, "bottleneck": 16}),
            "Flow embeddings": ("flow", embeds), "Flow embeddings +OOD": ("flow", {**embeds, **ood}),
        }),
        ModelSpec("energy_oe", {"Energy OE": ("energy", {}), "MSP OE": ("msp", {})}, objective=oe, outliers=True,
                  finetune_from="baseline", train=finetune),
        ModelSpec("mc_dropout", _ensemble_scorers("MC-dropout"), model_kwargs={"dropout": dropout},
                  mc_samples=mc_samples),
        ModelSpec("ensemble", _ensemble_scorers("Ensemble"), members=members),
    )
