"""import_checkpoint: a checkpoint file (or our own orbax directory) -> (Model, variables)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from oodjax.models._types import Model, Variables, from_flax
from oodjax.models.imports._layouts import describe, detect
from oodjax.models.imports._read import CheckpointError, read_state

# The architectures a file can hold (the names `arch=` takes; detected ones are reported the same way).
ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "wide_resnet101_2",
         "densenet121", "densenet161", "densenet169", "densenet201", "wrn40_2", "wrn28_10", "cifar_resnet18",
         "bit_r50x1", "bit_r101x1", "bit_r152x1", "bit_r50x3", "bit_r101x3", "vit_s16", "vit_b16", "vit_b32", "vit_l16")


def normalized(model: Model, mean: Sequence[float], std: Sequence[float]) -> Model:
    """`model` taking images in [0, 1]: every function that reads images applies (x - mean) / std
    (per channel) first. The gradients scorers take with respect to the input are then in pixel
    units, so ODIN's eps step needs input_std 1."""
    mean_a, std_a = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    if mean_a.shape != std_a.shape or mean_a.shape not in ((), (model.input_shape[-1],)) or (std_a <= 0).any():
        raise ValueError(f"mean and std must be scalars or {model.input_shape[-1]} values each, std > 0; "
                         f"got {mean} and {std}")
    if mean_a.ndim:  # (1, 1, 1, C): broadcast explicitly (callers may forbid rank promotion)
        mean_a, std_a = mean_a.reshape(1, 1, 1, -1), std_a.reshape(1, 1, 1, -1)

    def wrap(fn):
        if fn is None:
            return None

        def inner(variables, x, *args, **kwargs):
            return fn(variables, (x - mean_a.astype(x.dtype)) / std_a.astype(x.dtype), *args, **kwargs)

        return inner

    return model._replace(apply=wrap(model.apply), train_apply=wrap(model.train_apply), maps=wrap(model.maps),
                          map_grads=wrap(model.map_grads),
                          samples=wrap(model.samples), extras=wrap(model.extras),
                          dropout_apply=wrap(model.dropout_apply))


def _check_variables(model: Model, flat: dict[tuple[str, ...], Any], what: str,
                     origin: dict[tuple[str, ...], str] | None = None) -> Variables:
    """The variables pytree of `flat`, after checking it has exactly the model's names and shapes
    (a mismatch is named by the file's parameter name, `origin`, where known)."""
    want = traverse_util.flatten_dict(jax.eval_shape(model.init, jax.random.key(0)))
    origin = origin or {}
    missing = sorted("/".join(k) for k in set(want) - set(flat))
    extra = sorted("/".join(k) for k in set(flat) - set(want))
    shapes = sorted(f"{origin.get(k, '/'.join(k))} {tuple(flat[k].shape)} (want {want[k].shape})"
                    for k in set(want) & set(flat) if tuple(flat[k].shape) != tuple(want[k].shape))
    problems = [f"{label}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}"
                for label, names in (("missing", missing), ("unexpected", extra), ("shape mismatches", shapes))
                if names]
    if problems:
        raise CheckpointError(f"{what} does not fit the model: " + "; ".join(problems))
    return traverse_util.unflatten_dict({k: jnp.asarray(v, want[k].dtype) for k, v in flat.items()})


def _import_orbax(path: Path, arch: str | None, model_kwargs: dict[str, Any]) -> tuple[Model, Variables]:
    import orbax.checkpoint as ocp

    from oodjax.models.registry import get, names

    if arch is None or arch not in names():
        raise CheckpointError(f"{path} is a directory (an orbax checkpoint): name its zoo model, "
                              f"arch= one of {', '.join(names())}, with its image_size= and in_channels=")
    step_dir = path / "checkpoints" if (path / "checkpoints").is_dir() else path  # a workdir or its checkpoints/
    steps = sorted((int(p.name), p) for p in step_dir.iterdir() if p.name.isdigit()) if step_dir.is_dir() else []
    if steps:
        step_dir = steps[-1][1]
    item = step_dir / "default" if (step_dir / "default").is_dir() else step_dir
    try:
        state = ocp.StandardCheckpointer().restore(item.absolute())
    except Exception as e:  # orbax raises many types for a directory that is not a checkpoint
        raise CheckpointError(f"{item}: not a readable orbax checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(state, dict) or "params" not in state:
        raise CheckpointError(f"{item}: expected a training state with 'params', got {describe(state or {})}")
    if "num_classes" not in model_kwargs:  # the classes of the head's bias, where the head is "head"
        bias = state["params"].get("head", {}).get("bias")
        if bias is None:
            raise CheckpointError(f"importing the orbax checkpoint {item} needs num_classes= (the model's classes)")
        model_kwargs = {**model_kwargs, "num_classes": int(np.shape(bias)[0])}
    model = get(arch, **model_kwargs)
    flat = traverse_util.flatten_dict({"params": state["params"], **dict(state.get("model_state") or {})})
    return model, _check_variables(model, flat, f"the orbax checkpoint {item}")


def import_checkpoint(path: str | Path, arch: str | None = None, *, image_size: int | None = None,
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                      **model_kwargs: Any) -> tuple[Model, Variables]:
    """(model, variables) of a pretrained network, `apply(variables, x) -> (logits, features)` with x
    (N, S, S, 3) in [0, 1]: the model applies its source's normalization (override with mean/std).

    path: a .pth/.pt/.bin (PyTorch, read without torch), .safetensors or .npz file, or an orbax
      directory written by oodjax's training (then arch= its zoo name and model_kwargs, e.g.
      num_classes=10, image_size=28, in_channels=1).
    arch: the architecture the file must hold (one of ARCHS); None takes what the file holds.
    image_size: the input size the model is built for (default 224 for ImageNet layouts, 32 for CIFAR).
    Raises CheckpointError naming the unknown, missing or mis-shaped parameters, or the
    architecture the file holds when it is not `arch`.
    """
    path = Path(path)
    if (mean is None) != (std is None):
        raise ValueError("give mean and std together (or neither: the source's normalization)")
    if path.is_dir():
        model, variables = _import_orbax(path, arch, {**model_kwargs, **({"image_size": image_size} if image_size else {})})
        return (normalized(model, mean, std) if mean is not None or std is not None else model), variables
    if model_kwargs:
        raise TypeError(f"{sorted(model_kwargs)} apply to orbax directories only; a file's architecture is read off it")
    state = read_state(path)
    found = detect(state)
    if found is None:
        raise CheckpointError(
            f"{path}: no known layout has these parameter names ({describe(state)}); oodjax reads torchvision "
            "ResNets / Wide ResNets / DenseNets, the OOD repositories' CIFAR WRN and ResNet-18, BiT .npz and "
            "big_vision / vit_jax ViT .npz")
    layout, held = found
    if arch is not None and arch != held:
        raise CheckpointError(f"{path} holds a {held} ({layout.name} layout), not a {arch}")
    if layout.rename is not None:
        state = {layout.rename(k): v for k, v in state.items()}
    built = layout.build(state, image_size)
    unknown = sorted(set(state) - built.read)
    if unknown:
        raise CheckpointError(f"{path}: {len(unknown)} parameters that a {held} has no place for: "
                              f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}")
    size = built.image_size
    model = from_flax(built.module, (size, size, 3))
    variables = _check_variables(model, built.variables, f"{path} ({held})", built.origin)
    norm_mean, norm_std = built.norm
    return normalized(model, norm_mean if mean is None else mean, norm_std if std is None else std), variables
