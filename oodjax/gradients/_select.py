"""Choosing which parameters a gradient is taken with respect to."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Union

import jax
from flax import traverse_util

PyTree = Any
# "all"; "head" (every parameter of the head: the final dense layer's kernel AND bias); "head_kernel" (its kernel only, the
# weights GradNorm differentiates); a list of regular expressions matched against the '/'-joined
# parameter path (e.g. "params/head/kernel", "Conv_0/.*"); or (path, leaf) -> bool.
NAMED_SELECTORS = ("all", "head", "head_kernel")
Selector = Union[str, Sequence[str], Callable[[str, jax.Array], bool]]


def flatten(params: PyTree) -> dict[str, jax.Array]:
    """{'a/b/kernel': leaf} for a nested-dict params pytree."""
    return {"/".join(k): v for k, v in traverse_util.flatten_dict(params).items()}


def unflatten(flat: dict[str, jax.Array]) -> PyTree:
    return traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})


def _in_head(path: str, leaf: jax.Array) -> bool:
    del leaf
    return path.split("/")[0] == "head" or "/head/" in f"/{path}"


def _head_kernel(path: str, leaf: jax.Array) -> bool:
    """The final dense layer's kernel: .../head/kernel, or .../head/classifier/kernel of a head variant."""
    del leaf
    return f"/{path}".endswith(("/head/kernel", "/head/classifier/kernel"))


def selected_paths(params: PyTree, selector: Selector) -> tuple[str, ...]:
    """The sorted '/'-joined paths of the parameters `selector` picks; ValueError if none."""
    flat = flatten(params)
    if selector == "all":
        match = lambda p, v: True  # noqa: E731
    elif selector == "head":
        match = _in_head
    elif selector == "head_kernel":
        match = _head_kernel
    elif callable(selector):
        match = selector
    elif isinstance(selector, str):
        raise ValueError(f"selector string must be one of {NAMED_SELECTORS} (or a list of regexes), got {selector!r}")
    else:
        patterns = [re.compile(s) for s in selector]
        match = lambda p, v: any(r.fullmatch(p) for r in patterns)  # noqa: E731
    paths = tuple(sorted(p for p, v in flat.items() if match(p, v)))
    if not paths:
        raise ValueError(f"selector {selector!r} matches no parameter; the parameters are: {', '.join(sorted(flat))}")
    return paths


def split(params: PyTree, paths: Sequence[str]) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """(selected, rest) flat dicts."""
    flat = flatten(params)
    keep = set(paths)
    return {k: v for k, v in flat.items() if k in keep}, {k: v for k, v in flat.items() if k not in keep}


def merge(selected: dict[str, jax.Array], rest: dict[str, jax.Array]) -> PyTree:
    return unflatten({**rest, **selected})
