"""Learning-rate schedules by name; adding one is one registered function."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

Schedule = Callable[[jax.Array], jax.Array]
_SCHEDULES: dict[str, Callable[..., Schedule]] = {}


def register_schedule(name: str):
    def decorate(factory):
        _SCHEDULES[name] = factory
        return factory

    return decorate


def get_schedule(name: str, *, base_lr: float, total_steps: int, steps_per_epoch: int, **kwargs) -> Schedule:
    """The schedule `name` as step -> learning rate. Unknown names raise KeyError listing the known."""
    if name not in _SCHEDULES:
        raise KeyError(f"unknown schedule {name!r}; known: {', '.join(sorted(_SCHEDULES))}")
    if base_lr <= 0 or total_steps < 1:
        raise ValueError(f"need base_lr > 0 and total_steps >= 1, got {base_lr}, {total_steps}")
    return _SCHEDULES[name](base_lr=base_lr, total_steps=total_steps, steps_per_epoch=steps_per_epoch, **kwargs)


@register_schedule("cosine")
def cosine(*, base_lr: float, total_steps: int, steps_per_epoch: int) -> Schedule:
    """base_lr * (1 + cos(pi * step / total)) / 2."""
    del steps_per_epoch
    total = float(total_steps)

    def schedule(count: jax.Array) -> jax.Array:
        # Explicit casts: optax's own schedules mix int and float, which strict promotion rejects.
        frac = jnp.minimum(jnp.asarray(count).astype(jnp.float32), total) / total
        return base_lr * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))

    return schedule


@register_schedule("step")
def step(
    *,
    base_lr: float,
    total_steps: int,
    steps_per_epoch: int,
    milestones: Sequence[int] = (60, 120, 160),
    gamma: float = 0.2,
) -> Schedule:
    """base_lr * gamma^(number of milestone epochs passed): WRN's 0.1, x0.2 at 60/120/160 of 200."""
    del total_steps
    bounds = jnp.asarray([m * steps_per_epoch for m in milestones], jnp.int32)

    def schedule(count: jax.Array) -> jax.Array:
        passed = jnp.sum((jnp.asarray(count).astype(jnp.int32) >= bounds).astype(jnp.float32))
        return base_lr * gamma**passed

    return schedule
