"""One registry from names to scorer factories. Adding a scorer is one decorated function.

Packages that own a family of scorers register them where they live (AMP in `oodjax.anchoring`);
the registry imports those packages the first time a name is looked up (`PLUGINS`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any

import jax

from oodjax.registry import Registry
from oodjax.types import LOGITS, FitData, ModelOutputs, Scorer, check_vocabulary

ScorerFactory = Callable[..., Scorer]
_REGISTRY: Registry[ScorerFactory] = Registry("scorer")
PLUGINS: tuple[str, ...] = ("oodjax.anchoring",)  # modules that register scorers of their own


def _load_plugins() -> None:
    for module in PLUGINS:
        importlib.import_module(module)


def register(name: str) -> Callable[[ScorerFactory], ScorerFactory]:
    """Decorator: registers `factory(**hyperparameters) -> Scorer` under `name`."""
    return _REGISTRY.register(name)


def get(name: str, **hyperparameters: Any) -> Scorer:
    """The scorer registered as `name`, built with `hyperparameters`.

    Raises:
      KeyError: unknown name; the message lists the known ones.
      ValueError: the scorer declares a need outside the vocabulary of `oodjax.types`.
    """
    _load_plugins()
    scorer = _REGISTRY.get(name)(**hyperparameters)
    check_vocabulary(scorer.needs, f"scorer {name!r}")
    return scorer


def names() -> list[str]:
    """Sorted names of all registered scorers."""
    _load_plugins()
    return _REGISTRY.names()


def fitting(provides: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """The registered scorers whose needs (with default hyper-parameters) a model that provides
    `provides` (with its data: labels, id_val, key, ...) meets: "all scorers that fit this model"."""
    provides, exclude = frozenset(provides), set(exclude)
    return [n for n in names() if n not in exclude and get(n).needs <= provides]


def stateless(fn: Callable[[ModelOutputs], jax.Array], needs: Iterable[str] = (LOGITS,)) -> Scorer:
    """A Scorer with nothing to fit, from `fn(outputs) -> (N,)` reading the fields named in `needs`."""

    def fit(data: FitData) -> tuple[()]:
        del data
        return ()

    def score(state: tuple[()], outputs: ModelOutputs) -> jax.Array:
        del state
        return fn(outputs)

    return Scorer(fit, score, frozenset(needs))
