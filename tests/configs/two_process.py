"""A tiny experiment for the multi-process test (tests/test_parallel.py): trains a small CNN on fake
Fashion-MNIST (--data-dir) for one epoch and scores it with fitted, tuned and gradient scorers.

Its sizes make the processes' rows uneven: the last ID test batch (250 = 2 x 100 + 50 images) has
rows for process 0 only when 2 processes of 2 devices split each 100-row batch."""

from oodjax.experiment import EmbeddedData, Experiment, ModelSpec
from oodjax.training import TrainConfig

SCORERS = {
    "msp": ("msp", {}), "energy": ("energy", {}), "mahalanobis": ("mahalanobis", {}), "knn": ("knn", {"k": 5}),
    "odin": ("odin", {"temperatures": (1.0, 1000.0), "epsilons": (0.0, 0.002)}), "gradnorm": ("gradnorm", {}),
}


def get_config(variant: str = "default") -> Experiment:
    if variant != "default":
        raise ValueError(f"unknown variant {variant!r}; choose 'default'")
    return Experiment(
        name="two_process", progress=False, fit_size=200, batch_size=100, views=("table",),
        data=EmbeddedData(val_size=100, test_size=250, far_sets=("gaussian_noise",), resize_sets=False,
                          corruptions=("gaussian_blur",), corruption_size=60, ood_test_size=70),
        models=(ModelSpec("all_classes", SCORERS),),
        train=TrainConfig(epochs=1, batch_size=32, checkpoint_every=4),
    )
