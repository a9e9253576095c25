"""Random-access image datasets: any rows read by index, only what is read held in memory.

An `Indexed` dataset has `shape` (N, H, W, C), `len()`, `images[indices]` -> (B, H, W, C) float32
(pixels in [0, 1], or model inputs for `Normalized`; read and decoded on demand), `labels()` -> (N,) int32 and `identity()` (what a training
checkpoint is tied to). Training reads its batches from one by index (an epoch is a permutation
from an explicit key, so a killed run resumes exactly mid-epoch), and `Rows` streams a subset of
one (fit subsets, validation hold-outs, test sets) in batches: host memory is bounded by a few
batches, not by the dataset.

Backends: `ArrayImages` (numpy arrays) and `TfdsImages`, tfds's `data_source` over ArrayRecord
files (`tfds build --file_format=array_record`): random access by index from the files, the
images decoded per read, the labels read without decoding any image. We chose tfds.data_source
over grain because it is what grain itself reads tfds datasets with, and the index-based epoch
order above needs nothing more; over tf.data because tf.data cannot seek, so exact mid-epoch
resumption and per-index subsets would mean re-reading the skipped part.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from oodjax.data.sources import RESAMPLING, check_image_request, image_files, read_images, to_channels


@runtime_checkable
class Indexed(Protocol):
    shape: tuple[int, ...]

    def __len__(self) -> int: ...

    def __getitem__(self, indices: Any) -> np.ndarray: ...

    def labels(self) -> np.ndarray: ...

    def identity(self) -> Any: ...


def _indices(indices: Any, n: int) -> np.ndarray:
    """Row indices (a 1-D integer array, or a slice) as a numpy array in [0, n)."""
    if isinstance(indices, slice):
        return np.arange(n)[indices]
    idx = np.asarray(indices)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"read rows with a 1-D integer index array, got {idx.dtype} of shape {idx.shape}")
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"row indices must be in [0, {n}), got [{idx.min()}, {idx.max()}]")
    return idx % n if idx.size else idx


class ArrayImages:
    """An in-memory (N, H, W, C) image array in [0, 1] with its (N,) labels, as an Indexed dataset."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None):
        self.images = np.asarray(images, np.float32)
        self._labels = np.zeros(len(self.images), np.int32) if labels is None else np.asarray(labels, np.int32)
        if self._labels.shape != self.images.shape[:1]:
            raise ValueError(f"{self._labels.shape[0]} labels for {self.images.shape[0]} images")
        self.shape = self.images.shape

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, indices: Any) -> np.ndarray:
        return self.images[_indices(indices, len(self))]

    def labels(self) -> np.ndarray:
        return self._labels

    def identity(self) -> Any:
        h = hashlib.sha1(self.images.tobytes())
        h.update(self._labels.tobytes())
        return ["arrays", list(self.shape), h.hexdigest()]


def _resize(image: np.ndarray, size: int, channels: int, crop: bool) -> np.ndarray:
    """uint8 (H, W, C) -> float32 (size, size, channels) in [0, 1]: bilinear (antialiased) resize,
    or crop=True: shorter side to size * 256 / 224, then the central crop (the ImageNet transform)."""
    im = Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image)
    if crop:
        scale = size * 256 / 224 / min(im.size)
        im = im.resize((max(size, round(im.size[0] * scale)), max(size, round(im.size[1] * scale))),
                       Image.Resampling.BILINEAR)
        left, top = (im.size[0] - size) // 2, (im.size[1] - size) // 2
        im = im.crop((left, top, left + size, top + size))
    elif im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    x = np.asarray(im, np.float32) / 255.0
    return to_channels(x.reshape(size, size, -1)[None], channels)[0]


def _read(source: Any, keys: list[int]) -> list[Any]:
    """Records `keys` of a tfds data source: one batched read (ArrayRecord reads them in parallel),
    or one by one where the source has no batched read (tfds.testing.mock_data's)."""
    try:
        return source.__getitems__(keys)
    except TypeError:
        return [source[k] for k in keys]


class NotIndexable(ValueError):
    """A tfds split that cannot be read by index (stored as TFRecord, not ArrayRecord)."""


class TfdsImages:
    """Random access to a prepared tfds split stored as ArrayRecord (tfds.data_source).

    Images are decoded and resized per read with Pillow (bilinear; resize "resize" or "resize_crop"),
    then converted to `channels`; TfdsSource's tf.data path (TFRecord files) resizes with TensorFlow,
    so a dataset resized from another size gives slightly different pixels in the two formats.
    A dataset prepared only as TFRecord raises NotIndexable, saying how to rebuild it."""

    def __init__(self, name: str, split: str | None = None, data_dir: str | None = None, image_size: int = 32,
                 channels: int = 3, resize: str = "resize"):
        import tensorflow_datasets as tfds

        from oodjax.data.tfds_sources import check_prepared

        if resize not in ("resize", "resize_crop"):
            raise ValueError(f"resize must be 'resize' or 'resize_crop', got {resize!r}")
        check_image_request(image_size, channels)
        self.name, self.data_dir, self.image_size, self.channels, self.resize = name, data_dir, image_size, channels, resize
        self.builder, self.split = check_prepared(name, split, data_dir)
        try:
            self._source = tfds.data_source(self.builder, split=self.split, data_dir=data_dir)
            self._raw = tfds.data_source(self.builder, split=self.split, data_dir=data_dir,
                                         decoders={"image": tfds.decode.SkipDecoding()})
        except (NotImplementedError, FileNotFoundError) as e:
            raise NotIndexable(
                f"tfds dataset {self.builder!r} (split {self.split!r}) in data_dir={data_dir!r} cannot be read by index: "
                f"rebuild it with `tfds build {self.builder} --file_format=array_record --data_dir=<dir>` "
                f"({type(e).__name__}: {e})") from e
        self.shape = (len(self._source), image_size, image_size, channels)
        self._label_cache: np.ndarray | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, indices: Any) -> np.ndarray:
        idx = _indices(indices, len(self))
        if idx.size == 0:
            return np.zeros((0, *self.shape[1:]), np.float32)
        records = _read(self._source, idx.tolist())
        crop = self.resize == "resize_crop"
        return np.stack([_resize(np.asarray(r["image"]), self.image_size, self.channels, crop) for r in records])

    def labels(self) -> np.ndarray:
        """All labels, read without decoding an image (in chunks of 4096 records; the records'
        bytes are still read: one pass over the files, cached)."""
        if self._label_cache is None:
            n = len(self)
            self._label_cache = np.asarray(
                [int(r["label"]) for i in range(0, n, 4096) for r in _read(self._raw, list(range(i, min(n, i + 4096))))],
                np.int32)
        return self._label_cache

    def identity(self) -> Any:
        """tfds name, version, split, size and transform, and a hash of the labels."""
        return ["tfds", self.builder, str(self._source.dataset_info.version), self.split, list(self.shape),
                self.resize, hashlib.sha1(self.labels().tobytes()).hexdigest()]


class Normalized:
    """An Indexed dataset with `fn` (pixel [0, 1] -> model input) applied to every read. Its identity
    includes a digest of fn on the first 8 images, so another normalization is another dataset."""

    def __init__(self, base: Indexed, fn: Callable[[np.ndarray], np.ndarray]):
        self.base, self.fn, self.shape = base, fn, base.shape

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, indices: Any) -> np.ndarray:
        return self.fn(self.base[indices])

    def labels(self) -> np.ndarray:
        return self.base.labels()

    def identity(self) -> Any:
        probe = np.asarray(self.fn(self.base[np.arange(min(8, len(self.base)))]), np.float32)
        return ["normalized", self.base.identity(), hashlib.sha1(probe.tobytes()).hexdigest()]


class FolderImages:
    """The images below a folder (sorted by path) as an Indexed dataset: files are decoded and resized
    when their rows are read, so host memory holds the rows read, not the folder (10k images at
    480 px are 28 GB as float32). The same pixels as load_image_folder."""

    def __init__(self, path: str | os.PathLike, image_size: int, channels: int = 3, resample: str = "bilinear"):
        if resample not in RESAMPLING:
            raise ValueError(f"resample must be one of {sorted(RESAMPLING)}, got {resample!r}")
        check_image_request(image_size, channels)
        self.root, self.files = Path(path), image_files(path)
        self.image_size, self.channels, self.resample = image_size, channels, resample
        self.shape = (len(self.files), image_size, image_size, channels)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, indices: Any) -> np.ndarray:
        rows = _indices(indices, len(self))
        return read_images([self.files[i] for i in rows], self.image_size, self.channels, self.resample)

    def labels(self) -> np.ndarray:
        return np.zeros(len(self), np.int32)

    def identity(self) -> Any:
        names = hashlib.sha1("\n".join(str(f.relative_to(self.root)) for f in self.files).encode()).hexdigest()
        return ["folder", str(self.root.absolute()), names, self.image_size, self.channels, self.resample]


class Rows:
    """Rows `indices` of an Indexed dataset (None: all) as an ImageSource: batches(batch_size) reads
    one batch at a time. Also Indexed itself (a view; reads map through the indices)."""

    def __init__(self, base: Indexed, indices: np.ndarray | None = None, name: str = "images"):
        self.base, self.name = base, name
        self.indices = np.arange(len(base)) if indices is None else _indices(indices, len(base))
        self.shape = (len(self.indices), *base.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, indices: Any) -> np.ndarray:
        return self.base[self.indices[_indices(indices, len(self))]]

    def labels(self) -> np.ndarray:
        return self.base.labels()[self.indices]

    def identity(self) -> Any:
        return ["rows", self.base.identity(), hashlib.sha1(self.indices.astype(np.int64).tobytes()).hexdigest()]

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for i in range(0, len(self), batch_size):
            yield self.base[self.indices[i : i + batch_size]]


def rows(images: np.ndarray | Indexed, indices: np.ndarray) -> np.ndarray | Rows:
    """images[indices]: a copy for an array, a lazy Rows view for an Indexed dataset."""
    return images[np.asarray(indices)] if isinstance(images, np.ndarray) else Rows(images, indices)
