"""neural-tangents 0.6.5 (its last release, 2023) on today's jax (>= 0.10).

neural-tangents reads jax names that jax has since moved or removed. `apply()` puts them back,
before neural-tangents is imported, and replaces two of its functions:

- import time: `jax.util.safe_zip/safe_map` (module removed in jax 0.8), `jax.core.Jaxpr`,
  `JaxprEqn`, `Literal`, `Var`, `Primitive`, `ClosedJaxpr` (now in `jax.extend.core`),
  `jax.interpreters.ad.zeros_like_p` (removed; a placeholder primitive that never occurs in a jaxpr);
- STRUCTURED_DERIVATIVES at run time: `ad.source_info_util`, `ad.config`, `ad.reducing_transposes`
  (empty since jax 0.4.38), `Primitive.map_primitive/call_primitive`, `jax.core.DShapedArray`
  (dynamic shapes are gone: a class nothing is an instance of), and `_get_primals_out_and_pullback`,
  which called the removed `ad.linearize(...) -> (out, pvals, jaxpr, consts)`: ours gets the same
  linear jaxpr and residuals from the public `jax.linearize` + `jax.make_jaxpr`;
- `_get_fx_axis_and_dtype` without `jnp.dtype(array)` (deprecated in jax 0.10).

Only missing jax names are added (every step checks first); the two functions are replaced; `apply()`
runs once per process. Tested: the analytic kernels and all three empirical implementations
against the jacrev reference (tests/test_ntk.py). The patches touch jax's and neural-tangents'
module namespaces and only add what those versions lack.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import types

import jax
import jax.extend.core as jex_core
import jax.numpy as jnp
from jax._src import core as _core
from jax._src import source_info_util
from jax._src import util as _util
from jax.interpreters import ad

_APPLIED = False


def _patch_jax_names() -> None:
    if importlib.util.find_spec("jax.util") is None and "jax.util" not in sys.modules:
        util = types.ModuleType("jax.util", "safe_zip/safe_map for neural-tangents (ntk_analysis._compat)")
        util.safe_zip, util.safe_map = _util.safe_zip, _util.safe_map
        sys.modules["jax.util"] = util
        setattr(jax, "util", util)
    for name in ("Jaxpr", "JaxprEqn", "Literal", "Var", "Primitive", "ClosedJaxpr"):
        if not hasattr(jax.core, name):
            setattr(jax.core, name, getattr(jex_core, name))
    if not hasattr(jax.core, "get_aval") and hasattr(_core, "get_aval"):
        jax.core.get_aval = _core.get_aval
    if not hasattr(jax.core, "DShapedArray"):
        jax.core.DShapedArray = type("DShapedArray", (), {"__doc__": "removed from jax; never instantiated"})
    if not hasattr(ad, "zeros_like_p"):
        ad.zeros_like_p = jex_core.Primitive("zeros_like")
    if not hasattr(ad, "source_info_util"):
        ad.source_info_util = source_info_util
    if not hasattr(ad, "config"):
        ad.config = jax.config
    if not hasattr(ad, "reducing_transposes"):
        ad.reducing_transposes = {}
    for attr in ("map_primitive", "call_primitive"):
        if not hasattr(jex_core.Primitive, attr):
            setattr(jex_core.Primitive, attr, False)


def _primals_out_and_pullback(fn, mode, _j_rules, _s_rules, _fwd, *primals_in):
    """neural-tangents' `_get_primals_out_and_pullback` through public jax: the linear (JVP)
    jaxpr of `fn` at `primals_in` with its residuals as consts, then NT's own `_backward_pass`."""
    from jax.interpreters.ad import UndefinedPrimal
    from jax.tree_util import tree_flatten, tree_unflatten
    from neural_tangents._src import empirical

    primals_in_flat, in_tree = tree_flatten(primals_in)
    out_trees = []

    def flat_fn(*flat):
        out_flat, out_tree = tree_flatten(fn(*tree_unflatten(in_tree, flat)))
        out_trees.append(out_tree)
        return out_flat

    with jax.disable_jit():  # as NT does: primitives inline, no call primitives in the jaxpr
        primals_out_flat, f_jvp = jax.linearize(flat_fn, *primals_in_flat)
        closed = jax.make_jaxpr(f_jvp)(*primals_in_flat)
    jaxpr, consts = closed.jaxpr, closed.consts
    primals_out = tree_unflatten(out_trees[0], primals_out_flat)

    def pullback_fn(*cts_in):
        cts_flat, _ = tree_flatten(cts_in)
        dummy = [UndefinedPrimal(v.aval) for v in jaxpr.invars]
        cts_out = empirical._backward_pass(jaxpr, mode=mode, consts=consts, primals_in=dummy,
                                           cotangents_in=tuple(cts_flat), _j_rules=_j_rules,
                                           _s_rules=_s_rules, _fwd=_fwd)
        return tree_unflatten(in_tree, cts_out)

    return primals_out, pullback_fn


def _fx_axis_and_dtype(fx, fx_axis, params):
    """neural-tangents' `_get_fx_axis_and_dtype` with `x.dtype` for `jnp.dtype(x)`."""
    if fx_axis is None:
        fx_axis = jax.tree.map(lambda x: None, fx)
    dtypes = [jnp.result_type(x) for x in jax.tree_util.tree_leaves(params)]
    dtype = functools.reduce(jnp.promote_types, dtypes) if dtypes else None
    return fx_axis, dtype


def apply() -> None:
    """Make neural-tangents importable and correct on this jax (idempotent); then import it."""
    global _APPLIED
    if _APPLIED:
        return
    _patch_jax_names()
    from neural_tangents._src import empirical

    empirical._get_primals_out_and_pullback = _primals_out_and_pullback
    empirical._get_fx_axis_and_dtype = _fx_axis_and_dtype
    _APPLIED = True
