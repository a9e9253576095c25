"""Real datasets through tensorflow-datasets, from a user-given data_dir (nothing is downloaded
unless asked). ImageNet-O, LSUN, iSUN and TinyImageNet are not in tfds: use `load_image_folder`.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterator
import numpy as np
from etils import epath

# name -> (tfds builder, evaluation split). ImageNet-C: "imagenet_c/<corruption>/<severity>".
TFDS_DATASETS: dict[str, tuple[str, str]] = {
    "cifar10": ("cifar10", "test"),
    "cifar100": ("cifar100", "test"),
    "svhn": ("svhn_cropped", "test"),
    "places365": ("places365_small", "validation"),
    "dtd": ("dtd", "test"),
    "imagenet": ("imagenet2012", "validation"),
    "imagenet_a": ("imagenet_a", "test"),
    "imagenet_r": ("imagenet_r", "test"),
    "fashion_mnist": ("fashion_mnist", "test"),
}
# Per-channel mean and std of the training images in [0, 1], applied to ID and OOD alike.
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
}


def tfds_builder_and_split(name: str, split: str | None = None) -> tuple[str, str]:
    """Resolves an oodjax dataset name (or a raw tfds name) to (tfds builder, split)."""
    if name.startswith("imagenet_c/"):
        _, corruption, severity = name.split("/")
        if not 1 <= int(severity) <= 5:
            raise ValueError(f"ImageNet-C severity must be 1..5, got {severity}")
        return f"imagenet2012_corrupted/{corruption}_{severity}", split or "validation"
    builder, default_split = TFDS_DATASETS.get(name, (name, "test"))
    return builder, split or default_split


def _mocked() -> bool:
    """True inside `tfds.testing.mock_data`: its examples are generated, nothing is prepared on disk."""
    from tensorflow_datasets.core import dataset_builder

    return "mocking" in dataset_builder.FileReaderBuilder._as_dataset.__module__


def check_prepared(name: str, split: str | None = None, data_dir: str | None = None) -> tuple[str, str]:
    """(tfds builder, split) if tfds can read `split` of `name` from data_dir; otherwise an error naming
    what was looked for and where, before any work. Under tfds.testing.mock_data only the name is checked.

    ValueError: an unknown dataset or split (with the close names / the splits it has);
    FileNotFoundError: data_dir missing, or the dataset not prepared in it (with the `tfds build` line)."""
    import tensorflow_datasets as tfds

    builder_name, split = tfds_builder_and_split(name, split)
    mocked = _mocked()
    if data_dir is not None and not mocked and not epath.Path(data_dir).is_dir():  # local or gs://
        raise FileNotFoundError(f"dataset {name!r}: data_dir {data_dir!r} does not exist; pass the folder that "
                                f"`tfds build {builder_name} --data_dir=<dir>` wrote")
    try:
        builder = tfds.builder(builder_name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        close = difflib.get_close_matches(builder_name.split("/")[0], tfds.list_builders(), n=5)
        raise ValueError(f"unknown dataset {name!r} (tfds builder {builder_name!r}), or not prepared in "
                         f"data_dir={data_dir!r}: use an oodjax name {sorted(TFDS_DATASETS)}, "
                         f"imagenet_c/<corruption>/<severity> or a tfds name"
                         + (f"; close tfds names: {close}" if close else "")) from e
    except ValueError as e:  # e.g. an unknown builder config (an ImageNet-C corruption)
        raise ValueError(f"dataset {name!r} (tfds builder {builder_name!r}): {e}") from e
    if mocked:
        return builder_name, split
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"tfds dataset {builder_name!r} is not prepared: looked in {builder.data_dir} (data_dir={data_dir!r}); "
            f"run `tfds build {builder_name} --data_dir=<dir>` on a machine with internet (manual-download datasets "
            f"such as imagenet2012 need their archives in <dir>/downloads/manual), then pass data_dir=<dir>")
    have = sorted(builder.info.splits)
    for part in split.split("+"):
        base = part.split("[")[0].strip()
        if base not in have and base != "all":
            raise ValueError(f"dataset {name!r} (tfds builder {builder_name!r}) has no split {base!r}; it has {have}")
    return builder_name, split


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """A tfds split streamed in batches, resized to image_size and converted to `channels`: through
    tf.data (TFRecord files; tf.image.resize, antialiased) or, for a dataset stored as ArrayRecord,
    read by index (`TfdsImages`, Pillow's bilinear resize).

    resize: "resize" (straight to image_size x image_size) or "resize_crop" (shorter side to
    image_size * 256 / 224, then the central crop, the ImageNet evaluation transform).
    """

    name: str
    split: str | None = None
    data_dir: str | None = None
    image_size: int = 32
    channels: int = 3
    resize: str = "resize"
    download: bool = False

    def __post_init__(self):
        if self.resize not in ("resize", "resize_crop"):
            raise ValueError(f"resize must be 'resize' or 'resize_crop', got {self.resize!r}")
        if not self.download:  # a dataset that will not be downloaded must be there now
            check_prepared(self.name, self.split, self.data_dir)

    def _load(self):
        import tensorflow_datasets as tfds

        builder, split = tfds_builder_and_split(self.name, self.split)
        try:
            ds = tfds.load(builder, split=split, data_dir=self.data_dir, download=self.download,
                           shuffle_files=False)
        except (AssertionError, tfds.core.registered.DatasetNotFoundError, FileNotFoundError) as e:
            raise FileNotFoundError(
                f"tfds dataset {builder!r} (split {split!r}) is not prepared in data_dir={self.data_dir!r}: "
                f"run `tfds build {builder} --data_dir=<dir>` on a machine with internet (manual-download "
                f"datasets such as imagenet2012 need their archives in <dir>/downloads/manual), then pass "
                f"data_dir=<dir>. ({type(e).__name__}: {e})"
            ) from e
        return ds

    def _dataset(self):
        import tensorflow as tf

        size, channels = self.image_size, self.channels

        def prepare(example):
            image = tf.cast(example["image"], tf.float32) / 255.0
            if image.shape[-1] != channels:
                image = tf.image.rgb_to_grayscale(image) if channels == 1 else tf.image.grayscale_to_rgb(image)
            if self.resize == "resize_crop":
                shape = tf.cast(tf.shape(image)[:2], tf.float32)
                scale = size * 256.0 / 224.0 / tf.reduce_min(shape)
                image = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32), antialias=True)
                image = tf.image.resize_with_crop_or_pad(image, size, size)
            else:
                image = tf.image.resize(image, (size, size), antialias=True)
            return tf.clip_by_value(image, 0.0, 1.0)

        return self._load().map(prepare, num_parallel_calls=tf.data.AUTOTUNE)

    def _indexed(self):
        """The split read by index (TfdsImages): how a dataset stored as ArrayRecord is read."""
        from oodjax.data.indexed import TfdsImages

        return TfdsImages(self.name, self.split, self.data_dir, self.image_size, self.channels, self.resize)

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        import tensorflow_datasets as tfds

        try:
            ds = self._dataset()
        except NotImplementedError:  # stored as ArrayRecord: tf.data cannot read it, tfds.data_source can
            from oodjax.data.indexed import Rows

            yield from Rows(self._indexed(), None, self.name).batches(batch_size)
            return
        yield from tfds.as_numpy(ds.batch(batch_size).prefetch(2))

    def labels(self) -> np.ndarray:
        import tensorflow_datasets as tfds

        try:
            ds = self._load()
        except NotImplementedError:
            return self._indexed().labels()
        return np.asarray([int(ex["label"]) for ex in tfds.as_numpy(ds)], np.int32)
