"""Experiments as a pipeline, one module per job:

  config   the one config type: Experiment(data, models=(ModelSpec, ...), views)
  data     data assembly: splits, OOD sets, held-out classes, outliers
  build    a ModelSpec -> its network, what its scored model provides, its scorers (checked)
  run      validate everything, then train-or-restore and evaluate each model
  report   metrics.json, run.json and the registered views (`views`)

Config files in `experiments/configs/` return an Experiment; `python -m experiments.run <config>`
calls `run`, and so do the tests.
"""

from oodjax.experiment.config import (
    ALL_FITTING, Anchoring, EmbeddedData, Experiment, ModelSpec, OODSpec, ScorerSpec, TfdsData,
)
from oodjax.experiment.data import Data, channel_normalizer, normalize
from oodjax.experiment.run import run, train_dir, validate
from oodjax.experiment.views import register_view

__all__ = [
    "ALL_FITTING", "Anchoring", "Data", "EmbeddedData", "Experiment", "ModelSpec", "OODSpec", "ScorerSpec", "TfdsData",
    "channel_normalizer", "normalize", "register_view", "run", "train_dir", "validate",
]
