"""The embedded default: Fashion-MNIST (ID) versus offline far-OOD sets, small CNN, on CPU.

Variants: "default" (all 60k training images, 1 epoch: a few minutes on 2 CPU cores) and
"small" (a few thousand images; under a minute, for smoke tests).
"""

from oodjax.experiment import EmbeddedConfig
from oodjax.training import TrainConfig


def get_config(variant: str = "default") -> EmbeddedConfig:
    if variant == "default":
        return EmbeddedConfig(
            name="embedded", train=TrainConfig(epochs=1, batch_size=128, learning_rate=0.05, checkpoint_every=100)
        )
    if variant == "small":
        return EmbeddedConfig(
            name="embedded_small",
            train_size=4096,
            test_size=2000,
            fit_size=2000,
            noise_size=500,
            train=TrainConfig(epochs=2, batch_size=128, learning_rate=0.05),
        )
    raise ValueError(f"unknown variant {variant!r}; choose 'default' or 'small'")
