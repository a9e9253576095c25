"""Deep ensembles (Lakshminarayanan et al. 2017; paper 004's ensemble baseline) as one `Model`."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from oodjax.models._types import Model, Variables
from oodjax.probability import log_mean_softmax

MEMBERS = "members"


def stack_members(members: Sequence[Variables]) -> Variables:
    """K members' variables (same architecture, e.g. trained from different seeds) as one pytree
    {'members': leaves with a leading K axis}. K >= 2."""
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members (its measures use a spread), got {len(members)}")
    return {MEMBERS: jax.tree.map(lambda *a: jnp.stack(a), *members)}


def combine_predictions(logits: jax.Array, features: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """K stacked predictions (K, N, C) and features (K, N, D) -> (log of the mean softmax (N, C),
    mean features (N, D), the K logits as samples (N, K, C))."""
    samples = jnp.swapaxes(logits, 0, 1)
    return log_mean_softmax(samples), jnp.mean(features, axis=0), samples


def ensemble(model: Model) -> Model:
    """The ensemble of K copies of `model`, with variables from `stack_members`.

    samples(variables, x) -> (log of the mean softmax (N, C), mean features (N, D), member logits
    (N, K, C)), the K forwards unrolled in one traced function; apply returns the first two. (Not
    one vmap over the members: batching the weights turns every conv after the first into a
    grouped conv, feature_group_count = K, which XLA:CPU runs 1.6-2x slower than K plain convs;
    unrolled, K members cost about K forwards. README, "Speed".) The uncertainty measures
    (`ens_*` scorers) read the member logits. It provides logits, features, inputs, samples and
    the (input-differentiable) model; it has no single head, intermediate maps or per-sample
    weight gradients.
    """

    def members(variables: Variables) -> Variables:
        if MEMBERS not in variables:
            raise ValueError("ensemble variables come from oodjax.models.stack_members([...])")
        return variables[MEMBERS]

    def samples(variables: Variables, x: jax.Array):
        stacked = members(variables)
        k = jax.tree.leaves(stacked)[0].shape[0]
        outs = [model.apply(jax.tree.map(lambda a, i=i: a[i], stacked), x) for i in range(k)]
        return combine_predictions(*(jnp.stack(o) for o in zip(*outs)))

    def apply(variables: Variables, x: jax.Array, train: bool = False):
        if train:
            raise ValueError("train the members one by one (oodjax.training.train with different keys)")
        return samples(variables, x)[:2]

    # No single head, intermediate maps, init or training mode: those fields stay None.
    return Model(apply, model.input_shape, samples=samples)
