"""Per-sample squared gradient norms without materializing per-sample gradients.

Every plain `nn.Dense` / `nn.Conv` call of a Flax model is tapped: its input a is recorded and a
zero perturbation e is added to its output, so that d loss / d e is the per-sample output
gradient g. Then, exactly (per sample):
  dense  (a: (D,), g: (C,))        ||dL/dW||_F^2 = ||a||^2 ||g||^2,       ||dL/db||^2 = ||g||^2
  conv   (patches u_p, grads g_p)  ||dL/dW||_F^2 = ||sum_p u_p g_p^T||_F^2
         materialized (N P K C) or by Gram matrices sum_pq (u_p.u_q)(g_p.g_q) (N P^2 (K + C)),
         whichever costs less ("ghost norm"), and ||dL/db||^2 = ||sum_p g_p||^2.
Parameters outside plain Dense/Conv layers (norm layers, weight-standardized convs) are added
with the vmap path, so the result is the squared norm over exactly the selected parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from oodjax.gradients._per_sample import _check_batch, _chunked, _reduce
from oodjax.gradients._select import PyTree, Selector, merge, selected_paths, split

LogitLoss = Callable[[jax.Array], jax.Array]  # (C,) logits of one sample -> scalar


def _tappable(m: nn.Module) -> bool:
    """Plain Dense layers, and plain 2-D convolutions without groups or exotic padding."""
    if type(m) is nn.Dense:
        return True
    if type(m) is not nn.Conv or m.feature_group_count != 1 or len(m.kernel_size) != 2:
        return False
    return not isinstance(m.padding, str) or m.padding in ("SAME", "VALID")


def _conv_padding(m: nn.Conv, ndim: int):
    p = m.padding
    if isinstance(p, str):
        return p
    if isinstance(p, int):
        return ((p, p),) * ndim
    return tuple((q, q) if isinstance(q, int) else tuple(q) for q in p)


def _as_tuple(v, ndim: int) -> tuple[int, ...]:
    if v is None:
        return (1,) * ndim
    return (v,) * ndim if isinstance(v, int) else tuple(v)


def _run(apply: Callable, variables: PyTree, x: jax.Array, eps: dict | None):
    """logits, {layer: (module config, input, output)} with eps[layer] added to tapped outputs."""
    taps: dict[str, tuple] = {}

    def interceptor(next_fun, args, kwargs, context):
        m = context.module
        if context.method_name != "__call__" or not _tappable(m):
            return next_fun(*args, **kwargs)
        key = "/".join(m.path)
        if key in taps:
            raise ValueError(f"layer {key} is called twice (weight sharing): use the vmap path")
        out = next_fun(*args, **kwargs)
        if eps is not None:
            out = out + eps[key]
        taps[key] = (m, args[0], out)
        return out

    with nn.intercept_methods(interceptor):
        logits = apply(variables, x)
    return logits, taps


def _layer_sq_norms(m: nn.Module, a: jax.Array, g: jax.Array, want_kernel: bool, want_bias: bool) -> jax.Array:
    n = a.shape[0]
    total = jnp.zeros((n,), g.dtype)
    if isinstance(m, nn.Conv):
        nd = a.ndim - 2
        patches = jax.lax.conv_general_dilated_patches(
            a, _as_tuple(m.kernel_size, nd), _as_tuple(m.strides, nd), _conv_padding(m, nd),
            lhs_dilation=_as_tuple(m.input_dilation, nd), rhs_dilation=_as_tuple(m.kernel_dilation, nd),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        u = patches.reshape(n, -1, patches.shape[-1])  # (N, P, K)
        gg = g.reshape(n, -1, g.shape[-1])  # (N, P, C)
    else:
        u = a.reshape(n, -1, a.shape[-1])
        gg = g.reshape(n, -1, g.shape[-1])
    p, k, c = u.shape[1], u.shape[2], gg.shape[2]
    if want_kernel:
        if p == 1:
            total += jnp.sum(u[:, 0] ** 2, -1) * jnp.sum(gg[:, 0] ** 2, -1)
        elif p * p * (k + c) < p * k * c:  # ghost norm: Gram matrices
            total += jnp.sum(jnp.einsum("npk,nqk->npq", u, u) * jnp.einsum("npc,nqc->npq", gg, gg), axis=(1, 2))
        else:
            w = jnp.einsum("npk,npc->nkc", u, gg)
            total += jnp.sum(w * w, axis=(1, 2))
    if want_bias:
        b = jnp.sum(gg, axis=1)
        total += jnp.sum(b * b, -1)
    return total


@partial(jax.jit, static_argnames=("apply", "logit_loss", "paths", "chunk_size"))
def _ghost_sq_norms(apply, logit_loss, variables, x, paths, chunk_size):
    modules: dict[str, nn.Module] = {}

    def outputs(v, x):
        _, taps = _run(apply, v, x, None)
        modules.update({k: t[0] for k, t in taps.items()})
        return {k: t[2] for k, t in taps.items()}

    out_shapes = jax.eval_shape(outputs, variables, x[:1])  # discovers the tapped layers
    covered = {}
    for key in modules:
        for leaf in ("kernel", "bias"):
            path = f"params/{key}/{leaf}"
            if path in paths:
                covered.setdefault(key, set()).add(leaf)
    rest_paths = tuple(p for p in paths if not any(p == f"params/{k}/{leaf}" for k, ls in covered.items() for leaf in ls))

    def chunk_norms(xc):
        eps = {k: jnp.zeros((xc.shape[0], *o.shape[1:]), o.dtype) for k, o in out_shapes.items()}

        def total_loss(eps):
            logits, taps = _run(apply, variables, xc, eps)
            return jnp.sum(jax.vmap(logit_loss)(logits)), {k: t[1] for k, t in taps.items()}

        g, inputs = jax.grad(total_loss, has_aux=True)(eps)
        out = jnp.zeros((xc.shape[0],), xc.dtype)
        for key, leaves in covered.items():
            out += _layer_sq_norms(modules[key], inputs[key], g[key], "kernel" in leaves, "bias" in leaves)
        if rest_paths:  # parameters no tap covers: exact per-sample gradients, vmap path
            sel, rest = split(variables, rest_paths)
            per = jax.vmap(jax.grad(lambda s, xi: logit_loss(apply(merge(s, rest), xi[None])[0])), in_axes=(None, 0))
            out += _reduce(per(sel, xc), "sq")
        return out

    return _chunked(chunk_norms, (x,), chunk_size)


def per_sample_sq_grad_norms_ghost(
    apply: Callable[[PyTree, jax.Array], jax.Array],
    logit_loss: LogitLoss,
    variables: PyTree,
    x: jax.Array,
    *,
    selector: Selector = ("params/.*",),
    chunk_size: int = 128,
) -> jax.Array:
    """(N,) squared L2 norms of d logit_loss(apply(variables, x_i)) / d (selected variables).

    apply: (variables, x (B, ...)) -> logits (B, C), a hashable function of a Flax model (its
      Dense/Conv layers are tapped); logit_loss: (C,) -> scalar, hashable.
    """
    _check_batch((x,))
    return _ghost_sq_norms(apply, logit_loss, variables, x, selected_paths(variables, selector), chunk_size)
