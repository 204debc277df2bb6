"""The PLS system of the scalar crossed model ``y ~ x + (1|g1) + (1|g2)``, for issue #21.

With Z = [Z_1 Z_2] (one indicator per row in each) and Lambda = diag(theta_1 I, theta_2 I)
the system is

    A = Lambda' Z'Z Lambda + I = [[D_1, B], [B', D_2]],
    D_j = theta_j^2 diag(counts_j) + I,  B = theta_1 theta_2 N,

where N (q_1 x q_2) counts the rows of each (level, level) pair. Everything a candidate
factorisation needs is in :class:`Crossed` (the counts, N, and the small cross-products
with X = [1, x] and y), computed once from the rows. :func:`ml_deviance` turns a
candidate's ``log|A|`` and ``A^-1`` (on a q x 3 block) into lme4's ML deviance

    -2 logLik = log|A| + n (1 + log(2 pi r^2 / n)),

with r^2 the penalised residual sum of squares, so every candidate's error is stated in
logLik units. The same module holds the matrix-free pieces (products with A and with the
Schur complement of D_1) used by the Krylov candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["Crossed", "crossed_system", "ml_deviance", "schur_diagonal"]


@dataclass
class Crossed:
    """Counts, pair counts and cross-products of a crossed scalar design.

    ``d1``/``d2``: rows per level; ``N``: CSR (q1 x q2) pair counts; ``zx1``/``zx2``:
    Z_j'[X y] (q_j x 3, columns 1, x, y); ``xy``: [X y]'[X y] (3 x 3); ``n`` rows.
    """

    d1: np.ndarray
    d2: np.ndarray
    N: sp.csr_matrix
    zx1: np.ndarray
    zx2: np.ndarray
    xy: np.ndarray
    n: int

    @property
    def q1(self) -> int:
        return len(self.d1)

    @property
    def q2(self) -> int:
        return len(self.d2)

    def template(self) -> tuple[sp.csc_matrix, np.ndarray]:
        """The full symmetric pattern of A in CSC, and for each stored entry its kind
        (0: D_1's diagonal, 1: D_2's diagonal, 2: B or B'), with Z'Z's values."""
        q1 = self.q1
        ztz = sp.bmat(
            [
                [sp.diags(self.d1.astype(float)), self.N],
                [self.N.T, sp.diags(self.d2.astype(float))],
            ],
            format="csc",
        )
        ztz.sort_indices()
        rows = ztz.indices
        cols = np.repeat(np.arange(ztz.shape[1]), np.diff(ztz.indptr))
        kind = np.full(ztz.nnz, 2, dtype=np.int8)
        kind[(rows == cols) & (rows < q1)] = 0
        kind[(rows == cols) & (rows >= q1)] = 1
        return ztz, kind

    def matrix(self, theta, template=None) -> sp.csc_matrix:
        """A at ``theta`` (full symmetric CSC); pass :meth:`template`'s result to reuse it."""
        ztz, kind = template if template is not None else self.template()
        t1, t2 = theta
        scale = np.array([t1 * t1, t2 * t2, t1 * t2])[kind]
        data = ztz.data * scale + (kind < 2)
        return sp.csc_matrix((data, ztz.indices, ztz.indptr), shape=ztz.shape)

    def rhs(self, theta) -> np.ndarray:
        """Lambda' Z'[X y] (q x 3)."""
        return np.vstack([theta[0] * self.zx1, theta[1] * self.zx2])

    def diagonals(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """The diagonals of D_1 and D_2."""
        return theta[0] ** 2 * self.d1 + 1.0, theta[1] ** 2 * self.d2 + 1.0

    def schur_weights(self, theta) -> np.ndarray:
        """w with B' D_1^-1 B = N' diag(w) N."""
        t1, t2 = theta
        return (t1 * t2) ** 2 / (t1 * t1 * self.d1 + 1.0)


def crossed_system(g1: np.ndarray, g2: np.ndarray, x: np.ndarray, y: np.ndarray, q1, q2):
    """:class:`Crossed` from level codes (0-based), the covariate and the response."""
    n = len(y)
    d1 = np.bincount(g1, minlength=q1)
    d2 = np.bincount(g2, minlength=q2)
    N = sp.csr_matrix((np.ones(n), (g1, g2)), shape=(q1, q2))
    N.sum_duplicates()
    cols = [np.ones(n), x, y]
    zx1 = np.column_stack([np.bincount(g1, c, minlength=q1) for c in cols])
    zx2 = np.column_stack([np.bincount(g2, c, minlength=q2) for c in cols])
    M = np.column_stack(cols)
    return Crossed(d1, d2, N, zx1, zx2, M.T @ M, n)


def ml_deviance(P: Crossed, theta, logdet: float, solve) -> tuple[float, np.ndarray]:
    """lme4's ML deviance (-2 logLik) at ``theta`` from log|A| and a solver for A (q x k
    blocks), and the fixed effects. R_X'R_X = X'X - C'A^-1 C with C = Lambda'Z'X."""
    R = P.rhs(theta)
    AR = solve(R)
    G = P.xy - R.T @ AR  # Schur complement of A in the full [Z X y] system
    beta = np.linalg.solve(G[:2, :2], G[:2, 2])
    r2 = G[2, 2] - G[:2, 2] @ beta
    n = P.n
    return float(logdet + n * (1.0 + np.log(2.0 * np.pi * r2 / n))), beta


def schur_diagonal(P: Crossed, theta) -> np.ndarray:
    """diag(S), S = D_2 - B' D_1^-1 B (the Jacobi preconditioner of the Schur route)."""
    w = P.schur_weights(theta)
    N2 = P.N.multiply(P.N).tocsc()
    return P.diagonals(theta)[1] - N2.T @ w


def schur_matvec(P: Crossed, theta, Nt: sp.csr_matrix):
    """V -> S V for S = D_2 - N' diag(w) N (V: q2 x k), matrix-free."""
    w = P.schur_weights(theta)
    d2 = P.diagonals(theta)[1]

    def apply(V: np.ndarray) -> np.ndarray:
        W = P.N @ V
        W *= w[:, None] if W.ndim == 2 else w
        out = Nt @ W
        return (d2[:, None] if V.ndim == 2 else d2) * V - out

    return apply
