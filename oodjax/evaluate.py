"""Evaluate scorers: model outputs in batches, fit on ID training data, metrics per OOD set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from oodjax import metrics, scores
from oodjax.models import Model, Variables
from oodjax.scores import FitData, ModelOutputs, Scorer


def model_outputs(model: Model, variables: Variables, images: np.ndarray, batch_size: int = 1000) -> ModelOutputs:
    """(logits, features) of `images` (N, H, W, C), computed in jitted batches of `batch_size`."""
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
    logits, features = [], []
    for i in range(0, images.shape[0], batch_size):
        z, h = apply(variables, jnp.asarray(images[i : i + batch_size]))
        logits.append(z)
        features.append(h)
    return ModelOutputs(jnp.concatenate(logits), jnp.concatenate(features))


def accuracy(outputs: ModelOutputs, labels: np.ndarray) -> float:
    return float(np.mean(np.asarray(jnp.argmax(outputs.logits, -1)) == np.asarray(labels)))


def evaluate_scorers(
    scorers: Mapping[str, Scorer],
    fit_data: FitData,
    id_outputs: ModelOutputs,
    ood_outputs: Mapping[str, ModelOutputs],
) -> list[dict[str, Any]]:
    """Fits every scorer once and returns one metrics record per (scorer label, OOD set)."""
    records = []
    for label, scorer in scorers.items():
        state = scorer.fit(fit_data)
        score = jax.jit(scorer.score)
        id_scores = np.asarray(score(state, id_outputs))
        for set_name, out in ood_outputs.items():
            m = metrics.ood_metrics(id_scores, np.asarray(score(state, out)))
            records.append({"scorer": label, "ood_set": set_name, **m})
    return records


def build_scorers(spec: Mapping[str, tuple[str, Mapping[str, Any]]]) -> dict[str, Scorer]:
    """{label: (registered name, hyperparameters)} -> {label: Scorer}."""
    return {label: scores.get(name, **dict(kw)) for label, (name, kw) in spec.items()}
