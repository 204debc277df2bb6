r"""The penalised weighted least-squares step of PIRLS, on sparse ``Z`` directly.

Each PIRLS iteration solves, for working weights ``w`` and working response ``r``,

.. math::

    \min_{u,\beta} \|W^{1/2}(r - X\beta - Z\Lambda_\theta u)\|^2 + \|u\|^2

(``beta`` absent in lme4's second stage) and needs :math:`\log|L_\theta|^2 =
\log\det(\Lambda'Z'WZ Lambda + I)`. This is lme4's ``merPredD`` step. ``Z\Lambda`` is
built once per ``theta``; per iteration only ``\Lambda'Z'WZ\Lambda`` is formed and
factored: a vector when there is one scalar term (lme4's cbpp, or 20,000 subjects with
random intercepts), a sparse LU with diagonal pivots (symmetric positive definite) else. The LMM engine (:class:`~lme2sm.engine.lmm.ProfiledLMM`) solves the same
problem from cross-products; it is the reference this module is tested against, but
its per-call set-up dominates when PIRLS calls it thousands of times.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from lme2sm.engine.crossprod import TermRows
from lme2sm.engine.theta import TermSpec, unpack_theta

__all__ = ["SparsePLS", "EnginePLS", "SCHUR_MAX"]

FAST_Q2 = 1500
"""Largest Schur complement built by index arithmetic (one scalar first term)."""
SCHUR_MAX = 4000
"""Largest number of random effects outside the first term for the dense Schur path."""


class SparsePLS:
    """PLS solves for one model at any ``theta`` (set with :meth:`set_theta`).

    Every row has the same number ``m`` of entries in ``Z Lambda`` (``k_j`` per term), at
    fixed columns, so ``A = Lambda'Z'WZ Lambda + I`` has a fixed sparsity pattern: its
    values are one ``bincount`` of row products per iteration, no sparse products.
    """

    def __init__(self, rows: list[TermRows], specs: list[TermSpec]):
        self.rows = rows
        self.specs = specs
        self.sizes = [s.n_levels * s.k for s in specs]
        self.Q = int(sum(self.sizes))
        self.n = len(rows[0].codes)
        self.scalar = len(rows) == 1 and specs[0].k == 1
        self.theta = None
        self._b_pattern = None
        self._fast = None
        offsets = np.cumsum([0, *self.sizes[:-1]])
        self.cols = np.concatenate(
            [
                o + t.codes[:, None] * s.k + np.arange(s.k)[None, :]
                for o, t, s in zip(offsets, rows, specs)
            ],
            axis=1,
        )
        if not self.scalar:
            self._pattern()

    def _pattern(self) -> None:
        m = self.cols.shape[1]
        Q = self.Q
        keys = []
        for a in range(m):
            for b in range(m):
                keys.append(self.cols[:, b].astype(np.int64) * Q + self.cols[:, a])
        keys.append(np.arange(Q, dtype=np.int64) * (Q + 1))  # the identity
        allkeys = np.concatenate(keys)
        uniq, inverse = np.unique(allkeys, return_inverse=True)
        self._inverse = inverse[: self.n * m * m]
        self._diag_pos = inverse[self.n * m * m :]
        self._nnz = len(uniq)
        col = uniq // Q
        self._indices = (uniq % Q).astype(np.int32)
        self._indptr = np.searchsorted(col, np.arange(Q + 1)).astype(np.int32)

    def set_theta(self, theta: np.ndarray) -> None:
        theta = np.asarray(theta, dtype=float)
        if self.theta is not None and np.array_equal(theta, self.theta):
            return
        self.theta = theta.copy()
        factors = unpack_theta(theta, self.specs)
        if self.scalar:
            self.t0 = float(factors[0][0, 0])
            return
        # values of Z Lambda at self.cols: term j's block of a row is Z_j[i] @ T_j
        self.vals = vals = np.concatenate([t.Z @ T for t, T in zip(self.rows, factors)], axis=1)
        # (Z Lambda)' as a sparse matrix: (Z Lambda)'W[X r] in one product (one scalar
        # term: bincounts are faster)
        n, m = self.cols.shape
        self._zlt = sp.csr_matrix(
            (vals.ravel(), self.cols.ravel(), np.arange(0, n * m + 1, m)), shape=(n, self.Q)
        ).T

    def random_part(self, u: np.ndarray) -> np.ndarray:
        """Z Lambda u on the rows (``u`` flat)."""
        if self.scalar:
            t = self.rows[0]
            return (self.t0 * u)[t.codes] * t.Z[:, 0]
        return np.einsum("nm,nm->n", self.vals, u[self.cols])

    def split(self, u: np.ndarray) -> list[np.ndarray]:
        out, pos = [], 0
        for s, size in zip(self.specs, self.sizes):
            out.append(u[pos : pos + size].reshape(s.n_levels, s.k))
            pos += size
        return out

    def _splu(self, w: np.ndarray):
        V = self.vals
        prods = (V[:, None, :] * V[:, :, None] * w[:, None, None]).transpose(1, 2, 0)
        data = np.bincount(self._inverse, prods.ravel(), minlength=self._nnz)
        data[self._diag_pos] += 1.0
        A = sp.csc_matrix((data, self._indices, self._indptr), shape=(self.Q, self.Q))
        lu = spla.splu(
            A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True}
        )
        return float(np.sum(np.log(np.abs(lu.U.diagonal())))), lu.solve

    def _schur(self, w: np.ndarray):
        """Factor A by eliminating the first (largest) term, whose block is block diagonal
        (each row has one of its levels), then a dense Cholesky of the Schur complement."""
        t0, s0 = self.rows[0], self.specs[0]
        k0, q0 = s0.k, s0.n_levels
        Q1 = self.sizes[0]
        Q2 = self.Q - Q1
        V = self.vals
        V0 = V[:, :k0]
        if k0 == 1 and 0 < Q2 <= FAST_Q2:
            d = 1.0 + np.bincount(t0.codes, w * V0[:, 0] * V0[:, 0], minlength=q0)
            return self._schur_scalar(w, d, float(np.sum(np.log(d))))
        blocks = np.empty((q0, k0, k0))
        for a in range(k0):
            for b in range(a + 1):
                v = np.bincount(t0.codes, w * V0[:, a] * V0[:, b], minlength=q0)
                blocks[:, a, b] = v
                blocks[:, b, a] = v
        blocks[:, np.arange(k0), np.arange(k0)] += 1.0
        L1 = np.linalg.cholesky(blocks)
        ldL2 = 2.0 * float(np.sum(np.log(np.diagonal(L1, axis1=1, axis2=2))))
        inv1 = np.linalg.inv(blocks)

        def solve1(b):
            if b.ndim == 1:
                return np.einsum("lab,lb->la", inv1, b.reshape(q0, k0)).ravel()
            return np.einsum("lab,lbr->lar", inv1, b.reshape(q0, k0, -1)).reshape(Q1, -1)

        if Q2 == 0:
            return ldL2, solve1
        if self._b_pattern is None:
            self._b_setup()
        rows, cols, inv, nnz = self._b_pattern
        c2 = self.cols[:, k0:] - Q1
        V2 = V[:, k0:]
        m2 = V2.shape[1]
        vals_b = (V0[:, :, None] * V2[:, None, :] * w[:, None, None]).ravel()
        B = sp.csr_matrix((np.bincount(inv, vals_b, minlength=nnz), (rows, cols)), shape=(Q1, Q2))
        ra = np.repeat(c2, m2, axis=1).ravel()
        cb = np.tile(c2, (1, m2)).ravel()
        va = (V2[:, :, None] * V2[:, None, :] * w[:, None, None]).ravel()
        A22 = sp.coo_matrix((va, (ra, cb)), shape=(Q2, Q2)).toarray()
        A22[np.diag_indices(Q2)] += 1.0
        IB = sp.csr_matrix(solve1(B.toarray())) if Q1 * Q2 <= 4_000_000 else None
        if IB is None:
            inv_sp = sp.block_diag(list(inv1), format="csr")
            IB = inv_sp @ B
        S = A22 - np.asarray((B.T @ IB).todense())
        L2 = sla.cholesky(S, lower=True, check_finite=False)
        ldL2 += 2.0 * float(np.sum(np.log(np.diagonal(L2))))

        def solve_a(b):
            b1, b2 = b[:Q1], b[Q1:]
            y1 = solve1(b1)
            x2 = sla.cho_solve((L2, True), b2 - B.T @ y1, check_finite=False)
            x1 = solve1(b1 - B @ x2)
            return np.concatenate([x1, x2])

        return ldL2, solve_a

    def _fast_setup(self) -> None:
        """Index arrays for the scalar-first-term Schur path (built once)."""
        Q1 = self.sizes[0]
        Q2 = self.Q - Q1
        c0 = self.cols[:, 0].astype(np.int64)
        c2 = self.cols[:, 1:].astype(np.int64) - Q1
        m2 = c2.shape[1]
        # B = (ZL_0)'W(ZL_2): entries (level of term 0, column of the rest), CSR order
        keys = (c0[:, None] * Q2 + c2).ravel()
        uniq, inv_b = np.unique(keys, return_inverse=True)
        brow, bcol = uniq // Q2, uniq % Q2
        # pairs of B's entries in one row: S -= B_la B_lb / d_l
        order = np.argsort(brow, kind="stable")
        starts = np.searchsorted(brow[order], np.arange(Q1 + 1))
        counts = np.diff(starts)
        pa_list, pb_list = [], []
        for c in np.unique(counts):
            if c == 0:
                continue
            rows_c = np.flatnonzero(counts == c)
            idx = order[starts[rows_c][:, None] + np.arange(c)[None, :]]  # (r, c)
            pa_list.append(np.repeat(idx, c, axis=1).ravel())
            pb_list.append(np.tile(idx, (1, c)).ravel())
        pa = np.concatenate(pa_list)
        pb = np.concatenate(pb_list)
        a22 = (c2[:, :, None] * Q2 + c2[:, None, :]).reshape(len(c0), m2 * m2)
        # the Schur complement's block of the second term, if scalar, may be diagonal
        # (grouseticks: one INDEX level per row, each in one BROOD): eliminated first
        m1 = self.sizes[1] if self.specs[1].k == 1 else 0
        keys = np.concatenate([a22.ravel(), bcol[pa] * Q2 + bcol[pb]])
        r, c = keys // Q2, keys % Q2
        if m1 and np.any((r < m1) & (c < m1) & (r != c)):
            m1 = 0
        self._fast = {
            "inv_b": inv_b,
            "nb": len(uniq),
            "brow": brow,
            "bcol": bcol,
            "pa": pa,
            "pb": pb,
            "prow": brow[pa],
            "ptarget": bcol[pa] * Q2 + bcol[pb],
            "a22": a22.ravel(),
            "flat": uniq,
            "diag2": m1,
            # many pairs per row (crossed terms): B dense and one matrix product is cheaper
            "dense": Q1 * Q2 * Q2 < 100 * len(pa) and Q1 * Q2 <= 4_000_000,
        }

    def _schur_scalar(self, w: np.ndarray, d: np.ndarray, ldL2: float):
        if self._fast is None:
            self._fast_setup()
        f = self._fast
        Q1 = self.sizes[0]
        Q2 = self.Q - Q1
        V = self.vals
        v0 = V[:, 0] * w
        V2 = V[:, 1:]
        m2 = V2.shape[1]
        bdata = np.bincount(f["inv_b"], (v0[:, None] * V2).ravel(), minlength=f["nb"])
        a22 = np.bincount(
            f["a22"],
            (V2[:, :, None] * V2[:, None, :] * w[:, None, None]).reshape(-1, m2 * m2).ravel(),
            minlength=Q2 * Q2,
        )
        if f["dense"]:
            Bd = np.zeros(Q1 * Q2)
            Bd[f["flat"]] = bdata
            Bd = Bd.reshape(Q1, Q2)
            S = a22.reshape(Q2, Q2) - (Bd.T / d) @ Bd
        else:
            corr = np.bincount(
                f["ptarget"],
                bdata[f["pa"]] * bdata[f["pb"]] / d[f["prow"]],
                minlength=Q2 * Q2,
            )
            S = (a22 - corr).reshape(Q2, Q2)
        S[np.diag_indices(Q2)] += 1.0
        ld_s, solve_s = _factor_dense(S, f["diag2"])
        ldL2 += ld_s
        brow, bcol = f["brow"], f["bcol"]

        def bt(y):  # B'y
            if f["dense"]:
                return Bd.T @ y
            if y.ndim == 1:
                return np.bincount(bcol, bdata * y[brow], minlength=Q2)
            return np.stack(
                [np.bincount(bcol, bdata * y[brow, j], minlength=Q2) for j in range(y.shape[1])],
                axis=1,
            )

        def bx(x):  # Bx
            if f["dense"]:
                return Bd @ x
            if x.ndim == 1:
                return np.bincount(brow, bdata * x[bcol], minlength=Q1)
            return np.stack(
                [np.bincount(brow, bdata * x[bcol, j], minlength=Q1) for j in range(x.shape[1])],
                axis=1,
            )

        def solve_a(b):
            b1, b2 = b[:Q1], b[Q1:]
            dd = d if b.ndim == 1 else d[:, None]
            y1 = b1 / dd
            x2 = solve_s(b2 - bt(y1))
            x1 = (b1 - bx(x2)) / dd
            return np.concatenate([x1, x2])

        return ldL2, solve_a

    def _b_setup(self) -> None:
        k0 = self.specs[0].k
        Q1 = self.sizes[0]
        c1 = self.cols[:, :k0]
        c2 = self.cols[:, k0:] - Q1
        keys = (c1[:, :, None].astype(np.int64) * (self.Q - Q1) + c2[:, None, :]).ravel()
        uniq, inverse = np.unique(keys, return_inverse=True)
        self._b_pattern = (uniq // (self.Q - Q1), uniq % (self.Q - Q1), inverse, len(uniq))

    def _zt(self, v: np.ndarray) -> np.ndarray:
        """(Z Lambda)' v."""
        return np.bincount(self.cols.ravel(), (self.vals * v[:, None]).ravel(), minlength=self.Q)

    def solve(
        self, w: np.ndarray, r: np.ndarray, X: np.ndarray | None = None
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """``(ldL2, u, beta)`` for weights ``w`` and response ``r`` (beta empty without X)."""
        joint = X is not None and X.shape[1] > 0
        wr = w * r
        if self.scalar:
            t = self.rows[0]
            zc = t.Z[:, 0]
            q = t.n_levels
            d = 1.0 + self.t0**2 * np.bincount(t.codes, w * zc * zc, minlength=q)
            ldL2 = float(np.sum(np.log(d)))
            rhs = self.t0 * np.bincount(t.codes, zc * wr, minlength=q)
            if not joint:
                return ldL2, rhs / d, np.zeros(0)
            wX = w[:, None] * X
            wzx = zc[:, None] * wX
            C = self.t0 * np.stack(
                [np.bincount(t.codes, wzx[:, j], minlength=q) for j in range(X.shape[1])],
                axis=1,
            )
            AinvC, Ainv_rhs = C / d[:, None], rhs / d
        else:
            if self.Q - self.sizes[0] <= SCHUR_MAX:
                ldL2, solve_a = self._schur(w)
            else:
                ldL2, solve_a = self._splu(w)
            if not joint:
                return ldL2, solve_a(self._zt(wr)), np.zeros(0)
            p = X.shape[1]
            wXr = np.empty((len(w), p + 1))  # [WX, Wr], rows contiguous for the product
            np.multiply(X, w[:, None], out=wXr[:, :p])
            wXr[:, p] = wr
            wX = wXr[:, :p]
            CR = self._zlt @ wXr  # [(Z Lambda)'WX, (Z Lambda)'Wr]
            C = CR[:, :p]
            sol = solve_a(CR)
            AinvC, Ainv_rhs = sol[:, :p], sol[:, p]
        S = X.T @ wX - C.T @ AinvC
        self.last_S = S
        rb = X.T @ wr - C.T @ Ainv_rhs
        beta = sla.solve(S, rb, assume_a="pos", check_finite=False)
        u = Ainv_rhs - AinvC @ beta
        return ldL2, u, beta


class EnginePLS(SparsePLS):
    """The same solves through the LMM engine's cross-products (the reference)."""

    def __init__(self, rows: list[TermRows], specs: list[TermSpec], X: np.ndarray):
        from lme2sm.engine.crossprod import cross_products
        from lme2sm.engine.lmm import ProfiledLMM

        super().__init__(rows, specs)
        self.scalar = False
        n = X.shape[0]
        ones = np.ones(n)
        self._engines = {
            True: ProfiledLMM(cross_products(rows, X, ones, ones), specs),
            False: ProfiledLMM(cross_products(rows, np.zeros((n, 0)), ones, ones), specs),
        }

    def solve(self, w, r, X=None):
        from lme2sm.engine.crossprod import cross_products

        joint = X is not None and X.shape[1] > 0
        Xp = X if joint else np.zeros((len(r), 0))
        cp = cross_products(self.rows, Xp, r, w)
        ev = self._engines[joint].with_crossprods(cp).evaluate(self.theta, modes=True)
        u = np.concatenate([a.ravel() for a in ev.u])
        if joint:
            self.last_S = ev.RX.T @ ev.RX
        return ev.ldL2, u, (ev.beta if joint else np.zeros(0))


def _factor_dense(S: np.ndarray, m1: int = 0):
    """``(log det S, solve)`` for a symmetric positive definite ``S`` whose leading
    ``m1`` x ``m1`` block is diagonal: that block is eliminated first, then a dense
    Cholesky of the rest (``m1 = 0``: a plain Cholesky)."""
    if not m1:
        L = sla.cholesky(S, lower=True, check_finite=False)

        def solve(b):
            return sla.cho_solve((L, True), b, check_finite=False)

        return 2.0 * float(np.sum(np.log(np.diagonal(L)))), solve
    s1 = S.diagonal()[:m1].copy()
    S12 = S[:m1, m1:]
    G = S12 / s1[:, None]  # diag(s1)^-1 S12
    S2 = S[m1:, m1:] - S12.T @ G
    ld = float(np.sum(np.log(s1)))
    if S2.shape[0]:
        L = sla.cholesky(S2, lower=True, check_finite=False)
        ld += 2.0 * float(np.sum(np.log(np.diagonal(L))))

    def solve(b):
        b1, b2 = b[:m1], b[m1:]
        ss = s1 if b.ndim == 1 else s1[:, None]
        if S2.shape[0]:
            x2 = sla.cho_solve((L, True), b2 - G.T @ b1, check_finite=False)
        else:
            x2 = b2[:0]
        x1 = b1 / ss - G @ x2
        return np.concatenate([x1, x2])

    return ld, solve
