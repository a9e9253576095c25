"""Training checkpoints that verify themselves: orbax checkpoints plus a SHA-256 digest of every
saved state, so that a damaged checkpoint is never trained on.

`Checkpoints(dir)` keeps the last `keep` checkpoints of a run in dir/ and their digests in
dir/digests.json (written atomically after each save). `restore(abstract)` tries the newest
checkpoint first; one that fails to restore, whose restored state does not have the digest written
at save time, or whose weights are not finite is damaged: it is deleted with a warning naming its
step, and the next older one is tried. If none is intact, `CheckpointError` says what to delete.
A checkpoint saved with non-finite weights (the run diverged) is an error, not damage.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from oodjax.files import write_atomic
from oodjax.models import CheckpointError
from oodjax.parallel import is_leader


def _host_copy(x: Any) -> np.ndarray:
    """A leaf's values on this host (a replicated global array: this process's first copy)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_data(0)
    return np.asarray(x)


def state_digest(tree: Any) -> str:
    """SHA-256 over every leaf's dtype, shape and bytes, in pytree order."""
    h = hashlib.sha256()
    for leaf in jax.tree_util.tree_leaves(tree):
        a = np.ascontiguousarray(_host_copy(leaf))
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _finite(tree: Any) -> bool:
    return all(np.isfinite(_host_copy(x)).all() for x in jax.tree_util.tree_leaves(tree)
               if np.issubdtype(np.asarray(_host_copy(x)).dtype, np.inexact))


class Checkpoints:
    """A run's verified checkpoints in `directory` (orbax, synchronous saves)."""

    def __init__(self, directory: str | Path, keep: int = 2):
        self.dir = Path(directory)
        self.manager = ocp.CheckpointManager(
            self.dir, options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False))
        self.digest_path = self.dir / "digests.json"

    def _digests(self) -> dict[str, dict[str, Any]]:
        try:
            return json.loads(self.digest_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):  # a damaged digest file verifies nothing: say so
            warnings.warn(f"{self.digest_path} is unreadable; checkpoints are checked for finite weights only",
                          stacklevel=3)
            return {}

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: Any, meta: dict[str, Any] | None = None) -> None:
        """Saves `state` at `step` and records its digest and `meta` (small JSON: what the run needs
        besides the state to resume exactly), after the checkpoint is complete."""
        self.manager.save(step, args=ocp.args.StandardSave(state))
        self.manager.wait_until_finished()
        if is_leader():
            kept = {str(s) for s in self.manager.all_steps()}
            digests = {k: v for k, v in self._digests().items() if k in kept}
            digests[str(step)] = {"sha256": state_digest(state), "meta": meta or {}}
            write_atomic(self.digest_path, json.dumps(digests, indent=1))

    def restore(self, abstract: Any) -> tuple[Any, int, dict[str, Any]] | None:
        """(state, step, meta) of the newest intact checkpoint, or None if there is none at all;
        damaged ones are deleted with a warning. CheckpointError if every checkpoint is damaged."""
        steps = sorted(self.manager.all_steps(), reverse=True)
        if not steps:
            return None
        digests = self._digests()
        damaged = []
        for step in steps:
            try:
                state = self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
            except Exception as e:  # noqa: BLE001  (any failure to read: the checkpoint is damaged)
                problem = f"cannot be read ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
            else:
                record = digests.get(str(step)) or {}
                want = record.get("sha256") if isinstance(record, dict) else None
                intact = want is not None and state_digest(state) == want
                if want is not None and not intact:
                    problem = "does not match the digest written when it was saved"
                elif not _finite(state):
                    if intact:  # saved as it is: the run itself diverged
                        raise CheckpointError(
                            f"the checkpoint at step {step} in {self.dir} holds non-finite weights as they were "
                            "saved: training diverged; lower the learning rate (or check the data) and use a "
                            "new workdir")
                    problem = "holds non-finite weights"
                else:
                    if damaged:
                        for s in damaged:
                            self.manager.delete(s)
                        warnings.warn(f"checkpoint(s) at step {', '.join(map(str, damaged))} in {self.dir} are "
                                      f"damaged and were deleted; resuming from the intact one at step {step}",
                                      stacklevel=2)
                    return state, step, dict(record.get("meta") or {})
            damaged.append(step)
            warnings.warn(f"the checkpoint at step {step} in {self.dir} {problem}", stacklevel=2)
        raise CheckpointError(
            f"every checkpoint in {self.dir} is damaged (steps {', '.join(map(str, damaged))}): delete {self.dir} "
            "(and metrics.jsonl beside it) to train this run again from the start")

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
