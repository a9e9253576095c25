"""NTKs: analytic (infinite width, neural-tangents `kernel_fn`), empirical (finite networks, trained
or at init, with a selectable neural-tangents implementation) and a jacrev reference; anchored inputs.

The empirical NTK of f(params, x) -> (N, O) is Theta(x1, x2) = sum_P J1 J2^T (eq. 3 of paper 000
without the expectation): (N1, N2, O, O) untraced, or (N1, N2) traced over the outputs, which (as
neural-tangents' trace_axes=(-1,)) is the trace divided by O: the mean over the O diagonal blocks.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from ntk_analysis import _compat

_compat.apply()

import neural_tangents as nt  # noqa: E402
from neural_tangents import stax  # noqa: E402

ApplyFn = Callable[[Any, jax.Array], jax.Array]


class Implementation(enum.Enum):
    """How an empirical NTK is computed (neural-tangents' NtkImplementation, plus the reference)."""

    JACOBIAN_CONTRACTION = nt.NtkImplementation.JACOBIAN_CONTRACTION
    NTK_VECTOR_PRODUCTS = nt.NtkImplementation.NTK_VECTOR_PRODUCTS
    STRUCTURED_DERIVATIVES = nt.NtkImplementation.STRUCTURED_DERIVATIVES
    REFERENCE = "reference"  # jacrev + einsum, written out here; what the others are tested against


def reference_ntk(apply_fn: ApplyFn, params: Any, x1: jax.Array, x2: jax.Array | None = None,
                  trace: bool = True) -> jax.Array:
    """sum over parameter leaves of J1 J2^T with J = jacrev(apply_fn)(params, x): (N1, N2) traced
    over outputs (mean over the O diagonal blocks), or (N1, N2, O, O)."""
    x2 = x1 if x2 is None else x2
    j1 = jax.jacrev(apply_fn)(params, x1)
    j2 = jax.jacrev(apply_fn)(params, x2)

    def contract(a: jax.Array, b: jax.Array) -> jax.Array:
        a = a.reshape(*a.shape[:2], -1)  # (N1, O, P)
        b = b.reshape(*b.shape[:2], -1)
        return jnp.einsum("iap,jap->ij", a, b) / a.shape[1] if trace else jnp.einsum("iap,jbp->ijab", a, b)

    return sum(jax.tree_util.tree_leaves(jax.tree.map(contract, j1, j2)))


def empirical_ntk(apply_fn: ApplyFn, params: Any, x1: jax.Array, x2: jax.Array | None = None, *,
                  implementation: Implementation = Implementation.JACOBIAN_CONTRACTION, trace: bool = True,
                  vmap_axes: int | None = 0) -> jax.Array:
    """The empirical NTK of apply_fn(params, x) -> (N, O) at `params`.

    trace: the mean over the O outputs' diagonal blocks, (N1, N2); else (N1, N2, O, O). vmap_axes=0 tells neural-tangents
    that samples are independent (no batch norm in training mode), which speeds up implementations
    1-3.
    """
    if not isinstance(implementation, Implementation):
        raise TypeError(f"implementation must be an ntk_analysis.Implementation, got {implementation!r}")
    if implementation is Implementation.REFERENCE:
        return reference_ntk(apply_fn, params, x1, x2, trace)
    fn = nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,) if trace else (), vmap_axes=vmap_axes,
                             implementation=implementation.value)
    return fn(x1, x2, params)


def flax_apply_fn(model, variables: Any) -> ApplyFn:
    """(params, x) -> logits of an oodjax Model, the other collections (batch_stats) held fixed."""
    rest = {k: v for k, v in variables.items() if k != "params"}
    return lambda params, x: model.apply({**rest, "params": params}, x)[0]


def relu_mlp(depth: int = 2, width: int = 512, w_std: float = 1.0, b_std: float | None = None, out: int = 1):
    """stax ReLU MLP with `depth` dense layers (depth - 1 hidden ReLU layers), NTK parameterization:
    (init_fn, apply_fn, kernel_fn). b_std None: no biases (the homogeneous kernel of eq. 4)."""
    if depth < 2:
        raise ValueError(f"depth must be >= 2 (at least one hidden layer), got {depth}")
    layers = []
    for _ in range(depth - 1):
        layers += [stax.Dense(width, W_std=w_std, b_std=b_std), stax.Relu()]
    return stax.serial(*layers, stax.Dense(out, W_std=w_std, b_std=b_std))


def small_cnn(channels: int = 32, depth: int = 2, w_std: float = 1.414, b_std: float = 0.05, out: int = 10):
    """stax ReLU CNN: `depth` 3x3 SAME convolutions, global average pooling, a dense readout."""
    layers = []
    for _ in range(depth):
        layers += [stax.Conv(channels, (3, 3), padding="SAME", W_std=w_std, b_std=b_std), stax.Relu()]
    return stax.serial(*layers, stax.GlobalAvgPool(), stax.Dense(out, W_std=w_std, b_std=b_std))


def analytic_ntk(kernel_fn: Callable, x1: jax.Array, x2: jax.Array | None = None, what: str = "ntk",
                 batch_size: int = 0) -> jax.Array:
    """The infinite-width kernel ("ntk" or "nngp") of a stax network between x1 and x2: (N1, N2).
    batch_size > 0 computes it in blocks (nt.batch) for large N."""
    fn = nt.batch(kernel_fn, batch_size=batch_size) if batch_size else kernel_fn
    return fn(x1, x2, what)


def anchor_vectors(x: jax.Array, c: jax.Array) -> jax.Array:
    """[c, x - c] on the last axis for flat inputs: x (N, d), c (d,) -> (N, 2d). Images: use
    oodjax.anchoring.anchor_input."""
    if x.ndim != 2 or c.shape != x.shape[1:]:
        raise ValueError(f"x must be (N, d) and c (d,); got {x.shape} and {c.shape}")
    cb = jnp.broadcast_to(c, x.shape)
    return jnp.concatenate([cb, x - cb], axis=-1)


def anchored_ntks(kernel: Callable[[jax.Array, jax.Array], jax.Array], x1: jax.Array, x2: jax.Array,
                  anchors: Sequence[jax.Array] | jax.Array) -> jax.Array:
    """K_anc for each anchor: kernel([c, x1 - c], [c, x2 - c]) stacked, (K, N1, N2).

    kernel: (a1, a2) -> (N1, N2), e.g. `lambda a, b: analytic_ntk(kernel_fn, a, b)`.
    """
    return jnp.stack([kernel(anchor_vectors(x1, c), anchor_vectors(x2, c)) for c in anchors])


def spectrum(kernel_matrix: jax.Array) -> jax.Array:
    """Eigenvalues of a symmetric kernel matrix (N, N), sorted in descending order, (N,)."""
    k = jnp.asarray(kernel_matrix)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"a kernel matrix must be square, got {k.shape}")
    return jnp.linalg.eigvalsh(0.5 * (k + k.T))[::-1]
