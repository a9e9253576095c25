"""Calibration: temperature scaling fitted on ID validation data (Guo et al. 2017) and the expected
calibration error with B bins (paper 004, section 4.1):

  ECE = sum_b |X_b| / |X| * |acc(X_b) - conf(X_b)|

with the samples ordered by confidence (max softmax) and split into B bins, either of equal width
on [0, 1] ("uniform", Guo et al.) or of equal size ("quantile").
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

BINNINGS = ("uniform", "quantile")


def _check(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    logits, labels = np.asarray(logits, np.float64), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"need logits (N, C) and labels (N,), got {logits.shape} and {labels.shape}")
    if labels.size == 0 or labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must be in [0, {logits.shape[1]}) and not empty")
    return logits, labels.astype(np.int64)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of softmax(logits / T)."""
    logits, labels = _check(logits, labels)
    return float(-np.mean(log_softmax(logits / temperature, axis=1)[np.arange(labels.size), labels]))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 100.0)) -> float:
    """T minimizing the NLL of softmax(logits / T) on held-out ID data (bounded search over log T)."""
    logits, labels = _check(logits, labels)
    if not 0 < bounds[0] < bounds[1]:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")
    res = minimize_scalar(lambda log_t: nll(logits, labels, float(np.exp(log_t))),
                          bounds=tuple(np.log(bounds)), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(res.x))


def reliability(logits: np.ndarray, labels: np.ndarray, bins: int = 15, binning: str = "uniform",
                temperature: float = 1.0) -> dict[str, np.ndarray]:
    """Per bin: 'confidence' (mean max softmax), 'accuracy', 'count', and the bin 'edges'."""
    logits, labels = _check(logits, labels)
    if bins < 1 or binning not in BINNINGS:
        raise ValueError(f"need bins >= 1 and binning in {BINNINGS}, got {bins}, {binning!r}")
    p = np.exp(log_softmax(logits / temperature, axis=1))
    conf, correct = p.max(1), (p.argmax(1) == labels).astype(np.float64)
    if binning == "uniform":
        edges = np.linspace(0.0, 1.0, bins + 1)
        idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    else:
        order = np.argsort(conf, kind="stable")
        idx = np.empty(conf.size, np.int64)
        idx[order] = np.arange(conf.size) * bins // conf.size
        edges = np.quantile(conf, np.linspace(0.0, 1.0, bins + 1))
    count = np.bincount(idx, minlength=bins).astype(np.float64)
    safe = np.maximum(count, 1)
    return {"confidence": np.bincount(idx, conf, bins) / safe, "accuracy": np.bincount(idx, correct, bins) / safe,
            "count": count, "edges": edges}


def ece(logits: np.ndarray, labels: np.ndarray, bins: int = 15, binning: str = "uniform",
        temperature: float = 1.0) -> float:
    """Expected calibration error of softmax(logits / T) with `bins` bins."""
    r = reliability(logits, labels, bins, binning, temperature)
    return float(np.sum(r["count"] / r["count"].sum() * np.abs(r["accuracy"] - r["confidence"])))
