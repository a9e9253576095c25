"""NTK analysis with neural-tangents (paper 000, section 4 and Fig. 4).

Importing it makes neural-tangents 0.6.5 work on today's jax first (`_compat.apply`).

  kernels (`_kernels`): analytic (`analytic_ntk`, stax `relu_mlp` / `small_cnn`), empirical
    (`empirical_ntk` with an `Implementation`), the jacrev `reference_ntk`, anchored inputs and
    kernels, `spectrum`
  theory (`_theory`): eq. 4 (`h_ntk`, `relu_ntk_hidden`, `relu_ntk_two_layer`) and eq. 6
    (`anchored_dot`, `gamma_exact`, `gamma_taylor`, `taylor_error`)
  `figures`: the CLI's figures (`python -m ntk_analysis all`)
"""

from ntk_analysis import _compat

_compat.apply()

from ntk_analysis._kernels import (  # noqa: E402
    Implementation, analytic_ntk, anchor_vectors, anchored_ntks, empirical_ntk, flax_apply_fn, reference_ntk, relu_mlp,
    small_cnn, spectrum,
)
from ntk_analysis._theory import (  # noqa: E402
    anchored_dot, gamma_exact, gamma_taylor, h_ntk, relu_ntk_hidden, relu_ntk_two_layer, taylor_error, unit_rows,
)

__all__ = [
    "Implementation", "analytic_ntk", "anchor_vectors", "anchored_dot", "anchored_ntks", "empirical_ntk",
    "flax_apply_fn", "gamma_exact", "gamma_taylor", "h_ntk", "reference_ntk",
    "relu_mlp", "relu_ntk_hidden", "relu_ntk_two_layer", "small_cnn", "spectrum", "taylor_error", "unit_rows",
]
