"""AMP / neural-network anchoring (paper 000), all in this package: anchored input, anchored
training with consistency corruptions, the jit-compiled marginalization over anchors with
heteroscedastic temperature, and the AMP scores (registered here; `oodjax.scores.get` finds them).

Train a 2C-channel net with `train(net, images, labels, cfg, input_transform=AnchoredTraining())`,
then score `anchored_model(net)` with variables `with_anchors(trained, draw_anchors(key, x, 5))`
and the registered scorers amp, amp_msp, amp_energy, amp_entropy, amp_tau.
"""

from oodjax.anchoring._anchor import (
    ANCHORS, AnchoredTraining, Marginal, anchor_input, anchored_batch, anchored_model, draw_anchors, marginalize,
    with_anchors,
)
from oodjax.anchoring._augment import (
    AUGMENTATIONS, TABLE8_CORRUPTIONS, color_jitter, compose, gaussian_blur, grayscale, horizontal_flip, resized_crop,
)
from oodjax.anchoring._amp import AMP_SCORES, CALIBRATIONS, TAU_REDUCTIONS, amp, amp_logits, anchor_temperature, calibrate

__all__ = [
    "AMP_SCORES", "ANCHORS", "AUGMENTATIONS", "AnchoredTraining", "CALIBRATIONS", "Marginal", "TABLE8_CORRUPTIONS",
    "TAU_REDUCTIONS", "amp", "amp_logits", "anchor_input", "anchor_temperature", "anchored_batch", "anchored_model",
    "calibrate", "color_jitter", "compose", "draw_anchors", "gaussian_blur", "grayscale", "horizontal_flip",
    "marginalize", "resized_crop", "with_anchors",
]
