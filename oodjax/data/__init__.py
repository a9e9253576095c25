"""Datasets: Fashion-MNIST IDX files, the offline embedded OOD suite, tfds and image-folder sources."""

from oodjax.data.embedded import (
    COVARIATE_CORRUPTIONS, FAR_SETS, RESIZE_SETS, auxiliary_outliers, corruption_sets, embedded_suite, far_ood_images,
    heldout_classes,
)
from oodjax.data.fashion_mnist import CLASS_NAMES, MEAN, STD, find_data_dir, load_fashion_mnist, normalize, read_idx
from oodjax.data.indexed import ArrayImages, FolderImages, Indexed, Normalized, NotIndexable, Rows, TfdsImages, rows
from oodjax.data.ood_set import (
    OODSet, definition_key, ood_set_from_arrays, ood_set_from_indexed, ood_set_from_tfds, split_indices,
)
from oodjax.data.prefetch import prefetch, prefetch_map
from oodjax.data.ood_sets import (
    CORRUPTIONS, RESAMPLING, SYNTHETIC, corrupt, digits, gaussian_noise, photo_images, random_crops, resize, texture_images,
    uniform_noise,
)
from oodjax.data.sources import ArraySource, ImageSource, check_images, load_image_folder, to_channels
from oodjax.data.tfds_build import build_synthetic_tfds, synthetic_images
from oodjax.data.tfds_sources import NORMALIZATION, TFDS_DATASETS, TfdsSource, check_prepared, tfds_builder_and_split

__all__ = [
    "ArrayImages", "FolderImages", "Indexed", "Normalized", "NotIndexable", "Rows", "TfdsImages", "ood_set_from_indexed", "rows",
    "build_synthetic_tfds", "prefetch", "prefetch_map", "synthetic_images",
    "ArraySource", "CLASS_NAMES", "CORRUPTIONS", "SYNTHETIC", "auxiliary_outliers", "COVARIATE_CORRUPTIONS", "FAR_SETS", "ImageSource", "MEAN",
    "NORMALIZATION", "OODSet", "normalize", "RESAMPLING", "RESIZE_SETS", "STD", "TFDS_DATASETS", "TfdsSource", "check_images", "check_prepared",
    "corrupt", "corruption_sets", "definition_key", "digits", "embedded_suite", "far_ood_images", "find_data_dir",
    "gaussian_noise", "heldout_classes", "load_fashion_mnist", "load_image_folder", "ood_set_from_arrays",
    "ood_set_from_tfds", "photo_images", "random_crops", "read_idx", "resize", "split_indices", "texture_images",
    "tfds_builder_and_split", "to_channels", "uniform_noise",
]
