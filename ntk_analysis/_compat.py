"""Compatibility of neural-tangents 0.6.5 with the pinned jax 0.5.3.

neural-tangents' STRUCTURED_DERIVATIVES implementation reads two attributes that jax 0.5 moved:
`jax.interpreters.ad.source_info_util` and `ad.config`. Implementations 1 (JACOBIAN_CONTRACTION)
and 2 (NTK_VECTOR_PRODUCTS) work without it. The patch is applied here, inside ntk_analysis only.
"""

from __future__ import annotations

import jax
from jax._src import source_info_util
from jax.interpreters import ad


def patch_structured_derivatives() -> None:
    """Restores the two attributes STRUCTURED_DERIVATIVES needs (idempotent)."""
    if not hasattr(ad, "source_info_util"):
        ad.source_info_util = source_info_util
    if not hasattr(ad, "config"):
        ad.config = jax.config
