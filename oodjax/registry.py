"""Pieces found by name (big_vision style): one small registry type for scorers, report views, ..."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """name -> T, filled by the `register(name)` decorator; `get` names the known ones on a miss."""

    def __init__(self, kind: str, hint: str = ""):
        self.kind, self.hint, self._items = kind, hint, {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            if name in self._items:
                raise ValueError(f"a {self.kind} named {name!r} is already registered")
            self._items[name] = item
            return item

        return decorate

    def get(self, name: str) -> T:
        if name not in self._items:
            raise KeyError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self.names())}{self.hint}")
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def remove(self, name: str) -> None:
        """Forgets `name` (tests and notebooks that define a piece for a while)."""
        self._items.pop(name, None)
