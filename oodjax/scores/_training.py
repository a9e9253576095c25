"""Scores of the training-time detectors of paper 001 (their models: `models.get(..., head=...)`
trained with `training.objectives`).

  bin      max_c sigmoid(p_c) of a BIN-trained model's logits (eq. 3's classifiers)
  binc     max_c sigmoid of the "binary_logits" head of a BINC model (eq. 4)
  vib      log r = -KL(q(z|x) || prior) (eq. 5, r = exp(-KL))
  viby_i   log r_I = -sum_y P(y|x) KL(q(z|x) || prior_y) (eq. 6)
  viby_ii  log r_II = -min_y KL(q(z|x) || prior_y) (eq. 7)

The VIB scores return log r: the same ranking (hence the same metrics) as r, without r = exp(-KL)
underflowing to 0 for KL > ~87 in float32, which would tie all far-OOD inputs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from oodjax.scores._registry import register, stateless
from oodjax.scores._types import ModelOutputs, Scorer
from oodjax.types import LOGITS, OBJECTIVE_PREFIX, extra


def _extra(out: ModelOutputs, name: str, scorer: str, head: str) -> jax.Array:
    if not out.extras or name not in out.extras:
        raise ValueError(f"{scorer} reads the extra output {name!r}: score a model built with "
                         f"models.get(..., head={head!r})")
    return out.extras[name]


def max_sigmoid(logits: jax.Array) -> jax.Array:
    """max_c sigmoid(p_c) of (N, C) logits, (N,): the confidence of BIN / BINC."""
    return jax.nn.sigmoid(jnp.max(logits, axis=-1))


def vib_log_confidence(kl: jax.Array, logits: jax.Array | None = None, reduce: str = "single") -> jax.Array:
    """log r of paper 001 from the (N, K) KLs to the K priors: "single" (K = 1, eq. 5), "expected"
    (the predicted class probabilities softmax(logits) weight the KLs, eq. 6), "min" (eq. 7)."""
    if reduce == "single":
        if kl.shape[1] != 1:
            raise ValueError(f"vib needs one prior, the model has {kl.shape[1]}: use viby_i / viby_ii")
        return -kl[:, 0]
    if kl.shape[1] < 2:
        raise ValueError("viby_i / viby_ii need class-conditional priors: models.get(..., head='viby')")
    if reduce == "expected":
        return -jnp.sum(jax.nn.softmax(logits, axis=-1) * kl, axis=-1)
    if reduce == "min":
        return -jnp.min(kl, axis=-1)
    raise ValueError(f"reduce must be 'single', 'expected' or 'min', got {reduce!r}")


@register("bin")
def _bin() -> Scorer:
    """Needs a model trained with the BIN objective (its logits are C sigmoid classifiers)."""
    return stateless(lambda out: max_sigmoid(out.logits), {LOGITS, OBJECTIVE_PREFIX + "bin"})


@register("binc")
def _binc() -> Scorer:
    return stateless(lambda out: max_sigmoid(_extra(out, "binary_logits", "binc", "binc")), {extra("binary_logits")})


@register("vib")
def _vib() -> Scorer:
    return stateless(lambda out: vib_log_confidence(_extra(out, "kl", "vib", "vib")), {extra("kl")})


@register("viby_i")
def _viby_i() -> Scorer:
    return stateless(lambda out: vib_log_confidence(_extra(out, "class_kl", "viby_i", "viby"), out.logits, "expected"),
                     {LOGITS, extra("class_kl")})


@register("viby_ii")
def _viby_ii() -> Scorer:
    return stateless(lambda out: vib_log_confidence(_extra(out, "class_kl", "viby_ii", "viby"), reduce="min"),
                     {extra("class_kl")})
