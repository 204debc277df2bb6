r"""A sparse factor of the crossed block, for crossed scalar terms whose fill stays sparse.

With one prefix term crossed with scalar terms (``(1 | student) + (1 | teacher)``), the
block left after eliminating the prefix is

.. math::

    S = \Lambda_R'(A_{RR} - A_{RP} \mathrm{blockdiag}(G G') A_{RP}')\Lambda_R + I,

``m x m`` over the crossed terms' levels, with a pattern fixed by the data: A_RR's and
the fill's entries (two levels of the rest meet where some prefix level meets both).
:mod:`.blocked` factors it dense, with ``[X y]``, by one LAPACK call, ``m^3 / 3`` flops
whatever its pattern. When most pairs of levels never meet (teachers of different
schools) the pattern is sparse and its factor too: SuperLU (scipy's ``splu``, minimum
degree ordering on ``S + S'``, diagonal pivots, as for a symmetric positive definite
matrix) factors it, ``[X y]`` comes in through the Schur complement
:math:`E - C'S^{-1}C` (``C`` the block between them, ``p + 1`` columns), and
:math:`\log|S|` is the sum of the log pivots. The same deviance as the dense path, to
rounding.

The engine chooses: once per model (:func:`sparse_rest_plan`) the pattern is factored at
unit ``theta`` and the flops of that factor (the sum of squared column counts of ``L``)
are compared with the dense ``m^3 / 3``; a pattern already too full for any ordering to
pay (InstEval's 1,128 lecturers) is not factored at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["SparseRest", "sparse_rest_plan", "SPARSE_FLOP_RATIO", "SPARSE_MIN_LEVELS"]

SPARSE_MIN_LEVELS = 300
"""Below this many crossed levels the dense factor is always used (LAPACK is fast there)."""
SPARSE_FLOP_RATIO = 20.0
"""The sparse factor is used when its flops times this are below the dense ``m^3 / 3``
(SuperLU's flops cost 9-20 times LAPACK's blocked ones: on 1,300 teachers a flop ratio of
7.1 was 1.3 times slower sparse, 94 was 4.5 times faster, 1,789 was 11.5 times faster)."""


@dataclass(frozen=True)
class SparseRest:
    """The symmetric pattern of ``S`` (CSC, both triangles) and where each of its
    sources lands: A_RR's lower-triangle entries, the fill's, the diagonal's identity."""

    m: int
    indices: np.ndarray
    indptr: np.ndarray
    rr_to: tuple[np.ndarray, np.ndarray]
    """Positions in ``data`` of A_RR's entries (lower, then the mirrored upper ones; the
    second array says which of the entries each mirrored position repeats)."""
    fill_to: tuple[np.ndarray, np.ndarray]
    diag_to: np.ndarray

    def matrix(self, rr_values: np.ndarray, fill_values: np.ndarray) -> sp.csc_matrix:
        """``S`` from A_RR's scaled lower entries minus the scaled fill, plus ``I``."""
        data = np.zeros(len(self.indices))
        lower, mirror = self.rr_to
        np.add.at(data, lower, rr_values)
        data[mirror[0]] += rr_values[mirror[1]]
        lower, mirror = self.fill_to
        np.add.at(data, lower, -fill_values)
        data[mirror[0]] -= fill_values[mirror[1]]
        data[self.diag_to] += 1.0
        return sp.csc_matrix((data, self.indices, self.indptr), shape=(self.m, self.m))

    def factor(self, rr_values: np.ndarray, fill_values: np.ndarray):
        """SuperLU's factor of ``S`` and :math:`\\log|S|`; ``LinAlgError`` if ``S`` is
        not positive definite."""
        S = self.matrix(rr_values, fill_values)
        try:
            lu = _splu(S)
        except RuntimeError as exc:  # "Factor is exactly singular"
            raise np.linalg.LinAlgError("not positive definite") from exc
        pivots = lu.U.diagonal()
        if not np.all(pivots > 0) or not np.all(np.isfinite(pivots)):
            raise np.linalg.LinAlgError("not positive definite")
        return lu, float(np.sum(np.log(pivots)))


def _splu(S: sp.csc_matrix):
    return spla.splu(
        S, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
    )


def sparse_rest_plan(
    m: int, rr: tuple[np.ndarray, np.ndarray], fill: tuple[np.ndarray, np.ndarray]
) -> SparseRest | None:
    """The sparse plan for ``S`` when its factor is cheaper than the dense one, else None.

    ``rr`` = (rows, columns) of A_RR's lower-triangle entries; ``fill`` = (rows,
    columns) of the fill's lower triangle."""
    if m < SPARSE_MIN_LEVELS:
        return None
    rr_r, rr_c = rr
    kr, kc = fill
    diag = np.arange(m)
    rows = np.concatenate([rr_r, kr, diag])
    cols = np.concatenate([rr_c, kc, diag])
    keys_lower = cols * m + rows  # column-major keys of the lower entries
    off = rows != cols
    keys_upper = rows[off] * m + cols[off]  # the mirrored entries (column = row)
    keys = np.concatenate([keys_lower, keys_upper])
    uniq, where = np.unique(keys, return_inverse=True)
    # L holds at least S's lower triangle whatever the ordering, so its flops (sum of
    # squared column counts) are at least nnz_lower^2 / m: too dense to pay, no trial
    nnz_lower = (len(uniq) + m) / 2.0
    if SPARSE_FLOP_RATIO * nnz_lower * nnz_lower / m >= m**3 / 3.0:
        return None
    where = where.ravel()
    n_rr, n_fill = len(rr_r), len(kr)
    lower_pos = where[: len(keys_lower)]
    upper_pos = where[len(keys_lower) :]
    source = np.flatnonzero(off)  # which lower entry each mirrored one repeats
    in_rr = source < n_rr
    in_fill = (source >= n_rr) & (source < n_rr + n_fill)
    plan = SparseRest(
        m=m,
        indices=(uniq % m).astype(np.int32),
        indptr=np.searchsorted(uniq // m, np.arange(m + 1)).astype(np.int32),
        rr_to=(lower_pos[:n_rr], (upper_pos[in_rr], source[in_rr])),
        fill_to=(
            lower_pos[n_rr : n_rr + n_fill],
            (upper_pos[in_fill], source[in_fill] - n_rr),
        ),
        diag_to=lower_pos[n_rr + n_fill :],
    )
    # the factor's pattern, from a diagonally dominant matrix of the same pattern
    S0 = sp.csc_matrix((np.full(len(plan.indices), -1.0), plan.indices, plan.indptr), (m, m))
    S0 = S0 + sp.diags(np.diff(plan.indptr) + 1.0)
    try:
        lu = _splu(S0.tocsc())
    except RuntimeError:
        return None
    counts = np.diff(lu.L.tocsc().indptr).astype(float)
    sparse_flops = float(np.sum(counts * counts))
    return plan if SPARSE_FLOP_RATIO * sparse_flops < m**3 / 3.0 else None
