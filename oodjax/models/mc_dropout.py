"""MC-dropout (Gal & Ghahramani 2016; paper 004's uncertainty baseline) as one `Model`."""

from __future__ import annotations

import jax

from oodjax.models._types import Model, Variables
from oodjax.models.ensemble import combine_predictions


def mc_dropout(model: Model, num_samples: int, key: jax.Array) -> Model:
    """K = num_samples stochastic forward passes of a model with dropout (e.g.
    `models.get("small_cnn", ..., dropout=0.3)`), batch statistics frozen.

    The K dropout keys are drawn once from `key`, so scores are deterministic. samples(variables,
    x) -> (log of the mean softmax (N, C), mean features, the K logits (N, K, C)): one vmap over
    the keys; the `ens_*` measures read them. K >= 2.
    """
    if model.dropout_apply is None:
        raise ValueError("this model has no dropout to keep on at evaluation (mc_dropout needs a module with a "
                         "`mc_dropout` attribute: small_cnn or a wrn, built with dropout > 0)")
    if num_samples < 2:
        raise ValueError(f"MC-dropout needs num_samples >= 2 (its measures use a spread), got {num_samples}")
    keys = jax.random.split(key, num_samples)

    def samples(variables: Variables, x: jax.Array):
        return combine_predictions(*jax.vmap(lambda k: model.dropout_apply(variables, x, k))(keys))

    def apply(variables: Variables, x: jax.Array, train: bool = False):
        return model.apply(variables, x, train=True) if train else samples(variables, x)[:2]

    # No single set of intermediate maps or extras; a batch row mixes K dropout masks (no per-sample weights).
    return model._replace(apply=apply, maps=None, map_grads=None, samples=samples, extras=None, extra_names=(), per_sample=False)
