r"""Profiled REML/ML deviance of any linear mixed model, by a blocked Cholesky.

lme4's formulation (Bates, Maechler, Bolker & Walker 2015, J. Stat. Softw. 67(1), sec. 3;
``/work/shared/ENGINE.md``): :math:`y = X\beta + Z\Lambda_\theta u + \varepsilon`,
:math:`u \sim N(0, \sigma^2 I)`, :math:`\varepsilon \sim N(0, \sigma^2 W^{-1})`.
Term ``j`` has ``q_j`` levels, ``k_j`` columns and
:math:`\Lambda_j = I_{q_j} \otimes T_j`, ``T_j`` lower triangular (``theta`` lists its
lower triangle column by column; a ``diagonal`` term has only the diagonal).

For each ``theta`` the lower Cholesky factor of

.. math::

    \Omega = \begin{pmatrix} \Lambda'Z'Z\Lambda + I & \Lambda'Z'X & \Lambda'Z'y \\
    \cdot & X'X & X'y \\ \cdot & \cdot & y'y \end{pmatrix}

gives everything: :math:`\log|L_\theta|^2` from the random-effect diagonal blocks,
:math:`R_X` and ``r`` (the penalised residual norm) from the last block, and
:math:`\hat\beta`, :math:`\hat u` by back-substitution. Then

.. math::

    d_{REML} = \log|L_\theta|^2 + \log|R_X|^2 + (n-p)[1 + \log(2\pi r^2/(n-p))] - \sum\log w,

    d_{ML} = \log|L_\theta|^2 + n[1 + \log(2\pi r^2/n)] - \sum\log w.

Blocks (MixedModels.jl's ``updateL!``): terms are taken in decreasing number of levels.
The first term's diagonal block is block diagonal (one k x k block per level, since each
row has one level). Every later term into which all the earlier *prefix* terms nest
(each of their levels sits in one level of it: classrooms in schools in provinces)
keeps a block-diagonal diagonal block after elimination, and joins the prefix: its
blocks below the diagonal have one k x k block per column. The prefix is eliminated
with batched k x k Cholesky factors, so nested models cost what one factor costs. The
remaining terms (crossed with the prefix) form one dense block with ``[X y]``, factored
by LAPACK. Nothing n-sized is touched: everything comes from :class:`CrossProducts`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.linalg import lapack

from lme2sm.engine.crossprod import CrossProducts
from lme2sm.engine.threads import blas_threads

__all__ = [
    "TermSpec",
    "ProfiledLMM",
    "Evaluation",
    "LmmFit",
    "MAX_DENSE",
    "theta_start",
    "theta_lower",
    "unpack_theta",
]

LOG_2PI = math.log(2.0 * math.pi)

MAX_DENSE = 20_000
"""Largest dense block (random effects of the terms crossed with the first one)."""


@dataclass(frozen=True)
class TermSpec:
    """The shape of one random term's covariance: levels, columns, structure."""

    n_levels: int
    k: int
    diagonal: bool = False
    """Only the diagonal of ``T`` is estimated (independent columns)."""

    @property
    def n_theta(self) -> int:
        return self.k if self.diagonal else self.k * (self.k + 1) // 2


def theta_lower(specs: Sequence[TermSpec]) -> np.ndarray:
    """lme4's bounds: 0 on each ``T``'s diagonal, unbounded below it."""
    out = []
    for s in specs:
        if s.diagonal:
            out.extend([0.0] * s.k)
            continue
        for c in range(s.k):
            for r in range(c, s.k):
                out.append(0.0 if r == c else -np.inf)
    return np.array(out)


def theta_start(specs: Sequence[TermSpec]) -> np.ndarray:
    """lme4's start: identity ``T`` (1 on the diagonal, 0 below)."""
    return np.where(np.isfinite(theta_lower(specs)), 1.0, 0.0)


def unpack_theta(theta: np.ndarray, specs: Sequence[TermSpec]) -> list[np.ndarray]:
    """Each term's lower-triangular ``T_j`` from ``theta`` (lme4's order)."""
    out, i = [], 0
    for s in specs:
        T = np.zeros((s.k, s.k))
        if s.diagonal:
            T[np.diag_indices(s.k)] = theta[i : i + s.k]
            i += s.k
        else:
            for c in range(s.k):
                for r in range(c, s.k):
                    T[r, c] = theta[i]
                    i += 1
        out.append(T)
    return out


def pack_theta(factors: Sequence[np.ndarray], specs: Sequence[TermSpec]) -> np.ndarray:
    """The inverse of :func:`unpack_theta`."""
    out = []
    for T, s in zip(factors, specs):
        if s.diagonal:
            out.extend(np.diag(T))
        else:
            for c in range(s.k):
                out.extend(T[c:, c])
    return np.array(out, dtype=float)


@dataclass
class Evaluation:
    """One factorisation at ``theta``: the deviance's pieces and the solution."""

    theta: np.ndarray
    ldL2: float
    ldRX2: float
    r2: float
    beta: np.ndarray
    RX: np.ndarray
    """Upper-triangular p x p, :math:`R_X'R_X = X'V^{-1}X` (V relative to sigma^2)."""
    deviance_reml: float
    deviance_ml: float
    u: list[np.ndarray] | None = None
    """Spherical modes per term (input order), ``(q_j, k_j)``, when asked for."""

    def deviance(self, reml: bool) -> float:
        return self.deviance_reml if reml else self.deviance_ml


@dataclass
class LmmFit:
    """The engine's record of a fit: everything results are computed from."""

    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    reml: bool
    deviance: float
    """The optimised criterion (REML or ML deviance), -2 logLik."""
    evaluation: Evaluation
    factors: list[np.ndarray]
    """``T_j`` per term (input order): term covariance = sigma^2 T_j T_j'."""
    b: list[np.ndarray]
    """Conditional modes on the data scale per term, ``(q_j, k_j)``."""
    cov_beta: np.ndarray
    n_evals: int
    converged: bool
    message: str
    optimizer: str
    seconds: float
    scaled_gradient: float = float("nan")
    warnings: tuple[str, ...] = field(default=())
    derivatives: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    """(indices, gradient, Hessian) of the deviance over the free entries of theta at
    the optimiser's stop, before the final Newton step (lme4's convergence check)."""

    @property
    def logLik(self) -> float:
        return -0.5 * self.deviance

    def covariances(self) -> list[np.ndarray]:
        """Each term's covariance matrix on the data scale, sigma^2 T T'."""
        return [self.sigma**2 * (T @ T.T) for T in self.factors]


# --------------------------------------------------------------------------- structure


def _level_pattern(cp: CrossProducts, i: int, j: int) -> sp.csr_matrix:
    """Level co-occurrence (q_i x q_j) of input terms i and j."""
    if cp.pattern is None:
        raise ValueError("cross-products without their level pattern")
    return cp.pattern[(i, j)] if i > j else cp.pattern[(j, i)].T.tocsr()


def _off(cp: CrossProducts, i: int, j: int) -> sp.csr_matrix:
    """Z_i'Z_j of input terms i != j."""
    return cp.off[(i, j)] if i > j else cp.off[(j, i)].T.tocsr()


def _parents(pattern: sp.csr_matrix) -> np.ndarray | None:
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


def _reduce_plan(parent: np.ndarray, n_parents: int) -> tuple[np.ndarray | None, np.ndarray]:
    """For summing blocks by parent with ``add.reduceat``: the order that sorts the
    blocks by parent (None if sorted) and where each parent's run starts. Every parent
    level has a child (both factors are observed on the same rows)."""
    order = None if np.all(np.diff(parent) >= 0) else np.argsort(parent, kind="stable")
    counts = np.bincount(parent, minlength=n_parents)
    if np.any(counts == 0):  # pragma: no cover - a level without rows cannot occur
        raise ValueError("a level of the coarser factor has no finer level inside it")
    return order, np.concatenate([[0], np.cumsum(counts)[:-1]])


def _pair_products(A: sp.csc_matrix, m: int, k: int = 1, max_nnz: int = 30_000_000):
    """For a sparse A (m x q k; level l owns columns l k .. l k + k - 1): K with
    ``K @ M.ravel()`` the lower triangle of ``A blockdiag(M_l) A'`` (M of shape (q, k, k),
    symmetric blocks) at rows ``kr``, columns ``kc``. None when K would be too large.

    Every pair of rows that meet in one level contributes ``A[a, l e] A[b, l f]`` to
    entry (a, b); the pairs of all levels are laid out at once (no loop over levels:
    InstEval's 1,128 lecturers took 90 ms in a loop, 4 ms so)."""
    A = A.tocsc()
    A.sum_duplicates()
    q = A.shape[1] // k
    coo = A.tocoo()
    # the rows each level meets (union over its k columns), sorted by (level, row)
    level_row, inv = np.unique((coo.col // k).astype(np.int64) * m + coo.row, return_inverse=True)
    V = np.zeros((len(level_row), k))
    np.add.at(V, (inv.ravel(), coo.col % k), coo.data)
    lv_of, row_of = level_row // m, level_row % m
    counts = np.bincount(lv_of, minlength=q).astype(np.int64)
    total = int(np.sum(counts * (counts + 1) // 2))
    if total * k * k > max_nnz:
        return None
    starts = np.cumsum(counts) - counts
    # element a of a level pairs with the level's elements b = 0 .. a
    reps = np.arange(len(level_row)) - np.repeat(starts, counts) + 1
    ia = np.repeat(np.arange(len(level_row)), reps)
    ib = np.arange(total) - np.repeat(np.cumsum(reps) - reps, reps) + starts[lv_of[ia]]
    ra, rb = row_of[ia], row_of[ib]
    uniq, pair_row = np.unique(np.maximum(ra, rb) * m + np.minimum(ra, rb), return_inverse=True)
    ef = np.arange(k * k)
    vals = (V[ia][:, ef // k] * V[ib][:, ef % k]).ravel()
    cols = (lv_of[ia][:, None] * (k * k) + ef[None, :]).ravel()
    K = sp.csr_matrix(
        (vals, (np.repeat(pair_row.ravel(), k * k), cols)), shape=(len(uniq), q * k * k)
    )
    return K, uniq // m, uniq % m


def _block_diag_index(q: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every entry of ``q`` diagonal k x k blocks (level-major, each
    block row-major): where a ``(q, k, k)`` array of blocks goes, raveled."""
    block = np.arange(q)[:, None, None] * k
    r = block + np.arange(k)[None, :, None] + np.zeros((1, 1, k), dtype=np.int64)
    c = block + np.arange(k)[None, None, :] + np.zeros((1, k, 1), dtype=np.int64)
    return r.ravel(), c.ravel()


@dataclass(frozen=True)
class _DenseSystem:
    """A small model's whole cross-product matrix ``[Z X y]'W[Z X y]`` (terms in input
    order) and where the terms' factors go in ``Lambda``: for a few dozen random effects one
    dense product and one LAPACK Cholesky cost less than the blocked path's numpy
    calls (Python's overhead per call is what costs there)."""

    A: np.ndarray
    Q: int
    offsets: tuple[int, ...]
    scalar: bool
    """Every term has one column: ``Lambda`` is diagonal, ``F[src]`` its entries."""
    rows: np.ndarray
    cols: np.ndarray
    src: np.ndarray
    """``Lambda[rows, cols] = F[src]``, ``F`` the terms' factors raveled one after
    another (lme4's ``T_j`` or any ``F_j`` with the same ``F_j F_j'``)."""
    lam_template: np.ndarray
    """``blockdiag(Lambda, I)`` before ``Lambda``'s entries: ones for ``[X y]`` (a
    vector, the diagonal, when every term is scalar; else a matrix)."""

    @classmethod
    def build(cls, cp: CrossProducts, specs: Sequence[TermSpec]) -> _DenseSystem:
        sizes = [s.n_levels * s.k for s in specs]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        Q = int(sum(sizes))
        p1 = cp.xy.shape[0]
        A = np.zeros((Q + p1, Q + p1))
        rows, cols, src = [], [], []
        t0 = 0
        for j, (s, o) in enumerate(zip(specs, offsets)):
            q, k = s.n_levels, s.k
            r, c = _block_diag_index(q, k)
            r, c = r + o, c + o
            A[r, c] = cp.diag[j].ravel()
            A[Q:, o : o + q * k] = cp.zxy[j].reshape(p1, -1)
            for j2 in range(j):
                block = _off(cp, j, j2).toarray()
                o2 = offsets[j2]
                A[o : o + q * k, o2 : o2 + block.shape[1]] = block
                A[o2 : o2 + block.shape[1], o : o + q * k] = block.T
            # every entry of the term's factor (k x k, row-major) at every level's block
            rows.append(r)
            cols.append(c)
            src.append(t0 + np.tile(np.arange(k * k), q))
            t0 += k * k
        A[:Q, Q:] = A[Q:, :Q].T
        A[Q:, Q:] = cp.xy
        scalar = all(s.k == 1 for s in specs)
        template = np.ones(Q + p1) if scalar else np.zeros((Q + p1, Q + p1))
        if not scalar:
            template[np.arange(Q, Q + p1), np.arange(Q, Q + p1)] = 1.0
        return cls(
            A=A,
            Q=Q,
            offsets=tuple(int(o) for o in offsets),
            scalar=scalar,
            rows=np.concatenate(rows),
            cols=np.concatenate(cols),
            src=np.concatenate(src),
            lam_template=template,
        )


class ProfiledLMM:
    """The profiled deviance of one model, ready to evaluate at any ``theta``.

    Parameters
    ----------
    cp : CrossProducts
        Sums over rows (:func:`~lme2sm.engine.crossprod.cross_products`), terms in
        the caller's order (lme4's), which is also ``theta``'s order.
    specs : sequence of TermSpec
        One per term, same order.
    dense : bool, optional
        Evaluate Omega whole (:class:`_DenseSystem`) or by blocks; by default whole
        when the model has at most :attr:`DENSE_UP_TO` random effects.
    """

    def __init__(self, cp: CrossProducts, specs: Sequence[TermSpec], *, dense: bool | None = None):
        self.specs = tuple(specs)
        self._dense_choice = dense
        self.lower = theta_lower(self.specs)
        self.n_theta = len(self.lower)
        self.cp = cp
        self._analyse()
        self._load(cp)

    def with_crossprods(self, cp: CrossProducts) -> ProfiledLMM:
        """The same structure (same levels and pattern) with other sums over rows:
        another response, other weights (PIRLS), more rows of the same levels."""
        new = object.__new__(ProfiledLMM)
        new.__dict__.update(self.__dict__)
        new.cp = cp
        new._load(cp)
        return new

    # ------------------------------------------------------------------ set-up

    def _analyse(self) -> None:
        cp, specs = self.cp, self.specs
        m = len(specs)
        by_size = sorted(range(m), key=lambda j: (-specs[j].n_levels * specs[j].k, j))
        prefix: list[int] = []
        rest: list[int] = []
        parents: dict[tuple[int, int], np.ndarray] = {}
        for j in by_size:
            if not prefix:
                prefix.append(j)
                continue
            found = {}
            for h in prefix:
                par = _parents(_level_pattern(cp, j, h))
                if par is None:
                    break
                found[h] = par
            else:
                prefix.append(j)
                for h, par in found.items():
                    parents[(j, h)] = par
                continue
            rest.append(j)
        self.prefix = prefix
        self.rest = rest
        self.parents = parents
        # rest layout (dense block)
        offsets = {}
        pos = 0
        for j in rest:
            offsets[j] = pos
            pos += specs[j].n_levels * specs[j].k
        self.rest_offsets = offsets
        self.m_rest = pos
        if self.m_rest > MAX_DENSE:
            raise MemoryError(
                f"the terms crossed with the largest one have {self.m_rest} random effects "
                f"together; the engine's dense block allows {MAX_DENSE}"
            )
        self._templates()

    def _load(self, cp: CrossProducts) -> None:
        """The blocks of Omega (before Lambda) from the cross-products."""
        specs, prefix, rest, parents = self.specs, self.prefix, self.rest, self.parents
        offsets = self.rest_offsets
        self.n = cp.n
        self.p = cp.p
        self._upper = np.triu_indices(self.p, 1)
        # A blocks between prefix terms: (q_h, k_i, k_h) at (parent(a), a)
        self.A_pp: dict[tuple[int, int], np.ndarray] = {}
        for a_pos, i in enumerate(prefix):
            for h in prefix[:a_pos]:
                par = parents[(i, h)]
                ki, kh = specs[i].k, specs[h].k
                off = _off(cp, i, h)
                qh = specs[h].n_levels
                rows = (par[:, None, None] * ki + np.arange(ki)[None, :, None]) + 0 * np.arange(
                    kh
                )[None, None, :]
                cols = (np.arange(qh)[:, None, None] * kh + np.arange(kh)[None, None, :]) + 0 * (
                    np.arange(ki)[None, :, None]
                )
                vals = np.asarray(off[rows.ravel(), cols.ravel()]).reshape(qh, ki, kh)
                self.A_pp[(i, h)] = vals
        # [X y]'Z_i per level, (q_i, p + 1, k_i); aggregation of levels of h into i
        self.AX = {i: np.ascontiguousarray(np.transpose(cp.zxy[i], (1, 0, 2))) for i in prefix}
        self._agg_plan = {
            key: _reduce_plan(par, specs[key[0]].n_levels) for key, par in parents.items()
        }
        # [X y]'Z_i per level as (q_i, k_i, p + 1), and the one term's width (one-term path)
        self._AXt = {i: np.ascontiguousarray(np.transpose(self.AX[i], (0, 2, 1))) for i in prefix}
        self._one_k = specs[prefix[0]].k if len(prefix) == 1 else 0
        # A[R, i] for prefix i: dense (q_i, m_R, k_i) when that is cheaper, else sparse
        self.A_rp: dict[int, object] = {}
        self.rest_dense: dict[int, bool] = {}
        if rest:
            m_r = self.m_rest
            for i in prefix:
                block = sp.vstack([_off(cp, j, i) for j in rest]).tocsc()
                qk = block.shape[1]
                nnz_col = np.diff(block.indptr).astype(float)
                dense_cost = float(m_r) * m_r * qk
                sparse_cost = 30.0 * float(np.sum(nnz_col**2)) + 2e5
                dense = dense_cost <= sparse_cost and m_r * qk <= 5e7
                self.rest_dense[i] = dense
                if dense:
                    k = specs[i].k
                    arr = block.toarray().reshape(m_r, specs[i].n_levels, k)
                    self.A_rp[i] = np.ascontiguousarray(np.transpose(arr, (1, 0, 2)))
                else:
                    self.A_rp[i] = block.tocsr()
            A_rr = np.zeros((self.m_rest, self.m_rest))
            for j in rest:
                o, s = offsets[j], specs[j]
                blocks = cp.diag[j]
                size = s.n_levels * s.k
                A_rr[o : o + size, o : o + size] = (
                    sla.block_diag(*blocks) if s.k > 1 else (np.diag(blocks[:, 0, 0]))
                )
                for j2 in rest:
                    if j2 == j:
                        continue
                    o2, s2 = offsets[j2], specs[j2]
                    A_rr[o : o + size, o2 : o2 + s2.n_levels * s2.k] = _off(cp, j, j2).toarray()
            self.A_rr = A_rr
            self.A_xr = np.concatenate([cp.zxy[j].reshape(self.p + 1, -1) for j in rest], axis=1)
        else:
            self.A_rr = np.zeros((0, 0))
            self.A_xr = np.zeros((self.p + 1, 0))
        # one term crossed with the rest: its fill is K @ vec(M) (see _pair_products)
        self.kfill = None
        if rest and len(prefix) == 1 and not self.rest_dense[prefix[0]]:
            i = prefix[0]
            self.kfill = _pair_products(self.A_rp[i].tocsc(), self.m_rest, specs[i].k)
        self._scatter = None
        if self.kfill is not None:  # where A_RR's lower triangle and the fill go in Omega
            width = self.m_rest + self.p + 1
            rr_r, rr_c = np.nonzero(np.tril(self.A_rr))
            _, kr, kc = self.kfill
            self._scatter = (
                rr_r * width + rr_c,
                rr_r,
                rr_c,
                self.A_rr[rr_r, rr_c],
                kr * width + kc,
            )
        self._dense = _DenseSystem.build(cp, specs) if self._use_dense() else None

    DENSE_UP_TO = 100
    """Largest number of random effects evaluated as one dense system (see
    :class:`_DenseSystem`)."""

    def _use_dense(self) -> bool:
        if self._dense_choice is not None:
            return self._dense_choice
        return sum(s.n_levels * s.k for s in self.specs) <= self.DENSE_UP_TO

    def _templates(self) -> None:
        """COO index templates for block-structured sparse matrices."""
        specs, prefix, parents = self.specs, self.prefix, self.parents
        self._bd_index = {}
        for i in prefix:
            s = specs[i]
            q, k = s.n_levels, s.k
            self._bd_index[i] = _block_diag_index(q, k)
        self._pp_index = {}
        for (i, h), par in parents.items():
            ki, kh = specs[i].k, specs[h].k
            qh = specs[h].n_levels
            r = (par[:, None, None] * ki + np.arange(ki)[None, :, None]) + 0 * np.arange(kh)[
                None, None, :
            ]
            c = (np.arange(qh)[:, None, None] * kh + np.arange(kh)[None, None, :]) + 0 * np.arange(
                ki
            )[None, :, None]
            self._pp_index[(i, h)] = (r.ravel(), c.ravel())

    def _block_diag(self, i: int, blocks: np.ndarray) -> sp.csr_matrix:
        s = self.specs[i]
        size = s.n_levels * s.k
        r, c = self._bd_index[i]
        return sp.csr_matrix((blocks.ravel(), (r, c)), shape=(size, size))

    def _rest_lambda(self, factors: list[np.ndarray]) -> sp.csr_matrix:
        parts = [sp.kron(sp.identity(self.specs[j].n_levels), factors[j]) for j in self.rest]
        return sp.block_diag(parts, format="csr") if parts else sp.csr_matrix((0, 0))

    # --------------------------------------------------------------- evaluation

    def _agg(self, key: tuple[int, int], values: np.ndarray) -> np.ndarray:
        """Sum per-level blocks of term h (first axis) into the levels of i they sit in:
        one ``add.reduceat`` over the blocks sorted by parent (a sparse product had
        scipy's overhead, 10 us a call, seven calls an evaluation for three nested terms)."""
        order, starts = self._agg_plan[key]
        return np.add.reduceat(values if order is None else values[order], starts, axis=0)

    def _rest_scalar_lambda(self, factors: list[np.ndarray]) -> np.ndarray | None:
        """Lambda_R's diagonal when every rest term is scalar, else None."""
        if not self.rest or any(self.specs[j].k != 1 for j in self.rest):
            return None
        lam = np.empty(self.m_rest)
        for j in self.rest:
            o = self.rest_offsets[j]
            lam[o : o + self.specs[j].n_levels] = factors[j][0, 0]
        return lam

    def _lam_t_rows(self, M: np.ndarray, factors: list[np.ndarray]) -> np.ndarray:
        """Lambda_R' M for a dense M whose rows are the rest block's random effects."""
        lam = self._rest_scalar_lambda(factors)
        if lam is not None:
            return M * (lam if M.ndim == 1 else lam[:, None])
        out = np.empty_like(M)
        for j in self.rest:
            o, s = self.rest_offsets[j], self.specs[j]
            size = s.n_levels * s.k
            if s.k == 1:
                out[o : o + size] = M[o : o + size] * factors[j][0, 0]
            else:
                blk = M[o : o + size].reshape(s.n_levels, s.k, -1)
                out[o : o + size] = (factors[j].T @ blk).reshape(size, -1)
        return out

    def evaluate(self, theta: np.ndarray, modes: bool = False) -> Evaluation:
        """Factor Omega at ``theta``; raises ``np.linalg.LinAlgError`` if it is not PD."""
        theta = np.asarray(theta, dtype=float)
        return self._evaluate(theta, unpack_theta(theta, self.specs), modes)

    def _evaluate(self, theta, factors: list[np.ndarray], modes: bool) -> Evaluation:
        """:meth:`evaluate` with each term's factor given: any ``F_j`` with
        ``F_j F_j' = T_j T_j'`` gives the same deviance (only the modes ``u`` depend on
        the choice); ``theta`` is only recorded."""
        if self._dense is not None:
            return self._evaluate_dense(theta, factors, modes)
        if not modes and self.m_rest == 0 and len(self.prefix) == 1 and self._one_k <= 2:
            return self._evaluate_one_term(theta, factors)
        specs, cp = self.specs, self.cp
        p1 = self.p + 1
        m = self.m_rest
        ldL2 = 0.0
        Ldiag: dict[int, np.ndarray] = {}
        Linv_t: dict[int, np.ndarray] = {}
        Lpp: dict[tuple[int, int], np.ndarray] = {}
        LR: dict[int, object] = {}
        LX: dict[int, np.ndarray] = {}
        sparse_rest = m and self.kfill is None and not all(self.rest_dense.values())
        lam_r = self._rest_lambda(factors) if sparse_rest else None
        for pos, i in enumerate(self.prefix):
            Ti = factors[i]
            qi, ki = specs[i].n_levels, specs[i].k
            D = Ti.T @ cp.diag[i] @ Ti
            D += np.eye(ki)
            XF = self.AX[i] @ Ti  # (q_i, p1, k_i)
            RF = None
            if m and self.kfill is None:
                if self.rest_dense[i]:
                    A = self.A_rp[i]  # (q_i, m, k_i)
                    RF = self._lam_t_rows(
                        np.transpose(A, (1, 0, 2)).reshape(m, -1), factors
                    ).reshape(m, qi, ki)
                    RF = np.transpose(RF, (1, 0, 2)) @ Ti
                else:
                    RF = (lam_r.T @ self.A_rp[i] @ sp.kron(sp.identity(qi), Ti)).tocsr()
            for h in self.prefix[:pos]:
                Th = factors[h]
                B = Ti.T @ self.A_pp[(i, h)] @ Th  # (q_h, k_i, k_h)
                for g in self.prefix[: self.prefix.index(h)]:
                    prod = Lpp[(i, g)] @ np.transpose(Lpp[(h, g)], (0, 2, 1))
                    B -= self._agg((h, g), prod)
                Lih = B @ Linv_t[h]
                Lpp[(i, h)] = Lih
                Lih_t = np.transpose(Lih, (0, 2, 1))
                D -= self._agg((i, h), Lih @ Lih_t)
                XF -= self._agg((i, h), LX[h] @ Lih_t)
                if m:
                    if self.rest_dense[i]:
                        RF -= self._agg((i, h), LR[h] @ Lih_t)
                    else:
                        r_idx, c_idx = self._pp_index[(i, h)]
                        Lih_sp = sp.csr_matrix(
                            (Lih.ravel(), (r_idx, c_idx)),
                            shape=(qi * ki, specs[h].n_levels * specs[h].k),
                        )
                        RF = (RF - self._as_sparse(h, LR[h]) @ Lih_sp.T).tocsr()
            if ki == 1:
                d = D[:, 0, 0]
                if np.any(d <= 0):
                    raise np.linalg.LinAlgError("not positive definite")
                Lii = np.sqrt(d)[:, None, None]
                inv_t = 1.0 / Lii
                ldL2 += float(np.sum(np.log(d)))
            elif ki == 2:  # closed form: the commonest vector term, (x | g)
                a2 = D[:, 0, 0]
                if np.any(a2 <= 0):
                    raise np.linalg.LinAlgError("not positive definite")
                a = np.sqrt(a2)
                c = D[:, 1, 0] / a
                b2 = D[:, 1, 1] - c * c
                if np.any(b2 <= 0):
                    raise np.linalg.LinAlgError("not positive definite")
                b = np.sqrt(b2)
                Lii = np.zeros_like(D)
                Lii[:, 0, 0], Lii[:, 1, 0], Lii[:, 1, 1] = a, c, b
                ldL2 += float(np.sum(np.log(a2)) + np.sum(np.log(b2)))
                inv_t = np.zeros_like(D)  # (L^-1)' = [[1/a, -c/(ab)], [0, 1/b]]
                inv_t[:, 0, 0], inv_t[:, 0, 1], inv_t[:, 1, 1] = 1 / a, -c / (a * b), 1 / b
            else:
                Lii = np.linalg.cholesky(D)
                ldL2 += 2.0 * float(np.sum(np.log(np.diagonal(Lii, axis1=1, axis2=2))))
                inv_t = np.transpose(np.linalg.inv(Lii), (0, 2, 1))
            Ldiag[i] = Lii
            Linv_t[i] = inv_t
            LX[i] = XF @ inv_t
            if m and self.kfill is not None:
                LR[i] = None  # implicit: Lambda_R' A_Ri blockdiag(T_i L_l^-T)
                G = Ti @ inv_t  # (q, k, k); the fill is A blockdiag(G G') A'
                kM = G @ np.transpose(G, (0, 2, 1))
            elif m:
                if self.rest_dense[i]:
                    LR[i] = RF @ inv_t
                else:
                    LR[i] = (RF @ self._block_diag(i, inv_t)).tocsr()
        # dense block: rest random effects and [X y]
        full = np.empty((m + p1, m + p1))
        E = cp.xy.copy()
        for i in self.prefix:
            flat = np.transpose(LX[i], (1, 0, 2)).reshape(p1, -1)
            E -= flat @ flat.T
        if m and self.kfill is not None:
            i = self.prefix[0]
            K, kr, kc = self.kfill
            fill = K @ kM.reshape(-1)
            lam = self._rest_scalar_lambda(factors)
            if lam is not None:  # only the lower triangle is read by the Cholesky
                # scatter A_RR's and the fill's entries (both sparse) into zeros: the
                # dense product with outer(lam, lam) cost 0.34 ms of 2.3 on InstEval's
                # (service | d) + (1 | s) sample, A_RR being diagonal there
                full = np.zeros((m + p1, m + p1))
                flat = full.reshape(-1)  # a view: full is C-contiguous
                rr_flat, rr_r, rr_c, rr_vals, fill_flat = self._scatter
                flat[rr_flat] = rr_vals * (lam[rr_r] * lam[rr_c])
                flat[fill_flat] -= fill * (lam[kr] * lam[kc])
            else:
                inner = self.A_rr.copy()
                inner[kr, kc] -= fill
                off = kr != kc
                inner[kc[off], kr[off]] -= fill[off]
                full[:m, :m] = self._lam_t_rows(self._lam_t_rows(inner, factors).T.copy(), factors)
            full.reshape(-1)[: m * (m + p1 + 1) : m + p1 + 1] += 1.0  # the diagonal's view
            W = (kM @ np.transpose(self.AX[i], (0, 2, 1))).reshape(-1, p1)
            C = self._lam_t_rows(self.A_xr.T - self.A_rp[i] @ W, factors)
            full[m:, :m] = C.T
        elif m:
            S = self._lam_t_rows(self._lam_t_rows(self.A_rr, factors).T.copy(), factors)
            S[np.diag_indices(m)] += 1.0
            C = self._lam_t_rows(self.A_xr.T.copy(), factors)
            for i in self.prefix:
                qk = specs[i].n_levels * specs[i].k
                lx = np.transpose(LX[i], (1, 0, 2)).reshape(p1, qk)
                if self.rest_dense[i]:
                    lr = np.transpose(LR[i], (1, 0, 2)).reshape(m, qk)
                    S -= lr @ lr.T
                    C -= lr @ lx.T
                else:
                    S -= (LR[i] @ LR[i].T).toarray()
                    C -= LR[i] @ lx.T
            full[:m, :m] = S
            full[m:, :m] = C.T
            full[:m, m:] = C
        full[m:, m:] = E
        # LAPACK's potrf on the lower triangle, in place (the upper one is never read)
        Lf, info = lapack.dpotrf(full, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError("not positive definite")
        diag = np.diagonal(Lf)
        if not (np.all(diag[: m + self.p] > 0) and math.isfinite(diag[-1])):
            raise np.linalg.LinAlgError("not positive definite")
        ev, beta = self._finish(theta, ldL2, Lf, diag, m)
        if modes:
            if self.kfill is not None and m:
                i = self.prefix[0]
                qi, ki = specs[i].n_levels, specs[i].k
                dense = self._lam_t_rows(self.A_rp[i].toarray(), factors).reshape(m, qi, ki)
                LR[i] = np.transpose(dense, (1, 0, 2)) @ G  # (q_i, m, k_i), for the modes
                dense_modes = True
            else:
                dense_modes = False
            ev.u = self._modes(Lf, Ldiag, Lpp, LR, LX, beta, dense_modes)
        return ev

    def _finish(self, theta, ldL2: float, Lf: np.ndarray, diag: np.ndarray, m: int):
        """The deviance's pieces from the factor of the dense block (``m`` rest random
        effects, then [X y]); also beta before the response's shift (for the modes)."""
        cp, p = self.cp, self.p
        ldL2 += 2.0 * float(np.sum(np.log(diag[:m])))
        ldRX2 = 2.0 * float(np.sum(np.log(diag[m : m + p])))
        r = float(diag[-1])
        r2 = r * r
        RXt = Lf[m : m + p, m : m + p].copy()
        RXt[self._upper] = 0.0  # potrf left the input there
        ly = Lf[-1, m : m + p]
        if p:
            beta, info = lapack.dtrtrs(RXt, ly, lower=1, trans=1)
            if info != 0:
                raise np.linalg.LinAlgError("singular R_X")
        else:
            beta = np.zeros(0)
        dev_reml, dev_ml = self._criteria(ldL2, ldRX2, r2)
        shifted = beta if cp.beta_shift is None else beta + cp.beta_shift
        ev = Evaluation(theta, ldL2, ldRX2, r2, shifted, RXt.T.copy(), dev_reml, dev_ml)
        return ev, beta

    def _criteria(self, ldL2: float, ldRX2: float, r2: float) -> tuple[float, float]:
        """The REML and ML deviances from the log-determinants and ``r^2``."""
        n, p = self.n, self.p
        slw = self.cp.sum_log_w
        if r2 <= 0:
            return -np.inf, -np.inf
        dev_ml = ldL2 + n * (1.0 + LOG_2PI + math.log(r2 / n)) - slw
        nmp = n - p
        if nmp <= 0:
            return np.inf, dev_ml
        return ldL2 + ldRX2 + nmp * (1.0 + LOG_2PI + math.log(r2 / nmp)) - slw, dev_ml

    def _dense_factor(self, factors: list[np.ndarray]) -> np.ndarray:
        """A small model's Omega built whole, ``L'A L + diag(I, 0)`` with
        ``L = blockdiag(Lambda, I)``, and its lower Cholesky factor by one LAPACK call."""
        d = self._dense
        entries = np.concatenate([F.ravel() for F in factors])[d.src]
        if d.scalar:
            lam = d.lam_template.copy()  # Lambda's diagonal, then ones for [X y]
            lam[: d.Q] = entries
            full = d.A * np.multiply.outer(lam, lam)
        else:
            lam = d.lam_template.copy()  # zeros, and the identity for [X y]
            lam[d.rows, d.cols] = entries
            full = lam.T @ (d.A @ lam)
        size = full.shape[0]
        full.reshape(-1)[: d.Q * (size + 1) : size + 1] += 1.0
        Lf, info = lapack.dpotrf(full, lower=1, clean=0, overwrite_a=1)
        if info != 0:  # every pivot positive and finite, r included
            raise np.linalg.LinAlgError("not positive definite")
        return Lf

    def _dense_deviance(self, factors: list[np.ndarray], reml: bool) -> float:
        """The deviance alone from :meth:`_dense_factor` (no beta, no record)."""
        Q, p = self._dense.Q, self.p
        logs = np.log(np.diagonal(self._dense_factor(factors)))
        ldL2 = 2.0 * float(logs[:Q].sum())
        ldRX2 = 2.0 * float(logs[Q : Q + p].sum())
        r2 = math.exp(2.0 * float(logs[-1]))
        return self._criteria(ldL2, ldRX2, r2)[0 if reml else 1]

    def _evaluate_dense(self, theta, factors: list[np.ndarray], modes: bool) -> Evaluation:
        """:meth:`evaluate` for a small model (:class:`_DenseSystem`)."""
        Q, p = self._dense.Q, self.p
        Lf = self._dense_factor(factors)
        ev, beta = self._finish(theta, 0.0, Lf, np.diagonal(Lf), Q)
        if modes:
            rhs = Lf[Q + p, :Q] - Lf[Q : Q + p, :Q].T @ beta
            u_all = sla.solve_triangular(Lf[:Q, :Q], rhs, lower=True, trans="T")
            ev.u = [
                u_all[o : o + s.n_levels * s.k].reshape(s.n_levels, s.k)
                for o, s in zip(self._dense.offsets, self.specs)
            ]
        return ev

    def _evaluate_one_term(self, theta, factors: list[np.ndarray]) -> Evaluation:
        """:meth:`evaluate` for one random term of one or two columns (``(1|g)``,
        ``(x|g)``, ``(x||g)``) and nothing crossed with it: the same algebra in a dozen
        numpy calls on vectors of levels, since the optimiser calls it hundreds of times
        and Python's overhead per call is what costs there (Dyestuff: 0.09 -> 0.05 ms a
        call). The loop below works for any width, but at three columns
        (``(Machine|Worker)``) it measured 0.13 ms against the general path's 0.12."""
        i = self.prefix[0]
        s, cp = self.specs[i], self.cp
        k, p = s.k, self.p
        if k == 1:
            lam = float(factors[i][0, 0])
            d = lam * lam * cp.diag[i][:, 0, 0] + 1.0
            ldL2 = float(np.sum(np.log(d)))
            # W_l = L_l^-1 T' A_l: what level l takes out of [X y]'[X y]
            W = self._AXt[i][:, 0, :] * (lam / np.sqrt(d))[:, None]  # (q, p + 1)
            E = cp.xy - W.T @ W
        else:
            # each level's k x k block factored column by column on vectors of levels
            # (numpy's batched cholesky and solve cost more than they save here),
            # W_l = L_l^-1 T' A_l by forward substitution alongside
            T = factors[i]
            D = T.T @ cp.diag[i] @ T
            V = T.T @ self._AXt[i]  # (q, k, p + 1)
            L: dict[tuple[int, int], np.ndarray] = {}
            W: list[np.ndarray] = []
            ldL2 = 0.0
            E = cp.xy.copy()
            for j in range(k):
                d = D[:, j, j] + 1.0
                w = V[:, j, :]
                for m in range(j):
                    d = d - L[(j, m)] ** 2
                    w = w - L[(j, m)][:, None] * W[m]
                if np.any(d <= 0):
                    raise np.linalg.LinAlgError("not positive definite")
                ljj = np.sqrt(d)
                ldL2 += float(np.sum(np.log(d)))
                for r in range(j + 1, k):
                    v = D[:, r, j]
                    for m in range(j):
                        v = v - L[(r, m)] * L[(j, m)]
                    L[(r, j)] = v / ljj
                w = w / ljj[:, None]
                W.append(w)
                E -= w.T @ w
        Lf, info = lapack.dpotrf(E, lower=1, clean=0, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError("not positive definite")
        diag = np.diagonal(Lf)
        if not (np.all(diag[:p] > 0) and math.isfinite(diag[-1])):
            raise np.linalg.LinAlgError("not positive definite")
        return self._finish(theta, ldL2, Lf, diag, 0)[0]

    def _as_sparse(self, h: int, LRh) -> sp.csr_matrix:
        return LRh

    def _modes(self, Lf, Ldiag, Lpp, LR, LX, beta, dense_lr=False) -> list[np.ndarray]:
        """Back-substitution for the spherical conditional modes ``u`` (input order)."""
        specs = self.specs
        m, p = self.m_rest, self.p
        u: list[np.ndarray | None] = [None] * len(specs)
        u_rest = np.zeros(0)
        if m:
            rhs = Lf[m + p, :m] - Lf[m : m + p, :m].T @ beta
            u_rest = sla.solve_triangular(Lf[:m, :m], rhs, lower=True, trans="T")
            for j in self.rest:
                o, s = self.rest_offsets[j], specs[j]
                u[j] = u_rest[o : o + s.n_levels * s.k].reshape(s.n_levels, s.k)
        for pos in range(len(self.prefix) - 1, -1, -1):
            i = self.prefix[pos]
            q, k = specs[i].n_levels, specs[i].k
            rhs = LX[i][:, p, :] - np.einsum("qpk,p->qk", LX[i][:, :p, :], beta)
            if m:
                if self.rest_dense[i] or dense_lr:
                    rhs = rhs - np.einsum("qmk,m->qk", LR[i], u_rest)
                else:
                    rhs = rhs - (LR[i].T @ u_rest).reshape(q, k)
            for j in self.prefix[pos + 1 :]:
                par = self.parents[(j, i)]
                rhs = rhs - np.einsum("aji,aj->ai", Lpp[(j, i)], u[j][par])
            Lt = np.transpose(Ldiag[i], (0, 2, 1))
            u[i] = np.linalg.solve(Lt, rhs[:, :, None])[:, :, 0]
        return u  # type: ignore[return-value]

    def deviance(self, theta: np.ndarray, reml: bool = True) -> float:
        """The profiled deviance at ``theta`` (``inf`` where Omega is not PD)."""
        theta = np.asarray(theta, dtype=float)
        return self.deviance_of_factors(unpack_theta(theta, self.specs), reml)

    def deviance_of_factors(self, factors: list[np.ndarray], reml: bool = True) -> float:
        """The profiled deviance with term covariances ``sigma^2 F_j F_j'`` (any square
        ``F_j``, not only lme4's lower-triangular ``T_j``; ``inf`` where Omega is not PD)."""
        try:
            if self._dense is not None:
                return self._dense_deviance(factors, reml)
            return self._evaluate(None, factors, False).deviance(reml)
        except np.linalg.LinAlgError:
            return np.inf

    # -------------------------------------------------------------- optimising

    def fit(
        self,
        reml: bool = True,
        start: np.ndarray | None = None,
        optimizer: str = "auto",
        blas_limit: int | None = 1,
    ) -> LmmFit:
        """Optimise ``theta``; the record of the fit (lme4's checks included).

        BOBYQA and its restarts work in :class:`~.coordinates.ThetaCoordinates` (each
        vector term's columns orthonormal; lme4's start, the identity, there); the
        final Newton step and the derivatives of lme4's convergence check are taken in
        lme4's own ``theta``."""
        from lme2sm.engine.coordinates import ThetaCoordinates
        from lme2sm.engine.optimize import XTOL_REL, minimize_theta

        t0 = time.perf_counter()
        if self.ORTHONORMAL:
            coords = ThetaCoordinates.from_blocks(self.specs, self.cp.diag, self.n)
        else:
            coords = ThetaCoordinates.identity(self.specs)
        if start is None:
            start_phi = theta_start(self.specs)
        else:
            start_phi = coords.from_theta(np.asarray(start, dtype=float))

        def dev(th):
            return self.deviance(th, reml)

        def dev_phi(phi):
            return self.deviance_of_factors(coords.factors(phi), reml)

        objective = dev if coords.is_identity else dev_phi

        with blas_threads(blas_limit):
            opt = minimize_theta(
                objective,
                start_phi,
                self.lower,
                method=optimizer,
                initial_step=None,
                xtol_rel=XTOL_REL,
            )
            tried: set[bytes] = set()
            opt = self._restart_at_edge(objective, opt, optimizer, tried)
            opt = self._polish(objective, opt, optimizer)
            # the polish may have brought another diagonal entry near zero
            opt = self._restart_at_edge(objective, opt, optimizer, tried)
            opt.x = coords.to_theta(opt.x)
            opt, derivatives = self._newton(dev, opt)
            ev = self.evaluate(opt.x, modes=True)
        record = self._record(ev, reml, opt, time.perf_counter() - t0)
        record.derivatives = derivatives
        return record

    ORTHONORMAL = True
    """Optimise in :class:`~.coordinates.ThetaCoordinates` (False: lme4's ``theta``,
    for comparison)."""

    POLISH_BELOW = 0.05
    """Polish only optima with a diagonal entry of T below this (near-singular terms).
    Entries at exactly zero too: the deviance depends on a diagonal entry through its
    square, so its slope is zero at the bound and BOBYQA can stop there on a saddle
    (a (x | g) + (1 | h) model stopped 0.024 above its optimum in deviance with the
    slope's entry at 0; the polish finds the way off it). Skipping those would save
    218 of 4,069 evaluations on the 50 fixtures."""

    def _polish(self, dev, opt, optimizer):
        """BOBYQA again from its own optimum with a small trust region, when a term is
        nearly singular: along such a ridge the deviance is so flat that the first stop
        can be 1e-5 away in theta (lme4's and MixedModels.jl's restarts do the same).

        Measured on the 51 fixture models with nlopt's own first step: polishing every
        fit cost 25 % more evaluations (4,182 against 3,341) and changed the deviance by
        at most 2e-9, except on the seed's nested example 2, a ridge (one diagonal entry
        0.002), where it gained 2.8e-6."""
        from lme2sm.engine.optimize import XTOL_REL, minimize_theta

        if len(opt.x) == 0 or not np.any(self._diagonal(opt.x) < self.POLISH_BELOW):
            return opt
        again = minimize_theta(
            dev, opt.x, self.lower, method=optimizer, initial_step=1e-3, xtol_rel=XTOL_REL
        )
        n_evals = opt.n_evals + again.n_evals
        best = again if again.fun < opt.fun else opt
        return type(opt)(best.x, best.fun, n_evals, opt.converged, opt.message, opt.method)

    def _newton(self, dev, opt):
        """One Newton step from BOBYQA's stop on the entries of theta not at a bound.

        BOBYQA stops when its steps change the deviance by less than its tolerance; on a
        flat optimum that leaves theta 1e-5 from the minimum, and where it stops depends
        on rounding in the sums (the same data summed by Parquet batch or in memory
        stopped 2e-5 apart in a standard deviation). The deviance is smooth there, so
        one Newton step (central-difference gradient, forward-difference Hessian:
        2 n + n (n - 1) / 2 + 1 evaluations) lands on the minimum to rounding. A step
        across a bound stops on it (a ridge ending at a singular fit: the seed's nested
        example 2 reaches lme4's tight optimum so); the step is kept only if it lowers
        the deviance."""
        theta = np.array(opt.x, dtype=float)
        # steps of 1e-4 relative, at least 1e-5: the forward-difference Hessian's
        # rounding error is eps_f / h^2, which swamped a ridge's curvature at h = 1e-6;
        # entries closer than a step to their bound stay where they are
        h_all = 1e-4 * np.maximum(np.abs(theta), 0.1)
        free = np.flatnonzero(~(theta - h_all < self.lower))
        if len(free) == 0 or not np.isfinite(opt.fun):
            return opt, None
        f0 = float(opt.fun)
        h = h_all[free]
        n = len(free)
        plus, minus = np.empty(n), np.empty(n)
        for a, j in enumerate(free):
            e = np.zeros_like(theta)
            e[j] = h[a]
            plus[a], minus[a] = dev(theta + e), dev(theta - e)
        evals = 2 * n
        grad = (plus - minus) / (2 * h)
        hess = np.diag((plus - 2 * f0 + minus) / (h * h))
        for a in range(n):
            for b in range(a):
                e = np.zeros_like(theta)
                e[free[a]], e[free[b]] = h[a], h[b]
                value = (dev(theta + e) - plus[a] - plus[b] + f0) / (h[a] * h[b])
                hess[a, b] = hess[b, a] = value
                evals += 1
        n_evals = opt.n_evals + evals
        derivatives = (free, grad, hess)
        same = type(opt)(opt.x, opt.fun, n_evals, opt.converged, opt.message, opt.method)
        if not np.all(np.isfinite(hess)) or not np.all(np.isfinite(grad)):
            return same, derivatives
        try:
            step = -sla.cho_solve(sla.cho_factor(hess), grad)
        except np.linalg.LinAlgError:
            return same, derivatives
        candidate = theta.copy()
        candidate[free] += step
        candidate = np.maximum(candidate, self.lower)  # a bound crossed: stop on it
        value = dev(candidate)
        if not value < f0:
            x, value = opt.x, opt.fun
        else:
            x = candidate
        return type(opt)(x, value, n_evals + 1, opt.converged, opt.message, opt.method), (
            derivatives
        )

    def _diagonal(self, theta: np.ndarray) -> np.ndarray:
        """The diagonal entries of every term's T (the entries bounded below by 0)."""
        return np.asarray(theta)[self.lower == 0]

    EDGE = 1e-3
    """A diagonal entry of T below this is tried at exactly zero (lme4's restart_edge)."""

    def _restart_at_edge(self, dev, opt, optimizer, tried: set[bytes] | None = None):
        """Optimisers crawl along a boundary: where a term's diagonal entry ended near
        zero, try that column of T at exactly zero and optimise again from there (as
        lme4's ``restart_edge``); keep whichever point is lower. ``tried`` holds the
        sets of snapped entries already tried in this fit (each is tried once: the
        seed's nested example 2 spent 721 evaluations on a second, equal attempt)."""
        from lme2sm.engine.optimize import XTOL_REL, minimize_theta

        theta = np.array(opt.x, dtype=float)
        snapped = theta.copy()
        i = 0
        changed = False
        for s in self.specs:
            if s.diagonal:
                small = theta[i : i + s.k] < self.EDGE
                snapped[i : i + s.k][small] = 0.0
                changed |= bool(np.any(small & (theta[i : i + s.k] != 0)))
                i += s.k
                continue
            for c in range(s.k):
                col = slice(i, i + s.k - c)
                if theta[i] < self.EDGE and np.any(theta[col] != 0):
                    snapped[col] = 0.0
                    changed = True
                i += s.k - c
        if not changed:
            return opt
        pattern = np.packbits((snapped == 0) & (theta != 0)).tobytes()
        if tried is not None:
            if pattern in tried:
                return opt
            tried.add(pattern)
        base = dev(snapped)
        if not np.isfinite(base):
            return opt
        # optimise the other entries with the snapped columns held at zero: without
        # the ridge along the boundary the optimiser converges in a few steps
        free = ~((snapped == 0) & (theta != 0)) & ~((snapped == 0) & (self.lower == 0))
        free |= snapped != 0

        def sub(x):
            full = snapped.copy()
            full[free] = x
            return dev(full)

        again = minimize_theta(
            sub,
            snapped[free],
            self.lower[free],
            method=optimizer,
            initial_step=0.05,
            xtol_rel=XTOL_REL,
        )
        x = snapped.copy()
        x[free] = again.x
        n_evals = opt.n_evals + again.n_evals + 1
        if again.fun < opt.fun:
            return type(opt)(x, again.fun, n_evals, again.converged, again.message, again.method)
        return type(opt)(opt.x, opt.fun, n_evals, opt.converged, opt.message, opt.method)

    def record_at(self, theta: np.ndarray, reml: bool = True) -> LmmFit:
        """A fit record at a given ``theta`` (no optimisation)."""
        from lme2sm.engine.optimize import OptimResult

        ev = self.evaluate(np.asarray(theta, dtype=float), modes=True)
        opt = OptimResult(np.asarray(theta, dtype=float), ev.deviance(reml), 1, True, "given")
        return self._record(ev, reml, opt, 0.0)

    def _record(self, ev: Evaluation, reml: bool, opt, seconds: float) -> LmmFit:
        n, p = self.n, self.p
        sigma = math.sqrt(ev.r2 / ((n - p) if reml else n))
        factors = unpack_theta(ev.theta, self.specs)
        b = [u @ T.T for u, T in zip(ev.u, factors)]
        if p:
            RXinv = sla.solve_triangular(ev.RX, np.eye(p), lower=False)
            cov_beta = sigma**2 * (RXinv @ RXinv.T)
        else:
            cov_beta = np.zeros((0, 0))
        return LmmFit(
            theta=ev.theta,
            beta=ev.beta,
            sigma=sigma,
            reml=reml,
            deviance=ev.deviance(reml),
            evaluation=ev,
            factors=factors,
            b=b,
            cov_beta=cov_beta,
            n_evals=opt.n_evals,
            converged=opt.converged,
            message=opt.message,
            optimizer=opt.method,
            seconds=seconds,
        )
