"""Flax models as `Model(init, apply, head, input_shape)`: apply(variables, x) -> (logits, features)."""

from oodjax.models._types import Model, Variables
from oodjax.models.small_cnn import SmallCNN, small_cnn

__all__ = ["Model", "SmallCNN", "Variables", "small_cnn"]
