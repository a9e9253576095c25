"""Datasets: Fashion-MNIST from IDX files and offline OOD sets."""

from oodjax.data.fashion_mnist import CLASS_NAMES, MEAN, STD, find_data_dir, load_fashion_mnist, read_idx
from oodjax.data.ood_sets import digits, gaussian_noise, resize, uniform_noise

__all__ = [
    "CLASS_NAMES", "MEAN", "STD", "digits", "find_data_dir", "gaussian_noise", "load_fashion_mnist",
    "read_idx", "resize", "uniform_noise",
]
