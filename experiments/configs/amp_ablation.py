"""Paper 000, Table 8: FPR95 of AMP for anchor corruptions of consistency training x number of
anchors at inference.

Rows: none (plain anchoring), ColorJitter + GaussianBlur, HorizontalFlip + Grayscale, ResizedCrop;
columns: K in {2, 5, 10, 20}. One anchored model is trained per row (the K columns share it).

Variants:
  default   embedded Fashion-MNIST small CNN (1 epoch each) against the six far OOD sets, on a CPU
            (about 6 minutes on 2 cores)
  small     4096 training images, 3 far sets (about 2 minutes)
  cifar10   the paper's setting: WRN-40-2 on CIFAR-10 against SVHN, 200 epochs per row (GPU/TPU,
            --data-dir <tfds data_dir>)

    python -m experiments.run experiments/configs/amp_ablation.py [--variant cifar10 --data-dir ...]
"""

import dataclasses

from experiments.configs.embedded import get_config as embedded_config
from experiments.presets import paper000  # noqa: F401  (registers the table8 view)
from experiments.presets.common import CIFAR_TRAIN
from oodjax import anchoring
from oodjax.experiment import Anchoring, Experiment, ModelSpec, OODSpec, TfdsData

CORRUPTION_SETS = {k: v for k, v in anchoring.TABLE8_CORRUPTIONS.items() if k != "all"}
NUM_ANCHORS = (2, 5, 10, 20)


def ablation_models(corruption_sets=CORRUPTION_SETS, num_anchors=NUM_ANCHORS) -> tuple[ModelSpec, ...]:
    """One anchored training per corruption set, scored with AMP (eq. 2) at every K."""
    return tuple(
        ModelSpec(f"anchored_{label}_k{k}", {"amp": ("amp", {})}, train_name=f"anchored_{label}",
                  anchoring=Anchoring(anchoring.AnchoredTraining(corruptions=tuple(corruptions)), num_anchors=k),
                  fit_size=100, val_size=100, tags={"corruption": label, "anchors": k})
        for label, corruptions in corruption_sets.items() for k in num_anchors)


def get_config(variant: str = "default") -> Experiment:
    if variant in ("default", "small"):
        base = embedded_config(variant)
        return dataclasses.replace(
            base, name=f"amp_ablation{'' if variant == 'default' else '_small'}", models=ablation_models(),
            data=dataclasses.replace(base.data, resize_sets=False, corruptions=()), views=("table8",))
    if variant == "cifar10":
        return Experiment(
            name="amp_ablation_cifar10", data=TfdsData("cifar10", ood=(OODSpec("svhn"),)), models=ablation_models(),
            arch="wrn40_2", views=("table8",), train=CIFAR_TRAIN)
    raise ValueError(f"unknown variant {variant!r}; choose 'default', 'small' or 'cifar10'")
