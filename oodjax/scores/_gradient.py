"""Gradient scores: GradNorm and the gradient family of paper 002 (RG), and GRODIN (paper 004).

Last-layer closed forms (z = h W + b, gradients with respect to the kernel W, as the official
GradNorm; each verified against autodiff in the tests), all ID-scores (higher = ID):
  GradNorm (eq. 3):   ||d KL(u || softmax(z/T)) / dW||_1 = (1/T) ||h||_1 sum_c |p_c - 1/C|
  expectation (eq. 4): E_{y~p} ||d log p_y / dW||_1    = ||h||_1 * 2 sum_c p_c (1 - p_c)
  exp-sum (eq. 5):     ||d sum_c e^{z_c} / dW||_1      = ||h||_1 * sum_c e^{z_c}
i.e. U x V with V = ||h||_1 (eq. 6). (Paper 002 prints eq. 4's U for eq. 5 too; the derivative
of sum_c e^{z_c} gives U = sum_c e^{z_c}, which is what autodiff confirms.)

GRODIN: for the predicted class c^, the NLL gradient over ALL weights factors as
  d(-log p_c^)/d theta = -S G,  S = p_c^ (ODIN's score),
  G = -sum_{c != c^} e^{(z_c - z_c^)} d(z_c - z_c^)/d theta,
at temperature T (z -> z / T) and on the ODIN-perturbed input. Scores: S, -||G||^2 and -||S G||^2
(a small gradient means the model is settled on the sample: ID). T and eps are tuned per OOD
validation split to maximize AUROC (the paper's protocol).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from oodjax.gradients import per_sample_sq_grad_norms
from oodjax.scores._checks import check_logits_features, check_positive
from oodjax.scores._odin import (
    ODIN_EPSILONS, ODIN_TEMPERATURES, CRITERIA, OdinGrid, _check_step, odin_direction, tune_odin,
)
from oodjax.scores._registry import register, stateless
from oodjax.scores._types import FitData, ModelOutputs, Scorer


def _l1(features: jax.Array) -> jax.Array:
    return jnp.sum(jnp.abs(features), axis=-1)


def gradnorm(logits: jax.Array, features: jax.Array, temperature: float = 1.0) -> jax.Array:
    """GradNorm (Huang et al. 2021; eq. 3 of paper 002), closed form. (N, C), (N, D) -> (N,)."""
    check_logits_features(logits, features)
    check_positive("temperature", temperature)
    p = jax.nn.softmax(logits / temperature, axis=-1)
    u = jnp.sum(jnp.abs(p - 1.0 / logits.shape[-1]), axis=-1) / temperature
    return u * _l1(features)


def expected_gradnorm(logits: jax.Array, features: jax.Array) -> jax.Array:
    """Eq. 4 of paper 002 (Igoe et al.): E_{y~p} ||d log p_y / dW||_1, closed form. Returns (N,)."""
    check_logits_features(logits, features)
    p = jax.nn.softmax(logits, axis=-1)
    return 2.0 * jnp.sum(p * (1.0 - p), axis=-1) * _l1(features)


def expsum_gradnorm(logits: jax.Array, features: jax.Array) -> jax.Array:
    """Eq. 5 of paper 002: ||d sum_c e^{z_c} / dW||_1 = ||h||_1 sum_c e^{z_c}. Returns (N,)."""
    check_logits_features(logits, features)
    return jnp.sum(jnp.exp(logits), axis=-1) * _l1(features)


# Per-sample losses of the logits (C,) -> scalar, for the autodiff paths.
@functools.lru_cache(maxsize=None)
def gradnorm_loss(temperature: float = 1.0) -> Callable[[jax.Array], jax.Array]:
    """KL(u || softmax(z/T)) up to its constant: -(1/C) sum_c log softmax(z/T)_c (official code)."""
    return lambda z: -jnp.mean(jax.nn.log_softmax(z / temperature))


def expsum_loss(z: jax.Array) -> jax.Array:
    """sum_c e^{z_c} (eq. 5)."""
    return jnp.sum(jnp.exp(z))


def predicted_nll(z: jax.Array) -> jax.Array:
    """-log softmax(z)_c^ at the predicted class c^ (GRODIN's loss; temperature applied to z)."""
    return -jax.nn.log_softmax(z)[jnp.argmax(jax.lax.stop_gradient(z))]


def _scaled(apply: Callable, vt: dict, x: jax.Array) -> jax.Array:
    z = apply(vt["vars"], x)
    return z / vt["T"].astype(z.dtype)


@functools.lru_cache(maxsize=None)
def scaled_apply(apply: Callable) -> Callable:
    """(vt = {'vars': variables, 'T': T}, x) -> apply(variables, x) / T. The temperature rides in the
    pytree (not differentiated), so one compiled function serves every T."""
    return functools.partial(_scaled, apply)


def grodin_parts(apply: Callable, variables: Any, x: jax.Array, temperature: jax.Array, **kw) -> tuple[jax.Array, jax.Array]:
    """(S, ||S G||^2) at x (already perturbed), temperature T, over all weights. ||G||^2 = ||SG||^2 / S^2."""
    vt = {"vars": variables, "T": jnp.asarray(temperature)}
    s = jnp.max(jax.nn.softmax(_scaled(apply, vt, x), axis=-1), axis=-1)
    sq = per_sample_sq_grad_norms(scaled_apply(apply), predicted_nll, vt, x, selector=("vars/params/.*",), **kw)
    return s, sq


GRODIN_PARTS = ("S", "G", "SG")


def _grodin_score(part: str, s: jax.Array, sq: jax.Array) -> jax.Array:
    return {"S": lambda: s, "G": lambda: -sq / (s * s), "SG": lambda: -sq}[part]()


class GrodinState(NamedTuple):
    apply: jax.tree_util.Partial  # wraps the hashable apply_fn
    variables: Any
    std: jax.Array
    temperature: jax.Array
    epsilon: jax.Array


def _grodin(part: str, temperature: float, epsilon: float, temperatures: Sequence[float],
            epsilons: Sequence[float], tune_size: int | None, criterion: str, chunk_size: int) -> Scorer:
    _check_step(temperature, epsilon)
    for t in temperatures:
        _check_step(t, 0.0)
    for e in epsilons:
        _check_step(1.0, e)
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    grid = OdinGrid(tuple(map(float, temperatures)), tuple(map(float, epsilons)))

    def fit(data: FitData) -> GrodinState:
        if data.apply_fn is None or data.variables is None:
            raise ValueError(f"grodin_{part.lower()} differentiates the weights: pass FitData.apply_fn and variables")
        std = jnp.asarray(data.input_std or (1.0,), jnp.float32)
        return GrodinState(jax.tree_util.Partial(data.apply_fn), data.variables, std,
                           jnp.asarray(temperature, jnp.float32), jnp.asarray(epsilon, jnp.float32))

    def scores_at(state: GrodinState, x: jax.Array, t: jax.Array) -> jax.Array:
        s, sq = grodin_parts(state.apply.func, state.variables, x, t, chunk_size=chunk_size)
        return _grodin_score(part, s, sq)

    def score(state: GrodinState, out: ModelOutputs) -> jax.Array:
        if out.inputs is None:
            raise ValueError("GRODIN needs ModelOutputs.inputs (the normalized images)")
        logits_fn = jax.tree_util.Partial(state.apply.func, state.variables)
        std = jnp.broadcast_to(state.std, (out.inputs.shape[-1],))
        x = jax.lax.cond(  # at eps = 0 the input gradient (a forward and a backward pass) is skipped
            state.epsilon > 0,
            lambda: out.inputs - state.epsilon * odin_direction(logits_fn, out.inputs, state.temperature, std),
            lambda: out.inputs,
        )
        return scores_at(state, x, state.temperature)

    def tune(state: GrodinState, id_val: ModelOutputs, ood_vals: Mapping[str, ModelOutputs]) -> dict[str, GrodinState]:
        if id_val.inputs is None or any(o.inputs is None for o in ood_vals.values()):
            raise ValueError("tuning GRODIN needs the validation inputs (ModelOutputs.inputs)")
        logits_fn = jax.tree_util.Partial(state.apply.func, state.variables)
        std = jnp.broadcast_to(state.std, (id_val.inputs.shape[-1],))
        tuned = tune_odin(logits_fn, id_val.inputs[:tune_size], {k: o.inputs[:tune_size] for k, o in ood_vals.items()},
                          std, grid, criterion=criterion, score_at=lambda x, t: scores_at(state, x, t))
        return {k: state._replace(temperature=jnp.asarray(t, jnp.float32), epsilon=jnp.asarray(e, jnp.float32))
                for k, (t, e, _) in tuned.items()}

    return Scorer(fit, score, tune)


def _register_grodin(part: str) -> None:
    @register(f"grodin_{part.lower()}")
    def factory(temperature: float = 1.0, epsilon: float = 0.0, temperatures: Sequence[float] = ODIN_TEMPERATURES,
                epsilons: Sequence[float] = ODIN_EPSILONS, tune_size: int | None = None, criterion: str = "auroc",
                chunk_size: int = 64) -> Scorer:
        return _grodin(part, temperature, epsilon, temperatures, epsilons, tune_size, criterion, chunk_size)

    factory.__doc__ = f"GRODIN's {part} score over all weights; T, eps tuned per OOD validation split (AUROC)."


for _part in ("G", "SG"):  # S is ODIN's score: scores.get("odin", criterion="auroc")
    _register_grodin(_part)


@register("gradnorm")
def _gradnorm(temperature: float = 1.0) -> Scorer:
    check_positive("temperature", temperature)
    return stateless(lambda out: gradnorm(out.logits, out.features, temperature))


@register("expected_gradnorm")
def _expected_gradnorm() -> Scorer:
    return stateless(lambda out: expected_gradnorm(out.logits, out.features))


@register("expsum_gradnorm")
def _expsum_gradnorm() -> Scorer:
    return stateless(lambda out: expsum_gradnorm(out.logits, out.features))


# Paper 002, Table 2: U (output space) x V (feature space), combined by multiplication.
U_TERMS: dict[str, Callable[[jax.Array, float], jax.Array]] = {
    "gradnorm": lambda z, t: jnp.sum(jnp.abs(jax.nn.softmax(z / t, axis=-1) - 1.0 / z.shape[-1]), axis=-1) / t,
    "energy": lambda z, t: t * jax.nn.logsumexp(z / t, axis=-1),
    "one": lambda z, t: jnp.ones(z.shape[:1], z.dtype),
}
V_TERMS: dict[str, Callable[[jax.Array, float], jax.Array]] = {
    "l1": lambda h, k: _l1(h),
    "clipped": lambda h, k: jnp.sum(jnp.minimum(h, k), axis=-1),
    "one": lambda h, k: jnp.ones(h.shape[:1], h.dtype),
}


def uv_score(logits: jax.Array, features: jax.Array, u: str = "energy", v: str = "clipped", k: float = 1.0,
             temperature: float = 1.0) -> jax.Array:
    """U(z) * V(h) of paper 002 (eq. 6 and Table 2). u: gradnorm | energy | one; v: l1 | clipped | one.
    (gradnorm, l1) is GradNorm, (energy, l1) Igoe et al., (energy, clipped) RG eq. 8."""
    check_logits_features(logits, features)
    check_positive("temperature", temperature)
    check_positive("k", k)
    if u not in U_TERMS or v not in V_TERMS:
        raise ValueError(f"u must be one of {sorted(U_TERMS)} and v one of {sorted(V_TERMS)}, got {u!r}, {v!r}")
    return U_TERMS[u](logits, temperature) * V_TERMS[v](features, k)


@register("uv")
def _uv(u: str = "energy", v: str = "clipped", k: float = 1.0, temperature: float = 1.0) -> Scorer:
    uv_score(jnp.zeros((1, 2)), jnp.zeros((1, 1)), u, v, k, temperature)  # validates the arguments now
    return stateless(lambda out: uv_score(out.logits, out.features, u, v, k, temperature))
