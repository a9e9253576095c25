"""Training objectives: what the shared loop minimizes (`train(..., objective=...)`).

An objective is a frozen dataclass (its repr is part of a run's identity) called as
`objective(out, y, ood=None) -> (loss, metrics)`: `out` holds the model's training-mode outputs on
the in-distribution batch (logits, features, extras), y the (N,) integer labels, and `ood` the
outputs on the outlier batch for objectives with `uses_outliers` (outlier exposure).

  CrossEntropy   softmax cross-entropy (the default)
  BIN            paper 001 eq. 3: one sigmoid binary classifier per class, negatives weighted by zeta
  BINC           paper 001 eq. 4: cross-entropy + BIN on a second head + lambda * MMCE
  VIB            Alemi et al. 2016 (paper 001): cross-entropy + beta * KL(q(z|x) || prior); VIBY
                 uses the prior of the true class
  EnergyOE       Liu et al. 2020 (paper 003): cross-entropy + lambda * squared hinges on the energy
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class TrainOutputs(NamedTuple):
    """A model's training-mode outputs: logits (N, C), features (N, D), extras {name: (N, ...)}."""

    logits: jax.Array
    features: jax.Array
    extras: dict[str, jax.Array]


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def _non_negative(name: str, value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


def _extra(out: TrainOutputs, name: str, what: str) -> jax.Array:
    if name not in out.extras:
        raise ValueError(f"{what} needs the model's extra output {name!r}; build the model with "
                         f"models.get(..., head={what.lower()!r}) (it has {sorted(out.extras)})")
    return out.extras[name]


def cross_entropy(logits: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of (N, C) logits against (N,) integer labels."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def bin_loss(logits: jax.Array, y: jax.Array, zeta: float) -> jax.Array:
    """Paper 001, eq. 3 (with the logarithms of the binary cross-entropy, which the printed equation
    drops): one sigmoid classifier per class, class y positive, the other C - 1 negative and weighted
    by zeta against their C - 1 : 1 imbalance. Mean over the batch of
    -log sigma(p_y) - zeta * sum_{c != y} log(1 - sigma(p_c)).  logits: (N, C); y: (N,)."""
    positive = jax.nn.one_hot(y, logits.shape[-1], dtype=logits.dtype)
    per_class = -positive * jax.nn.log_sigmoid(logits) - zeta * (1.0 - positive) * jax.nn.log_sigmoid(-logits)
    return jnp.mean(jnp.sum(per_class, axis=-1))


def mmce_weighted(confidence: jax.Array, correct: jax.Array, width: float = 0.4) -> jax.Array:
    """Kumar et al. 2018's re-weighted MMCE (MMCE_w) of one classifier over a batch, with the
    Laplacian kernel k(r, r') = exp(-|r - r'| / width):

    MMCE_w^2 = sum_{i,j in C} (1 - r_i)(1 - r_j) k_ij / m_c^2 + sum_{i,j in W} r_i r_j k_ij / m_w^2
               - 2 sum_{i in C, j in W} (1 - r_i) r_j k_ij / (m_c m_w),
    C / W the correct / wrong predictions (m_c, m_w of them). Returns sqrt(MMCE_w^2 + 1e-10).
    confidence: (N,) r_i in [0, 1]; correct: (N,) 0/1."""
    c = correct.astype(confidence.dtype)
    w = 1.0 - c
    k = jnp.exp(-jnp.abs(confidence[:, None] - confidence[None, :]) / width)
    m_c, m_w = jnp.maximum(jnp.sum(c), 1.0), jnp.maximum(jnp.sum(w), 1.0)
    a = c * (1.0 - confidence) / m_c  # correct ones, weighted by their under-confidence
    b = w * confidence / m_w  # wrong ones, weighted by their confidence
    sq = a @ k @ a + b @ k @ b - 2.0 * (a @ k @ b)
    return jnp.sqrt(jnp.maximum(sq, 0.0) + 1e-10)


def binary_mmce(logits: jax.Array, y: jax.Array, width: float = 0.4) -> jax.Array:
    """MMCE_w averaged over the C binary classifiers of (N, C) sigmoid logits: classifier c predicts
    "class c" when sigma(p_c) > 1/2, with confidence max(sigma, 1 - sigma). (Summed over 10
    classifiers at lambda = 0.5, the term dominated early training and collapsed a small CNN to a
    constant output, CE stuck at log 10; the mean keeps lambda on the scale of one classifier.)"""
    p = jax.nn.sigmoid(logits)
    target = jax.nn.one_hot(y, logits.shape[-1], dtype=jnp.bool_)
    confidence = jnp.maximum(p, 1.0 - p)
    correct = (p > 0.5) == target
    return jnp.mean(jax.vmap(lambda r, c: mmce_weighted(r, c, width), in_axes=1)(confidence, correct))


def free_energy(logits: jax.Array, temperature: float = 1.0) -> jax.Array:
    """E(x) = -T logsumexp(f(x) / T), (N,): low for ID data (Liu et al. 2020, eq. 1)."""
    return -temperature * jax.nn.logsumexp(logits / temperature, axis=-1)


def energy_hinges(id_logits: jax.Array, ood_logits: jax.Array, m_in: float, m_out: float,
                  temperature: float = 1.0) -> jax.Array:
    """Liu et al. 2020, eq. 8's regularizer: E_in[max(0, E(x_in) - m_in)^2] + E_out[max(0, m_out - E(x_out))^2]."""
    e_in, e_out = free_energy(id_logits, temperature), free_energy(ood_logits, temperature)
    return jnp.mean(jnp.maximum(e_in - m_in, 0.0) ** 2) + jnp.mean(jnp.maximum(m_out - e_out, 0.0) ** 2)


def _result(loss: jax.Array, **parts: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(the loss, the parts logged next to it)."""
    return loss, parts


@dataclasses.dataclass(frozen=True)
class CrossEntropy:
    uses_outliers = False
    provides = frozenset()

    def __call__(self, out: TrainOutputs, y: jax.Array, ood: TrainOutputs | None = None):
        return _result(cross_entropy(out.logits, y))


@dataclasses.dataclass(frozen=True)
class BIN:
    """Paper 001, eq. 3 on the model's logits; score with `bin` (max sigmoid). zeta > 0 (0.05 in the paper)."""

    zeta: float = 0.05
    uses_outliers = False
    provides = frozenset({"objective:bin"})  # the bin scorer reads its sigmoid classifiers

    def __post_init__(self):
        _positive("zeta", self.zeta)

    def __call__(self, out: TrainOutputs, y: jax.Array, ood: TrainOutputs | None = None):
        return _result(bin_loss(out.logits, y, self.zeta))


@dataclasses.dataclass(frozen=True)
class BINC:
    """Paper 001, eq. 4: K (softmax CE on the logits) + L_BIN (eq. 3 on the "binary_logits" head)
    + lam * MMCE_w averaged over the binary classifiers. Model: models.get(..., head="binc");
    score with `binc`. zeta > 0 (0.05), lam >= 0 (0.5), width > 0 (Kumar et al.'s 0.4)."""

    zeta: float = 0.05
    lam: float = 0.5
    width: float = 0.4
    uses_outliers = False
    provides = frozenset()

    def __post_init__(self):
        _positive("zeta", self.zeta)
        _non_negative("lam", self.lam)
        _positive("width", self.width)

    def __call__(self, out: TrainOutputs, y: jax.Array, ood: TrainOutputs | None = None):
        binary = _extra(out, "binary_logits", "BINC")
        ce, b, mmce = cross_entropy(out.logits, y), bin_loss(binary, y, self.zeta), binary_mmce(binary, y, self.width)
        return _result(ce + b + self.lam * mmce, ce=ce, bin=b, mmce=mmce)


@dataclasses.dataclass(frozen=True)
class VIB:
    """Cross-entropy of the logits of a sampled code + beta * KL(N(mu, sigma^2) || prior), the
    extra "kl" of models.get(..., head="vib") (one prior) or "class_kl" of head="viby" (one per
    class: the true class's prior is used, paper 001's VIBY). beta >= 0 (paper 001: 0.005 VIB, 0.01 VIBY)."""

    beta: float = 0.005
    uses_outliers = False
    provides = frozenset()

    def __post_init__(self):
        _non_negative("beta", self.beta)

    def __call__(self, out: TrainOutputs, y: jax.Array, ood: TrainOutputs | None = None):
        kl_all = _extra(out, "class_kl" if "class_kl" in (out.extras or {}) else "kl", "VIB")
        kl = kl_all[:, 0] if kl_all.shape[1] == 1 else jnp.take_along_axis(kl_all, y[:, None], axis=1)[:, 0]
        ce, kl = cross_entropy(out.logits, y), jnp.mean(kl)
        return _result(ce + self.beta * kl, ce=ce, kl=kl)


@dataclasses.dataclass(frozen=True)
class EnergyOE:
    """Energy-bounded learning with outlier exposure (Liu et al. 2020; paper 003): cross-entropy on
    the ID batch + lam * energy_hinges(ID, outliers). Their CIFAR values: lam 0.1, m_in -25,
    m_out -7 (T = 1). Needs train(..., outliers=...)."""

    lam: float = 0.1
    m_in: float = -25.0
    m_out: float = -7.0
    temperature: float = 1.0
    uses_outliers = True
    provides = frozenset()

    def __post_init__(self):
        _non_negative("lam", self.lam)
        _positive("temperature", self.temperature)
        if not self.m_in < self.m_out:
            raise ValueError(f"m_in must be below m_out (ID energy low, OOD high), got {self.m_in} and {self.m_out}")

    def __call__(self, out: TrainOutputs, y: jax.Array, ood: TrainOutputs | None = None):
        if ood is None:
            raise ValueError("EnergyOE needs an outlier batch: train(..., outliers=...)")
        ce = cross_entropy(out.logits, y)
        reg = energy_hinges(out.logits, ood.logits, self.m_in, self.m_out, self.temperature)
        return _result(ce + self.lam * reg, ce=ce, energy_reg=reg)


Objective = CrossEntropy | BIN | BINC | VIB | EnergyOE
