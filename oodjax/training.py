"""Supervised training of a `Model` with optax SGD + Nesterov momentum and weight decay."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from oodjax.models import Model, Variables


class TrainConfig(NamedTuple):
    epochs: int = 1
    batch_size: int = 128
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4


def make_optimizer(cfg: TrainConfig, steps: int) -> optax.GradientTransformation:
    """SGD with Nesterov momentum, decoupled-from-loss L2 weight decay, cosine learning rate."""
    total = float(max(steps, 1))

    def schedule(count: jax.Array) -> jax.Array:
        # optax's cosine_decay_schedule mixes int and float, which strict dtype promotion rejects.
        frac = jnp.minimum(count.astype(jnp.float32), total) / total
        return cfg.learning_rate * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))

    return optax.chain(
        optax.add_decayed_weights(cfg.weight_decay),
        optax.sgd(schedule, momentum=cfg.momentum, nesterov=True),
    )


def train_classifier(
    model: Model,
    images: np.ndarray,
    labels: np.ndarray,
    cfg: TrainConfig,
    *,
    key: jax.Array,
    progress: bool = True,
) -> tuple[Variables, list[dict[str, float]]]:
    """Trains from `model.init` on (N, H, W, C) images and (N,) labels; returns variables, history.

    history: one {'epoch', 'loss', 'accuracy'} record per epoch (training-batch averages).
    """
    if images.shape[1:] != model.input_shape:
        raise ValueError(f"images have shape {images.shape[1:]}, model expects {model.input_shape}")
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels shape {labels.shape} does not match {images.shape[0]} images")
    n = images.shape[0]
    steps_per_epoch = n // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the {n} training images")
    init_key, key = jax.random.split(key)
    variables = model.init(init_key)
    tx = make_optimizer(cfg, cfg.epochs * steps_per_epoch)
    opt_state = tx.init(variables["params"])

    @jax.jit
    def step(params, opt_state, x, y):
        def loss_fn(p):
            logits, _ = model.apply({**variables, "params": p}, x, train=True)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), logits

        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        acc = jnp.mean((jnp.argmax(logits, -1) == y).astype(jnp.float32))
        return optax.apply_updates(params, updates), opt_state, loss, acc

    params, history = variables["params"], []
    for epoch in range(cfg.epochs):
        key, perm_key = jax.random.split(key)
        perm = np.asarray(jax.random.permutation(perm_key, n))
        losses, accs = [], []
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress)
        for i in bar:
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            params, opt_state, loss, acc = step(params, opt_state, images[idx], labels[idx])
            losses.append(loss)
            accs.append(acc)
            if i % 50 == 0 or i == steps_per_epoch - 1:
                bar.set_postfix(loss=f"{float(loss):.3f}", acc=f"{float(acc):.3f}")
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "accuracy": float(np.mean(accs))})
    return {**variables, "params": params}, history
