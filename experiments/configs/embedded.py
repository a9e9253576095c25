"""The embedded default: Fashion-MNIST (ID) versus the offline OOD suite (far, near, covariate
shift, resize artifacts), small CNN, every registered scorer plus ODIN tuned per OOD set, and an
anchored small CNN of the same size scored with the AMP family (paper 000), on CPU.

Variants: "default" (55k training images, 1 epoch, 2000 ID test images, OOD test splits capped at
400 images; 12.5 minutes on 2 CPU cores, plain and anchored models) and
"small" (a few thousand images, fewer sets; about a minute, for smoke tests).
"""

import dataclasses

from oodjax.experiment import AMPConfig, EmbeddedConfig, default_scorers
from oodjax.training import TrainConfig


def get_config(variant: str = "default") -> EmbeddedConfig:
    scorers = default_scorers()
    # CPU budget (make demo in ~12.5 min on 2 cores). The registered defaults are the papers' full
    # grids (ODIN and GRODIN: 10 T x 21 eps; Gram: powers 1..10), for GPU/TPU runs.
    scorers["odin"] = ("odin", {"tune_size": 100, "temperatures": (1.0, 10.0, 100.0, 1000.0),
                                "epsilons": (0.0, 0.001, 0.002, 0.004)})
    scorers["gram"] = ("gram", {"powers": (1, 2, 3, 4, 5)})
    for part in ("grodin_g", "grodin_sg"):  # all-weight per-sample gradients: at T = 1, eps = 0 on a CPU
        scorers[part] = (part, {"temperatures": (1.0,), "epsilons": (0.0,), "tune_size": 100})
    base = EmbeddedConfig(
        name="embedded",
        test_size=2000,
        corruption_size=1000,
        ood_test_size=400,
        train=TrainConfig(epochs=1, batch_size=64, learning_rate=0.05, checkpoint_every=200),
        scorers=scorers,
        amp=AMPConfig(),
    )
    if variant == "default":
        return base
    if variant == "small":
        scorers["odin"] = ("odin", {"tune_size": 100, "temperatures": (1.0, 1000.0), "epsilons": (0.0, 0.002)})
        return dataclasses.replace(
            base, name="embedded_small", train_size=4096, val_size=1000, test_size=2000, fit_size=2000,
            far_sets=("digits", "textures", "gaussian_noise"), corruptions=("gaussian_blur",), corruption_size=500,
            train=TrainConfig(epochs=2, batch_size=64, learning_rate=0.05), scorers=scorers,
        )
    raise ValueError(f"unknown variant {variant!r}; choose 'default' or 'small'")
