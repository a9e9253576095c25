"""Normalizing flows as likelihood OOD detectors (paper 003, section 3.4): RealNVP with
checkerboard / horizontal / cyclic masks, bottleneck s-t networks, pixels or embeddings as input,
and the OOD-likelihood term of Kirichenko et al. 2020. Score: log-likelihood (higher = ID); the
registered scorer is `flow` (oodjax.scores)."""

from oodjax.flows._fit import FlowConfig, FlowState, fit_flow, log_prob, make_flow
from oodjax.flows._realnvp import MASKS, Coupling, RealNVP, coupling_masks, flow_log_prob, standard_normal_log_prob

__all__ = [
    "MASKS", "Coupling", "FlowConfig", "FlowState", "RealNVP", "coupling_masks", "fit_flow", "flow_log_prob",
    "log_prob", "make_flow", "standard_normal_log_prob",
]
