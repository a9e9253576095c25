"""Deep nearest-neighbour score (Sun et al. 2022), chunked so any bank size fits in memory."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from oodjax.scores._checks import check_feature_dim, check_finite_rows, check_int, check_rank
from oodjax.scores._registry import register
from oodjax.scores._types import FitData, ModelOutputs, Scorer
from oodjax.types import FEATURES, TRAIN


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), eps)


def _pad_rows(x: jax.Array, multiple: int, value: float) -> jax.Array:
    pad = -x.shape[0] % multiple
    return jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1), constant_values=value)


def _even_chunk(n: int, max_chunk: int) -> int:
    """The smallest chunk that splits n rows into as few chunks of <= max_chunk as possible."""
    chunks = -(-n // max_chunk)
    return -(-n // chunks)


@partial(jax.jit, static_argnames=("k", "query_chunk", "bank_chunk"))
def top_similarities(
    queries: jax.Array,
    bank: jax.Array,
    k: int,
    *,
    query_chunk: int = 1024,
    bank_chunk: int = 8192,
) -> jax.Array:
    """The k largest inner products q . b of each query with the bank, in decreasing order.

    queries: (N, D); bank: (M, D), used as given (normalize them first for cosine similarities).
    Memory is O(query_chunk * bank_chunk): the k best are merged chunk by chunk. Returns (N, k).
    """
    check_rank("queries", queries, 2, "(N, D)")
    check_rank("bank", bank, 2, "(M, D)")
    if not 1 <= k <= bank.shape[0]:
        raise ValueError(f"k must be in [1, {bank.shape[0]}] (the bank size), got {k}")
    if bank.shape[1] != queries.shape[1]:
        raise ValueError(f"bank has dimension {bank.shape[1]}, features {queries.shape[1]}")
    n = queries.shape[0]
    query_chunk, bank_chunk = _even_chunk(n, query_chunk), _even_chunk(bank.shape[0], bank_chunk)
    q = _pad_rows(queries, query_chunk, 0.0).reshape(-1, query_chunk, queries.shape[1])
    valid = _pad_rows(jnp.ones((bank.shape[0],), bool), bank_chunk, False).reshape(-1, bank_chunk)
    b = _pad_rows(bank, bank_chunk, 0.0).reshape(-1, bank_chunk, bank.shape[1])

    def one_query_chunk(qc: jax.Array) -> jax.Array:
        def merge(best: jax.Array, chunk: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
            bc, vc = chunk
            sims = jnp.where(vc[None, :], qc @ bc.T, -jnp.inf)
            best, _ = jax.lax.top_k(jnp.concatenate([best, sims], axis=1), k)
            return best, None

        init = jnp.full((qc.shape[0], k), -jnp.inf, qc.dtype)
        return jax.lax.scan(merge, init, (b, valid))[0]

    return jax.lax.map(one_query_chunk, q).reshape(-1, k)[:n]


@partial(jax.jit, static_argnames=("k", "query_chunk", "bank_chunk"))
def knn(
    features: jax.Array,
    bank: jax.Array,
    k: int = 50,
    *,
    query_chunk: int = 1024,
    bank_chunk: int = 8192,
) -> jax.Array:
    """Minus the L2 distance from normalized h to its k-th nearest normalized bank feature.

    features: (N, D) queries; bank: (M, D) training features (normalized or not; both are
    L2-normalized here). Memory is O(query_chunk * bank_chunk) (`top_similarities`). Returns (N,).
    """
    check_rank("features", features, 2, "(N, D)")
    check_feature_dim("features", features, bank.shape[-1], "the KNN bank")
    best = top_similarities(l2_normalize(features), l2_normalize(bank), k, query_chunk=query_chunk,
                            bank_chunk=bank_chunk)
    # ||a - b||^2 = 2 - 2 a.b for unit vectors.
    return -jnp.sqrt(jnp.maximum(2.0 - 2.0 * best[:, k - 1], 0.0))


@register("knn")
def _knn(k: int = 50) -> Scorer:
    check_int("k", k)
    def fit(data: FitData) -> jax.Array:
        check_finite_rows("the KNN bank (training features)", data.train.features,
                          "a NaN row would shift every score; drop those samples or fix the model")
        return l2_normalize(data.train.features)

    def score(bank: jax.Array, out: ModelOutputs) -> jax.Array:
        return knn(out.features, bank, k)

    return Scorer(fit, score, frozenset({FEATURES, TRAIN}))
