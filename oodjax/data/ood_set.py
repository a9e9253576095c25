"""An OOD set: a name and a fixed validation/test split that is part of its definition.

Anything tuned on OOD data (ODIN's T and epsilon, GRODIN) is tuned on `val` and reported on `test`.
Users plug in their own data with `ood_set_from_arrays` or `ood_set_from_tfds`.
"""

from __future__ import annotations

import dataclasses
import zlib

import jax
import numpy as np

from oodjax.data.indexed import Indexed, Rows
from oodjax.data.sources import ArraySource, ImageSource, check_images
from oodjax.data.tfds_sources import TfdsSource, tfds_builder_and_split


@dataclasses.dataclass(frozen=True)
class OODSet:
    """name; val (None: nothing may be tuned on it); test; kind: far / near / covariate / resize;
    severity: the corruption level of a covariate-shift set (1..5) or None."""

    name: str
    val: ImageSource | None
    test: ImageSource
    kind: str = "far"
    severity: int | None = None


def definition_key(name: str) -> jax.Array:
    """The fixed key of a set's definition (its split, its random crops): derived from its name."""
    return jax.random.key(zlib.crc32(name.encode()))


def split_indices(name: str, n: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (val, test) indices of the fixed split of set `name` with n items."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    perm = np.asarray(jax.random.permutation(definition_key(name + "/split"), n))
    n_val = int(round(val_fraction * n))
    return np.sort(perm[:n_val]), np.sort(perm[n_val:])


def ood_set_from_arrays(
    name: str,
    images: np.ndarray,
    *,
    val_fraction: float = 0.2,
    kind: str = "far",
    severity: int | None = None,
) -> OODSet:
    """An OOD set from (N, H, W, C) images in [0, 1], split by the set's fixed key."""
    images = check_images(name, images)
    val_idx, test_idx = split_indices(name, images.shape[0], val_fraction)
    val = ArraySource(images[val_idx], name) if val_idx.size else None
    return OODSet(name, val, ArraySource(images[test_idx], name), kind, severity)


def ood_set_from_indexed(
    name: str,
    images: Indexed,
    *,
    val_fraction: float = 0.2,
    kind: str = "far",
    severity: int | None = None,
) -> OODSet:
    """An OOD set over an Indexed dataset (read lazily, batch by batch), split by the set's fixed key
    as ood_set_from_arrays splits arrays (the same indices for the same name and size)."""
    val_idx, test_idx = split_indices(name, len(images), val_fraction)
    val = Rows(images, val_idx, name) if val_idx.size else None
    return OODSet(name, val, Rows(images, test_idx, name), kind, severity)


def ood_set_from_tfds(
    name: str,
    *,
    data_dir: str | None,
    image_size: int,
    channels: int = 3,
    split: str | None = None,
    val_percent: int = 20,
    resize: str = "resize",
    kind: str = "far",
) -> OODSet:
    """An OOD set streamed from tfds: val = the first val_percent% of the split, test = the rest."""
    if not 0 <= val_percent < 100:
        raise ValueError(f"val_percent must be in [0, 100), got {val_percent}")
    _, split = tfds_builder_and_split(name, split)
    common = dict(name=name, data_dir=data_dir, image_size=image_size, channels=channels, resize=resize)
    val = TfdsSource(split=f"{split}[:{val_percent}%]", **common) if val_percent else None
    severity = int(name.rsplit("/", 1)[1]) if name.startswith("imagenet_c/") else None
    kind = "covariate" if severity else kind
    return OODSet(name, val, TfdsSource(split=f"{split}[{val_percent}%:]", **common), kind, severity)
