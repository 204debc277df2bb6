"""The fill one prefix term leaves in the crossed block: when the largest term is the
only one eliminated level by level (users crossed with items), eliminating it subtracts
``A_Ri blockdiag(M_l) A_Ri'`` from the crossed rest's block, ``M_l = G_l G_l'`` one k x k
block per level at each ``theta``.

Two ways to form it, chosen per level once per model:

- a *light* level (few rows of the rest meet it) adds the products of its pairs of rows,
  all light levels' pairs laid out once as a sparse ``K`` with ``K @ vec(M)`` the fill's
  entries (:func:`pair_products`): cost per ``theta`` grows with the pairs, c(c+1)/2;
- a *heavy* level (a user with 3,000 ratings of 5,000 items) adds a dense rank-k update:
  its columns of ``A_Ri`` are kept dense and ``W W'`` (``W = Lambda_R' A_RH G_H``) is one
  BLAS ``dsyrk``: cost per ``theta`` grows with m^2 whatever the rows.

:func:`heavy_levels` splits by that cost; MovieLens-1M (20,000 users x 5,000 items) has
239M pairs in all, 22M once its 290 heaviest users go to the rank update."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["CrossedFill", "crossed_fill", "heavy_levels", "level_counts", "pair_products"]

MAX_PAIR_NNZ = 30_000_000
"""Most entries of ``K`` kept (about 0.7 GB with its indices and scatter plan)."""

FLOPS_PER_PAIR = 100.0
"""One pair's cost per ``theta`` (its entry of ``K @ vec(M)`` and its scatter into the
dense block: cache misses) in dense ``dsyrk`` flops; measured on MovieLens-1M."""

MAX_HEAVY_ENTRIES = 100_000_000
"""Most entries of the heavy levels' dense columns (0.8 GB)."""


@dataclass
class CrossedFill:
    """The fill's plan and its fixed values: ``K`` over the light levels (its columns
    cover every level's k x k block; heavy ones are empty), the lower-triangle entries
    ``rows``/``cols`` it fills, and the heavy levels' dense columns of ``A_Ri``
    (``heavy_block``: (m, n_heavy, k)) in the order of ``heavy``."""

    K: sp.csr_matrix
    rows: np.ndarray
    cols: np.ndarray
    heavy: np.ndarray
    heavy_block: np.ndarray


def level_counts(A: sp.csc_matrix, m: int, k: int) -> np.ndarray:
    """How many rows of A (m x q k) each level meets (the union over its k columns)."""
    if k == 1:  # one column per level: its stored rows (duplicates summed)
        A = A.tocsc()
        A.sum_duplicates()
        return np.diff(A.indptr).astype(np.int64)
    coo = A.tocoo()
    level_row = np.unique((coo.col // k).astype(np.int64) * m + coo.row)
    return np.bincount(level_row // m, minlength=A.shape[1] // k).astype(np.int64)


def heavy_levels(counts: np.ndarray, m: int, k: int, max_nnz: int = MAX_PAIR_NNZ):
    """The levels whose fill is cheaper as a dense rank-k update than as pairs, plus as
    many more of the heaviest as keep the light pairs within ``max_nnz``; None when the
    heavy columns would not fit :data:`MAX_HEAVY_ENTRIES`."""
    pairs = counts * (counts + 1) // 2 * (k * k)
    heavy = pairs * FLOPS_PER_PAIR > float(m) * m * k
    order = np.argsort(-pairs, kind="stable")
    light_total = np.cumsum(pairs[order][::-1])[::-1]  # pairs left if order[:j] go heavy
    needed = int(np.searchsorted(-light_total, -max_nnz))  # first j with total <= max_nnz
    heavy[order[:needed]] = True
    if np.count_nonzero(heavy) * k * m > MAX_HEAVY_ENTRIES:
        return None
    return np.flatnonzero(heavy)


def crossed_fill(A: sp.csc_matrix, m: int, k: int, heavy: np.ndarray) -> CrossedFill:
    """The fill's plan for A (m x q k) with the levels ``heavy`` kept dense."""
    A = A.tocsc()
    A.sum_duplicates()
    q = A.shape[1] // k
    cols = (heavy[:, None] * k + np.arange(k)[None, :]).ravel()
    block = A[:, cols].toarray().reshape(m, len(heavy), k)
    light = A
    if len(heavy):
        keep = np.ones(q * k)
        keep[cols] = 0.0
        light = (A @ sp.diags(keep)).tocsc()
        light.eliminate_zeros()
    K, rows, cols_ = pair_products(light, m, k)
    return CrossedFill(K, rows, cols_, heavy, block)


def pair_products(A: sp.csc_matrix, m: int, k: int = 1):
    """For a sparse A (m x q k; level l owns columns l k .. l k + k - 1): K with
    ``K @ M.ravel()`` the lower triangle of ``A blockdiag(M_l) A'`` (M of shape (q, k, k),
    symmetric blocks) at rows ``kr``, columns ``kc``.

    Every pair of rows that meet in one level contributes ``A[a, l e] A[b, l f]`` to
    entry (a, b); the pairs of all levels are laid out at once (no loop over levels:
    InstEval's 1,128 lecturers took 90 ms in a loop, 4 ms so), level by level, so for
    k = 1 they are K's columns in order (CSC without a sort: 30M pairs in 5 s, not 16)."""
    A = A.tocsc()
    A.sum_duplicates()
    q = A.shape[1] // k
    # the rows each level meets (union over its k columns), sorted by (level, row)
    if k == 1:  # CSC with duplicates summed: each column's rows, sorted, once
        level_row = np.repeat(np.arange(q, dtype=np.int64) * m, np.diff(A.indptr)) + A.indices
        V = A.data[:, None].astype(float)
    else:
        coo = A.tocoo()
        key = (coo.col // k).astype(np.int64) * m + coo.row
        level_row, inv = np.unique(key, return_inverse=True)
        V = np.zeros((len(level_row), k))
        np.add.at(V, (inv.ravel(), coo.col % k), coo.data)
    lv_of, row_of = level_row // m, level_row % m
    counts = np.bincount(lv_of, minlength=q).astype(np.int64)
    per_level = counts * (counts + 1) // 2
    total = int(np.sum(per_level))
    starts = np.cumsum(counts) - counts
    # element a of a level pairs with the level's elements b = 0 .. a (rows sorted: rb <= ra)
    reps = np.arange(len(level_row)) - np.repeat(starts, counts) + 1
    ia = np.repeat(np.arange(len(level_row)), reps)
    ib = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps) + starts[lv_of[ia]]
    uniq, pair_row = _rank_pairs(row_of[ia] * m + row_of[ib], m * m)
    if k == 1:
        indptr = np.concatenate([[0], np.cumsum(per_level)])
        K = sp.csc_matrix((V[ia, 0] * V[ib, 0], pair_row, indptr), shape=(len(uniq), q)).tocsr()
        return K, uniq // m, uniq % m
    ef = np.arange(k * k)
    vals = (V[ia][:, ef // k] * V[ib][:, ef % k]).ravel()
    cols = (lv_of[ia][:, None] * (k * k) + ef[None, :]).ravel()
    K = sp.csr_matrix((vals, (np.repeat(pair_row, k * k), cols)), shape=(len(uniq), q * k * k))
    return K, uniq // m, uniq % m


def _rank_pairs(key: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys (sorted) and each key's rank among them: by marking a table
    of all ``n_keys`` when it is small beside the keys (no sort), else ``np.unique``."""
    if n_keys > max(4 * len(key), 10**8):
        uniq, rank = np.unique(key, return_inverse=True)
        return uniq, rank.ravel()
    present = np.zeros(n_keys, dtype=bool)
    present[key] = True
    uniq = np.flatnonzero(present)
    table = np.cumsum(present, dtype=np.int64 if len(uniq) >= 2**31 else np.int32)
    return uniq, table[key] - 1
