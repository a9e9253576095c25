"""Input checks shared by the scorers: `oodjax.validation`, re-exported. Shapes are static, so the
shape checks also run under jit."""

from oodjax.validation import (check_feature_dim, check_finite_rows, check_int, check_logits_features,
                               check_nonnegative, check_positive, check_positive_values, check_rank, concrete_scalar)

__all__ = ["check_feature_dim", "check_finite_rows", "check_int", "check_logits_features", "check_nonnegative",
           "check_positive", "check_positive_values", "check_rank", "concrete_scalar"]
