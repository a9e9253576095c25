"""Real datasets through tensorflow-datasets, from a user-given data_dir (nothing is downloaded
unless asked). ImageNet-O, LSUN, iSUN and TinyImageNet are not in tfds: use `load_image_folder`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

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


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """A tfds split streamed in batches, resized to image_size and converted to `channels`.

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

    def batches(self, batch_size: int) -> Iterator[np.ndarray]:
        import tensorflow_datasets as tfds

        yield from tfds.as_numpy(self._dataset().batch(batch_size).prefetch(2))

    def labels(self) -> np.ndarray:
        import tensorflow_datasets as tfds

        return np.asarray([int(ex["label"]) for ex in tfds.as_numpy(self._load())], np.int32)
