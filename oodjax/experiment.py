"""The embedded Fashion-MNIST experiment: train a small CNN, score ID test versus offline OOD sets.

`run_embedded(config)` is what `make demo` (via `python -m experiments.run`) and the tests call.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from oodjax import data, metrics, scores
from oodjax.evaluate import accuracy, build_scorers, evaluate_scorers, model_outputs
from oodjax.models import small_cnn
from oodjax.scores import FitData
from oodjax.training import TrainConfig, train

OOD_SETS = ("digits", "gaussian_noise", "uniform_noise")


def default_scorers() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every registered post-hoc scorer with its paper defaults, plus MSP at T = 1000 (paper 001)."""
    spec: dict[str, tuple[str, dict[str, Any]]] = {name: (name, {}) for name in scores.names()}
    spec["msp_T1000"] = ("msp", {"temperature": 1000.0})
    return spec


@dataclasses.dataclass(frozen=True)
class EmbeddedConfig:
    name: str = "embedded"
    data_dir: str | None = None  # Fashion-MNIST IDX folder; None: $OODJAX_FASHION_MNIST or Debian's
    results_dir: str = "results"
    seed: int = 0
    train_size: int | None = None  # None: all 60000
    test_size: int | None = None  # None: all 10000
    fit_size: int = 10000  # training samples the scorers fit on (Mahalanobis, KNN, ViM, ...)
    noise_size: int = 2000
    ood_sets: tuple[str, ...] = OOD_SETS
    train: TrainConfig = TrainConfig()
    scorers: Mapping[str, tuple[str, Mapping[str, Any]]] = dataclasses.field(default_factory=default_scorers)
    progress: bool = True


def _subset(x: np.ndarray, y: np.ndarray, n: int | None, key: jax.Array) -> tuple[np.ndarray, np.ndarray]:
    if n is None or n >= x.shape[0]:
        return x, y
    idx = np.sort(np.asarray(jax.random.permutation(key, x.shape[0]))[:n])
    return x[idx], y[idx]


def load_ood_sets(names: tuple[str, ...], *, key: jax.Array, noise_size: int) -> dict[str, np.ndarray]:
    """The named offline OOD sets as (N, 28, 28, 1) arrays in [0, 1]."""
    k_gauss, k_unif = jax.random.split(key)
    makers = {
        "digits": lambda: data.digits(28),
        "gaussian_noise": lambda: data.gaussian_noise(k_gauss, noise_size),
        "uniform_noise": lambda: data.uniform_noise(k_unif, noise_size),
    }
    unknown = [n for n in names if n not in makers]
    if unknown:
        raise ValueError(f"unknown OOD sets {unknown}; known: {sorted(makers)}")
    return {n: makers[n]() for n in names}


def normalize(images: np.ndarray) -> np.ndarray:
    """The same normalization for ID and OOD images (paper 000): (x - mean) / std."""
    return ((images - data.MEAN) / data.STD).astype(np.float32)


def run_embedded(config: EmbeddedConfig) -> dict[str, Any]:
    """Trains, evaluates every configured scorer on every OOD set, writes results, returns them.

    Writes results_dir/name/{metrics.json, table.md, table.csv, train/}. Returns
    {'id_accuracy', 'records', 'table', 'history', 'out_dir', 'seconds'}.
    """
    start = time.time()
    key = jax.random.key(config.seed)
    k_sub, k_test, k_train, k_fit, k_ood, k_score = jax.random.split(key, 6)
    x_train, y_train = _subset(*data.load_fashion_mnist("train", config.data_dir), config.train_size, k_sub)
    x_test, y_test = _subset(*data.load_fashion_mnist("test", config.data_dir), config.test_size, k_test)
    ood = load_ood_sets(config.ood_sets, key=k_ood, noise_size=config.noise_size)

    out_dir = Path(config.results_dir) / config.name
    model = small_cnn(num_classes=len(data.CLASS_NAMES))
    # The workdir holds the checkpoints: a killed run resumes, a finished one is reused.
    variables, history = train(
        model, normalize(x_train), y_train, config.train, key=k_train, workdir=out_dir / "train",
        progress=config.progress,
    )

    fit_x, fit_y = _subset(x_train, y_train, config.fit_size, k_fit)
    fit_data = FitData(
        train=model_outputs(model, variables, normalize(fit_x)),
        labels=jnp.asarray(fit_y),
        head=model.head(variables),
        key=k_score,
    )
    id_out = model_outputs(model, variables, normalize(x_test))
    ood_out = {n: model_outputs(model, variables, normalize(x)) for n, x in ood.items()}
    id_accuracy = accuracy(id_out, y_test)
    records = evaluate_scorers(build_scorers(config.scorers), fit_data, id_out, ood_out)
    for r in records:
        r["id_accuracy"] = id_accuracy

    table = metrics.format_table(records)
    (out_dir / "table.md").write_text(table)
    (out_dir / "table.csv").write_text(metrics.format_table(records, fmt="csv"))
    (out_dir / "metrics.json").write_text(json.dumps(records, indent=1))
    seconds = time.time() - start
    return {
        "id_accuracy": id_accuracy,
        "records": records,
        "table": table,
        "history": history,
        "out_dir": out_dir,
        "seconds": seconds,
    }
