"""A synthetic image-classification dataset prepared by tfds on this machine (no download): real
tfds files (ArrayRecord or TFRecord) for tests, benchmarks and trying the tfds paths offline.

`build_synthetic_tfds(data_dir, n_train, n_test, size)` prepares `oodjax_synthetic_images` (RGB
size x size, 10 classes: oriented stripes of a class-specific angle and period plus noise, so a
small network learns them) in data_dir, as `tfds build` would; `TfdsImages` / `TfdsSource` and
`TfdsData(id_dataset="oodjax_synthetic_images", data_dir=...)` then read it.
"""

from __future__ import annotations

import os

import numpy as np

NAME = "oodjax_synthetic_images"
_BUILDER = None


def synthetic_images(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, size, size, 3) uint8 images and (n,) int64 labels: the dataset's examples, in order."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    r, c = np.mgrid[0:size, 0:size]
    angle = (labels % 5) * np.pi / 5
    period = np.where(labels < 5, size / 7, size / 3)
    phase = (np.cos(angle)[:, None, None] * r + np.sin(angle)[:, None, None] * c) / period[:, None, None]
    gray = 0.5 + 0.4 * np.sin(2 * np.pi * phase) + 0.1 * rng.standard_normal((n, size, size))
    tint = 0.7 + 0.3 * rng.random((n, 1, 1, 3))
    return (255 * np.clip(gray[..., None] * tint, 0, 1)).astype(np.uint8), labels


def _builder_class():
    global _BUILDER
    if _BUILDER is None:
        import tensorflow_datasets as tfds

        class OodjaxSyntheticImages(tfds.core.GeneratorBasedBuilder):
            """oodjax's synthetic stripes (oodjax.data.tfds_build); sizes set by build_synthetic_tfds."""

            VERSION = tfds.core.Version("1.0.0")
            sizes = (0, 0, 8)

            def _info(self):
                return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(num_classes=10)}))

            def _split_generators(self, dl_manager):
                n_train, n_test, size = self.sizes
                return {"train": self._generate_examples(n_train, size, 0),
                        "test": self._generate_examples(n_test, size, 1)}

            def _generate_examples(self, n, size, seed):
                for start in range(0, n, 1000):
                    images, labels = synthetic_images(min(1000, n - start), size, seed * 1_000_003 + start)
                    for i, (image, label) in enumerate(zip(images, labels)):
                        yield start + i, {"image": image, "label": int(label)}

        _BUILDER = OodjaxSyntheticImages
    return _BUILDER


def build_synthetic_tfds(data_dir: str | os.PathLike, *, n_train: int = 1000, n_test: int = 200, size: int = 32,
                         file_format: str = "array_record") -> str:
    """Prepares oodjax_synthetic_images in data_dir (file_format "array_record": readable by index,
    or "tfrecord"); returns the tfds name. One data_dir holds one size of it."""
    if min(n_train, n_test) < 1 or size < 4:
        raise ValueError(f"need n_train, n_test >= 1 and size >= 4, got {n_train}, {n_test}, {size}")
    if file_format not in ("array_record", "tfrecord"):
        raise ValueError(f"file_format must be 'array_record' or 'tfrecord', got {file_format!r}")
    cls = _builder_class()
    cls.sizes = (n_train, n_test, size)
    builder = cls(data_dir=os.fspath(data_dir), file_format=file_format)
    if builder.is_prepared():  # tfds reuses a prepared dataset: it must be the one asked for
        have = (builder.info.splits["train"].num_examples, builder.info.splits["test"].num_examples)
        if have != (n_train, n_test) or builder.info.file_format.value != file_format:
            raise FileExistsError(f"{builder.data_dir} holds {NAME} with {have} examples as "
                                  f"{builder.info.file_format.value}; use another data_dir")
    builder.download_and_prepare()
    return NAME
