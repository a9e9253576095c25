"""The offline embedded suite around Fashion-MNIST (no network): far OOD, near OOD (held-out
classes), covariate shift (corruptions at severities 1-5) and resize artifacts (paper 000, Table 7).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from oodjax.data import ood_sets
from oodjax.data.indexed import Indexed, Rows, rows
from oodjax.data.ood_set import OODSet, definition_key, ood_set_from_arrays

FAR_SETS = ("digits", "textures", "photo_crop", "photo_resize", "gaussian_noise", "uniform_noise")
RESIZE_SETS = tuple(f"digits_{m}" for m in ood_sets.RESAMPLING)
COVARIATE_CORRUPTIONS = ("gaussian_blur", "gaussian_noise")

_FAR: dict[str, Callable[[], np.ndarray]] = {
    "digits": lambda: ood_sets.digits(28),
    "textures": lambda: ood_sets.random_crops(definition_key("textures"), ood_sets.texture_images(), 600, (28, 112)),
    "photo_crop": lambda: ood_sets.random_crops(definition_key("photo_crop"), ood_sets.photo_images(), 600, (28, 28)),
    "photo_resize": lambda: ood_sets.random_crops(
        definition_key("photo_resize"), ood_sets.photo_images(), 600, (96, 400)
    ),
    "gaussian_noise": lambda: ood_sets.gaussian_noise(definition_key("gaussian_noise"), 1000),
    "uniform_noise": lambda: ood_sets.uniform_noise(definition_key("uniform_noise"), 1000),
}


def far_ood_images(name: str) -> np.ndarray:
    """The images of far-OOD set `name` (one of FAR_SETS), (N, 28, 28, 1) in [0, 1]."""
    if name not in _FAR:
        raise ValueError(f"unknown far-OOD set {name!r}; known: {', '.join(_FAR)}")
    return _FAR[name]()


def auxiliary_outliers(n: int = 2000) -> np.ndarray:
    """The embedded suite's designated auxiliary OOD set for training with outliers (outlier
    exposure, a flow's OOD term): n crops of side 28..200 of `ood_sets.outlier_images()`, source
    images disjoint from every test set. (N, 28, 28, 1) in [0, 1]."""
    return ood_sets.random_crops(definition_key("auxiliary_outliers"), ood_sets.outlier_images(), n, (28, 200))


def corruption_sets(
    id_test: np.ndarray, corruption: str, *, size: int = 2000, val_fraction: float = 0.2
) -> list[OODSet]:
    """The first `size` ID test images under `corruption` at severities 1..5, one covariate set each."""
    base = id_test[: min(size, id_test.shape[0])]
    out = []
    for s in range(1, 6):
        name = f"fmnist-{corruption}-{s}"
        images = ood_sets.corrupt(base, corruption, s, definition_key(name))
        out.append(ood_set_from_arrays(name, images, val_fraction=val_fraction, kind="covariate", severity=s))
    return out


def embedded_suite(
    id_test: np.ndarray,
    *,
    far: tuple[str, ...] = FAR_SETS,
    resize: bool = True,
    corruptions: tuple[str, ...] = COVARIATE_CORRUPTIONS,
    corruption_size: int = 2000,
    val_fraction: float = 0.2,
) -> list[OODSet]:
    """Far, resize-artifact and covariate-shift sets for an ID test set of 28x28 grayscale images.
    (The near-OOD set needs a model trained on half the classes: `heldout_classes`.)"""
    sets = [ood_set_from_arrays(n, far_ood_images(n), val_fraction=val_fraction) for n in far]
    if resize:
        for method in ood_sets.RESAMPLING:
            sets.append(ood_set_from_arrays(f"digits_{method}", ood_sets.digits(28, method),
                                            val_fraction=val_fraction, kind="resize"))
    for c in corruptions:
        sets += corruption_sets(id_test, c, size=corruption_size, val_fraction=val_fraction)
    return sets


def heldout_classes(
    images: np.ndarray | Indexed, labels: np.ndarray, id_classes: tuple[int, ...]
) -> tuple[np.ndarray | Rows, np.ndarray, np.ndarray | Rows]:
    """Near OOD (the CIFAR-10 <-> CIFAR-100 analogue): keeps `id_classes` as ID, relabelled 0..K-1,
    and returns (id_images, id_labels, ood_images) with the other classes as OOD (lazy Rows views
    of an Indexed dataset, copies of an array)."""
    id_classes = tuple(int(c) for c in id_classes)
    if len(set(id_classes)) != len(id_classes) or not set(id_classes) <= set(np.unique(labels).tolist()):
        raise ValueError(f"id_classes {id_classes} must be distinct labels present in the data")
    is_id = np.isin(labels, id_classes)
    remap = np.full(int(labels.max()) + 1, -1, np.int32)
    remap[list(id_classes)] = np.arange(len(id_classes), dtype=np.int32)
    return rows(images, np.flatnonzero(is_id)), remap[labels[is_id]], rows(images, np.flatnonzero(~is_id))
