"""Devices and processes: the batch mesh, the rows of a batch each process reads, global batches
built from them, results gathered back, and which process writes files.

One process (host) or several run the same code. A multi-process run starts every process with
`jax.distributed.initialize(...)` (experiments/run.py: --coordinator/--num-processes/--process-id,
or --distributed where jax finds them itself: TPU pods, SLURM, Open MPI). The batch mesh is 1-D
over `jax.devices()`, which orders the devices by process, so each process's devices hold one
contiguous block of rows of every batch: the process reads only those rows from its data
(`local_rows`), `global_batch` assembles the sharded batch, and `to_host` gathers a result back on
every process. With one process all of this reduces to `jax.device_put` and `np.asarray`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def batch_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh ("batch",) over `devices` (default: jax.devices(), every device of every process)."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), ("batch",))


def is_leader() -> bool:
    """Whether this process writes the run's files (process 0; always true with one process)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Waits until every process reaches `name` (nothing with one process): the others wait while
    process 0 writes, so no process exits (or times out jax.distributed's shutdown) before it is done."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def local_rows(sharding: NamedSharding, rows: int) -> tuple[int, int]:
    """[lo, hi): the rows of a (rows, ...) batch sharded along axis 0 that this process's devices
    hold. ValueError if they are not one contiguous block (a mesh whose devices are not ordered by
    process; `batch_mesh()` is)."""
    spans = sorted({(s[0].start or 0, rows if s[0].stop is None else s[0].stop)
                    for s in sharding.addressable_devices_indices_map((rows,)).values()})
    if not spans:
        raise ValueError(f"the mesh has none of process {jax.process_index()}'s devices; every process must take "
                         "part: build it over jax.devices() (oodjax.parallel.batch_mesh)")
    lo, hi = spans[0][0], spans[-1][1]
    if any(a != b for (_, b), (a, _) in zip(spans, spans[1:], strict=False)):
        raise ValueError(f"this process's devices hold rows {spans} of the batch, not one contiguous block; "
                         "build the mesh over jax.devices() in their order (oodjax.parallel.batch_mesh)")
    return lo, hi


def global_batch(local: np.ndarray, sharding: NamedSharding, rows: int) -> jax.Array:
    """The (rows, ...) batch sharded by `sharding`, from this process's rows `local_rows(sharding, rows)`."""
    return jax.make_array_from_process_local_data(sharding, np.asarray(local), (rows, *np.shape(local)[1:]))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Every array leaf of `tree` replicated on all devices of `mesh`. With several processes each
    leaf must already hold the same value on every process (it is not checked)."""
    sharding = NamedSharding(mesh, PartitionSpec())
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(a: Any) -> Any:
        if isinstance(a, jax.Array) and a.sharding == sharding:
            return a
        host = to_host(a)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

    return jax.tree.map(put, tree)


def to_host(a: jax.Array | np.ndarray) -> np.ndarray:
    """An array as one numpy array on this host (gathered from the other processes when it is not
    fully addressable)."""
    if isinstance(a, jax.Array) and not a.is_fully_addressable:
        if a.is_fully_replicated:
            return np.asarray(a.addressable_data(0))
        return np.asarray(multihost_utils.process_allgather(a, tiled=True))
    return np.asarray(a)


def in_pieces(call: Callable[[int], jax.Array], n: int, size: int) -> jax.Array:
    """The n rows of a result computed size rows at a time: call(start) gives rows [start, start +
    size), for starts 0, size, 2 size, ... and a last piece shifted back to end at row n (every call
    one shape: one compilation), its rows already given dropped. n >= size."""
    starts = [*range(0, n - size, size), n - size]
    parts = [call(i) for i in starts]
    covered = starts[-2] + size if len(starts) > 1 else 0  # rows the earlier pieces gave
    return jnp.concatenate([*parts[:-1], parts[-1][covered - starts[-1]:]])
