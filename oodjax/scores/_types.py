"""The scorer types live at the bottom of oodjax (`oodjax.types`); re-exported here."""

from oodjax.types import FitData, Head, ModelOutputs, Predict, Scorer

__all__ = ["FitData", "Head", "ModelOutputs", "Predict", "Scorer"]
