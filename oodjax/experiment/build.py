"""A ModelSpec -> the network to train and the Model its scorers read, before any training: so that
every scorer's needs are checked against what the model provides before any work starts."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from oodjax import anchoring, models, scores
from oodjax import types as T
from oodjax.data import Indexed
from oodjax.evaluate import LABELLED, build_scorers, check_scorers
from oodjax.experiment.config import Experiment, ModelSpec
from oodjax.models import Model, Variables
from oodjax.types import Scorer


@dataclasses.dataclass(frozen=True)
class Built:
    """net: the network trained (2C channels if anchored); model(key) builds the Model scored;
    provides: what that Model and the data give scorers; scorers: {label: Scorer}."""

    spec: ModelSpec
    net: Model
    provides: frozenset[str]
    scorers: dict[str, Scorer]
    variables: Variables | None = None  # an imported checkpoint's (spec.checkpoint): no training
    own_normalization: bool = False  # the imported model normalizes [0, 1] images itself


def _scored_model(spec: ModelSpec, net: Model, key: jax.Array) -> Model:
    if spec.anchoring is not None:
        a = spec.anchoring
        return anchoring.anchored_model(net, num_anchors=a.num_anchors, key=key) if a.per_sample else \
            anchoring.anchored_model(net)
    if spec.members:
        return models.ensemble(net)
    if spec.mc_samples:
        return models.mc_dropout(net, spec.mc_samples, key)
    return net


def build(exp: Experiment, spec: ModelSpec, num_classes: int) -> Built:
    """The spec's network, what its scored model provides, and its scorers (all validated)."""
    ds = exp.data
    channels = ds.channels * (2 if spec.anchoring is not None else 1)
    kwargs = {**dict(exp.model_kwargs), **dict(spec.model_kwargs)}
    variables, own = None, False
    if spec.checkpoint is not None:
        net, variables, own = _imported(spec, spec.arch or exp.arch, kwargs, channels, ds.image_size)
    else:
        net = models.get(spec.arch or exp.arch, num_classes=num_classes, in_channels=channels,
                         image_size=ds.image_size, head=spec.head, head_kwargs=dict(spec.head_kwargs), **kwargs)
    provides = (_scored_model(spec, net, jax.random.key(0)).provides | LABELLED
                | spec.objective.provides | ({T.OUTLIERS} if exp.outliers is not None else frozenset()))
    spec_scorers = spec.scorers
    if spec_scorers is None:
        spec_scorers = {name: (name, {}) for name in scores.fitting(provides)}
    built = build_scorers(spec_scorers)
    check_scorers(built, provides, spec.name)
    return Built(spec, net, provides, built, variables, own)


def _imported(spec: ModelSpec, arch: str, kwargs: dict[str, Any], channels: int, image_size: int
              ) -> tuple[Model, Variables, bool]:
    """(net, variables, whether it normalizes its inputs itself) of spec.checkpoint: an oodjax orbax
    workdir is the zoo model `arch` (its data's normalization applies); any other file carries its own."""
    path = Path(spec.checkpoint)
    if path.is_dir():
        net, variables = models.import_checkpoint(path, spec.checkpoint_arch or arch, in_channels=channels,
                                                  image_size=image_size, **kwargs)
        return net, variables, False
    if channels != 3:
        raise models.CheckpointError(f"model {spec.name!r}: {path.name} takes RGB images; set the data's channels=3")
    net, variables = models.import_checkpoint(path, spec.checkpoint_arch, image_size=image_size)
    return net, variables, True


def for_inference(b: Built, variables: Variables | list[Variables], train_images: np.ndarray | Indexed,
                  key: jax.Array) -> tuple[Model, Any]:
    """(the Model scored, its variables): anchors drawn from the normalized training images for an
    anchored model, the members stacked for an ensemble."""
    spec = b.spec
    k_anchor, k_draw = jax.random.split(key)
    model = _scored_model(spec, b.net, k_draw)
    if spec.anchoring is not None:
        a = spec.anchoring
        images = train_images if isinstance(train_images, Indexed) else jnp.asarray(train_images)
        anchors = anchoring.draw_anchors(k_anchor, images, a.pool_size if a.per_sample else a.num_anchors)
        return model, anchoring.with_anchors(variables, anchors)
    if spec.members:
        return model, models.stack_members(variables)
    return model, variables
