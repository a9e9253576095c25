"""Reading ahead: the next batches are read (and decoded) in a background thread while the
accelerator computes on the current one. Host memory holds `depth` batches more, no more."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
_END = object()


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of `items` in their order, each produced up to `depth` items ahead by one
    background thread (so `items` is never iterated from two threads). An exception raised while
    producing an item is raised here, where that item would have been yielded."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    it = iter(items)
    pool = ThreadPoolExecutor(1, thread_name_prefix="oodjax-prefetch")
    try:
        pending = collections.deque(pool.submit(next, it, _END) for _ in range(depth))
        while True:
            item = pending.popleft().result()
            if item is _END:
                return
            pending.append(pool.submit(next, it, _END))
            yield item
    finally:  # a consumer that stops early: reads not yet started are dropped, not done
        pool.shutdown(wait=True, cancel_futures=True)
