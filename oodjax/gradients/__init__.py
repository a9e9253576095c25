"""Per-sample weight gradients as pure functions: the vmap path and the norm-trick (ghost) path.

Writing a new gradient score takes a few lines: a per-sample loss of the logits, then a norm::

    def my_loss(logits):                         # (C,) -> scalar, for one sample
        return -jax.nn.log_softmax(logits)[0]
    apply = logits_fn_of(model.apply)                        # (variables, x) -> logits, cached
    sq = per_sample_sq_grad_norms(apply, my_loss, variables, x, selector="all")     # (N,)
    l1 = per_sample_grad_norms(apply, my_loss, variables, x, selector="head_kernel", ord="l1")

`selector` picks the parameters: "all", "head" (the final dense layer's kernel and bias),
"head_kernel" (its kernel only: GradNorm), regexes on '/'-joined paths such as
["params/head/kernel"], or a callable (path, leaf) -> bool. Arguments of the loss that are not
differentiated (a temperature) go in `shared`; `method` is a `GradImplementation`. The norm-trick
path picks a method per layer from its shapes (`ghost_plan` shows the plan with its flops and
bytes; `methods=` forces layers; `memory_budget=` bytes sets the chunk size, `budget_chunk` tells which).
A registered gradient *scorer* is built with `oodjax.scores.gradient_scorer`.
"""

from oodjax.gradients._api import (
    COMPUTE_DTYPES, GradImplementation, logits_fn_of, logits_of, per_sample_grad_norms, per_sample_sq_grad_norms, sample_loss,
)
from oodjax.gradients._ghost import METHODS, LayerPlan, budget_chunk, ghost_plan, layer_costs, per_sample_sq_grad_norms_ghost
from oodjax.gradients._per_sample import NORM_ORDS, per_sample_grad_norms_vmap, per_sample_grads
from oodjax.gradients._select import NAMED_SELECTORS, Selector, flatten, selected_paths

__all__ = [
    "COMPUTE_DTYPES", "GradImplementation", "LayerPlan", "METHODS", "budget_chunk", "NAMED_SELECTORS", "ghost_plan", "layer_costs", "NORM_ORDS", "Selector", "flatten", "logits_fn_of", "logits_of", "per_sample_grad_norms", "per_sample_grad_norms_vmap",
    "per_sample_grads", "per_sample_sq_grad_norms", "per_sample_sq_grad_norms_ghost", "sample_loss",
    "selected_paths",
]
