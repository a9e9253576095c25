"""Reading ahead: the next batches are read (and decoded) in background threads while the
accelerator computes on the current one. Host memory holds `depth` batches more, no more.

`prefetch` iterates a generator in one thread (a stream read in order: a TFRecord split);
`prefetch_map` runs a function on each item in several threads (batches read by index, decoded,
normalized and put on the devices in parallel: numpy, PIL and jax release the GIL)."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
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


def prefetch_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 4, depth: int | None = None) -> Iterator[R]:
    """fn(item) for each item of `items`, in their order, computed up to `depth` (default 2 x
    workers) items ahead by `workers` threads. `items` is iterated in the consumer's thread (it
    should be cheap: row ranges); fn must be safe to call from several threads at once. An exception
    raised by fn is raised here, where its result would have been yielded."""
    depth = 2 * workers if depth is None else depth
    if workers < 1 or depth < 1:
        raise ValueError(f"workers and depth must be >= 1, got {workers} and {depth}")
    it = iter(items)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="oodjax-read")
    try:
        pending = collections.deque(pool.submit(fn, x) for x in itertools.islice(it, depth))
        while pending:
            result = pending.popleft().result()
            pending.extend(pool.submit(fn, x) for x in itertools.islice(it, 1))
            yield result
    finally:  # a consumer that stops early: calls not yet started are dropped, not done
        pool.shutdown(wait=True, cancel_futures=True)
