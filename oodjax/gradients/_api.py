"""Per-sample gradient norms of a Flax model's logit loss, choosing the path by cost."""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from oodjax.gradients._ghost import LogitLoss, per_sample_sq_grad_norms_ghost
from oodjax.gradients._per_sample import NORM_ORDS, per_sample_grad_norms_vmap
from oodjax.gradients._select import PyTree, Selector

Apply = Callable[[PyTree, jax.Array], jax.Array]


def logits_of(model_apply: Callable, variables: PyTree, x: jax.Array) -> jax.Array:
    """logits of `model_apply(variables, x) -> (logits, features)`; bind with functools.partial once."""
    return model_apply(variables, x)[0]


@functools.lru_cache(maxsize=None)
def sample_loss(apply: Apply, logit_loss: LogitLoss) -> Callable[[PyTree, jax.Array], jax.Array]:
    """The one-sample loss (variables, x_i) -> logit_loss(apply(variables, x_i[None])[0]), cached so
    that the same (apply, logit_loss) pair always gives the same function (and compiled code)."""

    def loss(variables: PyTree, x_i: jax.Array) -> jax.Array:
        return logit_loss(apply(variables, x_i[None])[0])

    return loss


def _resolve(selector: Selector) -> Selector:
    return ("params/.*",) if selector == "all" else selector  # not batch_stats


def per_sample_grad_norms(
    apply: Apply,
    logit_loss: LogitLoss,
    variables: PyTree,
    x: jax.Array,
    *,
    selector: Selector = "all",
    ord: str = "l2",
    method: str = "auto",
    chunk_size: int = 64,
) -> jax.Array:
    """(N,) norms ("l1", "l2", "sq") of d logit_loss(apply(variables, x_i)) / d (selected params).

    method: "vmap" (materializes chunk_size per-sample gradients), "ghost" (norm tricks, l2/sq
    only), or "auto" (ghost for l2/sq, vmap for l1). Both agree to float tolerance (tested).
    """
    if ord not in NORM_ORDS:
        raise ValueError(f"ord must be one of {NORM_ORDS}, got {ord!r}")
    if method not in ("auto", "vmap", "ghost"):
        raise ValueError(f"method must be 'auto', 'vmap' or 'ghost', got {method!r}")
    if method == "ghost" and ord == "l1":
        raise ValueError("the ghost path computes l2 norms only; use method='vmap' for l1")
    if x.ndim < 2:
        raise ValueError(f"x must be a batch (N, ...), got shape {x.shape}")
    out = jax.eval_shape(apply, variables, x[:1])
    if not hasattr(out, "ndim") or out.ndim != 2 or out.shape[0] != 1:
        raise ValueError(
            f"apply must return logits of shape (N, C); for a batch of 1 it returned {getattr(out, 'shape', out)}"
        )
    selector = _resolve(selector)
    if method == "vmap" or ord == "l1":
        return per_sample_grad_norms_vmap(sample_loss(apply, logit_loss), variables, x, selector=selector, ord=ord,
                                          chunk_size=chunk_size)
    sq = per_sample_sq_grad_norms_ghost(apply, logit_loss, variables, x, selector=selector, chunk_size=chunk_size)
    return sq if ord == "sq" else jnp.sqrt(sq)


def per_sample_sq_grad_norms(apply: Apply, logit_loss: LogitLoss, variables: PyTree, x: jax.Array, **kw) -> jax.Array:
    """Squared L2 norms; see `per_sample_grad_norms`."""
    return per_sample_grad_norms(apply, logit_loss, variables, x, ord="sq", **kw)
