"""Data assembly: an experiment's data spec -> images in [0, 1], splits, OOD sets, normalization."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from oodjax import data
from oodjax.data import ArraySource, OODSet, normalize
from oodjax.experiment.config import EmbeddedData, Experiment, OODSpec, TfdsData


class Data(NamedTuple):
    """An experiment's images in [0, 1] and how the models see them."""

    train_xy: tuple[np.ndarray, np.ndarray]
    val_xy: tuple[np.ndarray, np.ndarray]  # ID validation, held out of training
    test_xy: tuple[np.ndarray, np.ndarray]
    ood_sets: list[OODSet]
    normalize: Callable[[np.ndarray], np.ndarray]
    input_std: tuple[float, ...]


def channel_normalizer(mean: tuple[float, ...], std: tuple[float, ...]) -> Callable[[np.ndarray], np.ndarray]:
    m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return lambda images: ((images - m) / s).astype(np.float32)


def stack(source, limit: int | None = None) -> np.ndarray:
    """The images of a source as one array (its first `limit`)."""
    parts, total = [], 0
    for b in source.batches(1000):
        parts.append(b)
        total += b.shape[0]
        if limit is not None and total >= limit:
            break
    if not parts:
        raise ValueError("an image source yielded no images")
    return np.concatenate(parts)[:limit]


def cap(oset: OODSet, n: int | None) -> OODSet:
    """The OOD set with its test split cut to its first n images."""
    if n is None:
        return oset
    if isinstance(oset.test, ArraySource):
        return oset if len(oset.test) <= n else dataclasses.replace(oset, test=ArraySource(oset.test.images[:n], oset.name))
    return dataclasses.replace(oset, test=ArraySource(stack(oset.test, n), oset.name))


def _split_train(val_size: int, train_size: int | None, x: np.ndarray, y: np.ndarray, key: jax.Array):
    perm = np.asarray(jax.random.permutation(key, x.shape[0]))
    if val_size >= x.shape[0]:
        raise ValueError(f"val_size {val_size} leaves no training images out of {x.shape[0]}")
    val_idx, train_idx = np.sort(perm[:val_size]), perm[val_size:]
    if train_size is not None:
        train_idx = train_idx[:train_size]
    train_idx = np.sort(train_idx)
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def _test_subset(x: np.ndarray, y: np.ndarray, size: int | None, key: jax.Array):
    if size is None:
        return x, y
    idx = np.sort(np.asarray(jax.random.permutation(key, x.shape[0]))[:size])
    return x[idx], y[idx]


def embedded_data(spec: EmbeddedData, k_split: jax.Array, k_test: jax.Array) -> Data:
    """Fashion-MNIST split into train / ID validation / ID test, and the embedded OOD suite."""
    x_all, y_all = data.load_fashion_mnist("train", spec.data_dir)
    x_te, y_te = _test_subset(*data.load_fashion_mnist("test", spec.data_dir), spec.test_size, k_test)
    train_xy, val_xy = _split_train(spec.val_size, spec.train_size, x_all, y_all, k_split)
    suite = data.embedded_suite(x_te, far=spec.far_sets, resize=spec.resize_sets, corruptions=spec.corruptions,
                                corruption_size=spec.corruption_size)
    return Data(train_xy, val_xy, (x_te, y_te), [cap(s, spec.ood_test_size) for s in suite], normalize,
                (float(data.STD),))


def _images(spec: OODSpec, image_size: int, channels: int) -> np.ndarray:
    if spec.folder is not None:
        return data.load_image_folder(spec.folder, image_size, channels, resample=spec.resample)
    return data.SYNTHETIC[spec.name](data.definition_key(spec.name), spec.size, image_size, channels)


def tfds_data(spec: TfdsData, k_split: jax.Array, k_test: jax.Array) -> Data:
    """The tfds ID dataset (train split -> train + validation hold-out; evaluation split -> ID
    test) and the OOD sets (tfds, image folders or synthetic), all at image_size x image_size x channels."""
    if spec.id_dataset not in data.NORMALIZATION:
        raise ValueError(f"no normalization statistics for {spec.id_dataset!r}; known: {sorted(data.NORMALIZATION)}")
    src = dict(data_dir=spec.data_dir, image_size=spec.image_size, channels=spec.channels)
    train_src = data.TfdsSource(spec.id_dataset, split="train", **src)
    test_src = data.TfdsSource(spec.id_dataset, **src)
    x_te, y_te = _test_subset(stack(test_src), test_src.labels(), spec.test_size, k_test)
    train_xy, val_xy = _split_train(spec.val_size, spec.train_size, stack(train_src), train_src.labels(), k_split)
    ood_sets = []
    for o in spec.ood:
        if o.folder is not None or o.name in data.SYNTHETIC:
            oset = data.ood_set_from_arrays(o.name, _images(o, spec.image_size, spec.channels),
                                            val_fraction=spec.ood_val_percent / 100, kind=o.kind)
        else:
            oset = data.ood_set_from_tfds(o.name, split=o.split, val_percent=spec.ood_val_percent, kind=o.kind, **src)
        ood_sets.append(cap(oset, spec.ood_test_size))
    mean, std = data.NORMALIZATION[spec.id_dataset]
    return Data(train_xy, val_xy, (x_te, y_te), ood_sets, channel_normalizer(mean, std), tuple(std))


def assemble(spec: EmbeddedData | TfdsData, k_split: jax.Array, k_test: jax.Array) -> Data:
    return (embedded_data if isinstance(spec, EmbeddedData) else tfds_data)(spec, k_split, k_test)


def heldout_classes(d: Data, classes: tuple[int, ...], id_name: str, ood_test_size: int | None) -> Data:
    """The data of a model trained on `classes` only: train / validation / test restricted to them,
    and the test images of the other classes as the only (near) OOD set, `<id_name>-heldout-classes`."""
    id_x, id_y, ood_x = data.heldout_classes(*d.test_xy, classes)
    near = cap(data.ood_set_from_arrays(f"{id_name}-heldout-classes", ood_x, kind="near"), ood_test_size)
    return d._replace(train_xy=data.heldout_classes(*d.train_xy, classes)[:2],
                      val_xy=data.heldout_classes(*d.val_xy, classes)[:2], test_xy=(id_x, id_y), ood_sets=[near])


def outlier_images(exp: Experiment, d: Data) -> np.ndarray | None:
    """The experiment's auxiliary outlier images (never a test OOD set), or None."""
    spec, ds = exp.outliers, exp.data
    if spec is None:
        return None
    if spec.name in {s.name for s in d.ood_sets}:
        raise ValueError(f"the outlier set {spec.name!r} is also a test OOD set; drop it from the OOD sets")
    if spec.name == "auxiliary_outliers" and spec.folder is None:
        images = data.auxiliary_outliers(exp.outlier_size)
    elif spec.folder is not None or spec.name in data.SYNTHETIC:
        images = _images(spec, ds.image_size, ds.channels)
    else:
        src = data.TfdsSource(spec.name, split=spec.split or "train", data_dir=ds.data_dir, image_size=ds.image_size,
                              channels=ds.channels)
        images = stack(src, exp.outlier_size)
    return images[: exp.outlier_size]
