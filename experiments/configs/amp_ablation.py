"""Paper 000, Table 8: FPR95 of AMP for anchor corruptions of consistency training x number of
anchors at inference.

Rows: none (plain anchoring), ColorJitter + GaussianBlur, HorizontalFlip + Grayscale, ResizedCrop;
columns: K in {2, 5, 10, 20}. One anchored model is trained per row.

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
from oodjax.experiment import AMPAblationConfig, AMPConfig, BenchmarkConfig, OODSpec


def get_config(variant: str = "default") -> AMPAblationConfig:
    if variant in ("default", "small"):
        base = embedded_config(variant)
        base = dataclasses.replace(base, resize_sets=False, corruptions=(), near_ood_classes=None, scorers={},
                                   amp=AMPConfig())
        return AMPAblationConfig(base=base, name=f"amp_ablation{'' if variant == 'default' else '_small'}")
    if variant == "cifar10":
        base = BenchmarkConfig(name="amp_ablation_cifar10", id_dataset="cifar10", model="wrn40_2",
                               ood=(OODSpec("svhn"),), scorers={}, amp=AMPConfig())
        return AMPAblationConfig(base=base, name="amp_ablation_cifar10")
    raise ValueError(f"unknown variant {variant!r}; choose 'default', 'small' or 'cifar10'")
