"""Paper 001 (the OOD survey), Table 1: its training-time detectors as models of an experiment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oodjax.experiment import ModelSpec
from oodjax.training import BIN, BINC, VIB

TITLE = "Paper 001, Table 1 (OOD detection, ID positive) and Table 2 (accuracy)"
METRICS = ("fpr95", "detection_error", "auroc", "aupr_in", "aupr_out")


def survey_models(odin: Mapping[str, Any] | None = None) -> tuple[ModelSpec, ...]:
    """Baseline (MSP), Baseline+T and ODIN (T, eps tuned for FPR95 on each OOD validation split) on a
    softmax model; BIN, BINC, VIB, VIBY-I/II with their objectives and the paper's hyper-parameters
    (zeta 0.05, lambda 0.5, beta 0.005 / 0.01, z = 64)."""
    odin = dict(odin or {})
    return (
        ModelSpec("baseline", {"Baseline": ("msp", {}), "Baseline+T": ("odin", {**odin, "epsilons": (0.0,)}),
                               "ODIN": ("odin", odin)}),
        ModelSpec("bin", {"BIN": ("bin", {})}, objective=BIN(zeta=0.05)),
        ModelSpec("binc", {"BINC": ("binc", {})}, head="binc", head_kwargs={"z": 64}, objective=BINC(zeta=0.05, lam=0.5)),
        ModelSpec("vib", {"VIB": ("vib", {})}, head="vib", head_kwargs={"z": 64}, objective=VIB(beta=0.005)),
        ModelSpec("viby", {"VIBY-I": ("viby_i", {}), "VIBY-II": ("viby_ii", {})}, head="viby", head_kwargs={"z": 64},
                  objective=VIB(beta=0.01)),
    )
