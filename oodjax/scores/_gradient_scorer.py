"""One factory for registered gradient scores: a loss, a parameter selector, a norm and an
optional ODIN input step, over per-sample weight gradients of the model.

    score(x) = combine(|| d loss(f(x~) , hyper) / d theta_selected ||, f(x~), hyper)
    x~ = x - eps * sign(-grad_x log S_yhat(x; T)) / std      (perturb=True; x~ = x at eps = 0)

The hyper-parameters (temperature, epsilon, anything the loss reads) are the scorer's state, a
dict of float32 scalars: they reach the loss as a non-differentiated argument (never inside the
differentiated pytree), one compilation serves every value, and the shared grid tuner can tune
them per OOD validation split. The implementation is a `GradImplementation` enum (vmap, ghost
norm tricks, auto). Example: GRODIN's G score is (losses and combines defined once, at module level: they are static
arguments of compiled functions)

    def grodin_loss(z, h):
        return predicted_nll(z / h["temperature"])
    gradient_scorer(grodin_loss, selector="all", norm="sq", combine=_grodin_g, perturb=True,
                    grid={"temperature": ODIN_TEMPERATURES, "epsilon": ODIN_EPSILONS})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from oodjax.gradients import (
    COMPUTE_DTYPES, NAMED_SELECTORS, NORM_ORDS, GradImplementation, Selector, logits_fn_of, per_sample_grad_norms,
)
from oodjax.scores._checks import check_int
from oodjax.scores._odin import _check_step, check_grid, odin_direction, perturbed_grid_scores
from oodjax.scores._tune import grid_tuner
from oodjax.types import INPUTS, MODEL, WEIGHTS, FitData, ModelOutputs, Predict, Scorer, require

Hyper = dict[str, jax.Array]
Loss = Callable[..., jax.Array]  # ((C,) logits of one sample, hyper[, class index]) -> scalar
Combine = Callable[[jax.Array, jax.Array, Hyper], jax.Array]  # (norms (N,), logits (N, C), hyper) -> (N,)


def larger_is_id(norms: jax.Array, logits: jax.Array, hyper: Hyper) -> jax.Array:
    """The norm itself (GradNorm's convention: a large gradient means ID)."""
    del logits, hyper
    return norms


def smaller_is_id(norms: jax.Array, logits: jax.Array, hyper: Hyper) -> jax.Array:
    """Minus the norm (GRODIN's convention: a small gradient means the model is settled: ID)."""
    del logits, hyper
    return -norms


def _odin_step(x: jax.Array, eps: jax.Array, direction: Callable[[], jax.Array]) -> jax.Array:
    """x - eps * direction(). Where a conditional is cheap (GPU, TPU) the input gradient (a forward
    and a backward pass) is skipped at eps = 0; XLA:CPU runs a conditional's branch about 6x slower
    than the same code outside one (ResNet-20, docs/norm_trick.md), so there the step is always
    computed, and selected away at eps = 0 (x stays as it is even where the direction is NaN)."""
    if jax.default_backend() == "cpu":
        return x - jnp.where(eps > 0, eps * direction(), jnp.zeros_like(x))
    return jax.lax.cond(eps > 0, lambda: x - eps * direction(), lambda: x)


def gradient_scorer(
    loss: Loss,
    *,
    selector: Selector = "all",
    norm: str = "sq",
    combine: Combine = smaller_is_id,
    perturb: bool = False,
    expectation: bool = False,
    hyper: Mapping[str, float] | None = None,
    grid: Mapping[str, Sequence[float]] | None = None,
    criterion: str = "auroc",
    tune_size: int | None = None,
    implementation: GradImplementation | str = GradImplementation.AUTO,
    chunk_size: int = 64,
    memory_budget: int | None = None,
    compute_dtype: str = "float32",
) -> Scorer:
    """A Scorer from per-sample weight gradients of `loss` (see the module docstring).

    loss: (z (C,), hyper) -> scalar for one sample, hashable (define it once, at module level);
      with expectation=True, (z, hyper, y) -> scalar and the score uses E_{y ~ softmax(z)} of the
      norms (eq. 4 of paper 002).
    selector: the parameters ("all", "head", "head_kernel", regexes, a callable).
    norm: "l1", "l2" or "sq" (squared l2). combine: (norms, logits at x~, hyper) -> (N,) ID-scores.
    perturb: take ODIN's input step first (hyper needs "temperature" and "epsilon").
    hyper: the non-differentiated hyper-parameters and their untuned values ({"temperature": 1.0}).
    grid: {name: values} tuned per OOD validation split by `criterion` ("auroc" or "fpr95");
      with perturb, the grid is over temperature x epsilon and shares one input gradient per T.
    memory_budget: bytes of temporaries per chunk of the norm-trick path, which then picks the chunk
      size and the conv methods (`gradients.ghost_plan`) instead of chunk_size.
    compute_dtype: "float32" or "bfloat16", the norms' compute (`gradients.per_sample_grad_norms`);
      the ODIN input step stays in float32.
    """
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {compute_dtype!r}")
    if memory_budget is not None:
        check_int("memory_budget", memory_budget)
    if norm not in NORM_ORDS:
        raise ValueError(f"norm must be one of {NORM_ORDS}, got {norm!r}")
    check_int("chunk_size", chunk_size)
    implementation = GradImplementation(implementation)
    hyper = {"temperature": 1.0, **({"epsilon": 0.0} if perturb else {}), **dict(hyper or {})}
    _check_step(hyper.get("temperature", 1.0), hyper.get("epsilon", 0.0))
    if perturb and grid is not None and set(grid) != {"temperature", "epsilon"}:
        raise ValueError(f"a perturbed gradient score tunes temperature x epsilon, got the grid {sorted(grid)}")
    if grid is not None and set(grid) - set(hyper):
        raise ValueError(f"grid names {sorted(set(grid) - set(hyper))} are not hyper-parameters {sorted(hyper)}")
    for t in (grid or {}).get("temperature", ()):
        _check_step(t, 0.0)
    for e in (grid or {}).get("epsilon", ()):
        _check_step(1.0, e)
    if isinstance(selector, str) and selector not in NAMED_SELECTORS:
        raise ValueError(f"selector string must be one of {NAMED_SELECTORS} (or a list of regexes), got {selector!r}")

    def fit(data: FitData) -> Hyper:
        del data
        return {k: jnp.asarray(v, jnp.float32) for k, v in hyper.items()}

    def norms_at(state: Hyper, model: Predict, x: jax.Array) -> jax.Array:
        apply = logits_fn_of(model.apply)
        kw = dict(selector=selector, ord=norm, method=implementation, chunk_size=chunk_size, compute_dtype=compute_dtype,
                  **({"memory_budget": memory_budget} if memory_budget is not None else {}))
        logits = apply(model.variables, x)
        if not expectation:
            norms = per_sample_grad_norms(apply, loss, model.variables, x, shared=(state,), **kw)
        else:
            per_class = jax.lax.map(
                lambda y: per_sample_grad_norms(apply, loss, model.variables, x, shared=(state, y), **kw),
                jnp.arange(logits.shape[-1]))  # (C, N)
            norms = jnp.sum(jax.nn.softmax(logits, axis=-1) * per_class.T, axis=-1)
        return combine(norms, logits, state)

    def score(state: Hyper, out: ModelOutputs) -> jax.Array:
        require(out, "a gradient score", INPUTS, MODEL)
        x = out.inputs
        if perturb:
            std = jnp.broadcast_to(jnp.asarray(out.model.input_std, x.dtype), (x.shape[-1],))
            t, eps = state["temperature"].astype(x.dtype), state["epsilon"].astype(x.dtype)
            x = _odin_step(x, eps, lambda: odin_direction(out.model, x, t, std))
        return norms_at(state, out.model, x)

    tune = None
    if grid is not None:
        if perturb:
            check_grid(grid["temperature"], grid["epsilon"], criterion)
            per_t = lambda state, model, x, t: norms_at({**state, "temperature": t}, model, x)  # noqa: E731
            tune = grid_tuner(grid, criterion, tune_size, grid_scores=perturbed_grid_scores(per_t))
        else:
            tune = grid_tuner(grid, criterion, tune_size, score=score)
    return Scorer(fit, score, frozenset({INPUTS, MODEL, WEIGHTS}), tune, chunk=chunk_size)
