"""Post-hoc OOD scores. Every score is an ID-score: higher = more in-distribution.

Plain functions (`msp`, `energy`, `rg`, ...) work on batched arrays and are jit-able. The registry
maps names to scorer factories: `get(name, **hyperparameters) -> Scorer(fit, score)`.

Adding a scorer is one decorated function::

    @oodjax.scores.register("my_score")
    def _my_score(scale: float = 1.0) -> Scorer:
        return stateless(lambda out: scale * jnp.max(out.logits, axis=-1))
"""

from oodjax.scores._amp import AMP_SCORES, CALIBRATIONS, TAU_REDUCTIONS, amp, amp_logits, anchor_temperature, calibrate
from oodjax.scores._flow import FLOW_INPUTS
from oodjax.scores._features import (
    clipped_l1,
    feature_norm_energy,
    fit_react_threshold,
    fit_rg_alpha,
    react,
    rg,
    rg_additive,
)
from oodjax.scores._gradient import (
    GRODIN_PARTS, GrodinState, expected_gradnorm, expsum_gradnorm, expsum_loss, gradnorm, gradnorm_loss, grodin_parts,
    predicted_nll, scaled_apply, uv_score,
)
from oodjax.scores._gram import GramState, fit_gram, gram, gram_features
from oodjax.scores._knn import knn, l2_normalize
from oodjax.scores._logits import energy, entropy, fit_kl_matching, kl_matching, max_logit, msp
from oodjax.scores._mahalanobis import MahalanobisState, fit_mahalanobis, mahalanobis
from oodjax.scores._odin import ODIN_EPSILONS, ODIN_TEMPERATURES, OdinState, odin, odin_direction, tune_odin
from oodjax.scores._registry import get, names, register, stateless
from oodjax.scores._training import TRAINING_SCORERS, max_sigmoid, vib_log_confidence
from oodjax.scores._types import FitData, Head, ModelOutputs, Scorer
from oodjax.scores._uncertainty import (
    ENSEMBLE_MEASURES, confidence, entropy_of_expected, epkl, expected_entropy, log_mean_softmax, mkl,
    mutual_information,
)
from oodjax.scores._vim import VimState, default_vim_dim, fit_vim, vim

# Scorers that read ModelOutputs.samples: they need an anchored model, an ensemble or MC-dropout.
SAMPLE_SCORERS: tuple[str, ...] = (*AMP_SCORES, "amp_tau", *ENSEMBLE_MEASURES)
# Scorers not run on a plain classifier by default: the training-time detectors (they need their
# objective's model) and the flows (trained per run; configure them explicitly).
SPECIAL_SCORERS: tuple[str, ...] = (*SAMPLE_SCORERS, *TRAINING_SCORERS, "flow")

__all__ = [
    "FLOW_INPUTS", "SPECIAL_SCORERS", "TRAINING_SCORERS", "max_sigmoid", "vib_log_confidence",
    "ENSEMBLE_MEASURES", "SAMPLE_SCORERS", "confidence", "entropy_of_expected", "epkl", "expected_entropy",
    "log_mean_softmax", "mkl", "mutual_information",
    "AMP_SCORES", "CALIBRATIONS", "TAU_REDUCTIONS", "amp", "amp_logits", "anchor_temperature", "calibrate",
    "GRODIN_PARTS", "GrodinState", "expected_gradnorm", "expsum_gradnorm", "expsum_loss", "gradnorm", "gradnorm_loss",
    "grodin_parts", "predicted_nll", "scaled_apply", "uv_score",
    "FitData", "GramState", "Head", "MahalanobisState", "ModelOutputs", "ODIN_EPSILONS", "ODIN_TEMPERATURES",
    "OdinState", "Scorer", "VimState", "fit_gram", "gram", "gram_features", "odin", "odin_direction", "tune_odin",
    "clipped_l1", "default_vim_dim", "energy", "entropy", "feature_norm_energy",
    "fit_kl_matching", "fit_mahalanobis", "fit_react_threshold", "fit_rg_alpha", "fit_vim",
    "get", "kl_matching", "knn", "l2_normalize", "mahalanobis", "max_logit", "msp", "names",
    "react", "register", "rg", "rg_additive", "stateless", "vim",
]
