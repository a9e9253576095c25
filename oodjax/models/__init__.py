"""Flax models as `Model(init, apply, head, input_shape)`: apply(variables, x) -> (logits, features)."""

from oodjax.models._types import Model, Variables, from_flax
from oodjax.models.small_cnn import SmallCNN, small_cnn

__all__ = ["Model", "SmallCNN", "Variables", "from_flax", "small_cnn"]
