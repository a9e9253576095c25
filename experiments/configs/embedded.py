"""The embedded default: Fashion-MNIST (ID) versus the offline OOD suite (far, near, covariate
shift, resize artifacts), small CNN, every registered scorer it can feed plus ODIN tuned per OOD set,
and an anchored small CNN of the same size scored with the AMP family (paper 000), on CPU. The
near-OOD set is the held-out classes 5-9 of two more models (plain and anchored) trained on 0-4.

Variants: "default" (55k training images, 1 epoch, 2000 ID test images, OOD test splits capped at
400 images; 8 minutes on 2 CPU cores, plain and anchored models) and
"small" (a few thousand images, fewer sets; about a minute, for smoke tests).
"""

import dataclasses

from experiments.presets import paper000
from experiments.presets.common import default_scorers
from oodjax.experiment import Anchoring, EmbeddedData, Experiment, ModelSpec
from oodjax.training import TrainConfig

NEAR_CLASSES = (0, 1, 2, 3, 4)


def models(scorers: dict, amp_scorers: dict | None = None, near_classes: tuple[int, ...] | None = NEAR_CLASSES,
           anchoring: Anchoring = Anchoring()) -> tuple[ModelSpec, ...]:
    """The plain model on all classes (`all_classes`) and, with near_classes, one on those classes
    (`heldout`, the others its near OOD); with amp_scorers, an anchored twin of each (`*_anchored`)
    whose AMP scorers fit on 1000 images."""
    out = []
    for name, classes in (("all_classes", None), ("heldout", near_classes)):
        if name == "heldout" and classes is None:
            continue
        out.append(ModelSpec(name, scorers, classes=classes))
        if amp_scorers is not None:
            out.append(ModelSpec(f"{name}_anchored", amp_scorers, anchoring=anchoring, classes=classes, fit_size=1000,
                                 val_size=1000))
    return tuple(out)


def cpu_scorers() -> dict:
    scorers = default_scorers()
    # CPU budget (make demo in ~8 min on 2 cores). The registered defaults are the papers' full
    # grids (ODIN and GRODIN: 10 T x 21 eps; Gram: powers 1..10), for GPU/TPU runs.
    scorers["odin"] = ("odin", {"tune_size": 100, "temperatures": (1.0, 10.0, 100.0, 1000.0),
                                "epsilons": (0.0, 0.001, 0.002, 0.004)})
    scorers["gram"] = ("gram", {"powers": (1, 2, 3, 4, 5)})
    for part in ("grodin_g", "grodin_sg"):  # all-weight per-sample gradients: at T = 1, eps = 0 on a CPU
        scorers[part] = (part, {"temperatures": (1.0,), "epsilons": (0.0,), "tune_size": 100})
    return scorers


def get_config(variant: str = "default") -> Experiment:
    scorers = cpu_scorers()
    base = Experiment(
        name="embedded",
        data=EmbeddedData(test_size=2000, corruption_size=1000, ood_test_size=400),
        models=models(scorers, paper000.amp_scorers()),
        train=TrainConfig(epochs=1, batch_size=64, learning_rate=0.05, checkpoint_every=200),
        views=("summary", "table", "plots", "table7", "fig5"),
    )
    if variant == "default":
        return base
    if variant == "small":
        scorers["odin"] = ("odin", {"tune_size": 100, "temperatures": (1.0, 1000.0), "epsilons": (0.0, 0.002)})
        return dataclasses.replace(
            base, name="embedded_small", fit_size=2000, models=models(scorers, paper000.amp_scorers()),
            data=dataclasses.replace(base.data, train_size=4096, val_size=1000, test_size=2000,
                                     far_sets=("digits", "textures", "gaussian_noise"), corruptions=("gaussian_blur",),
                                     corruption_size=500),
            train=TrainConfig(epochs=2, batch_size=64, learning_rate=0.05, checkpoint_every=32),
        )
    raise ValueError(f"unknown variant {variant!r}; choose 'default' or 'small'")
