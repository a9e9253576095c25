"""Per-sample squared gradient norms without materializing per-sample gradients.

Every plain `nn.Dense` / `nn.Conv` / eval-mode `nn.BatchNorm` / `nn.GroupNorm` call of a Flax model is tapped: its input a is recorded and a
zero perturbation e is added to its output, so that d loss / d e is the per-sample output
gradient g. Then, exactly (per sample):
  dense  (a: (D,), g: (C,))        ||dL/dW||_F^2 = ||a||^2 ||g||^2,       ||dL/db||^2 = ||g||^2
  conv   (patches u_p, grads g_p)  ||dL/dW||_F^2 = ||sum_p u_p g_p^T||_F^2
         materialized (N P K C) or by Gram matrices sum_pq (u_p.u_q)(g_p.g_q) (N P^2 (K + C)),
         whichever costs less ("ghost norm"), and ||dL/db||^2 = ||sum_p g_p||^2; the patches are
         strided slices of the padded input (no compute).
  norm   (normalized input x_hat)  ||dL/dscale||^2 = ||sum_p g_p * x_hat_p||^2, ||dL/dbias||^2 as above.
Parameters outside these layers (weight-standardized convs, anything custom) are added
with the vmap path, so the result is the squared norm over exactly the selected parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp

from oodjax.gradients._per_sample import _check_batch, _chunked, _reduce, vmapped_grads
from oodjax.gradients._select import PyTree, Selector, flatten, selected_paths

LogitLoss = Callable[..., jax.Array]  # (C,) logits of one sample, *shared -> scalar


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


def _tappable(m: nn.Module) -> bool:
    """Plain Dense layers; plain 2-D convolutions (no groups, no input dilation, no exotic padding);
    eval-mode BatchNorm; GroupNorm. Anything else goes to the vmap path."""
    if type(m) is nn.Dense:
        return True
    if type(m) is nn.Conv:
        return (m.feature_group_count == 1 and len(m.kernel_size) == 2 and _as_tuple(m.input_dilation, 2) == (1, 1)
                and (not isinstance(m.padding, str) or m.padding in ("SAME", "VALID")))
    if type(m) is nn.BatchNorm:
        return m.use_running_average is True and m.axis in (-1,)
    return type(m) is nn.GroupNorm and m.num_groups is not None and m.group_size is None


def _pads(size: int, k: int, s: int, d: int, padding) -> tuple[int, int]:
    if padding == "VALID":
        return 0, 0
    if padding == "SAME":  # lax's convention
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        return total // 2, total - total // 2
    return padding


def _patches(m: nn.Conv, a: jax.Array) -> jax.Array:
    """(N, P, kh * kw * C_in) input patches of a 2-D conv, by strided slicing (no compute)."""
    (kh, kw), (sh, sw), (dh, dw) = m.kernel_size, _as_tuple(m.strides, 2), _as_tuple(m.kernel_dilation, 2)
    pad = _conv_padding(m, 2)
    (ph0, ph1), (pw0, pw1) = (_pads(a.shape[1], kh, sh, dh, pad if isinstance(pad, str) else pad[0]),
                              _pads(a.shape[2], kw, sw, dw, pad if isinstance(pad, str) else pad[1]))
    ap = jnp.pad(a, ((0, 0), (ph0, ph1), (pw0, pw1), (0, 0)))
    ho = (ap.shape[1] - (kh - 1) * dh - 1) // sh + 1
    wo = (ap.shape[2] - (kw - 1) * dw - 1) // sw + 1
    views = [ap[:, i * dh : i * dh + (ho - 1) * sh + 1 : sh, j * dw : j * dw + (wo - 1) * sw + 1 : sw, :]
             for i in range(kh) for j in range(kw)]
    return jnp.stack(views, axis=3).reshape(a.shape[0], ho * wo, kh * kw * a.shape[-1])


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


def _outer_sq_norm(u: jax.Array, g: jax.Array) -> jax.Array:
    """||sum_p u_p g_p^T||_F^2 per sample, u: (N, P, K), g: (N, P, C), the cheaper way."""
    p, k, c = u.shape[1], u.shape[2], g.shape[2]
    if p == 1:
        return jnp.sum(u[:, 0] ** 2, -1) * jnp.sum(g[:, 0] ** 2, -1)
    if p * p * (k + c) < p * k * c:  # ghost norm: Gram matrices
        return jnp.sum(jnp.einsum("npk,nqk->npq", u, u) * jnp.einsum("npc,nqc->npq", g, g), axis=(1, 2))
    w = jnp.einsum("npk,npc->nkc", u, g)
    return jnp.sum(w * w, axis=(1, 2))


def _normalized(m: nn.Module, a: jax.Array, stats: dict[str, jax.Array]) -> jax.Array:
    """x_hat of a norm layer (what its scale multiplies)."""
    if type(m) is nn.BatchNorm:
        shape = (1,) * (a.ndim - 1) + (-1,)
        return (a - stats["mean"].reshape(shape)) * jax.lax.rsqrt(stats["var"].reshape(shape) + m.epsilon)
    n, c = a.shape[0], a.shape[-1]
    grouped = a.reshape(n, -1, m.num_groups, c // m.num_groups)
    mean = jnp.mean(grouped, axis=(1, 3), keepdims=True)
    var = jnp.mean(jnp.square(grouped - mean), axis=(1, 3), keepdims=True)
    return ((grouped - mean) * jax.lax.rsqrt(var + m.epsilon)).reshape(a.shape)


def _layer_sq_norms(m: nn.Module, a: jax.Array, g: jax.Array, leaves: set[str], stats) -> jax.Array:
    """Per-sample squared gradient norm of the `leaves` of one tapped layer, from its input a and
    the gradient g of its output."""
    n = a.shape[0]
    gg = g.reshape(n, -1, g.shape[-1])  # (N, P, C)
    total = jnp.zeros((n,), g.dtype)
    if type(m) in (nn.BatchNorm, nn.GroupNorm):
        if "scale" in leaves:
            total += jnp.sum(jnp.sum(gg * _normalized(m, a, stats).reshape(gg.shape), axis=1) ** 2, -1)
    elif "kernel" in leaves:
        u = _patches(m, a) if type(m) is nn.Conv else a.reshape(n, -1, a.shape[-1])
        total += _outer_sq_norm(u, gg)
    if "bias" in leaves:
        total += jnp.sum(jnp.sum(gg, axis=1) ** 2, -1)
    return total


def _variables_prefix(flat: dict[str, jax.Array], modules: dict[str, nn.Module]) -> str | None:
    """Where the tapped layers' parameters live in the variables pytree: '' for a Flax variables
    dict, 'vars/' when it is wrapped as {'vars': variables, ...}; None if not unique."""
    found = set()
    for key in modules:
        tail = f"params/{key}/"
        for path in flat:
            i = path.find(tail)
            if i >= 0 and (i == 0 or path[i - 1] == "/") and "/" not in path[i + len(tail):]:
                found.add(path[:i])
    return found.pop() if len(found) == 1 else None


@partial(jax.jit, static_argnames=("apply", "logit_loss", "paths", "chunk_size"))
def _ghost_sq_norms(apply, logit_loss, variables, x, paths, chunk_size, shared):
    modules: dict[str, nn.Module] = {}

    def outputs(v, x):
        _, taps = _run(apply, v, x, None)
        modules.update({k: t[0] for k, t in taps.items()})
        return {k: t[2] for k, t in taps.items()}

    out_shapes = jax.eval_shape(outputs, variables, x[:1])  # discovers the tapped layers
    flat = flatten(variables)
    prefix = _variables_prefix(flat, modules)
    covered = {}
    for key, m in modules.items():
        for leaf in ("scale", "bias") if type(m) in (nn.BatchNorm, nn.GroupNorm) else ("kernel", "bias"):
            if prefix is not None and f"{prefix}params/{key}/{leaf}" in paths:
                covered.setdefault(key, set()).add(leaf)
    rest_paths = tuple(p for p in paths
                       if not any(p == f"{prefix}params/{k}/{leaf}" for k, ls in covered.items() for leaf in ls))

    def chunk_norms(xc):
        eps = {k: jnp.zeros((xc.shape[0], *o.shape[1:]), o.dtype) for k, o in out_shapes.items()}

        def total_loss(eps):
            logits, taps = _run(apply, variables, xc, eps)
            return jnp.sum(jax.vmap(lambda z: logit_loss(z, *shared))(logits)), {k: t[1] for k, t in taps.items()}

        g, inputs = jax.grad(total_loss, has_aux=True)(eps)
        out = jnp.zeros((xc.shape[0],), xc.dtype)
        for key, leaves in covered.items():
            stats = {k: flat.get(f"{prefix}batch_stats/{key}/{k}") for k in ("mean", "var")}
            out += _layer_sq_norms(modules[key], inputs[key], g[key], leaves, stats)
        if rest_paths:  # parameters no tap covers: exact per-sample gradients, vmap path
            loss = lambda v, xi, *sh: logit_loss(apply(v, xi[None])[0], *sh)  # noqa: E731
            out += _reduce(vmapped_grads(loss, variables, rest_paths, 1, shared)(xc), "sq")
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
    shared: tuple = (),
) -> jax.Array:
    """(N,) squared L2 norms of d logit_loss(apply(variables, x_i)) / d (selected variables).

    apply: (variables, x (B, ...)) -> logits (B, C), a hashable function of a Flax model (its
      Dense/Conv layers are tapped); logit_loss: ((C,), *shared) -> scalar, hashable; shared:
      arguments of the loss that are not differentiated (a temperature).
    """
    _check_batch((x,), chunk_size)
    return _ghost_sq_norms(apply, logit_loss, variables, x, selected_paths(variables, selector), chunk_size,
                           tuple(shared))
