"""`flow`: the log-likelihood of a RealNVP fitted on ID data (paper 003, section 3.4), on the
model's penultimate features (embeddings, Kirichenko et al.'s fix) or on the normalized pixels.

The flow fits on the ID validation hold-out (`FitData.val`: features, or inputs for pixels, which
the pipeline keeps); with ood_weight > 0 also on `FitData.outliers` (a designated auxiliary OOD
set, never a test set) through the OOD term.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from oodjax.flows import FlowConfig, FlowState, fit_flow, log_prob
from oodjax.scores._registry import register
from oodjax.scores._types import FitData, ModelOutputs, Scorer
from oodjax.types import FEATURES, ID_VAL, INPUTS, KEY, OUTLIERS

FLOW_INPUTS = ("features", "pixels")


def _view(out: ModelOutputs, on: str) -> jax.Array:
    if on == "features":
        return out.features
    if out.inputs is None:
        raise ValueError("a pixel flow needs ModelOutputs.inputs")
    return out.inputs


@register("flow")
def _flow(on: str = "features", progress: bool = False, **config: Any) -> Scorer:
    """on: "features" or "pixels"; config: FlowConfig fields (mask, num_layers, hidden, bottleneck,
    steps, batch_size, learning_rate, dequantize, ood_weight, ood_margin)."""
    if on not in FLOW_INPUTS:
        raise ValueError(f"on must be one of {FLOW_INPUTS}, got {on!r}")
    cfg = FlowConfig(**config)

    def fit(data: FitData) -> FlowState:
        if data.val is None:
            raise ValueError("flow fits on the ID validation outputs (FitData.val)")
        outliers = None
        if cfg.ood_weight > 0:
            if data.outliers is None:
                raise ValueError("flow with ood_weight > 0 needs an auxiliary OOD set (FitData.outliers): set Experiment.outliers "
                                 "or EvalData.outliers")
            outliers = np.asarray(_view(data.outliers, on))
        if data.key is None:
            raise ValueError("flow draws its batches and initial weights from FitData.key: pass one")
        return fit_flow(np.asarray(_view(data.val, on)), cfg, key=data.key, outliers=outliers, progress=progress)

    def score(state: FlowState, out: ModelOutputs) -> jax.Array:
        x = _view(out, on)
        return log_prob(x.shape[1:], cfg, state, x.astype(jnp.float32))

    needs = {FEATURES if on == "features" else INPUTS, ID_VAL, KEY} | ({OUTLIERS} if cfg.ood_weight > 0 else set())
    return Scorer(fit, score, frozenset(needs))
