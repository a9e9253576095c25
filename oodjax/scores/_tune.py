"""One grid tuner for every tunable scorer (ODIN, GRODIN, any new one).

A tunable scorer keeps its hyper-parameters in its state: fields of a NamedTuple (ODIN) or keys
of a dict (the gradient scorers). The tuner scores the
ID validation split and each OOD set's validation split at every grid point, picks per OOD set the
point that is best by a named criterion, and returns that set's state with the point's values.
The OOD test splits are never seen. A scorer may share work across grid points (ODIN computes one
input gradient per temperature for all epsilons) by giving its own `grid_scores`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.metrics import ood_metrics
from oodjax.types import ModelOutputs

Point = Mapping[str, float]
# (state, one batch of validation outputs (B rows), grid points) -> (len(points), B) scores
GridScores = Callable[[Any, ModelOutputs, Sequence[Point]], jax.Array]
# criterion -> (the key a point is ranked by, lower is better), ties broken by the second metric
CRITERIA: dict[str, Callable[[Mapping[str, float]], tuple[float, float]]] = {
    "fpr95": lambda m: (m["fpr95"], -m["auroc"]),  # ODIN: lowest FPR95 (ID positive), ties to higher AUROC
    "auroc": lambda m: (-m["auroc"], m["fpr95"]),  # GRODIN (paper 004): highest AUROC, ties to lower FPR95
}


def check_criterion(criterion: str) -> None:
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}")


def grid_points(grid: Mapping[str, Sequence[float]]) -> list[dict[str, float]]:
    """The product of the grid's axes, the last axis fastest: [{name: value}, ...]."""
    if not grid or any(len(v) == 0 for v in grid.values()):
        raise ValueError(f"a tuning grid needs at least one value per hyper-parameter, got {dict(grid)}")
    names = list(grid)
    return [dict(zip(names, map(float, values))) for values in itertools.product(*grid.values())]


def with_point(state: Any, point: Point) -> Any:
    """The state (a NamedTuple or a dict of hyper-parameters) with the point's values as float32."""
    values = {k: jnp.asarray(v, jnp.float32) for k, v in point.items()}
    return {**state, **values} if isinstance(state, Mapping) else state._replace(**values)


def pointwise(score_at: Callable[[Any, ModelOutputs], jax.Array]) -> GridScores:
    """GridScores from a scorer's own score function, evaluated at each point's state."""

    def grid_scores(state: Any, out: ModelOutputs, points: Sequence[Point]) -> jax.Array:
        return jnp.stack([score_at(with_point(state, p), out) for p in points])

    return grid_scores


def _rows(out: ModelOutputs) -> int:
    return next(x.shape[0] for x in jax.tree_util.tree_leaves(out._replace(model=None)))


def _batched_grid(grid_scores: GridScores, state: Any, out: ModelOutputs, points, batch_size: int) -> np.ndarray:
    """(len(points), N) scores, batch by batch; the last batch is padded to batch_size rows (one
    compiled shape) with copies of the first row."""
    n_all = _rows(out)
    result = np.empty((len(points), n_all), np.float64)
    model = out.model
    data = out._replace(model=None)
    for i in range(0, n_all, batch_size):
        n = min(batch_size, n_all - i)

        def take(a, i=i, n=n):
            b = a[i : i + n]
            return b if n == batch_size else jnp.concatenate([b, jnp.repeat(b[:1], batch_size - n, axis=0)])

        batch = jax.tree.map(take, data)._replace(model=model)
        result[:, i : i + n] = np.asarray(grid_scores(state, batch, points))[:, :n]
    return result


class Tuned(NamedTuple):
    """The best point of one OOD validation set and the criterion's value at every point."""

    point: dict[str, float]
    values: np.ndarray  # (len(points),) the criterion metric


def tune_on_grid(grid_scores: GridScores, state: Any, points: Sequence[Point], id_val: ModelOutputs,
                 ood_vals: Mapping[str, ModelOutputs], criterion: str = "fpr95", tune_size: int | None = None,
                 batch_size: int = 256) -> dict[str, Tuned]:
    """{OOD set: Tuned}: per OOD validation split, the grid point best by `criterion` (CRITERIA).

    id_val / ood_vals: validation outputs (their first tune_size rows are used). The ID validation
    scores are computed once for all sets.
    """
    check_criterion(criterion)
    cut = (lambda o: jax.tree.map(lambda a: a[:tune_size], o._replace(model=None))._replace(model=o.model))
    id_val, ood_vals = cut(id_val), {k: cut(o) for k, o in ood_vals.items()}
    # One compiled shape for every split, no larger than the largest (a 100-image split is not padded to 256).
    batch_size = max(1, min(batch_size, max(_rows(o) for o in (id_val, *ood_vals.values()))))
    id_grid = _batched_grid(grid_scores, state, id_val, points, batch_size)
    out = {}
    for name, ood in ood_vals.items():
        ood_grid = _batched_grid(grid_scores, state, ood, points, batch_size)
        ranked = [ood_metrics(id_grid[g], ood_grid[g]) for g in range(len(points))]
        keys = [CRITERIA[criterion](m) for m in ranked]
        best = min(range(len(points)), key=keys.__getitem__)
        out[name] = Tuned(dict(points[best]), np.array([m[criterion] for m in ranked]))
    return out


def grid_tuner(grid: Mapping[str, Sequence[float]], criterion: str = "fpr95", tune_size: int | None = None,
               grid_scores: GridScores | None = None, score: Callable[[Any, ModelOutputs], jax.Array] | None = None,
               batch_size: int = 256):
    """A `Scorer.tune`: (state, id_val, {set: ood_val}) -> {set: the state at the best point}.

    grid: {hyper-parameter (a field or key of the state): values}. grid_scores: shared work across points;
    or score: the scorer's score function, evaluated point by point.
    """
    check_criterion(criterion)
    points = grid_points(grid)
    if (grid_scores is None) == (score is None):
        raise ValueError("give grid_scores or score")
    fn = grid_scores or pointwise(score)

    def tune(state: Any, id_val: ModelOutputs, ood_vals: Mapping[str, ModelOutputs]) -> dict[str, Any]:
        tuned = tune_on_grid(fn, state, points, id_val, ood_vals, criterion, tune_size, batch_size)
        return {k: with_point(state, t.point) for k, t in tuned.items()}

    return tune
