"""Per-sample gradient norms of a Flax model's logit loss, choosing the implementation by cost."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from oodjax.gradients._ghost import LogitLoss, per_sample_sq_grad_norms_ghost, wide
from oodjax.gradients._per_sample import NORM_ORDS, per_sample_grad_norms_vmap
from oodjax.gradients._select import PyTree, Selector

Apply = Callable[[PyTree, jax.Array], jax.Array]


class GradImplementation(enum.Enum):
    """How per-sample gradient norms are computed (as neural-tangents' `NtkImplementation`).

    VMAP: jax.vmap(jax.grad(...)) over chunks of samples; materializes chunk_size per-sample
      gradients; any norm, any model.
    GHOST: the norm tricks of `per_sample_sq_grad_norms_ghost` (taps Dense/Conv/Norm layers; never
      materializes per-sample gradients); l2 and squared l2 only.
    AUTO: GHOST for l2 / squared l2, VMAP for l1.
    All agree to float tolerance (tested against a plain per-sample jax.grad loop).
    """

    AUTO = "auto"
    VMAP = "vmap"
    GHOST = "ghost"


COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@functools.lru_cache(maxsize=None)
def _float32_logits(apply: Apply) -> Apply:
    """apply with its logits cast to float32 (the loss of the bf16 path), one object per apply."""
    return lambda variables, x: apply(variables, x).astype(jnp.float32)


def logits_of(model_apply: Callable, variables: PyTree, x: jax.Array) -> jax.Array:
    """logits of `model_apply(variables, x) -> (logits, features)`; bind with `logits_fn_of`."""
    return model_apply(variables, x)[0]


@functools.lru_cache(maxsize=None)
def logits_fn_of(model_apply: Callable) -> Apply:
    """(variables, x) -> logits of a model's apply, one object per apply (so jit caches hit)."""
    return functools.partial(logits_of, model_apply)


@functools.lru_cache(maxsize=None)
def sample_loss(apply: Apply, logit_loss: LogitLoss) -> Callable[..., jax.Array]:
    """The one-sample loss (variables, x_i, *shared) -> logit_loss(apply(variables, x_i[None])[0],
    *shared), cached so that the same (apply, logit_loss) pair always gives the same function (and
    compiled code)."""

    def loss(variables: PyTree, x_i: jax.Array, *shared) -> jax.Array:
        return logit_loss(apply(variables, x_i[None])[0], *shared)

    return loss


def _resolve(selector: Selector) -> Selector:
    return ("params/.*",) if selector == "all" else selector  # not batch_stats


def per_sample_grad_norms(
    apply: Apply,
    logit_loss: LogitLoss,
    variables: PyTree,
    x: jax.Array,
    *,
    shared: tuple = (),
    selector: Selector = "all",
    ord: str = "l2",
    method: GradImplementation | str = GradImplementation.AUTO,
    chunk_size: int = 64,
    methods: Mapping[str, str] | None = None,
    memory_budget: int | None = None,
    compute_dtype: str = "float32",
) -> jax.Array:
    """(N,) norms ("l1", "l2", "sq") of d logit_loss(apply(variables, x_i), *shared) / d (selected params).

    apply: (variables, x) -> logits (N, C), hashable. logit_loss: ((C,), *shared) -> scalar,
    hashable. shared: arguments of the loss that are never differentiated (a temperature), passed
    to the compiled function as arguments (one compilation serves every value).
    method: a `GradImplementation` (or its value). methods / memory_budget: the norm-trick path's
    per-layer methods and memory budget in bytes (`per_sample_sq_grad_norms_ghost`).
    compute_dtype: "float32", or "bfloat16": the forward and backward passes and each layer's norm
      in bf16 (weights and inputs cast), the loss on float32 logits and the sum over layers in
      float32; the norms come back as float32. Measured error against float32: README, "bf16 norms"
      (experiments/benchmarks/bf16_norms_bench.py). A speed path for GPUs and TPUs; XLA:CPU emulates bf16.
    """
    if ord not in NORM_ORDS:
        raise ValueError(f"ord must be one of {NORM_ORDS}, got {ord!r}")
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {compute_dtype!r}")
    if compute_dtype != "float32":
        dt = COMPUTE_DTYPES[compute_dtype]
        variables = jax.tree.map(lambda a: a.astype(dt) if jnp.issubdtype(a.dtype, jnp.floating) else a, variables)
        x, apply = x.astype(dt), _float32_logits(apply)
    try:
        method = GradImplementation(method)
    except ValueError:
        raise ValueError(f"method must be one of {[m.value for m in GradImplementation]}, got {method!r}") from None
    if method is GradImplementation.GHOST and ord == "l1":
        raise ValueError("the ghost path computes l2 norms only; use method='vmap' for l1")
    if x.ndim < 2:
        raise ValueError(f"x must be a batch (N, ...), got shape {x.shape}")
    out = jax.eval_shape(apply, variables, x[:1])
    if not hasattr(out, "ndim") or out.ndim != 2 or out.shape[0] != 1:
        raise ValueError(
            f"apply must return logits of shape (N, C); for a batch of 1 it returned {getattr(out, 'shape', out)}"
        )
    loss_out = jax.eval_shape(lambda z: logit_loss(z, *shared), jax.ShapeDtypeStruct(out.shape[1:], out.dtype))
    if loss_out.shape != ():
        raise ValueError(f"logit_loss must return a scalar per sample, got shape {loss_out.shape}: reduce it "
                         "(e.g. jnp.sum) inside the loss")
    selector = _resolve(selector)
    shared = tuple(shared)
    if method is GradImplementation.VMAP or ord == "l1":
        norms = per_sample_grad_norms_vmap(sample_loss(apply, logit_loss), variables, x, selector=selector, ord=ord,
                                           chunk_size=chunk_size, shared=shared)
        return norms.astype(wide(norms.dtype))
    sq = per_sample_sq_grad_norms_ghost(apply, logit_loss, variables, x, selector=selector, chunk_size=chunk_size,
                                        shared=shared, methods=methods, memory_budget=memory_budget)
    sq = sq.astype(wide(sq.dtype))
    return sq if ord == "sq" else jnp.sqrt(sq)


def per_sample_sq_grad_norms(apply: Apply, logit_loss: LogitLoss, variables: PyTree, x: jax.Array, **kw) -> jax.Array:
    """Squared L2 norms; see `per_sample_grad_norms`."""
    return per_sample_grad_norms(apply, logit_loss, variables, x, ord="sq", **kw)
