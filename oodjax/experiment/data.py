"""Data assembly: an experiment's data spec -> images in [0, 1], splits, OOD sets, normalization."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from oodjax import data
from oodjax.data import ArraySource, ImageSource, Indexed, OODSet, Rows, normalize, rows
from oodjax.experiment.config import EmbeddedData, Experiment, OODSpec, TfdsData


Images = np.ndarray | Indexed  # in memory, or read by index batch by batch (a tfds ArrayRecord split)


class Data(NamedTuple):
    """An experiment's images in [0, 1] and how the models see them. The images of a tfds
    experiment are Indexed views (read per batch); the embedded suite's are arrays."""

    train_xy: tuple[Images, np.ndarray]
    val_xy: tuple[Images, np.ndarray]  # ID validation, held out of training
    test_xy: tuple[Images, np.ndarray]
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
    if isinstance(oset.test, Rows):
        return dataclasses.replace(oset, test=head(oset.test, n))
    return dataclasses.replace(oset, test=ArraySource(stack(oset.test, n), oset.name))


def head(images: Images, n: int | None) -> Images:
    """The first n images (all for None): a slice of an array, a lazy view of an Indexed dataset."""
    if n is None:
        return images
    if isinstance(images, np.ndarray):
        return images[:n]
    return images if len(images) <= n else rows(images, np.arange(n))


def as_source(images: Images, name: str = "images") -> ImageSource:
    """Images as an ImageSource streamed in batches."""
    if isinstance(images, np.ndarray):
        return ArraySource(images, name)
    return images if isinstance(images, Rows) else Rows(images, None, name)


def normalized(images: Images, fn: Callable[[np.ndarray], np.ndarray]) -> Images:
    """fn applied to the images: now for an array, at every read for an Indexed dataset."""
    return fn(images) if isinstance(images, np.ndarray) else data.Normalized(images, fn)


def _split_train(val_size: int, train_size: int | None, x: Images, y: np.ndarray, key: jax.Array):
    perm = np.asarray(jax.random.permutation(key, x.shape[0]))
    if val_size >= x.shape[0]:
        raise ValueError(f"val_size {val_size} leaves no training images out of {x.shape[0]}")
    val_idx, train_idx = np.sort(perm[:val_size]), perm[val_size:]
    if train_size is not None:
        train_idx = train_idx[:train_size]
    train_idx = np.sort(train_idx)
    return (rows(x, train_idx), y[train_idx]), (rows(x, val_idx), y[val_idx])


def _test_subset(x: Images, y: np.ndarray, size: int | None, key: jax.Array):
    if size is None:
        return x, y
    idx = np.sort(np.asarray(jax.random.permutation(key, x.shape[0]))[:size])
    return rows(x, idx), y[idx]


def embedded_data(spec: EmbeddedData, k_split: jax.Array, k_test: jax.Array) -> Data:
    """Fashion-MNIST split into train / ID validation / ID test, and the embedded OOD suite."""
    x_all, y_all = data.load_fashion_mnist("train", spec.data_dir)
    x_te, y_te = _test_subset(*data.load_fashion_mnist("test", spec.data_dir), spec.test_size, k_test)
    train_xy, val_xy = _split_train(spec.val_size, spec.train_size, x_all, y_all, k_split)
    suite = data.embedded_suite(x_te, far=spec.far_sets, resize=spec.resize_sets, corruptions=spec.corruptions,
                                corruption_size=spec.corruption_size)
    suite += [_extra_ood_set(o, spec.image_size, spec.channels, 0.2) for o in spec.ood]
    return Data(train_xy, val_xy, (x_te, y_te), [cap(s, spec.ood_test_size) for s in suite], normalize,
                (float(data.STD),))


def _extra_ood_set(spec: OODSpec, image_size: int, channels: int, val_fraction: float) -> OODSet:
    """An image folder (read batch by batch) or synthetic noise as an OOD set."""
    if spec.folder is not None:
        images = data.FolderImages(spec.folder, image_size, channels, spec.resample)
        return data.ood_set_from_indexed(spec.name, images, val_fraction=val_fraction, kind=spec.kind)
    return data.ood_set_from_arrays(spec.name, _images(spec, image_size, channels), val_fraction=val_fraction,
                                    kind=spec.kind)


def _images(spec: OODSpec, image_size: int, channels: int) -> np.ndarray:
    if spec.folder is not None:
        return data.load_image_folder(spec.folder, image_size, channels, resample=spec.resample)
    return data.SYNTHETIC[spec.name](data.definition_key(spec.name), spec.size, image_size, channels)


def check_sources(exp: Experiment) -> None:
    """Every tfds dataset / split / data_dir and image folder the experiment reads exists, checked
    before anything is loaded (data.check_prepared names what was looked for and where)."""
    spec = exp.data
    if not isinstance(spec, TfdsData):
        for o in spec.ood:
            if o.folder is not None and not Path(o.folder).is_dir():
                raise FileNotFoundError(f"OOD set {o.name!r}: image folder {o.folder!r} does not exist")
            if o.folder is None and o.name not in data.SYNTHETIC:
                raise ValueError(f"OOD set {o.name!r}: the embedded suite's extra sets are image folders or "
                                 f"synthetic ({sorted(data.SYNTHETIC)})")
        return
    data.check_prepared(spec.id_dataset, "train", spec.data_dir)
    data.check_prepared(spec.id_dataset, None, spec.data_dir)
    others = [*spec.ood, *([exp.outliers] if exp.outliers is not None else [])]
    for o in others:
        if o.folder is not None:
            if not Path(o.folder).is_dir():
                raise FileNotFoundError(f"OOD set {o.name!r}: image folder {o.folder!r} does not exist")
        elif o.name not in data.SYNTHETIC and not (o is exp.outliers and o.name == "auxiliary_outliers"):
            split = (o.split or "train") if o is exp.outliers else o.split
            data.check_prepared(o.name, split, spec.data_dir)


def _indexed(name: str, split: str | None, src: dict) -> Indexed:
    """A tfds split read by index (ArrayRecord: host memory holds a batch), or, for a dataset stored
    only as TFRecord, read into memory once, with a note on how to stream it."""
    try:
        return data.TfdsImages(name, split, **src)
    except data.NotIndexable:
        pass
    source = data.TfdsSource(name, split=split, **src)
    builder, resolved = data.tfds_builder_and_split(name, split)
    print(f"{name} ({resolved}): stored as TFRecord, so it is read into memory; rebuild it with `tfds build "
          f"{builder} --file_format=array_record --data_dir={src['data_dir']}` to stream it", flush=True)
    return data.ArrayImages(stack(source), source.labels())


def tfds_data(spec: TfdsData, k_split: jax.Array, k_test: jax.Array) -> Data:
    """The tfds ID dataset (train split -> train + validation hold-out; evaluation split -> ID
    test) and the OOD sets (tfds, image folders or synthetic), all at image_size x image_size x channels."""
    if spec.normalization is None and spec.id_dataset not in data.NORMALIZATION:
        raise ValueError(f"no normalization statistics for {spec.id_dataset!r}: set TfdsData.normalization=(mean, std) "
                         f"per channel; known datasets: {sorted(data.NORMALIZATION)}")
    src = dict(data_dir=spec.data_dir, image_size=spec.image_size, channels=spec.channels)
    train_all, test_all = _indexed(spec.id_dataset, "train", src), _indexed(spec.id_dataset, None, src)
    x_te, y_te = _test_subset(test_all, test_all.labels(), spec.test_size, k_test)
    train_xy, val_xy = _split_train(spec.val_size, spec.train_size, train_all, train_all.labels(), k_split)
    ood_sets = []
    for o in spec.ood:
        if o.folder is not None or o.name in data.SYNTHETIC:
            oset = _extra_ood_set(o, spec.image_size, spec.channels, spec.ood_val_percent / 100)
        else:
            oset = data.ood_set_from_tfds(o.name, split=o.split, val_percent=spec.ood_val_percent, kind=o.kind, **src)
        ood_sets.append(cap(oset, spec.ood_test_size))
    mean, std = spec.normalization or data.NORMALIZATION[spec.id_dataset]
    return Data(train_xy, val_xy, (x_te, y_te), ood_sets, channel_normalizer(mean, std), tuple(std))


def assemble(spec: EmbeddedData | TfdsData, k_split: jax.Array, k_test: jax.Array) -> Data:
    return (embedded_data if isinstance(spec, EmbeddedData) else tfds_data)(spec, k_split, k_test)


def heldout_classes(d: Data, classes: tuple[int, ...], id_name: str, ood_test_size: int | None) -> Data:
    """The data of a model trained on `classes` only: train / validation / test restricted to them,
    and the test images of the other classes as the only (near) OOD set, `<id_name>-heldout-classes`."""
    id_x, id_y, ood_x = data.heldout_classes(*d.test_xy, classes)
    make = data.ood_set_from_arrays if isinstance(ood_x, np.ndarray) else data.ood_set_from_indexed
    near = cap(make(f"{id_name}-heldout-classes", ood_x, kind="near"), ood_test_size)
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
