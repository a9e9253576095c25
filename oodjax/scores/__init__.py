"""OOD scores. Every score is an ID-score: higher = more in-distribution.

Plain functions (`msp`, `energy`, `rg`, ...) work on batched arrays and are jit-able. The registry
maps names to scorer factories: `get(name, **hyperparameters) -> Scorer(fit, score, needs, ...)`;
a scorer's `needs` name what it reads (vocabulary: `oodjax.types`), and `fitting(model.provides)`
lists every registered scorer a model can feed.

Adding a scorer is one decorated function::

    @oodjax.scores.register("my_score")
    def _my_score(scale: float = 1.0) -> Scorer:
        return stateless(lambda out: scale * jnp.max(out.logits, axis=-1), needs={"logits"})

A gradient score is one `gradient_scorer(loss, selector=..., norm=..., perturb=...)` call; a
tunable scorer gets its `tune` from `grid_tuner(grid, criterion)`. The AMP scorers are registered
by `oodjax.anchoring`.
"""

from oodjax.scores._adascale import adascale_logits, adaptive_percentile, perturbed_features, shift_statistic
from oodjax.scores._features import (
    clipped_l1,
    feature_norm_energy,
    fit_react_threshold,
    fit_rg_alpha,
    react,
    rg,
    rg_additive,
)
from oodjax.scores._flow import FLOW_INPUTS
from oodjax.scores._geometry import (
    FdbdState, NciState, fdbd, fit_she, nci, nnguide, nnguide_bank, she, weight_distances,
)
from oodjax.scores._gradient import (
    GRODIN_PARTS, expected_gradnorm, expsum_gradnorm, expsum_loss, gradnorm, gradnorm_loss, grodin_loss, grodin_parts,
    log_prob_loss, predicted_nll, uv_score,
)
from oodjax.scores._gradient_scorer import gradient_scorer, larger_is_id, smaller_is_id
from oodjax.scores._gram import GramState, fit_gram, gram, gram_features
from oodjax.scores._knn import knn, l2_normalize, top_similarities
from oodjax.scores._logits import energy, entropy, fit_kl_matching, gen, kl_matching, max_logit, msp
from oodjax.scores._mahalanobis import MahalanobisState, RmdsState, fit_mahalanobis, fit_rmds, mahalanobis, rmds
from oodjax.scores._nac import NAC_LAYERS, NacLayer, NacState, fit_nac, nac, nac_edges, nac_states, uniform_kl_loss
from oodjax.scores._odin import ODIN_EPSILONS, ODIN_TEMPERATURES, OdinState, odin, odin_direction, tune_odin
from oodjax.scores._openmax import OpenMaxState, fit_openmax, fit_weibull, openmax_probabilities
from oodjax.scores._registry import fitting, get, names, register, stateless
from oodjax.scores._shaping import ash, ash_score, fit_dice, scale_factor, scale_score, top_mask
from oodjax.scores._training import max_sigmoid, vib_log_confidence
from oodjax.scores._tune import CRITERIA, grid_points, grid_tuner, tune_on_grid
from oodjax.scores._types import FitData, Head, ModelOutputs, Predict, Scorer
from oodjax.scores._uncertainty import (
    ENSEMBLE_MEASURES, confidence, entropy_of_expected, epkl, expected_entropy, log_mean_softmax, mkl,
    mutual_information,
)
from oodjax.scores._vim import VimState, default_vim_dim, fit_vim, vim
from oodjax.scores._weiper import WeiperState, fit_weiper, histograms, msp_w, perturbed_head, weiper_kld

__all__ = [
    "FdbdState", "NAC_LAYERS", "NacLayer", "NacState", "NciState", "OpenMaxState", "RmdsState", "WeiperState", "adascale_logits",
    "adaptive_percentile", "ash", "ash_score", "fdbd", "fit_dice", "fit_nac", "fit_openmax", "fit_rmds", "fit_she",
    "fit_weibull", "fit_weiper", "gen", "histograms", "msp_w", "nac", "nac_edges", "nac_states", "uniform_kl_loss", "nci", "nnguide", "nnguide_bank",
    "openmax_probabilities", "perturbed_features", "perturbed_head", "rmds", "scale_factor", "scale_score", "she",
    "shift_statistic", "top_mask", "top_similarities", "weight_distances", "weiper_kld",
    "CRITERIA", "ENSEMBLE_MEASURES", "FLOW_INPUTS", "GRODIN_PARTS", "ODIN_EPSILONS", "ODIN_TEMPERATURES",
    "FitData", "GramState", "Head", "MahalanobisState", "ModelOutputs", "OdinState", "Predict", "Scorer", "VimState",
    "clipped_l1", "confidence", "default_vim_dim", "energy", "entropy", "entropy_of_expected", "epkl",
    "expected_entropy", "expected_gradnorm", "expsum_gradnorm", "expsum_loss", "feature_norm_energy", "fit_gram",
    "fit_kl_matching", "fit_mahalanobis", "fit_react_threshold", "fit_rg_alpha", "fit_vim", "fitting", "get",
    "gradient_scorer", "gradnorm", "gradnorm_loss", "gram", "gram_features", "grid_points", "grid_tuner",
    "grodin_loss", "grodin_parts", "kl_matching", "knn", "l2_normalize", "larger_is_id", "log_mean_softmax", "log_prob_loss",
    "mahalanobis", "max_logit", "max_sigmoid", "mkl", "msp", "mutual_information", "names", "odin",
    "odin_direction", "predicted_nll", "react", "register", "rg", "rg_additive", "smaller_is_id", "stateless",
    "tune_odin", "tune_on_grid", "uv_score", "vib_log_confidence", "vim",
]
