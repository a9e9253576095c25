"""Gradient scores: GradNorm and the gradient family of paper 002 (RG), and GRODIN (paper 004).

Last-layer closed forms (z = h W + b, gradients with respect to the kernel W only, as GradNorm's
paper and code: selector "head_kernel"; each equals its registered `*_autodiff` scorer, built with
`gradient_scorer`, in the tests), all ID-scores (higher = ID):
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
validation split to maximize AUROC (the paper's protocol). G and SG are `gradient_scorer`s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from oodjax.gradients import per_sample_grad_norms
from oodjax.scores._checks import check_logits_features, check_positive
from oodjax.scores._gradient_scorer import gradient_scorer, larger_is_id
from oodjax.scores._odin import ODIN_EPSILONS, ODIN_TEMPERATURES
from oodjax.scores._registry import register, stateless
from oodjax.scores._types import Scorer
from oodjax.types import FEATURES, LOGITS


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
    """Eq. 4 of paper 002 (Igoe et al.): E_{y~p} ||d log p_y / dW||_1, closed form. Returns (N,).

    Direction: returned as is, the paper's reading "G is larger for ID data" (Sec. 3.1). The
    evidence says the reverse: U = 2 sum p (1 - p) shrinks for confident, ID-like predictions. On
    the claims report's WRN-40-2 (Fashion-MNIST, docs/claims.md, claim 002-eq4) G ranks far OOD
    above ID (AUROC 27.7); -G gives 72.3. Negate it yourself if you want the working direction."""
    check_logits_features(logits, features)
    p = jax.nn.softmax(logits, axis=-1)
    return 2.0 * jnp.sum(p * (1.0 - p), axis=-1) * _l1(features)


def expsum_gradnorm(logits: jax.Array, features: jax.Array) -> jax.Array:
    """Eq. 5 of paper 002: ||d sum_c e^{z_c} / dW||_1 = ||h||_1 sum_c e^{z_c}. Returns (N,)."""
    check_logits_features(logits, features)
    return jnp.sum(jnp.exp(logits), axis=-1) * _l1(features)


# Per-sample losses of the logits (C,) -> scalar, with the scorer's hyper-parameters `h` (a dict of
# scalars, never differentiated); defined once at module level so compiled code is reused.
def gradnorm_loss(z: jax.Array, h: dict) -> jax.Array:
    """KL(u || softmax(z/T)) up to its constant: -(1/C) sum_c log softmax(z/T)_c (eq. 3 of paper 002).

    The GradNorm reference code back-propagates the cross-entropy against all-ones targets, a SUM
    over classes: C times this loss, so C times the gradient norm; the ranking (every metric) is
    the same."""
    return -jnp.mean(jax.nn.log_softmax(z / h["temperature"]))


def log_prob_loss(z: jax.Array, h: dict, y: jax.Array) -> jax.Array:
    """log softmax(z)_y, whose gradient norm eq. 4 of paper 002 averages over y ~ softmax(z)."""
    del h
    return jax.nn.log_softmax(z)[y]


def expsum_loss(z: jax.Array, h: dict | None = None) -> jax.Array:
    """sum_c e^{z_c} (eq. 5)."""
    del h
    return jnp.sum(jnp.exp(z))


def predicted_nll(z: jax.Array) -> jax.Array:
    """-log softmax(z)_c^ at the predicted class c^ (GRODIN's loss; temperature applied to z)."""
    return -jax.nn.log_softmax(z)[jnp.argmax(jax.lax.stop_gradient(z))]


def grodin_loss(z: jax.Array, h: dict) -> jax.Array:
    """GRODIN's NLL of the predicted class at temperature T: predicted_nll(z / T)."""
    return predicted_nll(z / h["temperature"].astype(z.dtype))


GRODIN_PARTS = ("S", "G", "SG")


def grodin_parts(apply: Callable, variables, x: jax.Array, temperature: float, **kw) -> tuple[jax.Array, jax.Array]:
    """(S, ||S G||^2) at x (already perturbed) and temperature T, over all weights; ||G||^2 = ||SG||^2 / S^2.

    apply: (variables, x) -> logits, hashable (`gradients.logits_fn_of(model.apply)`); kw go to
    `per_sample_grad_norms` (method, chunk_size)."""
    h = {"temperature": jnp.asarray(temperature)}
    sq = per_sample_grad_norms(apply, grodin_loss, variables, x, shared=(h,), selector="all", ord="sq", **kw)
    return _softmax_score(apply(variables, x), h), sq


def _softmax_score(z: jax.Array, h: dict) -> jax.Array:
    return jnp.max(jax.nn.softmax(z / h["temperature"].astype(z.dtype), axis=-1), axis=-1)


def _grodin_g(sq: jax.Array, z: jax.Array, h: dict) -> jax.Array:
    s = _softmax_score(z, h)
    return -sq / (s * s)  # ||G||^2 = ||S G||^2 / S^2


def _grodin_sg(sq: jax.Array, z: jax.Array, h: dict) -> jax.Array:
    del z, h
    return -sq


def _register_grodin(part: str, combine) -> None:
    @register(f"grodin_{part.lower()}")
    def factory(temperature: float = 1.0, epsilon: float = 0.0, temperatures: Sequence[float] = ODIN_TEMPERATURES,
                epsilons: Sequence[float] = ODIN_EPSILONS, tune_size: int | None = None, criterion: str = "auroc",
                chunk_size: int = 64, implementation: str = "auto", memory_budget: int | None = None,
                compute_dtype: str = "float32") -> Scorer:
        return gradient_scorer(grodin_loss, selector="all", norm="sq", combine=combine, perturb=True,
                               hyper={"temperature": temperature, "epsilon": epsilon},
                               grid={"temperature": temperatures, "epsilon": epsilons}, criterion=criterion,
                               tune_size=tune_size, implementation=implementation, chunk_size=chunk_size,
                               memory_budget=memory_budget, compute_dtype=compute_dtype)

    factory.__doc__ = f"GRODIN's {part} score over all weights; T, eps tuned per OOD validation split (AUROC)."


_register_grodin("G", _grodin_g)  # S is ODIN's score: scores.get("odin", criterion="auroc")
_register_grodin("SG", _grodin_sg)


@register("gradnorm_autodiff")
def _gradnorm_autodiff(temperature: float = 1.0, implementation: str = "vmap") -> Scorer:
    """GradNorm by autodiff: the L1 norm of d gradnorm_loss / d (the head's kernel), the weights
    GradNorm differentiates (selector "head_kernel": the bias is left out, as in the paper and its
    code). Equals the closed form `gradnorm`."""
    return gradient_scorer(gradnorm_loss, selector="head_kernel", norm="l1", combine=larger_is_id,
                           hyper={"temperature": temperature}, implementation=implementation)


@register("expected_gradnorm_autodiff")
def _expected_gradnorm_autodiff(implementation: str = "vmap") -> Scorer:
    """Eq. 4 of paper 002 by autodiff: E_{y~p} ||d log p_y / dW||_1 over the head's kernel."""
    return gradient_scorer(log_prob_loss, selector="head_kernel", norm="l1", combine=larger_is_id,
                           expectation=True, implementation=implementation)


@register("expsum_gradnorm_autodiff")
def _expsum_gradnorm_autodiff(implementation: str = "vmap") -> Scorer:
    """Eq. 5 of paper 002 by autodiff: ||d sum_c e^{z_c} / dW||_1 over the head's kernel."""
    return gradient_scorer(expsum_loss, selector="head_kernel", norm="l1", combine=larger_is_id,
                           implementation=implementation)


@register("gradnorm")
def _gradnorm(temperature: float = 1.0) -> Scorer:
    check_positive("temperature", temperature)
    return stateless(lambda out: gradnorm(out.logits, out.features, temperature), {LOGITS, FEATURES})


@register("expected_gradnorm")
def _expected_gradnorm() -> Scorer:
    return stateless(lambda out: expected_gradnorm(out.logits, out.features), {LOGITS, FEATURES})


@register("expsum_gradnorm")
def _expsum_gradnorm() -> Scorer:
    return stateless(lambda out: expsum_gradnorm(out.logits, out.features), {LOGITS, FEATURES})


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
    check_positive("k", k, allow_inf=True)  # inf: no clipping
    if u not in U_TERMS or v not in V_TERMS:
        raise ValueError(f"u must be one of {sorted(U_TERMS)} and v one of {sorted(V_TERMS)}, got {u!r}, {v!r}")
    return U_TERMS[u](logits, temperature) * V_TERMS[v](features, k)


@register("uv")
def _uv(u: str = "energy", v: str = "clipped", k: float = 1.0, temperature: float = 1.0) -> Scorer:
    uv_score(jnp.zeros((1, 2)), jnp.zeros((1, 1)), u, v, k, temperature)  # validates the arguments now
    return stateless(lambda out: uv_score(out.logits, out.features, u, v, k, temperature), {LOGITS, FEATURES})
