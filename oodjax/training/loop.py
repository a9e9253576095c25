"""Data-parallel supervised training with resumable orbax checkpoints and a JSONL metrics log.

The batch axis is sharded over a `jax.sharding.Mesh` of all devices (parameters replicated), so
the same code runs on 1 CPU, 4 forced CPU devices, a GPU, a TPU slice or several hosts under
`jax.distributed` (each process reads its rows of every batch; process 0 writes the logs).
Everything a step uses is a pure function of (key, step): the data order of epoch e is
permutation(fold_in(key, e)), the augmentation and dropout keys are fold_in(key, step). A run killed at any point and started
again with the same `workdir` resumes from the last checkpoint and ends with identical parameters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from tqdm.auto import tqdm

from oodjax.data.indexed import Indexed
from oodjax.data.prefetch import prefetch
from oodjax.files import RunLock, write_atomic
from oodjax.validation import check_int, check_nonnegative, check_positive
from oodjax.models import Model, Variables
from oodjax.parallel import batch_mesh, global_batch, is_leader, local_rows, replicate
from oodjax.training.augment import random_crop_flip
from oodjax.training.checkpoints import Checkpoints, state_digest
from oodjax.training.objectives import CrossEntropy, Objective, TrainOutputs
from oodjax.training.schedules import get_schedule
from oodjax.training.tensorboard import write_events

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimizer, schedule and bookkeeping of one training run.

    schedule: a name of `schedules` ("cosine", or "step" with schedule_kwargs milestones/gamma,
      e.g. {"milestones": (60, 120, 160), "gamma": 0.2} for WRN's 200 epochs at lr 0.1).
    compute_dtype: "float32" or "bfloat16" (forward/backward in bf16, float32 master weights).
    checkpoint_every: save every N steps (None: every epoch; 0: only at the end); needs a workdir.
    """

    epochs: int = 1
    batch_size: int = 128
    learning_rate: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    schedule_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    augment: bool = False
    compute_dtype: str = "float32"
    checkpoint_every: int | None = None
    log_every: int = 50

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "log_every"):
            check_int(f"TrainConfig.{name}", getattr(self, name))
        if self.checkpoint_every is not None:
            check_int("TrainConfig.checkpoint_every", self.checkpoint_every, 0)
        check_positive("TrainConfig.learning_rate", self.learning_rate)
        check_nonnegative("TrainConfig.weight_decay", self.weight_decay)
        check_nonnegative("TrainConfig.momentum", self.momentum)


class TrainState(NamedTuple):
    step: jax.Array  # int32 scalar: optimizer steps taken
    params: Any
    model_state: Any  # non-parameter collections, e.g. {'batch_stats': ...}
    opt_state: Any


class TrainResult(NamedTuple):
    variables: Variables
    log: list[dict[str, float]]  # the JSONL records: per logged step, and per epoch


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> optax.GradientTransformation:
    """L2 weight decay added to the gradient, then SGD (+ Nesterov) momentum on the schedule."""
    schedule = get_schedule(
        cfg.schedule,
        base_lr=cfg.learning_rate,
        total_steps=cfg.epochs * steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        **dict(cfg.schedule_kwargs),
    )
    return optax.chain(
        optax.add_decayed_weights(cfg.weight_decay),
        optax.sgd(schedule, momentum=cfg.momentum, nesterov=cfg.nesterov),
    )


InputTransform = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (key, x, step) -> model input


def _check_inputs(model: Model, images: np.ndarray | Indexed, labels: np.ndarray, cfg: TrainConfig, n_dev: int,
                  input_transform: InputTransform | None, objective: Objective, outliers: np.ndarray | None,
                  outlier_batch_size: int) -> int:
    shape = images.shape[1:]
    if input_transform is not None:
        x = jax.ShapeDtypeStruct((cfg.batch_size, *shape), jnp.float32)
        shape = jax.eval_shape(input_transform, jax.random.key(0), x, jnp.asarray(0, jnp.int32)).shape[1:]
    if shape != model.input_shape:
        what = "transformed images" if input_transform is not None else "images"
        raise ValueError(f"{what} have shape {shape}, model expects {model.input_shape}")
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels shape {labels.shape} does not match {images.shape[0]} images")
    shapes = jax.eval_shape(model.init, jax.random.key(0))  # shapes only, no compute
    x = jax.ShapeDtypeStruct((1, *model.input_shape), jnp.float32)
    num_classes = jax.eval_shape(model.apply, shapes, x)[0].shape[-1]
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must be in [0, {num_classes}) for this {num_classes}-class model, found "
            f"[{labels.min()}, {labels.max()}]"
        )
    if cfg.compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {cfg.compute_dtype!r}")
    if cfg.batch_size % n_dev:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by the {n_dev} devices of the mesh")
    if objective.uses_outliers != (outliers is not None):
        raise ValueError(f"{objective} {'needs' if objective.uses_outliers else 'does not use'} an outlier "
                         f"stream, but outliers {'were not' if outliers is None else 'were'} given")
    if outliers is not None:
        if outliers.shape[1:] != images.shape[1:]:
            raise ValueError(f"outliers have shape {outliers.shape[1:]}, the images {images.shape[1:]}")
        if not 0 < outlier_batch_size <= outliers.shape[0] or outlier_batch_size % n_dev:
            raise ValueError(f"outlier_batch_size must be in [1, {outliers.shape[0]}] and divisible by {n_dev} "
                             f"devices, got {outlier_batch_size}")
    steps_per_epoch = images.shape[0] // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the {images.shape[0]} training images")
    return steps_per_epoch


def _fingerprint(model: Model, cfg: TrainConfig, images: np.ndarray | Indexed, labels: np.ndarray, key: jax.Array,
                 input_transform: InputTransform | None, objective: Objective, outliers: np.ndarray | None,
                 outlier_batch_size: int, init_variables: Variables | None) -> dict:
    """What must match for a workdir's checkpoint to belong to this run: the config, the model's
    variables (every name and shape), a SHA-256 of the images and of the labels (so permuted
    labels are another run), the key; the defaults of the rest add nothing."""
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    layout = hashlib.sha256(repr(jax.tree_util.tree_flatten_with_path(
        jax.tree.map(lambda a: (a.shape, str(a.dtype)), shapes))).encode()).hexdigest()
    return json.loads(json.dumps({
        "model": layout,
        "config": dataclasses.asdict(cfg),
        **({"input_transform": repr(input_transform)} if input_transform is not None else {}),
        **({"objective": repr(objective)} if objective != CrossEntropy() else {}),
        **({"outliers": [list(outliers.shape), state_digest(outliers), outlier_batch_size]} if outliers is not None else {}),
        **({"init_variables": state_digest(init_variables)} if init_variables is not None else {}),
        "images": images.identity() if isinstance(images, Indexed) else state_digest(np.asarray(images)),
        "labels": state_digest(np.asarray(labels, np.int64)),
        "key": np.asarray(jax.random.key_data(key)).tolist(),
    }))


def train(model: Model, images: np.ndarray | Indexed, labels: np.ndarray, cfg: TrainConfig, *, key: jax.Array,
          workdir: str | Path | None = None, **kwargs: Any) -> TrainResult:
    """Trains `model` from `model.init` on (N, H, W, C) images and (N,) integer labels.

    images: an array, or an `oodjax.data.Indexed` dataset (e.g. TfdsImages over ArrayRecord) whose
      batches are read by index at each step: host memory holds a batch, not the dataset. An epoch
      is a permutation drawn from the key, so a resumed run continues mid-epoch exactly.

    workdir: where checkpoints/, metrics.jsonl and tensorboard/ (the same records as TensorBoard
      scalars, rewritten at every epoch's end) go; with an existing checkpoint of the same run
      (same config, data and key) training resumes from it, and a finished run is just restored.
    on_step: called as on_step(step, metrics) after every step (for callbacks and tests).
    input_transform: (key, x, step) -> model input, applied inside the jitted step after the
      augmentation (e.g. `oodjax.anchoring.AnchoredTraining()`); its repr is part of the run's identity.
    objective: the loss (`training.objectives`: CrossEntropy, BIN, BINC, VIB, EnergyOE), called on the
      training-mode outputs; its repr is part of the run's identity.
    outliers: (M, H, W, C) auxiliary OOD images for objectives with outlier exposure; each step draws
      outlier_batch_size of them (default: batch_size) without replacement, a pure function of
      (key, step), and runs them through the model in the same batch as the ID images.
    init_variables: start from these variables (fine-tuning) instead of model.init.
    A run with a workdir holds a lock on it (`files.RunLock`): a second live run on the same
    workdir is refused with a message; a killed run's lock is taken over.
    kwargs: mesh, progress, on_step, input_transform, objective, outliers, outlier_batch_size,
    init_variables (as above).
    Returns the trained variables and the log records.
    """
    if workdir is None or not is_leader():
        return _train(model, images, labels, cfg, key=key, workdir=workdir, **kwargs)
    with RunLock(workdir, "training run"):
        return _train(model, images, labels, cfg, key=key, workdir=workdir, **kwargs)


def _train(
    model: Model,
    images: np.ndarray | Indexed,
    labels: np.ndarray,
    cfg: TrainConfig,
    *,
    key: jax.Array,
    workdir: str | Path | None = None,
    mesh: Mesh | None = None,
    progress: bool = True,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
    input_transform: InputTransform | None = None,
    objective: Objective = CrossEntropy(),
    outliers: np.ndarray | None = None,
    outlier_batch_size: int | None = None,
    init_variables: Variables | None = None,
) -> TrainResult:
    """`train` without the lock."""
    mesh = mesh or batch_mesh()
    n_dev = mesh.devices.size
    outlier_batch_size = outlier_batch_size or cfg.batch_size
    steps_per_epoch = _check_inputs(model, images, labels, cfg, n_dev, input_transform, objective, outliers,
                                    outlier_batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    every = steps_per_epoch if cfg.checkpoint_every is None else cfg.checkpoint_every  # 0: at the end only
    init_key, data_key, step_key = jax.random.split(key, 3)
    # The outlier draws' seed (fold_in data 2**31 - 1: the epochs never reach it).
    outlier_seed = np.asarray(jax.random.key_data(jax.random.fold_in(data_key, 2**31 - 1))).tolist()
    batch_sharded = NamedSharding(mesh, PartitionSpec("batch"))

    variables = model.init(init_key) if init_variables is None else init_variables
    params = variables["params"]
    tx = make_optimizer(cfg, steps_per_epoch)
    state = TrainState(
        jnp.asarray(0, jnp.int32), params, {k: v for k, v in variables.items() if k != "params"}, tx.init(params)
    )
    state = replicate(state, mesh)
    lo, hi = local_rows(batch_sharded, cfg.batch_size)  # the rows of each batch this process reads

    log: list[dict[str, float]] = []
    manager, log_path, resume_meta = None, None, {}
    if workdir is not None:
        workdir = Path(workdir).absolute()
        workdir.mkdir(parents=True, exist_ok=True)
        fingerprint = _fingerprint(model, cfg, images, labels, key, input_transform, objective, outliers,
                                   outlier_batch_size, init_variables)
        fp_path = workdir / "train_run.json"
        if fp_path.exists():
            old = json.loads(fp_path.read_text())
            if old != fingerprint:
                differ = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
                raise ValueError(f"{workdir} holds another training run (it differs from this one in: "
                                 f"{', '.join(differ)}); use a new workdir, or delete that one")
        if is_leader():
            write_atomic(fp_path, json.dumps(fingerprint, indent=1))
        manager = Checkpoints(workdir / "checkpoints")
        log_path = workdir / "metrics.jsonl"
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
        restored = manager.restore(abstract)  # the newest intact checkpoint (damaged ones: warned, deleted)
        latest = None
        if restored is not None:
            state, latest, resume_meta = restored
        if log_path.exists():  # keep what was logged up to the restored step
            old = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
            log = [r for r in old if r.get("step", 0) <= (latest or 0)]
            if is_leader():
                write_atomic(log_path, "".join(json.dumps(r) + "\n" for r in log))

    compute_dtype = COMPUTE_DTYPES[cfg.compute_dtype]

    @jax.jit
    def train_step(state: TrainState, x: jax.Array, y: jax.Array, x_ood: jax.Array | None
                   ) -> tuple[TrainState, dict[str, jax.Array]]:
        k_aug, k_drop = jax.random.split(jax.random.fold_in(step_key, state.step))
        n = x.shape[0]
        if x_ood is not None:  # one forward pass over ID and outliers (shared batch statistics)
            x = jnp.concatenate([x, x_ood])
        if cfg.augment:
            x = random_crop_flip(k_aug, x)
        if input_transform is not None:
            x = input_transform(jax.random.fold_in(k_aug, 1), x, state.step)

        def loss_fn(params):
            cast = jax.tree.map(lambda p: p.astype(compute_dtype), params)
            (logits, features, extras), updates = model.train_apply(
                {"params": cast, **state.model_state}, x.astype(compute_dtype), k_drop
            )
            out = jax.tree.map(lambda a: a.astype(jnp.float32), TrainOutputs(logits, features, extras))
            ood = jax.tree.map(lambda a: a[n:], out) if x_ood is not None else None
            loss, parts = objective(jax.tree.map(lambda a: a[:n], out), y, ood)
            return loss, (out.logits[:n], parts, updates)

        (loss, (logits, parts, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, state.params)
        upd, opt_state = tx.update(grads, state.opt_state, state.params)
        model_state = {**state.model_state, **jax.tree.map(lambda u: u.astype(jnp.float32), updates)}
        new = TrainState(state.step + 1, optax.apply_updates(state.params, upd), model_state, opt_state)
        acc = jnp.mean((jnp.argmax(logits, -1) == y).astype(jnp.float32))
        return new, {"loss": loss, "accuracy": acc, **parts}

    def write(record: dict[str, float]) -> None:
        log.append(record)
        if log_path is not None and is_leader():
            with log_path.open("a") as f:
                f.write(json.dumps(record) + "\n")

    start = int(state.step)
    label = "train" if workdir is None else f"train {Path(workdir).name.removeprefix('train_')}"
    if progress and start >= total_steps:
        print(f"{label}: reusing the finished run in {workdir} (step {start})", flush=True)
    elif progress and start > 0:
        print(f"{label}: resuming from the checkpoint at step {start} of {total_steps}", flush=True)
    bar = tqdm(total=total_steps, initial=start, desc=label, disable=not progress or start >= total_steps,
               dynamic_ncols=True)
    def host_batches() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """This process's rows of every step's (images, labels, outliers) from `start` on."""
        perm, perm_epoch = None, -1
        o_lo, o_hi = local_rows(batch_sharded, outlier_batch_size)
        for s in range(start, total_steps):
            epoch, i = divmod(s, steps_per_epoch)
            if epoch != perm_epoch:
                perm = np.asarray(jax.random.permutation(jax.random.fold_in(data_key, epoch), images.shape[0]))
                perm_epoch = epoch
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size][lo:hi]
            ood = None
            if outliers is not None:
                rng = np.random.default_rng([*outlier_seed, s])
                ood = outliers[rng.choice(outliers.shape[0], outlier_batch_size, replace=False)[o_lo:o_hi]]
            yield images[idx], labels[idx], ood

    # The running (loss, accuracy, count) sums of the epoch the run resumes in, saved with its checkpoint.
    sums, t0 = np.asarray(resume_meta.get("epoch_sums", np.zeros(3)), np.float64), time.time()
    for s, (x_host, y_host, ood_host) in enumerate(prefetch(host_batches()), start):  # read ahead while a step runs
        epoch, i = divmod(s, steps_per_epoch)
        if i == 0:
            sums = np.zeros(3)
        x = global_batch(x_host, batch_sharded, cfg.batch_size)
        y = global_batch(y_host, batch_sharded, cfg.batch_size)
        x_ood = None if ood_host is None else global_batch(ood_host, batch_sharded, outlier_batch_size)
        state, m = train_step(state, x, y, x_ood)
        step = s + 1
        if on_step is not None or step % cfg.log_every == 0 or i == steps_per_epoch - 1:
            m = {k: float(v) for k, v in m.items()}
            sums += (m["loss"], m["accuracy"], 1)
            if step % cfg.log_every == 0:
                write({"step": step, "epoch": epoch + 1, **m, "seconds": round(time.time() - t0, 2),
                       "time": round(time.time(), 3)})
                bar.set_postfix(loss=f"{m['loss']:.3f}", acc=f"{m['accuracy']:.3f}", epoch=epoch + 1)
            if i == steps_per_epoch - 1:
                write({"step": step, "epoch": epoch + 1, "epoch_loss": sums[0] / sums[2],
                       "epoch_accuracy": sums[1] / sums[2], "time": round(time.time(), 3)})
                if workdir is not None and is_leader():
                    write_events(workdir / "tensorboard", log)
        bar.update(1)
        if manager is not None and every and step % every == 0:
            manager.save(step, state, {"epoch_sums": sums.tolist()})
        if on_step is not None:
            on_step(step, m)
    bar.close()
    if workdir is not None and start < total_steps and is_leader():
        write_events(workdir / "tensorboard", log)
    if manager is not None:
        if manager.latest_step() != total_steps:
            manager.save(total_steps, state, {"epoch_sums": sums.tolist()})
        manager.close()
    return TrainResult({"params": state.params, **state.model_state}, log)
