"""Maximum-likelihood fitting of a RealNVP, with Kirichenko et al.'s optional OOD term."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from oodjax.flows._realnvp import MASKS, RealNVP, flow_log_prob


@dataclasses.dataclass(frozen=True)
class FlowConfig:
    """A RealNVP and how it is fitted.

    mask / num_layers / hidden / bottleneck: the architecture (`RealNVP`).
    steps, batch_size, learning_rate: Adam (global-norm clipping is left out: on XLA CPU it makes the
      step's compile time grow ~8x per coupling layer; the tanh-bounded scales keep training stable).
    dequantize: width of the uniform noise added to the training inputs (1/256 of a pixel's range
      for 8-bit images, in the units of the data), 0 for continuous data (embeddings).
    ood_weight, ood_margin: with outliers, the loss adds
      ood_weight * mean_ood max(0, log p(x_ood)/D - (mean_in log p(x_in)/D - ood_margin)),
      lowering the outliers' likelihood until it is ood_margin nats per dimension below the ID
      batch's (Kirichenko et al. 2020's OOD term, bounded so it cannot diverge to -inf).
    """

    mask: str = "checkerboard"
    num_layers: int = 6
    hidden: int = 256
    bottleneck: int | None = None
    steps: int = 2000
    batch_size: int = 256
    learning_rate: float = 1e-3
    dequantize: float = 0.0
    ood_weight: float = 0.0
    ood_margin: float = 1.0

    def __post_init__(self):
        if self.mask not in MASKS:
            raise ValueError(f"mask must be one of {MASKS}, got {self.mask!r}")
        if self.steps < 1 or self.batch_size < 1 or self.num_layers < 1 or self.hidden < 1:
            raise ValueError("steps, batch_size, num_layers and hidden must be >= 1")
        if self.bottleneck is not None and self.bottleneck < 1:
            raise ValueError(f"bottleneck must be None or >= 1, got {self.bottleneck}")
        if not (self.learning_rate > 0 and self.dequantize >= 0 and self.ood_weight >= 0):
            raise ValueError("learning_rate must be > 0; dequantize and ood_weight >= 0")


class FlowState(NamedTuple):
    """A fitted flow's pytree: params, and the fixed standardization (mean, std) of shape (D,)."""

    params: Any
    mean: jax.Array
    std: jax.Array


def make_flow(shape: tuple[int, ...], cfg: FlowConfig) -> RealNVP:
    return RealNVP(tuple(shape), cfg.mask, cfg.num_layers, cfg.hidden, cfg.bottleneck)


def log_prob(shape: tuple[int, ...], cfg: FlowConfig, state: FlowState, x: jax.Array) -> jax.Array:
    """log p(x) in nats, (N,), of inputs x (N, *shape) under a fitted flow."""
    return flow_log_prob(make_flow(shape, cfg), state.params, state.mean, state.std, x)


def fit_flow(x: np.ndarray, cfg: FlowConfig, *, key: jax.Array, outliers: np.ndarray | None = None,
             progress: bool = True) -> FlowState:
    """Fits a RealNVP to x (N, *shape) by maximum likelihood (+ the OOD term with outliers and
    cfg.ood_weight > 0). Standardization: per-coordinate mean, and std = sqrt(var + 0.01 mean(var))
    so that constant coordinates (image borders) stay finite."""
    x = np.asarray(x, np.float32)
    shape = x.shape[1:]
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 inputs to fit a flow, got {x.shape[0]}")
    if cfg.ood_weight > 0 and outliers is None:
        raise ValueError("ood_weight > 0 needs outliers")
    if outliers is not None and np.shape(outliers)[1:] != shape:
        raise ValueError(f"outliers have shape {np.shape(outliers)[1:]}, the data {shape}")
    flat = x.reshape(x.shape[0], -1)
    var = flat.var(axis=0)
    mean, std = jnp.asarray(flat.mean(axis=0)), jnp.asarray(np.sqrt(var + 0.01 * var.mean()))
    flow = make_flow(shape, cfg)
    k_init, k_data, k_noise = jax.random.split(key, 3)
    params = flow.init(k_init, jnp.zeros((1, flat.shape[1]), jnp.float32))["params"]
    tx = optax.adam(cfg.learning_rate)
    opt_state = tx.init(params)
    dims = flat.shape[1]
    use_ood = outliers is not None and cfg.ood_weight > 0
    ood_flat = jnp.asarray(np.asarray(outliers, np.float32).reshape(len(outliers), -1)) if use_ood else None

    def loss_fn(params, xb, kb):
        if cfg.dequantize:
            xb = xb + cfg.dequantize * jax.random.uniform(kb, xb.shape)
        ll = flow_log_prob(flow, params, mean, std, xb) / dims
        loss = -jnp.mean(ll)
        if use_ood:
            idx = jax.random.choice(jax.random.fold_in(kb, 1), ood_flat.shape[0], (xb.shape[0],))
            ll_ood = flow_log_prob(flow, params, mean, std, ood_flat[idx]) / dims
            target = jax.lax.stop_gradient(jnp.mean(ll)) - cfg.ood_margin
            loss = loss + cfg.ood_weight * jnp.mean(jnp.maximum(ll_ood - target, 0.0))
        return loss

    @jax.jit
    def step(params, opt_state, xb, s):
        loss, grads = jax.value_and_grad(loss_fn)(params, xb, jax.random.fold_in(k_noise, s))
        with jax.numpy_dtype_promotion("standard"):  # optax's Adam bias correction: python float ** int32 count
            updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    n, bs = flat.shape[0], min(cfg.batch_size, flat.shape[0])
    rng = np.random.default_rng(np.asarray(jax.random.key_data(k_data)).tolist())
    bar = tqdm(range(cfg.steps), desc=f"fit flow ({cfg.mask})", disable=not progress, dynamic_ncols=True)
    for s in bar:
        idx = rng.choice(n, bs, replace=False)
        params, opt_state, loss = step(params, opt_state, jnp.asarray(flat[idx]), s)
        if s % 100 == 0:
            loss = float(loss)
            if not np.isfinite(loss):
                raise FloatingPointError(f"flow training diverged at step {s} (loss {loss}); lower learning_rate")
            bar.set_postfix(nats_per_dim=f"{loss:.3f}")
    return FlowState(params, mean, std)
