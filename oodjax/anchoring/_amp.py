"""AMP: heteroscedastic temperature scaling from anchored predictions (paper 000, eqs. 1-2).

An anchored network gives K predictions of each input, one per anchor: samples (N, K, C) logits.
Eq. 1:  H = mean_k f([c_k, x - c_k])          tau = REDUCE_c std_k sigmoid(f([c_k, x - c_k]))_c
with std the unbiased (ddof = 1, `torch.std`) standard deviation over the K anchors, and REDUCE a
sum over classes (the paper) or a mean (the official code). The calibrated logits are H / tau, or
H / (1 + exp(tau)) (the variant the paper uses for CIFAR-sized data). Eq. 2, the AMP score:
  S(x) = -(1/C) sum_c log softmax(H^c)_c      (cross-entropy from the uniform distribution)
which is low for a flat prediction (OOD) and high for a peaked one (ID). Any logit score (MSP,
energy, entropy) of the calibrated logits is an AMP variant too (Fig. 5b), and -tau alone is an
uncertainty score (Table 5).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from oodjax.scores import energy, entropy, msp, register, stateless
from oodjax.scores._checks import check_rank
from oodjax.types import SAMPLES, ModelOutputs, Scorer

TAU_REDUCTIONS: dict[str, Callable[..., jax.Array]] = {"sum": jnp.sum, "mean": jnp.mean}


def _check_samples(samples: jax.Array) -> None:
    check_rank("samples", samples, 3, "(N, K, C): K anchored predictions of N inputs")
    if samples.shape[1] < 2:
        raise ValueError(f"a standard deviation over anchors needs K >= 2 predictions, got K = {samples.shape[1]}")


def anchor_temperature(samples: jax.Array, reduce: str = "sum") -> jax.Array:
    """tau(x) of eq. 1: std over the K anchors (ddof = 1) of sigmoid(logits), reduced over classes.

    samples: (N, K, C) logits, K >= 2. reduce: "sum" (paper, eq. 1) or "mean" (official code).
    Returns (N,).
    """
    _check_samples(samples)
    if reduce not in TAU_REDUCTIONS:
        raise ValueError(f"reduce must be one of {sorted(TAU_REDUCTIONS)}, got {reduce!r}")
    return TAU_REDUCTIONS[reduce](jnp.std(jax.nn.sigmoid(samples), axis=1, ddof=1), axis=-1)


def _divide(mean_logits: jax.Array, tau: jax.Array) -> jax.Array:
    # tau = 0 only if all K predictions agree exactly; floor it at eps to keep the logits finite.
    return mean_logits / jnp.maximum(tau, jnp.finfo(tau.dtype).eps)[:, None]


def _one_plus_exp(mean_logits: jax.Array, tau: jax.Array) -> jax.Array:
    return mean_logits / (1.0 + jnp.exp(tau))[:, None]


# H^c = CALIBRATIONS[name](H, tau): "tau" is H / tau (sec. 3), "one_plus_exp" is H / (1 + exp(tau)).
CALIBRATIONS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {"tau": _divide, "one_plus_exp": _one_plus_exp}


def calibrate(mean_logits: jax.Array, tau: jax.Array, calibration: str = "tau") -> jax.Array:
    """Heteroscedastic temperature scaling. mean_logits: (N, C) H; tau: (N,). Returns (N, C) H^c."""
    check_rank("mean_logits", mean_logits, 2, "(N, C)")
    check_rank("tau", tau, 1, "(N,)")
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {sorted(CALIBRATIONS)}, got {calibration!r}")
    return CALIBRATIONS[calibration](mean_logits, tau)


def amp(calibrated_logits: jax.Array) -> jax.Array:
    """Eq. 2: -(1/C) sum_c log softmax(H^c)_c. calibrated_logits: (N, C). Returns (N,), higher = ID."""
    check_rank("calibrated_logits", calibrated_logits, 2, "(N, C)")
    return -jnp.mean(jax.nn.log_softmax(calibrated_logits, axis=-1), axis=-1)


def amp_logits(samples: jax.Array, calibration: str = "tau", reduce: str = "sum") -> jax.Array:
    """H^c from the K anchored logits (N, K, C): eq. 1 then the calibration. Returns (N, C)."""
    tau = anchor_temperature(samples, reduce)
    return calibrate(jnp.mean(samples, axis=1), tau, calibration)


def _samples(out: ModelOutputs, name: str) -> jax.Array:
    if out.samples is None:
        raise ValueError(
            f"{name} needs K anchored predictions per input (ModelOutputs.samples): score an anchored model "
            "(oodjax.anchoring.anchored_model)"
        )
    return out.samples


# Scores of the calibrated logits: AMP (eq. 2) and the Fig. 5b variants.
AMP_SCORES: dict[str, Callable[[jax.Array], jax.Array]] = {
    "amp": amp, "amp_msp": msp, "amp_energy": energy, "amp_entropy": entropy,
}


def _register_amp(name: str, fn: Callable[[jax.Array], jax.Array]) -> None:
    @register(name)  # fn of the calibrated logits H^c
    def factory(calibration: str = "tau", reduce: str = "sum") -> Scorer:
        if calibration not in CALIBRATIONS or reduce not in TAU_REDUCTIONS:
            raise ValueError(
                f"{name}: calibration must be one of {sorted(CALIBRATIONS)} and reduce one of "
                f"{sorted(TAU_REDUCTIONS)}, got {calibration!r}, {reduce!r}"
            )
        return stateless(lambda out: fn(amp_logits(_samples(out, name), calibration, reduce)), {SAMPLES})


for _name, _fn in AMP_SCORES.items():
    _register_amp(_name, _fn)


@register("amp_tau")
def _amp_tau(reduce: str = "sum") -> Scorer:
    """-tau(x): the anchors' disagreement alone as an uncertainty score (paper 000, Table 5)."""
    if reduce not in TAU_REDUCTIONS:
        raise ValueError(f"reduce must be one of {sorted(TAU_REDUCTIONS)}, got {reduce!r}")
    return stateless(lambda out: -anchor_temperature(_samples(out, "amp_tau"), reduce), {SAMPLES})
