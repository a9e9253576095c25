"""ODIN (Liang et al. 2018; papers 001, 003, 004): temperature scaling + input perturbation.

x~ = x - eps * sign(-grad_x log S_yhat(x; T)) / std   (per channel, as the official code)
score = max_c softmax(f(x~) / T)_c

The model enters as a pytree function `logits_fn(x) -> logits` (a `Predict` handle, or any
`jax.tree_util.Partial`), x are normalized inputs. T and eps are tuned on each OOD set's
validation split (never its test split) by the shared grid tuner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.scores._checks import check_nonnegative, check_positive, check_positive_values
from oodjax.scores._registry import register
from oodjax.scores._tune import GridScores, Point, check_criterion, grid_points, grid_tuner, tune_on_grid
from oodjax.types import INPUTS, MODEL, FitData, ModelOutputs, Predict, Scorer, require

# The grids of papers 001/004: T in {1 .. 1000}, 21 epsilons evenly spaced in [0, 0.004].
ODIN_TEMPERATURES: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
ODIN_EPSILONS: tuple[float, ...] = tuple(float(e) for e in np.linspace(0.0, 0.004, 21))

LogitsFn = Callable[[jax.Array], jax.Array]


def _check_step(temperature: float, epsilon: float) -> None:
    check_positive("temperature", temperature)
    check_nonnegative("epsilon", epsilon)


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
    check_positive_values("std (the input normalization's)", std)
    std = jnp.broadcast_to(jnp.asarray(std, x.dtype), (x.shape[-1],))
    t = jnp.asarray(temperature, x.dtype)
    return _perturbed_msp(logits_fn, x, odin_direction(logits_fn, x, t, std), t, jnp.asarray(epsilon, x.dtype))


class OdinGrid(NamedTuple):
    temperatures: tuple[float, ...]
    epsilons: tuple[float, ...]


def perturbed_grid_scores(score_at: Callable[[Any, Predict, jax.Array, jax.Array], jax.Array]) -> GridScores:
    """GridScores over (temperature, epsilon) points of any score of the ODIN-perturbed input:
    score_at(state, model, x~, T) -> (B,). One input gradient per temperature serves all its epsilons;
    none at all when every epsilon is 0."""

    def grid_scores(state: Any, out: ModelOutputs, points: Sequence[Point]) -> jax.Array:
        x, model = out.inputs, out.model
        std = jnp.broadcast_to(jnp.asarray(model.input_std, x.dtype), (x.shape[-1],))
        rows, directions = [], {}
        for p in points:
            t, e = jnp.asarray(p["temperature"], x.dtype), p["epsilon"]
            if e and p["temperature"] not in directions:
                directions[p["temperature"]] = odin_direction(model, x, t, std)
            x_t = x - jnp.asarray(e, x.dtype) * directions[p["temperature"]] if e else x
            rows.append(score_at(state, model, x_t, t))
        return jnp.stack(rows)

    return grid_scores


def tune_odin(
    logits_fn: LogitsFn,
    id_x: jax.Array,
    ood_x: Mapping[str, jax.Array],
    std: jax.Array,
    grid: OdinGrid = OdinGrid(ODIN_TEMPERATURES, ODIN_EPSILONS),
    batch_size: int = 256,
    criterion: str = "fpr95",
) -> dict[str, tuple[float, float, np.ndarray]]:
    """For each OOD validation set: (T*, eps*, criterion grid (len(T), len(eps))), by the shared
    grid tuner (`grid_tuner`). logits_fn: a pytree function x -> logits (a `Predict`)."""
    model = Predict(_call, logits_fn, tuple(np.asarray(std).tolist()))
    points = grid_points({"temperature": grid.temperatures, "epsilon": grid.epsilons})
    wrap = lambda x: ModelOutputs(inputs=x, model=model)  # noqa: E731
    tuned = tune_on_grid(perturbed_grid_scores(_msp_of), None, points, wrap(id_x),
                         {k: wrap(x) for k, x in ood_x.items()}, criterion, batch_size=batch_size)
    shape = (len(grid.temperatures), len(grid.epsilons))
    return {k: (t.point["temperature"], t.point["epsilon"], t.values.reshape(shape)) for k, t in tuned.items()}


def _call(fn: LogitsFn, x: jax.Array) -> tuple[jax.Array, None]:
    return fn(x), None


def _msp_of(state: Any, model: Predict, x: jax.Array, t: jax.Array) -> jax.Array:
    del state
    return _perturbed_msp(model, x, jnp.zeros_like(x), t, jnp.zeros((), x.dtype))


class OdinState(NamedTuple):
    temperature: jax.Array
    epsilon: jax.Array


def check_grid(temperatures: Sequence[float], epsilons: Sequence[float], criterion: str) -> OdinGrid:
    check_criterion(criterion)
    for t in temperatures:
        _check_step(t, 0.0)
    for e in epsilons:
        _check_step(1.0, e)
    return OdinGrid(tuple(map(float, temperatures)), tuple(map(float, epsilons)))


@register("odin")
def _odin(
    temperature: float = 1000.0,
    epsilon: float = 0.0014,
    temperatures: Sequence[float] | None = ODIN_TEMPERATURES,
    epsilons: Sequence[float] | None = ODIN_EPSILONS,
    tune_size: int | None = None,
    criterion: str = "fpr95",
) -> Scorer:
    """ODIN. `tune` grid-searches T x eps per OOD validation set; (temperature, epsilon) are the
    values used untuned. epsilons=(0.0,) gives "MSP + tuned T" (Baseline+T of paper 001);
    temperatures=epsilons=None: no tuning, ODIN at (temperature, epsilon) (no OOD validation needed).
    tune_size caps the validation images used for tuning (first n of each split); criterion: "fpr95"
    (ODIN) or "auroc" (GRODIN's protocol). The model arrives as ModelOutputs.model (a `Predict`)."""
    _check_step(temperature, epsilon)
    if (temperatures is None) != (epsilons is None):
        raise ValueError("give temperatures and epsilons together (a grid to tune), or neither (fixed T and eps)")
    grid = None if temperatures is None else check_grid(temperatures, epsilons, criterion)

    def fit(data: FitData) -> OdinState:
        del data
        return OdinState(jnp.asarray(temperature, jnp.float32), jnp.asarray(epsilon, jnp.float32))

    def score(state: OdinState, out: ModelOutputs) -> jax.Array:
        require(out, "odin", INPUTS, MODEL)
        return odin(out.model, out.inputs, state.temperature, state.epsilon, out.model.input_std)

    tune = None if grid is None else grid_tuner({"temperature": grid.temperatures, "epsilon": grid.epsilons},
                                                criterion, tune_size, grid_scores=perturbed_grid_scores(_msp_of))
    return Scorer(fit, score, frozenset({INPUTS, MODEL}), tune)
