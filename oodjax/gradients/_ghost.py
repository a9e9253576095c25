"""Per-sample squared gradient norms without materializing per-sample gradients.

Every plain `nn.Dense` / `nn.Conv` / eval-mode `nn.BatchNorm` / `nn.GroupNorm` call of a Flax
model is tapped: an identity on its output whose backward pass (a custom VJP) receives the
per-sample output gradient g, takes the layer's norms from g and the layer's input a at once, and
hands them back as the gradient of one (N,) vector d. So one backward pass, which computes no
weight gradient, gives every layer's norms summed, and holds a layer's g and temporaries only
while that layer's norm is taken ("book-keeping", Bu et al. 2023). Then, exactly (per sample):
  dense  (a: (D,), g: (C,))        ||dL/dW||_F^2 = ||a||^2 ||g||^2,       ||dL/db||^2 = ||g||^2
  conv   (patches u_p, grads g_p)  ||dL/dW||_F^2 = ||sum_p u_p g_p^T||_F^2, one of (`LayerPlan`):
           "ghost"   Gram matrices sum_pq (u_p.u_q)(g_p.g_q): 2 P^2 (K + C) flops, holds the patches
           "unfold"  the per-sample gradient sum_p u_p g_p^T, one kernel offset (a strided view of the
                     input) at a time: 2 P K C flops, never holds the whole patch tensor
           "filter"  the per-sample gradient as the conv's own filter gradient, one per sample (a
                     vmapped VJP, a grouped convolution): 2 P K C flops, never holds the patches
         and ||dL/db||^2 = ||sum_p g_p||^2; the patches are strided slices of the padded input.
         "auto" takes the fewest flops, and of unfold / filter the one that fits the memory budget.
  norm   (normalized input x_hat)  ||dL/dscale||^2 = ||sum_p g_p * x_hat_p||^2, ||dL/dbias||^2 as above.
Parameters outside these layers (weight-standardized convs, anything custom) are added
with the vmap path, so the result is the squared norm over exactly the selected parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from functools import partial
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from oodjax.gradients._per_sample import _check_batch, _chunked, _reduce, vmapped_grads
from oodjax.gradients._select import PyTree, Selector, flatten, selected_paths
from oodjax.parallel import in_pieces
from oodjax.validation import check_int

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


def _views(m: nn.Conv, a: jax.Array) -> list[jax.Array]:
    """The kh * kw strided views (N, P, C_in) of the padded input, one per kernel offset: what
    each kernel tap multiplies (no compute)."""
    (kh, kw), (sh, sw), (dh, dw) = m.kernel_size, _as_tuple(m.strides, 2), _as_tuple(m.kernel_dilation, 2)
    pad = _conv_padding(m, 2)
    (ph0, ph1), (pw0, pw1) = (_pads(a.shape[1], kh, sh, dh, pad if isinstance(pad, str) else pad[0]),
                              _pads(a.shape[2], kw, sw, dw, pad if isinstance(pad, str) else pad[1]))
    ap = jnp.pad(a, ((0, 0), (ph0, ph1), (pw0, pw1), (0, 0)))
    ho = (ap.shape[1] - (kh - 1) * dh - 1) // sh + 1
    wo = (ap.shape[2] - (kw - 1) * dw - 1) // sw + 1
    return [ap[:, i * dh : i * dh + (ho - 1) * sh + 1 : sh, j * dw : j * dw + (wo - 1) * sw + 1 : sw, :]
            .reshape(a.shape[0], ho * wo, a.shape[-1]) for i in range(kh) for j in range(kw)]


def _patches(m: nn.Conv, a: jax.Array) -> jax.Array:
    """(N, P, kh * kw * C_in) input patches of a 2-D conv (the views side by side)."""
    return jnp.concatenate(_views(m, a), axis=-1)


def _unfold_sq_norm(m: nn.Conv, a: jax.Array, g: jax.Array) -> jax.Array:
    """||dL/dW_n||_F^2 from the per-sample gradient, one kernel offset at a time: sum_p v_p g_p^T
    for each view v of the input (never the whole patch tensor)."""
    gg = g.reshape(g.shape[0], -1, g.shape[-1])
    return sum(jnp.sum(jnp.einsum("npi,npc->nic", v, gg) ** 2, axis=(1, 2)) for v in _views(m, a))


def _run(apply: Callable, variables: PyTree, x: jax.Array, wrap: Callable | None = None):
    """logits, {layer: (module config, input, output)} of the tapped layers; wrap(layer, module,
    input, output) -> output replaces each tapped layer's output (the norm taps)."""
    taps: dict[str, tuple] = {}

    def interceptor(next_fun, args, kwargs, context):
        m = context.module
        if context.method_name != "__call__" or not _tappable(m):
            return next_fun(*args, **kwargs)
        key = "/".join(m.path)
        if key in taps:
            raise ValueError(f"layer {key} is called twice (weight sharing): use the vmap path")
        out = next_fun(*args, **kwargs)
        if wrap is not None:
            out = wrap(key, m, args[0], out)
        taps[key] = (m, args[0], out)
        return out

    with nn.intercept_methods(interceptor):
        logits = apply(variables, x)
    return logits, taps


def _zero_of(v: jax.Array, dtype, ndim: int) -> jax.Array:
    """0 * v (N,), zero even where v is not finite, shaped (N, 1, ...) to add to an ndim array: a
    per-sample data dependency with no value."""
    return (0 * jnp.where(jnp.isfinite(v), v, 0)).astype(dtype).reshape((-1,) + (1,) * (ndim - 1))


def _norm_tap(m: nn.Module, leaves: frozenset[str], method: str) -> Callable:
    """tap(out, a, stats, d) -> (out, d), identities, whose backward pass takes the layer's
    per-sample squared norms from its input a and output gradient g (`_layer_sq_norms`) and adds
    them to d's cotangent. The taps pass d (N,) along in call order, so the backward pass takes the
    layers' norms one after the other, each waiting for the later layers' sum: one layer's patches
    and temporaries live at a time; and the output gradient passed on waits for that sum too, so
    the gradients run at most a layer ahead of the norms. d's gradient is every tapped layer's norm
    summed, from one backward pass that computes no weight gradient ("book-keeping", Bu et al. 2023)."""

    @jax.custom_vjp
    def tap(out, a, stats, d):
        return out, d

    def fwd(out, a, stats, d):
        return (out, d), (a, stats)

    def bwd(res, cts):
        (a, stats), (g, d_ct) = res, cts
        # Each sample's a depends on its own g and later layers' sum (0 times it, zero even where it is
        # not finite), so that XLA cannot cut the patches in the forward pass and hold every layer's
        # at once (it drops optimization barriers on the CPU); per sample: no traffic across devices.
        a = a + _zero_of(g.reshape(g.shape[0], -1)[:, 0].astype(d_ct.dtype) + d_ct, a.dtype, a.ndim)
        sq = _layer_sq_norms(m, a, g, leaves, stats, method).astype(d_ct.dtype)
        # and the gradient passed on waits for the later layers' norms, so that XLA cannot run the
        # gradients' whole backward pass first and hold every layer's output gradient at once (waiting
        # for the sum before this layer's norm lets that norm overlap the layer's input gradient)
        g = g + _zero_of(d_ct, g.dtype, g.ndim)
        return g, jnp.zeros_like(a), jax.tree.map(jnp.zeros_like, stats), d_ct + sq

    tap.defvjp(fwd, bwd)
    return tap


METHODS = ("ghost", "unfold", "filter", "vmap")


class LayerPlan(NamedTuple):
    """How one tapped layer's per-sample squared norm is computed, and its cost per sample.

    layer: the module path ("BasicBlock_0/Conv_0"); kind: dense | conv | norm; p, k, c: positions,
    inputs per position (kh kw C_in), outputs; method: outer (dense: ||a||^2 ||g||^2) | ghost |
    unfold | filter | norm | vmap; flops: of the norm, per sample; bytes: the temporaries it holds
    per sample (patches, Gram matrices, per-sample gradients), float32; taps: kh kw of a conv.
    """

    layer: str
    kind: str
    p: int
    k: int
    c: int
    method: str
    flops: int
    bytes: int
    taps: int = 1


def layer_costs(kind: str, p: int, k: int, c: int, taps: int = 1) -> dict[str, tuple[int, int]]:
    """{method: (flops, bytes) per sample} of the methods that fit a layer of this kind and shape."""
    if kind == "norm":
        return {"norm": (4 * p * c, 4 * p * c)}
    if p == 1:
        return {"outer": (2 * (k + c), 0)}
    out = {"ghost": (2 * p * p * (k + c), 4 * (p * k + 2 * p * p)), "unfold": (2 * p * k * c, 4 * (p * k + k * c))}
    if kind == "conv":  # unfold one kernel offset at a time: a view of C_in = K / (kh kw) per position
        out["unfold"] = (2 * p * k * c, 4 * (p * (k // taps) + k * c))
        out["filter"] = (2 * p * k * c, 4 * k * c)
    return out


def choose(kind: str, p: int, k: int, c: int, forced: str | None = None, budget_per_sample: int | None = None,
           taps: int = 1) -> str:
    """The method for a layer: `forced` if given (and it fits the layer), else the fewest flops;
    between unfold and filter (equal flops) unfold (matrix products; filter's grouped convolution
    ran 1.6x slower on ResNet-20 on a CPU) unless its temporaries exceed budget_per_sample bytes."""
    costs = layer_costs(kind, p, k, c, taps)
    if forced is not None:
        if forced == "vmap" or forced in costs:
            return forced
        raise ValueError(f"method {forced!r} does not fit a {kind} layer of shape P={p}, K={k}, C={c}; "
                         f"choose one of {sorted(costs)} or 'vmap'")
    best = min(costs, key=lambda m: (costs[m][0], m != "unfold"))
    if best == "unfold" and budget_per_sample is not None and costs["unfold"][1] > budget_per_sample:
        best = "filter"
    return best


def _outer_sq_norm(u: jax.Array, g: jax.Array, method: str) -> jax.Array:
    """||sum_p u_p g_p^T||_F^2 per sample, u: (N, P, K), g: (N, P, C), by `method`."""
    if u.shape[1] == 1:  # one position: ||a||^2 ||g||^2
        return jnp.sum(u[:, 0] ** 2, -1) * jnp.sum(g[:, 0] ** 2, -1)
    if method == "ghost":  # Gram matrices
        return jnp.sum(jnp.einsum("npk,nqk->npq", u, u) * jnp.einsum("npc,nqc->npq", g, g), axis=(1, 2))
    w = jnp.einsum("npk,npc->nkc", u, g)
    return jnp.sum(w * w, axis=(1, 2))


def _filter_sq_norm(m: nn.Conv, a: jax.Array, g: jax.Array) -> jax.Array:
    """||dL/dW_n||_F^2 with each sample's filter gradient computed by the conv's own VJP (no patches)."""
    strides, dilation = _as_tuple(m.strides, 2), _as_tuple(m.kernel_dilation, 2)
    padding = _conv_padding(m, 2)
    shape = (*m.kernel_size, a.shape[-1], g.shape[-1])

    def one(a1: jax.Array, g1: jax.Array) -> jax.Array:
        def conv(w):
            return jax.lax.conv_general_dilated(a1[None], w, strides, padding, rhs_dilation=dilation,
                                                dimension_numbers=("NHWC", "HWIO", "NHWC"))

        return jax.vjp(conv, jnp.zeros(shape, a.dtype))[1](g1[None].astype(a.dtype))[0]

    w = jax.vmap(one)(a, g)
    return jnp.sum(w * w, axis=(1, 2, 3, 4))


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


def wide(dtype) -> jnp.dtype:
    """float64 stays float64, every other float (bf16) sums in float32."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


def _layer_sq_norms(m: nn.Module, a: jax.Array, g: jax.Array, leaves: set[str], stats, method: str) -> jax.Array:
    """Per-sample squared gradient norm of the `leaves` of one tapped layer, from its input a and
    the gradient g of its output, the kernel's by `method`."""
    n = a.shape[0]
    gg = g.reshape(n, -1, g.shape[-1])  # (N, P, C)
    total = jnp.zeros((n,), g.dtype)
    if type(m) in (nn.BatchNorm, nn.GroupNorm):
        if "scale" in leaves:
            total += jnp.sum(jnp.sum(gg * _normalized(m, a, stats).reshape(gg.shape), axis=1) ** 2, -1)
    elif "kernel" in leaves and method == "filter":
        total += _filter_sq_norm(m, a, g)
    elif "kernel" in leaves and method == "unfold" and type(m) is nn.Conv and gg.shape[1] > 1:
        total += _unfold_sq_norm(m, a, g)
    elif "kernel" in leaves:
        u = _patches(m, a) if type(m) is nn.Conv else a.reshape(n, -1, a.shape[-1])
        total += _outer_sq_norm(u, gg, method)
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


def _one(x: jax.Array) -> jax.ShapeDtypeStruct:
    """The shape of one sample of x as a batch of 1 (x may be abstract)."""
    return jax.ShapeDtypeStruct((1, *x.shape[1:]), x.dtype)


def _discover(apply: Callable, variables: PyTree, x1: jax.Array) -> tuple[dict[str, nn.Module], dict[str, tuple]]:
    """The tapped layers of one sample's forward pass: {layer: module}, {layer: (input, output) shapes}."""
    modules: dict[str, nn.Module] = {}

    def shapes(v, x):
        _, taps = _run(apply, v, x)
        modules.update({k: t[0] for k, t in taps.items()})
        return {k: (t[1], t[2]) for k, t in taps.items()}

    return modules, jax.eval_shape(shapes, variables, x1)


def _dims(m: nn.Module, a_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[str, int, int, int, int]:
    """(kind, P, K, C, taps) of a tapped layer from its input and output shapes (batch first)."""
    p = int(np.prod(out_shape[1:-1])) if len(out_shape) > 2 else 1
    if type(m) is nn.Conv:
        taps = int(np.prod(m.kernel_size))
        return "conv", p, taps * a_shape[-1], out_shape[-1], taps
    if type(m) is nn.Dense:
        return "dense", p, a_shape[-1], out_shape[-1], 1
    return "norm", p, out_shape[-1], out_shape[-1], 1


def _plan(modules, shapes, covered, forced: Mapping[str, str], budget_per_sample: int | None) -> tuple[LayerPlan, ...]:
    out = []
    for key in covered:
        m, (a, o) = modules[key], shapes[key]
        kind, p, k, c, taps = _dims(m, a.shape, o.shape)
        method = choose(kind, p, k, c, forced.get(key), budget_per_sample, taps)
        flops, nbytes = layer_costs(kind, p, k, c, taps).get(method, (0, 0))
        out.append(LayerPlan(key, kind, p, k, c, method, flops, nbytes, taps))
    return tuple(out)


def _activation_bytes(shapes) -> int:
    """Per sample, what the one backward pass holds besides a layer's norm temporaries: every
    tapped layer's input and output (the forward's residuals) and the largest output gradient
    twice (a layer's and the next one's), float32. A first guess: `per_sample_sq_grad_norms_ghost`
    checks it against the compiler's memory analysis."""
    sizes = [(int(np.prod(a.shape[1:])), int(np.prod(o.shape[1:]))) for a, o in shapes.values()]
    return 4 * (sum(a + o for a, o in sizes) + 2 * max((o for _, o in sizes), default=0))


def _resolve_plan(apply, variables, x, paths, forced: Mapping[str, str], memory_budget: int | None,
                  chunk_size: int | None):
    """(modules, their (input, output) shapes, covered leaves, vmap-path parameters, plan, variables
    prefix, chunk) of a ghost computation."""
    modules, shapes = _discover(apply, variables, _one(x))
    unknown = sorted(set(forced) - set(modules))
    if unknown:
        raise ValueError(f"methods= names layers that are not tapped: {unknown}; tapped: {sorted(modules)}")
    flat = flatten(variables)
    prefix = _variables_prefix(flat, modules)
    covered: dict[str, set[str]] = {}
    for key, m in modules.items():
        if forced.get(key) == "vmap":
            continue
        for leaf in ("scale", "bias") if type(m) in (nn.BatchNorm, nn.GroupNorm) else ("kernel", "bias"):
            if prefix is not None and f"{prefix}params/{key}/{leaf}" in paths:
                covered.setdefault(key, set()).add(leaf)
    rest = tuple(p for p in paths
                 if not any(p == f"{prefix}params/{k}/{leaf}" for k, ls in covered.items() for leaf in ls))
    plan = _plan(modules, shapes, covered, forced, None)
    n = x.shape[0]
    if memory_budget is None:
        return modules, shapes, covered, rest, plan, prefix, chunk_size
    per = _activation_bytes(shapes) + max((q.bytes for q in plan), default=0)
    if memory_budget // per < min(n, 16):  # the patches would crowd out the batch: hold none
        plan = _plan(modules, shapes, covered, forced, 0)
        per = _activation_bytes(shapes) + max((q.bytes for q in plan), default=0)
    return modules, shapes, covered, rest, plan, prefix, int(max(1, min(n, memory_budget // per)))


def ghost_plan(apply: Callable[[PyTree, jax.Array], jax.Array], variables: PyTree, x: jax.Array, *,
               selector: Selector = ("params/.*",), methods: Mapping[str, str] | None = None,
               memory_budget: int | None = None) -> tuple[tuple[LayerPlan, ...], int | None, tuple[str, ...]]:
    """(the plan per tapped layer, the chunk size a memory budget gives (None without one), the
    parameters left to the vmap path) of `per_sample_sq_grad_norms_ghost` on x (N, ...): inspect
    what it will do and what it costs. methods: {layer: method} forces layers. variables and x
    may be abstract (jax.ShapeDtypeStruct): the plan needs shapes only."""
    _, _, _, rest, plan, _, chunk = _resolve_plan(apply, variables, x, selected_paths(variables, selector),
                                               dict(methods or {}), memory_budget, None)
    return plan, chunk, rest


@partial(jax.jit, static_argnames=("apply", "logit_loss", "paths", "chunk_size", "forced"))
def _ghost_sq_norms(apply, logit_loss, variables, x, paths, chunk_size, shared, forced=()):
    modules, shapes, covered, rest_paths, plan, prefix, _ = _resolve_plan(
        apply, variables, x, paths, dict(forced), None, chunk_size)
    methods = {q.layer: q.method for q in plan}
    flat = flatten(variables)

    taps = {k: _norm_tap(modules[k], frozenset(ls), methods[k]) for k, ls in covered.items()}
    stats = {k: {s: jax.lax.stop_gradient(flat[f"{prefix}batch_stats/{k}/{s}"]) for s in ("mean", "var")}
             if type(modules[k]) is nn.BatchNorm else {} for k in covered}

    def chunk_norms(xc):
        def total_loss(d):
            chain = [d]

            def wrap(k, m, a, o):
                if k not in taps:
                    return o
                o, chain[0] = taps[k](o, jax.lax.stop_gradient(a), stats[k], chain[0])
                return o

            logits, _ = _run(apply, variables, xc, wrap)
            # the chain's end enters the loss with weight 0: its cotangent starts the sum at 0
            loss = jnp.sum(jax.vmap(lambda z: logit_loss(z, *shared))(logits))
            return loss + (0 * jnp.sum(chain[0])).astype(loss.dtype)

        out = jax.grad(total_loss)(jnp.zeros((xc.shape[0],), wide(xc.dtype)))  # bf16 layers, float32 sums
        if rest_paths:  # parameters no tap covers: exact per-sample gradients, vmap path
            loss = lambda v, xi, *sh: logit_loss(apply(v, xi[None])[0], *sh)  # noqa: E731
            out += _reduce(vmapped_grads(loss, variables, rest_paths, 1, shared)(xc), "sq").astype(out.dtype)
        return out

    return _chunked(chunk_norms, (x,), chunk_size)


_FITTED: dict[tuple, tuple[int, tuple]] = {}  # (the call's static parts and shapes, budget) -> (chunk, forced)


def _fitted(v, sh, x, apply, logit_loss, paths, chunk: int, forced: tuple, budget: int) -> int:
    """The largest chunk seen to fit in at most four compilations: each one scales the chunk by
    budget / its temporaries (memory grows about linearly with the chunk), shrinking one that is
    over the budget and growing one under 80% of it (the estimate errs high), never back to a
    chunk seen over it. If none fitted, the fourth shrink is taken unchecked; a budget that even a
    chunk of 1 exceeds gives 1."""
    n = x.shape[0]
    even = lambda c: -(-n // -(-n // c))  # noqa: E731  (as many calls, evened out: 57 gives 256 in 5 chunks of 52)
    chunk, fits, over = even(chunk), 0, n + 1  # the largest chunk seen to fit, the smallest seen not to
    for _ in range(4):
        xc = jax.ShapeDtypeStruct((chunk, *x.shape[1:]), x.dtype)
        compiled = _ghost_sq_norms.lower(apply, logit_loss, v, xc, paths, chunk, sh, forced).compile()
        try:
            used = compiled.memory_analysis().temp_size_in_bytes
        except (AttributeError, NotImplementedError, RuntimeError):  # no memory analysis on this backend
            return chunk
        if used <= budget:
            fits = max(fits, chunk)
            if chunk == n or used >= 0.8 * budget:
                break
            nxt = even(min(n, over - 1, int(chunk * budget / max(used, 1) * 0.95)))
        elif chunk == 1:
            return 1
        else:
            over = min(over, chunk)
            nxt = even(max(1, int(chunk * budget / used * 0.98)))
        if nxt == chunk or nxt <= fits:
            break
        chunk = nxt
    return fits or chunk


def _budget(apply, logit_loss, variables, x, memory_budget: int, selector, methods, shared: tuple) -> tuple[int, tuple]:
    """(chunk, forced methods) of a memory budget: `ghost_plan`'s, the chunk fitted by XLA's memory
    analysis (`_fitted`; backends without one keep the evened estimate), remembered for the same
    shapes, so that a repeated call neither traces the model for its plan nor compiles again."""
    spec = lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.result_type(a))  # noqa: E731  (may be traced, or floats)
    v, sh = jax.tree.map(spec, variables), jax.tree.map(spec, shared)
    paths = selected_paths(variables, selector)
    key = (apply, logit_loss, paths, tuple(sorted((methods or {}).items())), memory_budget, spec(x),
           jax.tree.structure((v, sh)), tuple((a.shape, a.dtype) for a in jax.tree.leaves((v, sh))),
           jax.default_backend())
    if key not in _FITTED:
        if len(_FITTED) > 256:  # every entry holds its apply and loss alive
            _FITTED.clear()
        plan, chunk, _ = ghost_plan(apply, variables, x, selector=selector, methods=methods, memory_budget=memory_budget)
        forced = tuple(sorted({**dict(methods or {}), **{q.layer: q.method for q in plan if q.kind == "conv"}}.items()))
        _FITTED[key] = _fitted(v, sh, x, apply, logit_loss, paths, chunk, forced, memory_budget), forced
    return _FITTED[key]


def budget_chunk(apply: Callable[[PyTree, jax.Array], jax.Array], logit_loss: LogitLoss, variables: PyTree,
                 x: jax.Array, memory_budget: int, *, selector: Selector = ("params/.*",),
                 methods: Mapping[str, str] | None = None, shared: tuple = ()) -> int:
    """The chunk `per_sample_sq_grad_norms_ghost(..., memory_budget=)` takes on x (N, ...): the
    plan's estimate (`ghost_plan`), evened out over N, then shrunk or grown by XLA's memory analysis
    of the compiled chunk to the largest seen to fit the budget (compiles up to four times)."""
    check_int("memory_budget", memory_budget)
    return _budget(apply, logit_loss, variables, x, memory_budget, selector, methods, tuple(shared))[0]


def per_sample_sq_grad_norms_ghost(
    apply: Callable[[PyTree, jax.Array], jax.Array],
    logit_loss: LogitLoss,
    variables: PyTree,
    x: jax.Array,
    *,
    selector: Selector = ("params/.*",),
    chunk_size: int = 128,
    shared: tuple = (),
    methods: Mapping[str, str] | None = None,
    memory_budget: int | None = None,
) -> jax.Array:
    """(N,) squared L2 norms of d logit_loss(apply(variables, x_i)) / d (selected variables).
    Not differentiable further: the taps' backward rules hold each layer's input constant.

    apply: (variables, x (B, ...)) -> logits (B, C), a hashable function of a Flax model (its
      Dense/Conv layers are tapped); logit_loss: ((C,), *shared) -> scalar, hashable; shared:
      arguments of the loss that are not differentiated (a temperature).
    methods: {layer path: "ghost" | "unfold" | "filter" | "vmap"} forces layers (`ghost_plan` shows
      the plan); memory_budget: bytes of temporaries per chunk, which then sets the chunk size
      (`budget_chunk`: checked against the compiled chunk's memory) instead of chunk_size, and
      computes conv norms by "filter" where the patches would crowd out the batch.
    """
    _check_batch((x,), chunk_size)
    if memory_budget is not None:
        check_int("memory_budget", memory_budget)
    bad = {k: v for k, v in (methods or {}).items() if v not in METHODS}
    if bad:
        raise ValueError(f"methods must map layers to one of {METHODS}, got {bad}")
    paths, forced = selected_paths(variables, selector), tuple(sorted((methods or {}).items()))
    if memory_budget is not None:  # the chunk and the methods that fit the budget
        chunk_size, forced = _budget(apply, logit_loss, variables, x, memory_budget, selector, methods, tuple(shared))
    n = x.shape[0]
    if not isinstance(x, jax.core.Tracer) and n > chunk_size:
        # Called eagerly: one compiled call per chunk, dispatched from Python. Each call frees its
        # temporaries, as lax.map would, without XLA's loop (several times slower on XLA:CPU).
        return in_pieces(lambda i: _ghost_sq_norms(apply, logit_loss, variables, x[i:i + chunk_size], paths,
                                                   chunk_size, tuple(shared), forced), n, chunk_size)
    return _ghost_sq_norms(apply, logit_loss, variables, x, paths, chunk_size, tuple(shared), forced)
