"""NTK analysis with neural-tangents (paper 000, section 4). Importing it applies the jax 0.5 patch."""

from ntk_analysis._compat import patch_structured_derivatives

patch_structured_derivatives()

__all__ = ["patch_structured_derivatives"]
