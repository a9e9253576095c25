"""One registry from names to scorer factories. Adding a scorer is one decorated function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from oodjax.scores._types import FitData, ModelOutputs, Scorer

ScorerFactory = Callable[..., Scorer]
_REGISTRY: dict[str, ScorerFactory] = {}


def register(name: str) -> Callable[[ScorerFactory], ScorerFactory]:
    """Decorator: registers `factory(**hyperparameters) -> Scorer` under `name`."""

    def decorate(factory: ScorerFactory) -> ScorerFactory:
        if name in _REGISTRY:
            raise ValueError(f"a scorer named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return decorate


def get(name: str, **hyperparameters: Any) -> Scorer:
    """The scorer registered as `name`, built with `hyperparameters`.

    Raises:
      KeyError: unknown name; the message lists the known ones.
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown scorer {name!r}; known scorers: {', '.join(names())}") from None
    return factory(**hyperparameters)


def names() -> list[str]:
    """Sorted names of all registered scorers."""
    return sorted(_REGISTRY)


def stateless(fn: Callable[[ModelOutputs], jax.Array]) -> Scorer:
    """A Scorer with nothing to fit, from `fn(outputs) -> (N,)`."""

    def fit(data: FitData) -> tuple[()]:
        del data
        return ()

    def score(state: tuple[()], outputs: ModelOutputs) -> jax.Array:
        del state
        return fn(outputs)

    return Scorer(fit, score)
