"""ODIN (Liang et al. 2018; papers 001, 003, 004): temperature scaling + input perturbation.

x~ = x - eps * sign(-grad_x log S_yhat(x; T)) / std   (per channel, as the official code)
score = max_c softmax(f(x~) / T)_c

The model enters as a pytree function `logits_fn(x) -> logits` (a `jax.tree_util.Partial`), x are
normalized inputs. T and eps are tuned on each OOD set's validation split (never its test split).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.metrics import ood_metrics
from oodjax.scores._checks import check_positive
from oodjax.scores._registry import register
from oodjax.scores._types import FitData, ModelOutputs, Scorer

# The grids of papers 001/004: T in {1 .. 1000}, 21 epsilons evenly spaced in [0, 0.004].
ODIN_TEMPERATURES: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
ODIN_EPSILONS: tuple[float, ...] = tuple(float(e) for e in np.linspace(0.0, 0.004, 21))

LogitsFn = Callable[[jax.Array], jax.Array]


def _check_step(temperature: float, epsilon: float) -> None:
    check_positive("temperature", temperature)
    if isinstance(epsilon, (int, float)) and epsilon < 0:
        raise ValueError(f"epsilon must be >= 0, got {epsilon}")


@jax.jit
def odin_direction(logits_fn: LogitsFn, x: jax.Array, temperature: jax.Array, std: jax.Array) -> jax.Array:
    """sign(-grad_x log S_yhat(x; T)) / std: the direction ODIN steps *against*. x: (N, H, W, C)."""

    def nll(x):
        log_p = jax.nn.log_softmax(logits_fn(x) / temperature, axis=-1)
        y_hat = jax.lax.stop_gradient(jnp.argmax(log_p, axis=-1))
        # Each sample's loss depends on its own input only, so the gradient of the sum is per sample.
        return -jnp.sum(jnp.take_along_axis(log_p, y_hat[:, None], axis=-1))

    return jnp.sign(jax.grad(nll)(x)) / std[None, None, None, :]


@jax.jit
def _perturbed_msp(logits_fn: LogitsFn, x, direction, temperature, epsilon) -> jax.Array:
    z = logits_fn(x - epsilon * direction) / temperature
    return jnp.max(jax.nn.softmax(z, axis=-1), axis=-1)


def odin(
    logits_fn: LogitsFn, x: jax.Array, temperature: float = 1000.0, epsilon: float = 0.0014,
    std: Sequence[float] | jax.Array = (1.0,),
) -> jax.Array:
    """ODIN score of normalized inputs x (N, H, W, C). std: (C,) or (1,) normalization std. Returns (N,)."""
    _check_step(temperature, epsilon)
    if x.ndim != 4:
        raise ValueError(f"ODIN perturbs images: x must have shape (N, H, W, C), got {x.shape}")
    std = jnp.broadcast_to(jnp.asarray(std, x.dtype), (x.shape[-1],))
    t = jnp.asarray(temperature, x.dtype)
    return _perturbed_msp(logits_fn, x, odin_direction(logits_fn, x, t, std), t, jnp.asarray(epsilon, x.dtype))


class OdinGrid(NamedTuple):
    temperatures: tuple[float, ...]
    epsilons: tuple[float, ...]


ScoreAt = Callable[[jax.Array, jax.Array], jax.Array]  # (perturbed x, T) -> (N,) scores


def _msp_at(logits_fn: LogitsFn) -> ScoreAt:
    return lambda x, t: jnp.max(jax.nn.softmax(logits_fn(x) / t, axis=-1), axis=-1)


def _grid_scores(logits_fn, x, std, grid: OdinGrid, batch_size: int, score_at: ScoreAt) -> np.ndarray:
    """(len(T), len(eps), N) scores of the perturbed inputs, with one input gradient per temperature."""
    n_all = x.shape[0]
    out = np.empty((len(grid.temperatures), len(grid.epsilons), n_all), np.float64)
    for i in range(0, n_all, batch_size):
        n = min(batch_size, n_all - i)
        xb = x[i : i + n]
        if n < batch_size:  # pad: one compiled shape for every batch
            xb = jnp.concatenate([xb, jnp.zeros((batch_size - n, *xb.shape[1:]), xb.dtype)])
        for a, t in enumerate(grid.temperatures):
            t = jnp.asarray(t, xb.dtype)
            # All-zero epsilons (no input step): skip the input gradient.
            d = odin_direction(logits_fn, xb, t, std) if any(grid.epsilons) else jnp.zeros_like(xb)
            for b, e in enumerate(grid.epsilons):
                out[a, b, i : i + n] = np.asarray(score_at(xb - jnp.asarray(e, xb.dtype) * d, t))[:n]
    return out


CRITERIA = ("fpr95", "auroc")


def tune_odin(
    logits_fn: LogitsFn,
    id_x: jax.Array,
    ood_x: Mapping[str, jax.Array],
    std: jax.Array,
    grid: OdinGrid = OdinGrid(ODIN_TEMPERATURES, ODIN_EPSILONS),
    batch_size: int = 256,
    criterion: str = "fpr95",
    score_at: ScoreAt | None = None,
) -> dict[str, tuple[float, float, np.ndarray]]:
    """For each OOD validation set: (T*, eps*, criterion grid (len(T), len(eps))).

    criterion "fpr95" (ODIN: lowest ID-positive FPR95, ties to the higher AUROC) or "auroc" (GRODIN,
    paper 004: highest AUROC, ties to the lower FPR95). score_at(x~, T) scores the perturbed inputs
    (default: ODIN's max softmax at T). The ID validation work is shared by all sets.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    score_at = score_at or _msp_at(logits_fn)
    id_grid = _grid_scores(logits_fn, id_x, std, grid, batch_size, score_at)
    result = {}
    for name, x in ood_x.items():
        ood_grid = _grid_scores(logits_fn, x, std, grid, batch_size, score_at)
        values = np.empty(id_grid.shape[:2])
        best, best_key = (0, 0), (np.inf, np.inf)
        for a in range(values.shape[0]):
            for b in range(values.shape[1]):
                m = ood_metrics(id_grid[a, b], ood_grid[a, b])
                values[a, b] = m[criterion]
                key = (m["fpr95"], -m["auroc"]) if criterion == "fpr95" else (-m["auroc"], m["fpr95"])
                if key < best_key:
                    best, best_key = (a, b), key
        result[name] = (grid.temperatures[best[0]], grid.epsilons[best[1]], values)
    return result


class OdinState(NamedTuple):
    logits_fn: LogitsFn
    std: jax.Array
    temperature: jax.Array
    epsilon: jax.Array


@register("odin")
def _odin(
    temperature: float = 1000.0,
    epsilon: float = 0.0014,
    temperatures: Sequence[float] = ODIN_TEMPERATURES,
    epsilons: Sequence[float] = ODIN_EPSILONS,
    tune_size: int | None = None,
    criterion: str = "fpr95",
) -> Scorer:
    """ODIN. `tune` grid-searches T x eps per OOD validation set; (temperature, epsilon) are the
    values used untuned. epsilons=(0.0,) gives "MSP + tuned T" (Baseline+T of paper 001).
    tune_size caps the validation images used for tuning (first n of each split); criterion: "fpr95"
    (ODIN) or "auroc" (GRODIN's protocol)."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    _check_step(temperature, epsilon)
    for t in temperatures:
        _check_step(t, 0.0)
    for e in epsilons:
        _check_step(1.0, e)
    grid = OdinGrid(tuple(map(float, temperatures)), tuple(map(float, epsilons)))

    def fit(data: FitData) -> OdinState:
        if data.logits_fn is None:
            raise ValueError("odin differentiates the model: pass FitData.logits_fn")
        std = jnp.asarray(data.input_std or (1.0,), jnp.float32)
        return OdinState(data.logits_fn, std, jnp.asarray(temperature, jnp.float32), jnp.asarray(epsilon, jnp.float32))

    def score(state: OdinState, out: ModelOutputs) -> jax.Array:
        if out.inputs is None:
            raise ValueError("odin needs ModelOutputs.inputs (the normalized images)")
        return odin(state.logits_fn, out.inputs, state.temperature, state.epsilon, state.std)

    def tune(state: OdinState, id_val: ModelOutputs, ood_vals: Mapping[str, ModelOutputs]) -> dict[str, OdinState]:
        if id_val.inputs is None or any(o.inputs is None for o in ood_vals.values()):
            raise ValueError("tuning odin needs the validation inputs (ModelOutputs.inputs)")
        std = jnp.broadcast_to(state.std, (id_val.inputs.shape[-1],))
        tuned = tune_odin(state.logits_fn, id_val.inputs[:tune_size],
                          {k: o.inputs[:tune_size] for k, o in ood_vals.items()}, std, grid, criterion=criterion)
        return {k: state._replace(temperature=jnp.asarray(t, jnp.float32), epsilon=jnp.asarray(e, jnp.float32))
                for k, (t, e, _) in tuned.items()}

    return Scorer(fit, score, tune)
