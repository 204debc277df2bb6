r"""The operators of :mod:`lme2sm.engine.krylov` (``factor="krylov"``): products with the
Schur complement :math:`S` of the first term's block, never formed.

With the first term eliminated exactly (``A_11`` block diagonal) and ``B`` the sparse
rest x first block of :math:`Z'Z` (the level x level cross-products, summed once),

.. math::

    S V = V + \Lambda_r'\,[Z_r'Z_r - B\,G\,B']\,\Lambda_r V, \qquad
    G = \Lambda_1 A_{11}^{-1} \Lambda_1' \ \text{(block diagonal)},

so a product with :math:`S` costs two sparse products with ``B`` (one per direction,
:class:`CrossedBlock`) and block-diagonal work; nothing of size levels x levels is ever
built, and no sparse matrix is rebuilt per ``theta`` (the relative covariance factors
are applied to vectors). Measured on 30M rows (200,000 x 50,000 levels, 17.0M distinct
pairs, this 2-core VM): ``B V`` from ``B`` in CSC order and ``B'W`` from ``B'`` in CSR
order, 8 columns at a time, take 0.25 s each (1.9 ns per stored entry and column);
one column at a time 0.05 s, 16 at a time 0.8 s (the gathered rows leave the cache).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["BlockScaling", "CHUNK", "CrossedBlock", "KrylovSystem", "scale_levels"]

CHUNK = 8
"""Columns per sparse product (see the module docstring: 8 was the fastest)."""


def _chunked(M, V: np.ndarray) -> np.ndarray:
    if V.shape[1] <= CHUNK:
        return M @ np.ascontiguousarray(V)
    return np.hstack(
        [M @ np.ascontiguousarray(V[:, i : i + CHUNK]) for i in range(0, V.shape[1], CHUNK)]
    )


class CrossedBlock:
    """``B`` (rest x first, sparse) kept in the two layouts its products are fastest in."""

    def __init__(self, B: sp.spmatrix):
        self.csc = sp.csc_matrix(B)
        self.t_csr = self.csc.T.tocsr()  # B' in CSR order
        self.shape = B.shape
        self.nnz = self.csc.nnz
        self._squared = None

    def forward(self, V: np.ndarray) -> np.ndarray:
        """B V (V: first-sized)."""
        return _chunked(self.csc, V)

    def backward(self, W: np.ndarray) -> np.ndarray:
        """B' W (W: rest-sized)."""
        return _chunked(self.t_csr, W)

    def squared(self) -> sp.csc_matrix:
        """B with its entries squared (same index arrays)."""
        if self._squared is None:
            c = self.csc
            self._squared = sp.csc_matrix((c.data**2, c.indices, c.indptr), shape=c.shape)
        return self._squared


def scale_levels(T: np.ndarray, V: np.ndarray, transpose: bool = False) -> np.ndarray:
    """(I_q (x) T) V, or its transpose, for V with q k rows (level-major)."""
    k = T.shape[0]
    if k == 1:
        return float(T[0, 0]) * V
    blk = V.reshape(-1, k, V.shape[1])
    spec = "ba,lbc->lac" if transpose else "ab,lbc->lac"
    return np.einsum(spec, T, blk).reshape(V.shape)


class BlockScaling:
    """The diagonal blocks of S (one k x k block per level of each rest term) by their
    Cholesky factors L_b: ``M = L^-1 S L^-T`` has identity diagonal blocks."""

    def __init__(self, blocks: list[np.ndarray]):
        L = [np.linalg.cholesky(b) for b in blocks]  # raises LinAlgError if not PD
        self.logdet = 2.0 * sum(float(np.sum(np.log(np.diagonal(x, axis1=1, axis2=2)))) for x in L)
        self.inv = [np.linalg.inv(x) for x in L]
        self.sizes = [x.shape[0] * x.shape[1] for x in L]

    def _apply(self, V: np.ndarray, transpose: bool) -> np.ndarray:
        out, pos = np.empty_like(V), 0
        for inv, size in zip(self.inv, self.sizes):
            q, k = inv.shape[:2]
            if k == 1:
                out[pos : pos + size] = inv[:, 0, 0][:, None] * V[pos : pos + size]
            else:
                blk = V[pos : pos + size].reshape(q, k, -1)
                spec = "lba,lbc->lac" if transpose else "lab,lbc->lac"
                out[pos : pos + size] = np.einsum(spec, inv, blk).reshape(size, -1)
            pos += size
        return out

    def left(self, V: np.ndarray) -> np.ndarray:
        """L^-1 V."""
        return self._apply(V, False)

    def right(self, V: np.ndarray) -> np.ndarray:
        """L^-T V."""
        return self._apply(V, True)

    def precond(self, V: np.ndarray) -> np.ndarray:
        """The block-Jacobi preconditioner's inverse, L^-T L^-1 V."""
        return self.right(self.left(V))


class KrylovSystem:
    """``A``'s pieces at one theta: the first term's blocks factored, products with
    ``A_r1``, ``A_1r`` and ``S``, and ``S``'s diagonal blocks (``scaling``)."""

    def __init__(self, model, factors: list[np.ndarray]):
        first, cp = model.first, model.cp
        T1 = factors[first]
        D1 = cp.diag[first]
        blocks = np.einsum("ba,lbc,cd->lad", T1, D1, T1) + np.eye(T1.shape[0])
        L = np.linalg.cholesky(blocks)  # raises LinAlgError if not PD
        self.logdet11 = 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
        self.inv11 = np.linalg.inv(blocks)
        self.k1, self.T1 = T1.shape[0], T1
        self.model = model
        self.T_rest = [factors[j] for j in model.rest]
        if model.m_rest == 0:
            return
        # G = Lambda_1 A_11^-1 Lambda_1', one k1 x k1 block per level of the first term
        self.G = np.einsum("ab,lbc,dc->lad", T1, self.inv11, T1)
        self.scaling = BlockScaling(self._schur_blocks(factors))

    # ------------------------------------------------------------ Lambda products

    def lam1(self, X: np.ndarray, transpose: bool = False) -> np.ndarray:
        return scale_levels(self.T1, X, transpose)

    def lam_rest(self, W: np.ndarray, transpose: bool = False) -> np.ndarray:
        out, pos = np.empty_like(W), 0
        for j, T in zip(self.model.rest, self.T_rest):
            size = self.model.specs[j].n_levels * T.shape[0]
            out[pos : pos + size] = scale_levels(T, W[pos : pos + size], transpose)
            pos += size
        return out

    def _G(self, X: np.ndarray) -> np.ndarray:
        if self.k1 == 1:
            return self.G[:, 0, 0][:, None] * X
        Xb = X.reshape(self.G.shape[0], self.k1, -1)
        return np.einsum("lab,lbc->lac", self.G, Xb).reshape(X.shape)

    def solve11(self, X: np.ndarray) -> np.ndarray:
        """A_11^-1 X (X: q1 k1 x c)."""
        if self.k1 == 1:
            return self.inv11[:, 0, 0][:, None] * X
        Xb = X.reshape(self.inv11.shape[0], self.k1, -1)
        return np.einsum("lab,lbc->lac", self.inv11, Xb).reshape(X.shape)

    def a_r1(self, X: np.ndarray) -> np.ndarray:
        """A_r1 X = Lambda_r' B Lambda_1 X."""
        return self.lam_rest(self.model.Bop.forward(self.lam1(X)), True)

    def a_1r(self, W: np.ndarray) -> np.ndarray:
        """A_1r W = Lambda_1' B' Lambda_r W."""
        return self.lam1(self.model.Bop.backward(self.lam_rest(W)), True)

    def schur(self, V: np.ndarray) -> np.ndarray:
        """S V, matrix-free: two products with B."""
        model = self.model
        model.counts["products"] += V.shape[1]
        U = self.lam_rest(V)
        inner = model.ZtZ_rest @ U - model.Bop.forward(self._G(model.Bop.backward(U)))
        return V + self.lam_rest(inner, True)

    # ------------------------------------------------------------ diagonal of S

    def _schur_blocks(self, factors) -> list[np.ndarray]:
        """S's diagonal blocks per rest term, ``(q_j, k_j, k_j)``:
        ``T'(D_l - [B G B']_ll)T + I``, the last from B's stored entries only."""
        model = self.model
        out, pos = [], 0
        scalar = self.k1 == 1 and all(model.specs[j].k == 1 for j in model.rest)
        if scalar:
            bgb = model.Bop.squared() @ self.G[:, 0, 0]
        else:
            Bcsr = model.Bop.csc.tocsr()
            F = (Bcsr @ sp.block_diag(list(self.G), format="csr")).tocsr()
        for j, T in zip(model.rest, self.T_rest):
            D = model.cp.diag[j]
            q, k = D.shape[:2]
            inner = D.copy()
            if scalar:
                inner[:, 0, 0] -= bgb[pos : pos + q]
            else:
                for a in range(k):
                    Fa = F[pos + a : pos + q * k : k]
                    for b in range(k):
                        prod = Fa.multiply(Bcsr[pos + b : pos + q * k : k]).sum(axis=1)
                        inner[:, a, b] -= np.asarray(prod).ravel()
            out.append(np.einsum("ba,lbc,cd->lad", T, inner, T) + np.eye(k))
            pos += q * k
        return out
