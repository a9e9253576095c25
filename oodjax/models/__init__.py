"""Flax models as `Model(init, apply, head, input_shape, train_apply, maps, map_grads)` of pure functions:
apply(variables, x) -> (logits, features). `get(name, num_classes=..., in_channels=...)`."""

from oodjax.models._types import Model, Variables, from_flax, tap
from oodjax.models.ensemble import ensemble, stack_members
from oodjax.models.heads import HEADS, TwoHeads, VIBHead, WithHead, gaussian_kl
from oodjax.models.imports import CheckpointError, import_checkpoint, normalized
from oodjax.models.mc_dropout import mc_dropout
from oodjax.models.registry import get, names, register_model
from oodjax.models.small_cnn import SmallCNN, small_cnn

__all__ = [
    "HEADS", "CheckpointError", "Model", "SmallCNN", "TwoHeads", "VIBHead", "Variables", "WithHead", "ensemble", "from_flax", "gaussian_kl",
    "get", "import_checkpoint", "normalized", "mc_dropout", "names", "register_model", "small_cnn", "stack_members", "tap",
]
