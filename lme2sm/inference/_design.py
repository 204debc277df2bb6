r"""lme4's deviance as a function of arbitrary variance parameters.

Inference needs the (REML or ML) deviance, and the fixed effects' covariance, at
variance parameters other than the fitted ones: numerical derivatives for
Satterthwaite's degrees of freedom, re-optimisation for profile intervals, refits for
the parametric bootstrap. This module rebuilds the model in lme4's own form (Bates et
al. 2015, J. Stat. Softw. 67(1), section 3) from a fitted :class:`LmerEstimates`::

    y = X beta + Z Lambda(theta) u + e,   u ~ N(0, sigma^2 I),   e ~ N(0, sigma^2 I)

with one block of ``Z`` per lme4 random term (columns level-major: level ``l``,
effect ``e`` at ``l * k + e``) and ``Lambda = blockdiag(I_m (x) T_j)``, ``T_j`` the
lower-triangular relative covariance factor of term ``j`` (``Psi_j = sigma^2 T_j
T_j'``). ``theta`` lists each ``T_j``'s lower triangle column by column, in lme4's term
order, exactly as lme4's ``getME(m, "theta")``.

Everything after the cross-products ``Z'Z, Z'X, Z'y, X'X, X'y, y'y`` is q-sized
(q = number of random effects), so one evaluation is a dense q x q Cholesky.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from lme2sm.engine.frame_input import frame_crossprods
from lme2sm.errors import RowsNotInMemoryError
from lme2sm.inference.large_design import MAX_Q, NoRows, dense_ztz, refuse_new_response

if TYPE_CHECKING:
    from lme2sm.results.lmer import LmerEstimates

LOG2PI = math.log(2 * math.pi)
DENSE_Q = 250
"""Up to this many random effects Lambda is a dense matrix (faster than sparse)."""


def one_blas_thread():
    """One BLAS thread while inference runs (the shared, reference-counted cap)."""
    from lme2sm.engine.threads import blas_threads

    return blas_threads(1)


@dataclass(frozen=True)
class TermBlock:
    """One lme4 random term in lme4's order."""

    group: str
    names: tuple[str, ...]
    n_levels: int
    offset: int
    """First column of the term in Z."""
    structure: str = "us"
    """The covariance structure (``us``, ``diag``, ``cs``, ``ar1``: engine/theta.py)."""

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def n_entries(self) -> int:
        """Entries of the lower triangle of ``T`` (what Lambda holds)."""
        return self.k * (self.k + 1) // 2

    @property
    def n_theta(self) -> int:
        return self.spec.n_theta

    @property
    def spec(self):
        from lme2sm.engine.theta import TermSpec

        return TermSpec(self.n_levels, self.k, structure=self.structure)


@dataclass
class Evaluation:
    """Everything the deviance and vcov(beta) need at one theta."""

    ldL2: float
    ldRX2: float
    r2: float
    beta: np.ndarray
    mxx_inv: np.ndarray
    """(X' V^-1 X)^-1 with V = I + Z Lambda Lambda' Z' (so vcov(beta) = sigma^2 * this)."""


class LmmDesign:
    """The model of an :class:`LmerEstimates` with a deviance callable at any theta."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        Z: sp.csc_matrix,
        terms: tuple[TermBlock, ...],
        fixed_names: tuple[str, ...],
    ):
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=float)
        self.Z = Z.tocsc()
        self.terms = terms
        self.fixed_names = fixed_names
        self.n, self.p = self.X.shape
        self.q = self.Z.shape[1]
        self.ZtZ = np.asarray((self.Z.T @ self.Z).toarray())
        Xy = np.column_stack([self.X, self.y])
        self.ZtXy = np.asarray(self.Z.T @ Xy)
        self.XytXy = Xy.T @ Xy
        self.scalar = all(t.k == 1 for t in terms)
        self.n_theta = sum(t.n_theta for t in terms)
        self._eye = np.eye(self.q)
        self._lambda_template = None if self.scalar else self._template()

    # ------------------------------------------------------------------ building

    @classmethod
    def from_result(cls, m: LmerEstimates) -> LmmDesign:
        if getattr(m.frame, "lazy", False):  # rows beyond memory: from the sums
            return cls.from_lazy_frame(m.frame)
        return cls.from_frame(m.frame)

    @classmethod
    def from_lazy_frame(cls, frame) -> LmmDesign:
        """The design of a fit on data beyond memory, from its summed cross-products (terms in
        lme4's order); the rows (``X``, ``y``, ``Z``) stand in as :class:`NoRows`."""
        cp = frame_crossprods(frame).unshifted()
        q_total = sum(q * k for q, k in zip(cp.q, cp.k))
        if q_total > MAX_Q:
            raise RowsNotInMemoryError(
                f"this model has {q_total} random effects; inference that needs the dense "
                f"Z'Z (Satterthwaite, profile) is offered up to {MAX_Q}"
            )
        design = object.__new__(cls)
        blocks, offset = [], 0
        for t in frame.terms:
            blocks.append(TermBlock(t.group, t.names, t.n_levels, offset, t.structure))
            offset += t.n_levels * t.k
        design.X, design.y, design.Z = NoRows("X"), NoRows("y"), NoRows("Z")
        design.terms = tuple(blocks)
        design.fixed_names = tuple(frame.fixed_names)
        design.n, design.p, design.q = cp.n, cp.p, q_total
        design.ZtZ = dense_ztz(cp)
        design.ZtXy = np.concatenate([z.reshape(cp.p + 1, -1) for z in cp.zxy], axis=1).T
        design.XytXy = np.asarray(cp.xy)
        design.scalar = all(t.k == 1 for t in blocks)
        design.n_theta = sum(t.n_theta for t in blocks)
        design._eye = np.eye(q_total)
        design._lambda_template = None if design.scalar else design._template()
        design.with_response = refuse_new_response
        return design

    @classmethod
    def from_frame(cls, frame) -> LmmDesign:
        """The design of a model frame, random terms in lme4's order (as ``VarCorr``).

        Prior weights scale the rows by sqrt(w) and the offset is taken off the
        response, so the deviance differs from lme4's only by the constant sum(log w).
        """
        sw = None if frame.weights is None else np.sqrt(frame.weights)
        X = frame.X if sw is None else frame.X * sw[:, None]
        y = frame.y - frame.offset
        y = y if sw is None else y * sw
        blocks, mats = [], []
        offset = 0
        for t in frame.terms:
            k = t.k
            E = t.Z if sw is None else t.Z * sw[:, None]
            rows = np.repeat(np.arange(len(t.codes)), k)
            cols = (t.codes[:, None] * k + np.arange(k)[None, :]).ravel()
            mats.append(
                sp.csc_matrix((E.ravel(), (rows, cols)), shape=(len(t.codes), t.n_levels * k))
            )
            blocks.append(TermBlock(t.group, t.names, t.n_levels, offset, t.structure))
            offset += t.n_levels * k
        Z = sp.hstack(mats).tocsc()
        return cls(X, y, Z, tuple(blocks), tuple(frame.fixed_names))

    def with_response(self, y: np.ndarray) -> LmmDesign:
        """The same design with another response (for the parametric bootstrap)."""
        new = object.__new__(LmmDesign)
        new.__dict__.update(self.__dict__)
        new.y = np.asarray(y, dtype=float)
        Xy = np.column_stack([self.X, new.y])
        new.ZtXy = np.asarray(self.Z.T @ Xy)
        new.XytXy = Xy.T @ Xy
        return new

    # ------------------------------------------------------------ parameters

    def theta_from_result(self, m: LmerEstimates) -> np.ndarray:
        """lme4's theta at the fit of ``m``."""
        return m.theta

    def _specs(self):
        return [t.spec for t in self.terms]

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """Each term's lower-triangular T_j from theta (the engine's own unpacking)."""
        from lme2sm.engine.theta import unpack_theta

        return unpack_theta(np.asarray(theta, dtype=float), self._specs())

    def theta_lower(self) -> np.ndarray:
        """lme4's lower bounds on theta: 0 on each factor's diagonal, -inf elsewhere."""
        from lme2sm.engine.theta import theta_lower

        return theta_lower(self._specs())

    def _entries(self, theta: np.ndarray) -> np.ndarray:
        """The lower triangles of every ``T_j``, column by column: ``theta`` itself when
        every term is lme4's unstructured one, else from the structures' factors."""
        if all(t.structure == "us" for t in self.terms):
            return theta
        return np.concatenate([lower_tri(T) for T in self.factors(theta)])

    def _template(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows, columns and index into :meth:`_entries` of Lambda's non-zeros (lme4's
        ``Lind``)."""
        rows, cols, idx = [], [], []
        start = 0
        for t in self.terms:
            for level in range(t.n_levels):
                base = t.offset + level * t.k
                i = start
                for c in range(t.k):
                    for r in range(c, t.k):
                        rows.append(base + r)
                        cols.append(base + c)
                        idx.append(i)
                        i += 1
            start += t.n_entries
        return np.array(rows), np.array(cols), np.array(idx)

    def lambda_matrix(self, theta: np.ndarray):
        """Lambda(theta): a vector (diagonal) for scalar-only models, else sparse."""
        theta = self._entries(np.asarray(theta, dtype=float))
        if self.scalar:
            lam = np.empty(self.q)
            for t, th in zip(self.terms, theta):
                lam[t.offset : t.offset + t.n_levels] = th
            return lam
        rows, cols, idx = self._lambda_template
        if self.q <= DENSE_Q:
            lam = np.zeros((self.q, self.q))
            lam[rows, cols] = theta[idx]
            return lam
        return sp.csr_matrix((theta[idx], (rows, cols)), shape=(self.q, self.q))

    # ---------------------------------------------------------------- evaluate

    def evaluate(self, theta: np.ndarray) -> Evaluation:
        lam = self.lambda_matrix(np.asarray(theta, dtype=float))
        if self.scalar:
            A = self.ZtZ * lam[:, None] * lam[None, :] + self._eye
            LZ = self.ZtXy * lam[:, None]
        elif isinstance(lam, np.ndarray):
            A = lam.T @ self.ZtZ @ lam + self._eye
            LZ = lam.T @ self.ZtXy
        else:
            lt = lam.T.tocsr()
            A = np.asarray(lt @ (lt @ self.ZtZ).T) + self._eye
            LZ = np.asarray(lt @ self.ZtXy)
        L = sla.cholesky(A, lower=True, check_finite=False)
        cu = sla.solve_triangular(L, LZ, lower=True, check_finite=False)
        M = self.XytXy - cu.T @ cu
        p = self.p
        mxx = M[:p, :p]
        if p:
            R = sla.cholesky(mxx, lower=True, check_finite=False)
            ldRX2 = 2.0 * float(np.sum(np.log(np.diag(R))))
            beta = sla.cho_solve((R, True), M[:p, p], check_finite=False)
            mxx_inv = sla.cho_solve((R, True), np.eye(p), check_finite=False)
            r2 = float(M[p, p] - M[p, :p] @ beta)
        else:
            ldRX2, beta, mxx_inv, r2 = 0.0, np.zeros(0), np.zeros((0, 0)), float(M[0, 0])
        ldL2 = 2.0 * float(np.sum(np.log(np.diag(L))))
        return Evaluation(ldL2, ldRX2, max(r2, 1e-300), beta, mxx_inv)

    def profiled_deviance(self, theta: np.ndarray, reml: bool) -> float:
        """-2 log-likelihood with beta and sigma profiled out (lme4's ``devfun``)."""
        ev = self.evaluate(theta)
        if reml:
            nmp = self.n - self.p
            return ev.ldL2 + ev.ldRX2 + nmp * (1 + LOG2PI + math.log(ev.r2 / nmp))
        return ev.ldL2 + self.n * (1 + LOG2PI + math.log(ev.r2 / self.n))

    def deviance_varpar(self, varpar: np.ndarray, reml: bool) -> float:
        """lmerTest's ``devfun_vp``: the deviance at ``(theta, sigma)``, beta profiled."""
        theta, sigma = varpar[:-1], float(varpar[-1])
        s2 = sigma * sigma
        ev = self.evaluate(theta)
        dev = ev.ldL2 + ev.r2 / s2 + self.n * (LOG2PI + math.log(s2))
        if reml:
            dev += ev.ldRX2 - self.p * (LOG2PI + math.log(s2))
        return dev

    def covbeta_varpar(self, varpar: np.ndarray) -> np.ndarray:
        """lmerTest's ``get_covbeta``: sigma^2 (X' V^-1 X)^-1 at ``(theta, sigma)``."""
        ev = self.evaluate(varpar[:-1])
        return float(varpar[-1]) ** 2 * ev.mxx_inv

    def sigma_hat(self, theta: np.ndarray, reml: bool) -> float:
        ev = self.evaluate(theta)
        return math.sqrt(ev.r2 / (self.n - self.p if reml else self.n))

    # ---------------------------------------------------------------- optimise

    def optimize(
        self, reml: bool, start: np.ndarray | None = None, polish: bool = True
    ) -> np.ndarray:
        """theta minimising the profiled deviance (diagonal >= 0, as lme4 bounds it)."""
        from scipy.optimize import minimize

        lower = self.theta_lower()
        x0 = np.where(lower == 0, 1.0, 0.0) if start is None else np.array(start, dtype=float)
        x0 = np.maximum(x0, lower)
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]

        def f(th):
            try:
                return self.profiled_deviance(th, reml)
            except np.linalg.LinAlgError:
                return np.inf

        best = minimize(
            f, x0, method="L-BFGS-B", bounds=bounds, options={"ftol": 1e-14, "gtol": 1e-9}
        )
        x, fx = best.x, best.fun
        if polish:
            res = minimize(
                f, x, method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-11, "maxfev": 4000}
            )
            if res.fun < fx:
                x, fx = res.x, res.fun
        # the deviance is even in each diagonal entry: report the non-negative one
        return np.where(lower == 0, np.abs(x), x)


def lower_tri(T: np.ndarray) -> np.ndarray:
    """Lower triangle of T column by column (lme4's theta order)."""
    k = T.shape[0]
    return np.array([T[r, c] for c in range(k) for r in range(c, k)])


def semidefinite_cholesky(S: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (zero columns allowed)."""
    S = np.asarray(S, dtype=float)
    k = S.shape[0]
    L = np.zeros_like(S)
    for j in range(k):
        d = S[j, j] - float(L[j, :j] @ L[j, :j])
        if d <= tol * max(1.0, abs(S[j, j])):
            continue  # a zero pivot: the column stays 0
        L[j, j] = math.sqrt(d)
        for i in range(j + 1, k):
            L[i, j] = (S[i, j] - float(L[i, :j] @ L[j, :j])) / L[j, j]
    return L
