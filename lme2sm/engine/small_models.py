"""Small models and one-term models, evaluated without the blocked machinery.

For a few dozen random effects one dense product and one LAPACK Cholesky of the whole
``Omega`` (:class:`DenseSystem`) cost less than the blocked path's numpy calls; a model
with one random term of one or two columns and nothing crossed with it is factored on
vectors of levels. Python's overhead per call is what costs there, and the optimiser
calls these hundreds of times a fit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.linalg import lapack

from lme2sm.engine.crossprod import CrossProducts
from lme2sm.engine.record import Evaluation
from lme2sm.engine.structure import block_diag_index, off_block
from lme2sm.engine.theta import TermSpec

__all__ = ["DenseSystem", "SmallModels"]


@dataclass(frozen=True)
class DenseSystem:
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
    def build(cls, cp: CrossProducts, specs: Sequence[TermSpec]) -> DenseSystem:
        sizes = [s.n_levels * s.k for s in specs]
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
        Q = int(sum(sizes))
        p1 = cp.xy.shape[0]
        A = np.zeros((Q + p1, Q + p1))
        rows, cols, src = [], [], []
        t0 = 0
        for j, (s, o) in enumerate(zip(specs, offsets)):
            q, k = s.n_levels, s.k
            r, c = block_diag_index(q, k)
            r, c = r + o, c + o
            A[r, c] = cp.diag[j].ravel()
            A[Q:, o : o + q * k] = cp.zxy[j].reshape(p1, -1)
            for j2 in range(j):
                block = off_block(cp, j, j2).toarray()
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

    def lambda_scale(self, factors: list[np.ndarray]) -> np.ndarray:
        """What Lambda makes of ``A`` at these factors: ``outer(lam, lam)`` (every term
        scalar: ``Omega = A * scale``), else ``blockdiag(Lambda, I)`` (``L'A L``)."""
        entries = np.concatenate([F.ravel() for F in factors])[self.src]
        lam = self.lam_template.copy()
        if self.scalar:  # Lambda's diagonal, then ones for [X y]
            lam[: self.Q] = entries
            return np.multiply.outer(lam, lam)
        lam[self.rows, self.cols] = entries  # zeros, and the identity for [X y]
        return lam

    def factor(self, A: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """The lower Cholesky factor of Omega built whole from ``A`` (this system's or
        another weighting's, the same layout) and :meth:`lambda_scale`'s ``scale``:
        ``L'A L + diag(I, 0)`` by one LAPACK call."""
        full = A * scale if self.scalar else scale.T @ (A @ scale)
        size = full.shape[0]
        full.reshape(-1)[: self.Q * (size + 1) : size + 1] += 1.0
        Lf, info = lapack.dpotrf(full, lower=1, clean=0, overwrite_a=1)
        if info != 0:  # every pivot positive and finite, r included
            raise np.linalg.LinAlgError("not positive definite")
        return Lf

    def modes(self, Lf: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """The spherical modes ``u`` (all terms, flat) from the factor and ``beta``."""
        Q, p = self.Q, len(beta)
        rhs = Lf[Q + p, :Q] - Lf[Q : Q + p, :Q].T @ beta if p else Lf[Q, :Q]
        # LAPACK directly: scipy's solve_triangular checks cost more than the solve
        u_all, info = lapack.dtrtrs(Lf[:Q, :Q], rhs, lower=1, trans=1)
        if info != 0:
            raise np.linalg.LinAlgError("singular factor")
        return u_all


class SmallModels:
    """:class:`~lme2sm.engine.lmm.ProfiledLMM`'s evaluations of small models (a mixin:
    it reads the model's cross-products ``cp``, ``specs``, ``p`` and ``_dense``)."""

    def _dense_factor(self, factors: list[np.ndarray]) -> np.ndarray:
        """A small model's Omega built whole and its lower Cholesky factor
        (:meth:`DenseSystem.factor`)."""
        d = self._dense
        return d.factor(d.A, d.lambda_scale(factors))

    def _dense_deviance(self, factors: list[np.ndarray], reml: bool) -> float:
        """The deviance alone from :meth:`_dense_factor` (no beta, no record)."""
        Q, p = self._dense.Q, self.p
        logs = np.log(np.diagonal(self._dense_factor(factors)))
        ldL2 = 2.0 * float(logs[:Q].sum())
        ldRX2 = 2.0 * float(logs[Q : Q + p].sum())
        r2 = math.exp(2.0 * float(logs[-1]))
        return self._criteria(ldL2, ldRX2, r2)[0 if reml else 1]

    def _evaluate_dense(self, theta, factors: list[np.ndarray], modes: bool) -> Evaluation:
        """:meth:`evaluate` for a small model (:class:`DenseSystem`)."""
        Q = self._dense.Q
        Lf = self._dense_factor(factors)
        ev, beta = self._finish(theta, 0.0, Lf, np.diagonal(Lf), Q)
        if modes:
            u_all = self._dense.modes(Lf, beta)
            ev.u = [
                u_all[o : o + s.n_levels * s.k].reshape(s.n_levels, s.k)
                for o, s in zip(self._dense.offsets, self.specs)
            ]
        return ev

    def _evaluate_one_term(
        self, theta, factors: list[np.ndarray], modes: bool = False
    ) -> Evaluation:
        """:meth:`evaluate` for one random term of one or two columns (``(1|g)``,
        ``(x|g)``, ``(x||g)``) and nothing crossed with it: the same algebra in a dozen
        numpy calls on vectors of levels, since the optimiser calls it hundreds of times
        and Python's overhead per call is what costs there (Dyestuff: 0.09 -> 0.05 ms a
        call). The loop below works for any width, but at three columns
        (``(Machine|Worker)``) it measured 0.13 ms against the general path's 0.12.
        With ``modes`` (one column only; PIRLS's step on 20,000 levels: 0.55 ms by the
        blocks), ``u_l = (W_l,y - W_l,X beta) / L_l``."""
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
        ev, beta = self._finish(theta, ldL2, Lf, diag, 0)
        if modes:  # k == 1: W_l = L_l^-1 T' A_l, the mode from its [X y] columns
            ev.u = [None] * len(self.specs)
            ev.u[i] = ((W[:, p] - W[:, :p] @ beta) / np.sqrt(d))[:, None]
        return ev
