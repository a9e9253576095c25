"""Paper 000, section 4: the 2-layer ReLU dot-product NTK (eq. 4) and the anchored kernel (eq. 6).

Eq. 4, for unit-norm x_i, x_j with u = x_i^T x_j:
    h_NTK(u) = u (pi - arccos u) / (2 pi)
Its norm-aware (degree-2 homogeneous) form for any inputs is
    K(x_i, x_j) = x_i^T x_j (pi - theta) / (2 pi),   theta = arccos(x_i^T x_j / (|x_i| |x_j|)).

Constants, against neural-tangents: for stax.serial(Dense(w, W_std=1, b_std=None), Relu(),
Dense(1, W_std=1, b_std=None)) on d-dimensional inputs (NTK parameterization),
    d * (ntk - nngp) = K(x_i, x_j)                          (the hidden-layer weights' term, eq. 4)
    d * ntk          = K(x_i, x_j) + |x_i||x_j| kappa_1(theta),
    kappa_1(theta)   = (sin theta + (pi - theta) cos theta) / (2 pi)   (the readout's term).

Eq. 6: with the anchored inputs [c, x - c], their dot product is u - c^T v, v = x_i + x_j - 2c, and
    K_anc = h_NTK(u - c^T v) = K - Gamma(x_i, x_j, c).
Gamma exactly: h_NTK(u) - h_NTK(u - delta), delta = c^T v (the paper's unit-norm assumption on the
anchored inputs). The paper's first-order Taylor form, from arccos(u - delta) ~ arccos(u) + delta /
sqrt(1 - (u - delta)^2):
    Gamma_taylor = delta (pi - arccos u) / (2 pi) + delta (u - delta) / (2 pi sqrt(1 - (u - delta)^2)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def h_ntk(u: jax.Array) -> jax.Array:
    """Eq. 4: u (pi - arccos u) / (2 pi), u in [-1, 1] (clipped)."""
    u = jnp.clip(u, -1.0, 1.0)
    return u * (jnp.pi - jnp.arccos(u)) / (2 * jnp.pi)


def _cosines(x1: jax.Array, x2: jax.Array) -> tuple[jax.Array, jax.Array]:
    dots = x1 @ x2.T
    norms = jnp.linalg.norm(x1, axis=1)[:, None] * jnp.linalg.norm(x2, axis=1)[None, :]
    return dots, jnp.clip(dots / norms, -1.0, 1.0)


def relu_ntk_hidden(x1: jax.Array, x2: jax.Array) -> jax.Array:
    """Norm-aware eq. 4 between all rows: x_i^T x_j (pi - theta_ij) / (2 pi), (N1, N2)."""
    dots, cos = _cosines(x1, x2)
    return dots * (jnp.pi - jnp.arccos(cos)) / (2 * jnp.pi)


def relu_ntk_two_layer(x1: jax.Array, x2: jax.Array) -> jax.Array:
    """The whole 2-layer ReLU NTK (both layers trained, no biases), times d: (N1, N2)."""
    _, cos = _cosines(x1, x2)
    theta = jnp.arccos(cos)
    norms = jnp.linalg.norm(x1, axis=1)[:, None] * jnp.linalg.norm(x2, axis=1)[None, :]
    kappa1 = (jnp.sin(theta) + (jnp.pi - theta) * cos) / (2 * jnp.pi)
    return relu_ntk_hidden(x1, x2) + norms * kappa1


def anchored_dot(xi: jax.Array, xj: jax.Array, c: jax.Array) -> jax.Array:
    """[c, x_i - c]^T [c, x_j - c] = x_i^T x_j - c^T (x_i + x_j - 2c), for all pairs: (N1, N2)."""
    return xi @ xj.T - ((xi @ c)[:, None] + (xj @ c)[None, :] - 2 * jnp.dot(c, c))


def gamma_exact(u: jax.Array, delta: jax.Array) -> jax.Array:
    """Gamma = h_NTK(u) - h_NTK(u - delta) (eq. 6 without approximation)."""
    return h_ntk(u) - h_ntk(u - delta)


def gamma_taylor(u: jax.Array, delta: jax.Array) -> jax.Array:
    """The paper's first-order Gamma (eq. 6): delta (pi - arccos u) / (2 pi)
    + delta (u - delta) / (2 pi sqrt(1 - (u - delta)^2))."""
    w = u - delta
    return delta * (jnp.pi - jnp.arccos(u)) / (2 * jnp.pi) + delta * w / (2 * jnp.pi * jnp.sqrt(1 - w**2))


def unit_rows(key: jax.Array, n: int, d: int) -> jax.Array:
    """n random points on the unit sphere S^{d-1}, (n, d)."""
    x = jax.random.normal(key, (n, d))
    return x / jnp.linalg.norm(x, axis=1, keepdims=True)


def taylor_error(key: jax.Array, anchor_norms: np.ndarray, n: int = 64, d: int = 16, anchors: int = 8) -> dict:
    """The Taylor approximation's error as a function of |c|, on unit-norm x_i, x_j and random anchor
    directions: per |c|, the median relative error |Gamma_taylor - Gamma| / |Gamma| and the median
    absolute error over all pairs (i < j) and anchors whose shifted dot product u - delta stays
    inside (-1, 1) (where arccos is defined), and the fraction of pairs that do."""
    kx, kc = jax.random.split(key)
    x = unit_rows(kx, n, d)
    iu = np.triu_indices(n, 1)
    rel, absolute, valid = [], [], []
    for r in anchor_norms:
        cs = r * unit_rows(jax.random.fold_in(kc, int(1e6 * r)), anchors, d)
        u = (x @ x.T)[iu]
        deltas = jnp.stack([(x @ x.T - anchored_dot(x, x, c))[iu] for c in cs])  # delta = c^T v
        u_b = jnp.broadcast_to(u[None, :], deltas.shape)
        ok = np.asarray(jnp.abs(u_b - deltas) < 1.0)
        g, gt = np.asarray(gamma_exact(u_b, deltas)), np.asarray(gamma_taylor(u_b, deltas))
        err = np.abs(gt - g)[ok]
        rel.append(float(np.median(err / np.maximum(np.abs(g[ok]), 1e-12))) if ok.any() else np.nan)
        absolute.append(float(np.median(err)) if ok.any() else np.nan)
        valid.append(float(ok.mean()))
    return {"anchor_norm": np.asarray(anchor_norms, float), "median_relative_error": np.asarray(rel),
            "median_abs_error": np.asarray(absolute), "valid_fraction": np.asarray(valid)}
