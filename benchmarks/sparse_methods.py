"""Candidate factorisations of the crossed PLS system A (see sparse_system.py), issue #21.

Each candidate has ``analyse(P)`` (once per data set: orderings, symbolic analysis,
anything that depends on the pattern only) and ``factor(theta) -> (log|A|, solve)``
(per theta: the numeric factorisation, the log-determinant, and a function solving A on
a q x k block), and ``fill()`` (stored entries of the factor, or None). Optional
libraries (scikit-sparse, sksparse-minimal, cholespy, qdldl) are imported on use, so the
module loads without them.

* ``splu:<permc>`` — scipy's SuperLU on the whole of A, symmetric mode, no pivoting
  (what lme2sm's glmer uses today); SuperLU has no separate symbolic step.
* ``schur-dense`` — eliminate D_1 (diagonal) exactly, form the q2 x q2 Schur complement
  S = D_2 - B'D_1^-1 B densely (rows of heavy levels as a BLAS syrk, the others as a
  sparse product scattered in) and factor it with LAPACK's dpotrf.
* ``schur-sparse:<lib>`` — the same S kept sparse, factored with CHOLMOD (analysis once,
  numeric refactor per theta), QDLDL (likewise) or SuperLU.
* ``cholmod:<ordering>`` — scikit-sparse's CHOLMOD (supernodal) on the whole of A.
* ``sksparse-minimal``, ``cholespy``, ``qdldl`` — the self-contained wheels on A.
* ``dense`` — numpy's Cholesky of A as a dense matrix (the reference, where it fits).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.linalg import lapack
from scipy.linalg.blas import dsyrk
from sparse_system import Crossed

__all__ = ["make_candidate", "CANDIDATES"]


class Candidate:
    """Base: keeps the problem and A's pattern."""

    name = "?"

    def analyse(self, P: Crossed) -> None:
        self.P = P
        self.tmpl = P.template()

    def A(self, theta) -> sp.csc_matrix:
        return self.P.matrix(theta, self.tmpl)

    def fill(self) -> int | None:
        return None


class Splu(Candidate):
    def __init__(self, permc: str):
        self.permc = permc
        self.name = f"splu:{permc}"

    def factor(self, theta):
        lu = spla.splu(
            self.A(theta),
            permc_spec=self.permc,
            diag_pivot_thresh=0.0,
            options={"SymmetricMode": True},
        )
        self._fill = lu.L.nnz + lu.U.nnz
        return float(np.sum(np.log(np.abs(lu.U.diagonal())))), lu.solve

    def fill(self):
        return self._fill


class Dense(Candidate):
    name = "dense"

    def factor(self, theta):
        c, info = lapack.dpotrf(self.A(theta).toarray(order="F"), lower=1, overwrite_a=1)
        assert info == 0
        ld = 2.0 * float(np.sum(np.log(np.diag(c))))
        return ld, lambda R: sla.cho_solve((c, True), R, check_finite=False)

    def fill(self):
        q = self.P.q1 + self.P.q2
        return q * (q + 1) // 2


class SchurBase(Candidate):
    """Eliminate D_1 exactly; subclasses factor S = D_2 - B'D_1^-1 B."""

    def analyse(self, P):
        self.P = P
        self.Nt = P.N.T.tocsr()

    def factor(self, theta):
        P = self.P
        D1, _ = P.diagonals(theta)
        ld_s, solve_s = self.factor_schur(theta)
        b = theta[0] * theta[1]
        N, Nt = P.N, self.Nt

        def solve(R):
            r1, r2 = R[: P.q1], R[P.q1 :]
            x2 = solve_s(r2 - b * (Nt @ (r1 / D1[:, None])))
            x1 = (r1 - b * (N @ x2)) / D1[:, None]
            return np.vstack([x1, x2])

        return float(np.sum(np.log(D1))) + ld_s, solve


class SchurDense(SchurBase):
    """Dense S. Levels of factor 1 with more than q2/HEAVY pairs go through dsyrk on
    their dense rows (fixed once); the rest through sparse products in chunks."""

    name = "schur-dense"
    HEAVY = 32
    CHUNK_FLOPS = 2e8

    def analyse(self, P):
        super().analyse(P)
        k = np.diff(P.N.indptr).astype(np.int64)
        self.heavy = np.flatnonzero(k > P.q2 / self.HEAVY)
        self.Nh = np.asfortranarray(P.N[self.heavy].toarray())
        light = np.flatnonzero(k <= P.q2 / self.HEAVY)
        cum = np.cumsum(k[light] ** 2)
        cuts = np.searchsorted(cum, np.arange(self.CHUNK_FLOPS, cum[-1], self.CHUNK_FLOPS))
        self.chunks = []
        for part in np.split(light, cuts):
            Nl = P.N[part]
            self.chunks.append((part, Nl, Nl.T.tocsr()))

    def factor_schur(self, theta):
        P = self.P
        w = P.schur_weights(theta)
        q2 = P.q2
        S = np.zeros((q2, q2), order="F")
        S[np.diag_indices(q2)] = P.diagonals(theta)[1]
        flat = S.reshape(-1, order="F")
        for part, Nl, Nlt in self.chunks:
            M = (Nlt @ Nl.multiply(w[part][:, None]).tocsr()).tocoo()
            keep = M.row >= M.col  # lower triangle only
            flat[M.col[keep] * q2 + M.row[keep]] -= M.data[keep]
        if len(self.heavy):
            G = self.Nh * np.sqrt(w[self.heavy])[:, None]
            S = dsyrk(-1.0, G, beta=1.0, c=S, trans=1, lower=1, overwrite_c=1)
        c, info = lapack.dpotrf(S, lower=1, clean=0, overwrite_a=1)
        assert info == 0, info
        ld = 2.0 * float(np.sum(np.log(np.diag(c))))
        return ld, lambda R: sla.cho_solve((c, True), R, check_finite=False)

    def fill(self):
        return self.P.q2 * (self.P.q2 + 1) // 2


class SchurSparse(SchurBase):
    """Sparse S; the pattern (and the library's analysis) is fixed once."""

    def __init__(self, lib: str):
        self.lib = lib
        self.name = f"schur-sparse:{lib}"

    def schur(self, theta) -> sp.csc_matrix:
        P = self.P
        w = P.schur_weights(theta)
        S = sp.diags(P.diagonals(theta)[1]) - self.Nt @ P.N.multiply(w[:, None]).tocsr()
        S = S.tocsc()
        S.sort_indices()
        return S

    def analyse(self, P):
        super().analyse(P)
        S = self.schur((1.0, 1.0))
        if self.lib == "cholmod":
            from sksparse import cholmod

            self.f = cholmod.analyze(S, mode="supernodal", ordering_method="amd")
        elif self.lib == "qdldl":
            import qdldl

            self.f = qdldl.Solver(S)

    def factor_schur(self, theta):
        S = self.schur(theta)
        if self.lib == "cholmod":
            self.f.cholesky_inplace(S)
            return self.f.logdet(), self.f.solve_A
        if self.lib == "qdldl":
            self.f.update(S)
            L, d, _ = self.f.factors()
            self._fill = L.nnz + len(d)
            return float(np.sum(np.log(d))), _columnwise(self.f.solve)
        lu = spla.splu(S, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0)
        self._fill = lu.L.nnz + lu.U.nnz
        return float(np.sum(np.log(np.abs(lu.U.diagonal())))), lu.solve

    def fill(self):
        if self.lib == "cholmod":
            return _cholmod_fill(self.f)
        return getattr(self, "_fill", None)


def _columnwise(solve):
    """A solver of one vector applied to each column of a block."""
    return lambda R: np.column_stack(
        [solve(np.ascontiguousarray(R[:, j])) for j in range(R.shape[1])]
    )


def _cholmod_fill(f) -> int | None:
    try:
        return int(f.L().nnz)
    except MemoryError:
        return None


class Cholmod(Candidate):
    def __init__(self, ordering: str):
        self.ordering = ordering
        self.name = f"cholmod:{ordering}"

    def analyse(self, P):
        from sksparse import cholmod

        super().analyse(P)
        self.f = cholmod.analyze(
            self.A((1.0, 1.0)), mode="supernodal", ordering_method=self.ordering
        )

    def factor(self, theta):
        self.f.cholesky_inplace(self.A(theta))
        return self.f.logdet(), self.f.solve_A

    def fill(self):
        return _cholmod_fill(self.f)


class SksparseMinimal(Candidate):
    """Bundled CHOLMOD without a separate analysis: every factor orders anew. log|A|
    from D after converting the factor to LDL' (the wrapper exposes nothing else)."""

    name = "sksparse-minimal"

    def factor(self, theta):
        from sksparse_minimal import SparseCholesky

        A = self.A(theta)
        f = SparseCholesky(A)
        solve = _columnwise(f.solve_A)
        f._ensure_L_or_LD_inplace(False)
        inv_d = f.solve_D(np.ones(A.shape[0]))
        return -float(np.sum(np.log(inv_d))), solve


class Cholespy(Candidate):
    """cholespy factors on construction and offers solves only: no log-determinant."""

    name = "cholespy"

    def factor(self, theta):
        from cholespy import CholeskySolverD, MatrixType

        A = self.A(theta)
        s = CholeskySolverD(
            A.shape[0],
            A.indptr.astype(np.int32),
            A.indices.astype(np.int32),
            A.data,
            MatrixType.CSC,
        )

        def solve(R):
            X = np.zeros_like(R, order="C")
            s.solve(np.ascontiguousarray(R), X)
            return X

        return float("nan"), solve


class Qdldl(Candidate):
    """QDLDL (AMD order, LDL') on A: analysis once, ``update`` per theta; log|A| from D
    (``factors()``, which also copies L)."""

    name = "qdldl"

    def analyse(self, P):
        import qdldl

        super().analyse(P)
        self.s = qdldl.Solver(self.A((1.0, 1.0)))

    def factor(self, theta):
        self.s.update(self.A(theta))
        L, d, _ = self.s.factors()
        self._fill = L.nnz + len(d)
        return float(np.sum(np.log(d))), _columnwise(self.s.solve)

    def fill(self):
        return getattr(self, "_fill", None)


CANDIDATES = {
    "dense": Dense,
    "splu:NATURAL": lambda: Splu("NATURAL"),
    "splu:MMD_AT_PLUS_A": lambda: Splu("MMD_AT_PLUS_A"),
    "splu:MMD_ATA": lambda: Splu("MMD_ATA"),
    "splu:COLAMD": lambda: Splu("COLAMD"),
    "schur-dense": SchurDense,
    "schur-sparse:cholmod": lambda: SchurSparse("cholmod"),
    "schur-sparse:qdldl": lambda: SchurSparse("qdldl"),
    "schur-sparse:splu": lambda: SchurSparse("splu"),
    "cholmod:amd": lambda: Cholmod("amd"),
    "cholmod:metis": lambda: Cholmod("metis"),
    "cholmod:natural": lambda: Cholmod("natural"),
    "sksparse-minimal": SksparseMinimal,
    "cholespy": Cholespy,
    "qdldl": Qdldl,
}


def make_candidate(name: str) -> Candidate:
    if name.startswith("krylov"):
        from sparse_krylov import Krylov

        return Krylov.from_name(name)
    return CANDIDATES[name]()
