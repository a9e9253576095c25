"""oodjax: out-of-distribution detection in JAX/Flax. Scores are ID-scores: higher = more in-distribution.

Submodules: `metrics`, `scores`, `data`, `models`, `training`, `evaluate`, `experiment`.
"""

__version__ = "0.1.0"
