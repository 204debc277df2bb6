"""The level structure of a model's random terms, read from their cross-products:
which terms nest in which (each level of one inside one level of the other), the plans
that sum per-level blocks into their parents, and index templates of block matrices.

Computed once per model (:meth:`~lme2sm.engine.lmm.ProfiledLMM._analyse`), reused at
every ``theta``."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from lme2sm.engine.crossprod import CrossProducts

__all__ = [
    "block_diag_index",
    "level_pattern",
    "nested_parents",
    "off_block",
    "reduce_plan",
]


def level_pattern(cp: CrossProducts, i: int, j: int) -> sp.csr_matrix:
    """Level co-occurrence (q_i x q_j) of input terms i and j."""
    if cp.pattern is None:
        raise ValueError("cross-products without their level pattern")
    return cp.pattern[(i, j)] if i > j else cp.pattern[(j, i)].T.tocsr()


def off_block(cp: CrossProducts, i: int, j: int) -> sp.csr_matrix:
    """Z_i'Z_j of input terms i != j."""
    return cp.off[(i, j)] if i > j else cp.off[(j, i)].T.tocsr()


def nested_parents(pattern: sp.csr_matrix) -> np.ndarray | None:
    """For pattern (q_i x q_h): the one level of i each level of h sits in, or None
    if some level of h meets several levels of i (not nested)."""
    csc = pattern.tocsc()
    csc.eliminate_zeros()
    counts = np.diff(csc.indptr)
    if np.any(counts > 1):
        return None
    parent = np.zeros(pattern.shape[1], dtype=np.int64)
    has = counts == 1
    parent[has] = csc.indices[csc.indptr[:-1][has]]
    return parent


def reduce_plan(parent: np.ndarray, n_parents: int) -> tuple[np.ndarray | None, np.ndarray]:
    """For summing blocks by parent with ``add.reduceat``: the order that sorts the
    blocks by parent (None if sorted) and where each parent's run starts. Every parent
    level has a child (both factors are observed on the same rows)."""
    order = None if np.all(np.diff(parent) >= 0) else np.argsort(parent, kind="stable")
    counts = np.bincount(parent, minlength=n_parents)
    if np.any(counts == 0):  # pragma: no cover - a level without rows cannot occur
        raise ValueError("a level of the coarser factor has no finer level inside it")
    return order, np.concatenate([[0], np.cumsum(counts)[:-1]])


def block_diag_index(q: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every entry of ``q`` diagonal k x k blocks (level-major, each
    block row-major): where a ``(q, k, k)`` array of blocks goes, raveled."""
    block = np.arange(q)[:, None, None] * k
    r = block + np.arange(k)[None, :, None] + np.zeros((1, 1, k), dtype=np.int64)
    c = block + np.arange(k)[None, None, :] + np.zeros((1, k, 1), dtype=np.int64)
    return r.ravel(), c.ravel()
