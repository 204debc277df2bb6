r"""Profiled REML/ML likelihood for linear mixed models with scalar random-effects terms.

The formulation is lme4's (Bates, Maechler, Bolker & Walker 2015, J. Stat. Softw.
67(1), section 3); see ``/work/shared/ENGINE.md`` for the project's note on it.

Model
-----
:math:`y = X\beta + Zb + \varepsilon`, :math:`b = \Lambda_\theta u`,
:math:`u \sim N(0, \sigma^2 I)`, :math:`\varepsilon \sim N(0, \sigma^2 I)`. There are
``k`` scalar terms (``(1|g)`` or ``(0+x|g)``), :math:`Z = [Z_1 \dots Z_k]` with one
non-zero per row in each :math:`Z_j` (n x q_j), and
:math:`\Lambda_\theta = \mathrm{diag}(\theta_1 I_{q_1}, \dots, \theta_k I_{q_k})`,
:math:`\theta_j = \sigma_j / \sigma \ge 0`.

With :math:`A = \Lambda Z'Z\Lambda + I` the penalised least-squares problem
:math:`\min_{u,\beta} \|y - X\beta - Z\Lambda u\|^2 + \|u\|^2` has the normal equations

.. math::

    \begin{pmatrix} A & \Lambda Z'X \\ X'Z\Lambda & X'X \end{pmatrix}
    \begin{pmatrix} u \\ \beta \end{pmatrix} =
    \begin{pmatrix} \Lambda Z'y \\ X'y \end{pmatrix}.

Let :math:`L` be the lower Cholesky factor of :math:`A`, :math:`c = L^{-1}\Lambda Z'[X\,y]`
and :math:`M = [X\,y]'[X\,y] - c'c` (a (p+1) x (p+1) matrix). Then
:math:`R_X'R_X = M_{XX} = X'V^{-1}X` (with :math:`V = I + Z\Lambda\Lambda Z'`),
:math:`\hat\beta = M_{XX}^{-1} M_{Xy}` and the penalised residual sum of squares is
:math:`r^2 = M_{yy} - M_{yX}\hat\beta`. The profiled deviances are

.. math::

    d_{REML}(\theta) = \log|A| + \log|R_X'R_X| + (n-p)\,[1 + \log(2\pi r^2/(n-p))],

    d_{ML}(\theta) = \log|A| + n\,[1 + \log(2\pi r^2/n)],

:math:`\ell = -d/2` (lme4's ``logLik``; statsmodels' ``llf``), and
:math:`\hat\sigma^2 = r^2/(n-p)` (REML) or :math:`r^2/n` (ML).

Block elimination
-----------------
Term 1 is the term with most levels. Its block of :math:`A` is diagonal,
:math:`D = \theta_1^2\,\mathrm{diag}(Z_1'Z_1) + I`. With :math:`C = Z_r'Z_1` (sparse,
q_r x q_1, where ``r`` collects the other terms), :math:`G = Z_r'Z_r` and
:math:`w = \theta_1^2 / D`, the Schur complement is

.. math::

    S = I + \Lambda_r (G - C\,\mathrm{diag}(w)\,C') \Lambda_r, \qquad
    \log|A| = \textstyle\sum \log D + \log|S|,

and :math:`L = \begin{pmatrix} D^{1/2} & 0 \\ \Lambda_r C \theta_1 D^{-1/2} & L_S
\end{pmatrix}` with :math:`L_S L_S' = S`. Only the lower triangle of ``S`` is formed:
the products :math:`C_{as} C_{bs}` (a >= b) of every column ``s`` of ``C`` are
expanded once into a sparse matrix ``K`` so that the lower triangle of
:math:`C\,\mathrm{diag}(w)\,C'` is ``K @ w`` (one sparse mat-vec per evaluation).
Each evaluation is then: ``K @ w``, a dense q_r x q_r Cholesky, triangular solves with
p + 1 right-hand sides, and O(q) vector work. Nothing n-sized is touched after the
cross-products :math:`Z_j'Z_l, Z'X, Z'y, X'X, X'y, y'y` are formed (once, O(n)).

Gradient
--------
With :math:`\Phi = A^{-1}\Lambda Z'[X\,y]`, :math:`W = \Phi_X = \Lambda Z'V^{-1}X`,
:math:`\hat u = \Phi_y - W\hat\beta` and blocks ``j`` of these (rows of term j):

.. math::

    \frac{\partial d}{\partial\theta_j} = \frac{2}{\theta_j}\Big[
      q_j - \mathrm{tr}(A^{-1})_{jj}
      - \mathrm{tr}\big((R_X'R_X)^{-1} W_j'W_j\big)
      - f\,\|\hat u_j\|^2 / r^2 \Big],

with ``f = n - p`` (REML; ML: ``f = n`` and no :math:`W` term), and 0 at
:math:`\theta_j = 0` (the deviance is even in each :math:`\theta_j`). The diagonal
blocks of :math:`A^{-1}` need :math:`S^{-1}` (``dpotri``):
:math:`(A^{-1})_{rr} = S^{-1}` and
:math:`\mathrm{tr}(A^{-1})_{11} = \sum 1/D + \mathrm{tr}(S^{-1}P)`,
:math:`P = \Lambda_r C\,\mathrm{diag}(\theta_1^2/D^2)\,C'\Lambda_r` (again ``K @ ...``).

Conditional modes and covariances
---------------------------------
:math:`\hat b_j = \theta_j \hat u_j` (data scale),
:math:`\mathrm{cov}(\hat\beta) = \hat\sigma^2 (R_X'R_X)^{-1}` (lme4's ``vcov``).
:meth:`ProfiledDeviance.statsmodels_cov` gives the inverse negative Hessian that
statsmodels' ``MixedLM.fit`` uses for ``cov_params`` (in :math:`\beta` and
:math:`\gamma_j = \theta_j^2`): the :math:`\beta\beta` and :math:`\beta\gamma` blocks
analytically (:math:`H_{\beta\gamma_j} = -f\,W_j'\hat u_j / (\theta_j^2 r^2)`), the
profile Hessian in :math:`\gamma` by central differences of the analytic gradient.

Cost and memory limits
----------------------
Memory: three dense q_r x q_r float64 arrays (``G``, ``S``, and ``S^{-1}`` in the
gradient), i.e. about 24 q_r^2 bytes, plus ``K`` with
:math:`\sum_s m_s(m_s+1)/2` entries (m_s = distinct levels of the other terms met by
level s of term 1). Time per evaluation: about q_r^3 (Cholesky plus inverse). q_r is
the total number of levels of all terms except the largest, so two huge factors (say
20,000 levels each) make ``S`` 3.2 GB and each evaluation minutes long; the engine
refuses q_r > ``MAX_DENSE_LEVELS`` (20,000) by default. InstEval (q_r = 1,128) needs
about 30 MB.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse
from scipy.linalg import cho_factor, cho_solve, lapack

from ._threads import blas_threads
from .terms import ScalarTerm, term_matrix, term_values, validate_terms

__all__ = [
    "ProfiledFit",
    "ProfiledDeviance",
    "fit_profiled",
    "MAX_DENSE_LEVELS",
]

#: Largest q_r (levels of all terms but the largest) the dense Schur complement allows.
MAX_DENSE_LEVELS = 20_000

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class ProfiledFit:
    """The result of :func:`fit_profiled`.

    Attributes
    ----------
    theta : numpy.ndarray
        Relative standard deviations ``sigma_j / sigma``, one per term (input order).
    beta : numpy.ndarray
        Fixed effects.
    sigma : float
        Residual standard deviation.
    llf : float
        REML or ML log-likelihood (lme4's ``logLik``, statsmodels' ``llf``).
    cov_beta : numpy.ndarray
        ``sigma^2 (R_X'R_X)^{-1}`` (p x p), lme4's ``vcov``.
    modes : list of numpy.ndarray
        Conditional modes ``b_j`` per level of term j, on the data scale.
    n_evals : int
        Number of deviance evaluations (each with its gradient).
    converged : bool
        Whether the optimiser reported convergence.
    message : str
        The optimiser's message.
    gradient_norm : float
        Euclidean norm of the projected gradient of the deviance at ``theta``.
    reml : bool
        REML (True) or ML.
    deviance : float
        ``-2 llf``.
    cov_params : numpy.ndarray or None
        When requested: statsmodels' ``inv(-Hessian)`` of its profile log-likelihood
        in ``(beta, theta**2)``, (p + k) x (p + k); NaN rows for terms at the boundary.
    names : tuple of str
        Term names (input order).
    seconds : float
        Wall time of the fit.
    """

    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    llf: float
    cov_beta: np.ndarray
    modes: list
    n_evals: int
    converged: bool
    message: str
    gradient_norm: float
    reml: bool = True
    deviance: float = float("nan")
    cov_params: np.ndarray | None = None
    names: tuple = ()
    seconds: float = float("nan")

    @property
    def scale(self) -> float:
        """Residual variance ``sigma**2`` (statsmodels' ``scale``)."""
        return self.sigma**2

    @property
    def variances(self) -> np.ndarray:
        """Variance of every term, ``(sigma * theta)**2`` (statsmodels' ``vcomp``)."""
        return (self.sigma * self.theta) ** 2


@dataclass
class _Eval:
    """Everything one evaluation produced (internal term order)."""

    dev: float
    beta: np.ndarray
    r2: float
    rxx: np.ndarray
    grad: np.ndarray | None = None
    phi: np.ndarray | None = None
    u: np.ndarray | None = None


class ProfiledDeviance:
    """The profiled deviance of a scalar-terms mixed model, from cross-products.

    Parameters
    ----------
    y : numpy.ndarray
        Response, length n.
    X : numpy.ndarray
        Fixed-effects design, n x p (full column rank).
    terms : sequence of ScalarTerm
        The random-effects terms.
    reml : bool
        REML (True) or ML deviance.
    max_dense_levels : int
        Refuse models whose dense Schur complement would exceed this size.

    Notes
    -----
    ``theta`` arguments are in the order of ``terms``; internally the term with most
    levels comes first (see the module docstring).
    """

    def __init__(
        self,
        y: np.ndarray,
        X: np.ndarray,
        terms: Sequence[ScalarTerm],
        reml: bool = True,
        max_dense_levels: int = MAX_DENSE_LEVELS,
    ) -> None:
        y = np.asarray(y, dtype=np.float64).ravel()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        n = y.shape[0]
        if X.shape[0] != n:
            raise ValueError(f"X has {X.shape[0]} rows, y has {n}")
        if not (np.all(np.isfinite(y)) and np.all(np.isfinite(X))):
            raise ValueError("y and X must be finite")
        terms = list(terms)
        validate_terms(terms, n)
        self.n, self.p, self.k = n, X.shape[1], len(terms)
        self.reml = bool(reml)
        if n <= self.p:
            raise ValueError("need more rows than fixed effects")
        self.names = tuple(t.name for t in terms)
        self.q = np.array([t.n_levels for t in terms], dtype=np.int64)

        # internal order: the term with most levels first, then the others as given
        first = int(np.argmax(self.q))
        self.order = np.array([first] + [j for j in range(self.k) if j != first])
        self.q_int = self.q[self.order]
        self.q1 = int(self.q_int[0])
        self.qr = int(self.q_int[1:].sum())
        if self.qr > max_dense_levels:
            raise ValueError(
                f"the terms other than the largest have {self.qr} levels in total; the "
                f"dense Schur complement ({self.qr} x {self.qr}) exceeds the limit of "
                f"{max_dense_levels} (memory ~{24 * self.qr**2 / 1e9:.1f} GB)"
            )
        # rest_block[i]: which rest term (0-based among terms 2..k) column i belongs to
        self.rest_block = np.repeat(np.arange(self.k - 1), self.q_int[1:])
        self.offsets = np.concatenate([[0], np.cumsum(self.q_int)])

        yX = np.empty((n, self.p + 1))
        yX[:, : self.p] = X
        yX[:, self.p] = y
        self.XyXy = yX.T @ yX

        t1 = terms[first]
        c1 = np.asarray(t1.codes, dtype=np.int64)
        v1 = term_values(t1, n)
        self.d1 = np.bincount(c1, weights=v1 * v1, minlength=self.q1)
        Z1 = term_matrix(t1, n)
        self.Z1Xy = np.asarray(Z1.T @ yX)

        if self.qr:
            rest = [terms[j] for j in self.order[1:]]
            kr = len(rest)
            idx = np.empty((n, kr), dtype=np.int64)
            val = np.empty((n, kr))
            for b, (t, off) in enumerate(zip(rest, self.offsets[1:-1], strict=True)):
                idx[:, b] = np.asarray(t.codes, dtype=np.int64) + (off - self.q1)
                val[:, b] = term_values(t, n)
            Zr = sparse.csr_array(
                (val.ravel(), idx.ravel(), np.arange(0, n * kr + 1, kr)), shape=(n, self.qr)
            )
            self.ZrXy = np.asarray(Zr.T @ yX)
            self.C = sparse.csr_array(Zr.T @ Z1)  # q_r x q_1
            self.C.sum_duplicates()
            self.CT = sparse.csr_array(self.C.T)
            G = sparse.csr_array(Zr.T @ Zr).tocoo()
            low = G.row >= G.col
            self.G_low = np.zeros((self.qr, self.qr), order="F")
            self.G_low[G.row[low], G.col[low]] = G.data[low]
            self._build_k()
        self.n_evals = 0

    # ------------------------------------------------------------------ setup
    def _build_k(self) -> None:
        """Expand the lower triangle of C diag(w) C' into K (positions x q_1)."""
        qr = self.qr
        C = sparse.csc_array(self.C)
        C.sort_indices()
        it = np.int32 if qr * qr < 2**31 and C.nnz < 2**31 else np.int64
        indptr = C.indptr.astype(np.int64)
        rows = C.indices.astype(it)
        vals = C.data
        nnz = rows.size
        per_col = np.diff(indptr)
        col_of = np.repeat(np.arange(self.q1, dtype=it), per_col)
        counts = np.arange(nnz, dtype=np.int64) - indptr[col_of] + 1  # local index + 1
        kindptr = np.concatenate([[0], np.cumsum(per_col * (per_col + 1) // 2)])
        total = int(kindptr[-1])
        # entry e pairs with the entries of its column up to itself (rows sorted, so the
        # partner's row b <= a): partner = t - (first pair of e) + (first entry of col)
        shift = (np.cumsum(counts) - counts - indptr[col_of]).astype(np.int64)
        partner = np.arange(total, dtype=np.int64)
        partner -= np.repeat(shift, counts)
        e = np.repeat(np.arange(nnz, dtype=it), counts)
        del shift, counts
        kvals = vals[e] * vals[partner]
        pos = rows[e].astype(it)
        pos += rows[partner] * it(qr)  # Fortran-order flat index of (a, b), a >= b
        del partner, e
        mark = np.zeros(qr * qr, dtype=bool)
        mark[pos] = True
        self.upos = np.flatnonzero(mark)
        rank = (np.cumsum(mark, dtype=np.int64) - 1).astype(it)
        del mark
        kidx = rank[pos]
        del rank, pos
        # entries come grouped by column of C and are distinct within a column, so a
        # CSC matrix needs no sorting; CSR (one conversion, O(nnz)) makes K @ w a
        # gather, which is faster than CSC's scatter for large K.
        self.K = sparse.csc_array((kvals, kidx, kindptr), shape=(self.upos.size, self.q1)).tocsr()
        self.ua = self.upos % qr
        self.ub = self.upos // qr
        self.uw = np.where(self.ua == self.ub, 1.0, 2.0)

    # ------------------------------------------------------------- evaluation
    def _theta_internal(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=np.float64).ravel()
        if theta.shape != (self.k,):
            raise ValueError(f"theta must have {self.k} entries")
        return theta[self.order]

    def _evaluate(self, theta: np.ndarray, grad: bool = False, solution: bool = False) -> _Eval:
        """Deviance (and gradient, and solution pieces) at ``theta`` (user order)."""
        self.n_evals += 1
        th = self._theta_internal(theta)
        p, q1, qr = self.p, self.q1, self.qr
        t1 = th[0]
        D = t1 * t1 * self.d1 + 1.0
        sqD = np.sqrt(D)
        v1 = t1 * self.Z1Xy
        c1 = v1 / sqD[:, None]
        logdet_a = float(np.log(D).sum())
        M = self.XyXy - c1.T @ c1
        L = lam = None
        if qr:
            lam = th[1:][self.rest_block]
            S = self.G_low.copy(order="F")
            sflat = S.ravel(order="F")
            kw = None
            if t1 != 0.0:
                if grad:  # one pass over K for S and for P (gradient)
                    w2 = np.empty((self.q1, 2))
                    w2[:, 0] = t1 * t1 / D
                    w2[:, 1] = w2[:, 0] / D
                    kw = self.K @ w2
                    sflat[self.upos] -= kw[:, 0]
                else:
                    sflat[self.upos] -= self.K @ (t1 * t1 / D)
            S *= lam[:, None]
            S *= lam[None, :]
            sflat[:: qr + 1] += 1.0
            L, info = lapack.dpotrf(S, lower=1, clean=0, overwrite_a=1)
            if info != 0:
                raise np.linalg.LinAlgError(f"Cholesky of the Schur complement failed ({info})")
            logdet_a += 2.0 * float(np.log(np.diagonal(L)).sum())
            rhs = lam[:, None] * (self.ZrXy - self.C @ (t1 * v1 / D[:, None]))
            cr, info = lapack.dtrtrs(L, rhs, lower=1)
            M -= cr.T @ cr
        # fixed effects: M = [[X'V^-1X, X'V^-1y], [., y'V^-1y]]
        rxx = M[:p, :p]
        if p:
            try:
                cf = cho_factor(rxx, lower=False)
            except np.linalg.LinAlgError as exc:
                raise np.linalg.LinAlgError("X'V^-1X is not positive definite") from exc
            beta = cho_solve(cf, M[:p, p])
            logdet_rx = 2.0 * float(np.log(np.abs(np.diagonal(cf[0]))).sum())
        else:
            beta = np.zeros(0)
            logdet_rx = 0.0
        r2 = float(M[p, p] - M[:p, p] @ beta)
        if not r2 > 0:
            raise np.linalg.LinAlgError("penalised residual sum of squares is not positive")
        fac = self.n - p if self.reml else self.n
        dev = logdet_a + fac * (1.0 + _LOG_2PI + math.log(r2 / fac))
        if self.reml:
            dev += logdet_rx
        out = _Eval(dev=dev, beta=beta, r2=r2, rxx=rxx)
        if not (grad or solution):
            return out

        # full solve Phi = A^{-1} Lambda Z'[X y] (internal order: term 1 rows, then rest)
        phi = np.empty((q1 + qr, p + 1))
        if qr:
            phir, info = lapack.dtrtrs(L, cr, lower=1, trans=1)
            phi[q1:] = phir
            back = t1 * (self.CT @ (lam[:, None] * phir))
            phi[:q1] = (c1 - back / sqD[:, None]) / sqD[:, None]
        else:
            phi[:q1] = c1 / sqD[:, None]
        u = phi[:, p] - phi[:, :p] @ beta
        out.phi, out.u = phi, u
        if not grad:
            return out

        # diagonal blocks of A^{-1}
        tr_ainv = np.empty(self.k)
        tr_ainv[0] = float((1.0 / D).sum())
        if qr:
            sinv, info = lapack.dpotri(L, lower=1, overwrite_c=1)
            sinv_flat = sinv.ravel(order="F")
            tr_ainv[1:] = np.bincount(
                self.rest_block, weights=np.diagonal(sinv), minlength=self.k - 1
            )
            if kw is not None:
                pvals = kw[:, 1]
                tr_ainv[0] += float(
                    np.sum(self.uw * sinv_flat[self.upos] * pvals * lam[self.ua] * lam[self.ub])
                )
        rinv = cho_solve(cf, np.eye(p)) if p else np.zeros((0, 0))
        g = np.zeros(self.k)
        for j in range(self.k):
            tj = th[j]
            if tj == 0.0:
                continue
            sl = slice(self.offsets[j], self.offsets[j + 1])
            val = self.q_int[j] - tr_ainv[j] - fac * float(u[sl] @ u[sl]) / r2
            if self.reml and p:
                wj = phi[sl, :p]
                val -= float(np.sum(rinv * (wj.T @ wj)))
            g[j] = 2.0 * val / tj
        grad_user = np.empty(self.k)
        grad_user[self.order] = g
        out.grad = grad_user
        return out

    def deviance(self, theta: np.ndarray) -> float:
        """Profiled deviance (-2 log-likelihood) at ``theta``.

        Parameters
        ----------
        theta : numpy.ndarray
            Relative standard deviations, one per term.

        Returns
        -------
        float
            The REML or ML deviance.
        """
        return self._evaluate(theta).dev

    def deviance_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Profiled deviance and its analytic gradient in ``theta``.

        Parameters
        ----------
        theta : numpy.ndarray
            Relative standard deviations, one per term.

        Returns
        -------
        tuple
            ``(deviance, gradient)``.
        """
        ev = self._evaluate(theta, grad=True)
        return ev.dev, ev.grad

    # -------------------------------------------------------------- results
    def modes(self, theta: np.ndarray) -> list[np.ndarray]:
        """Conditional modes ``b_j = theta_j u_j`` per term (user order).

        Parameters
        ----------
        theta : numpy.ndarray
            Relative standard deviations.

        Returns
        -------
        list of numpy.ndarray
            One array of length q_j per term.
        """
        ev = self._evaluate(theta, solution=True)
        return self._modes_from(theta, ev)

    def _modes_from(self, theta: np.ndarray, ev: _Eval) -> list[np.ndarray]:
        th = self._theta_internal(theta)
        out: list[np.ndarray] = [np.zeros(0)] * self.k
        for j in range(self.k):
            sl = slice(self.offsets[j], self.offsets[j + 1])
            out[self.order[j]] = th[j] * ev.u[sl]
        return out

    def statsmodels_cov(self, theta: np.ndarray, rel_step: float = 1e-4) -> np.ndarray:
        """``inv(-H)`` of statsmodels' profile log-likelihood in ``(beta, theta**2)``.

        statsmodels' ``MixedLM.fit`` computes this Hessian (``MixedLM.hessian``) at the
        optimum and stores ``inv(-H)`` as ``cov_params``. Terms with ``theta_j`` at the
        boundary (below 1e-6) are held fixed: their rows and columns are NaN.

        Parameters
        ----------
        theta : numpy.ndarray
            The optimum (user order).
        rel_step : float
            Relative step in ``theta_j**2`` for the central differences.

        Returns
        -------
        numpy.ndarray
            (p + k) x (p + k) matrix; rows and columns are fixed effects, then terms.
        """
        theta = np.asarray(theta, dtype=np.float64)
        p, k = self.p, self.k
        fac = self.n - p if self.reml else self.n
        ev = self._evaluate(theta, solution=True)
        th_int = self._theta_internal(theta)
        h_bb = -fac * ev.rxx / ev.r2
        free = np.flatnonzero(theta > 1e-6)
        h_bg = np.zeros((p, free.size))
        inv_order = np.empty(k, dtype=np.int64)
        inv_order[self.order] = np.arange(k)
        for a, j in enumerate(free):
            ji = inv_order[j]
            sl = slice(self.offsets[ji], self.offsets[ji + 1])
            h_bg[:, a] = -fac * (ev.phi[sl, :p].T @ ev.u[sl]) / (th_int[ji] ** 2 * ev.r2)
        gamma = theta**2
        hp = np.zeros((free.size, free.size))
        for a, j in enumerate(free):
            h = rel_step * gamma[j]
            cols = []
            for sign in (1.0, -1.0):
                gam = gamma.copy()
                gam[j] += sign * h
                th = np.sqrt(gam)
                gr = self._evaluate(th, grad=True).grad
                cols.append(gr[free] / (2.0 * th[free]))
            hp[:, a] = (cols[0] - cols[1]) / (2.0 * h)
        hp = -0.25 * (hp + hp.T)  # l = -d/2, symmetrised
        h_gg = hp + h_bg.T @ np.linalg.solve(h_bb, h_bg) if p else hp
        H = np.zeros((p + free.size, p + free.size))
        H[:p, :p] = h_bb
        H[:p, p:] = h_bg
        H[p:, :p] = h_bg.T
        H[p:, p:] = h_gg
        pcov_free = np.linalg.inv(-H)
        keep = np.concatenate([np.arange(p), p + free])
        pcov = np.full((p + k, p + k), np.nan)
        pcov[np.ix_(keep, keep)] = pcov_free
        return pcov


def fit_profiled(
    y: np.ndarray,
    X: np.ndarray,
    terms: Sequence[ScalarTerm],
    reml: bool = True,
    start: np.ndarray | None = None,
    *,
    threads: int | None = 1,
    maxiter: int = 500,
    variance_cov: bool = False,
) -> ProfiledFit:
    """Fit a mixed model with scalar random-effects terms by profiled REML or ML.

    Parameters
    ----------
    y : numpy.ndarray
        Response, length n.
    X : numpy.ndarray
        Fixed-effects design, n x p.
    terms : sequence of ScalarTerm
        The random-effects terms (crossed or nested, intercepts or slopes).
    reml : bool
        REML (default) or ML.
    start : numpy.ndarray, optional
        Starting ``theta`` (one entry per term, >= 0); default all ones (as lme4).
    threads : int or None
        BLAS threads during the fit (default 1, much faster here); None leaves the
        BLAS setting alone.
    maxiter : int
        Maximum L-BFGS-B iterations per run.
    variance_cov : bool
        Also compute statsmodels' ``cov_params`` (see
        :meth:`ProfiledDeviance.statsmodels_cov`); costs 2 evaluations per term.

    Returns
    -------
    ProfiledFit
        Estimates, log-likelihood, covariance of the fixed effects, modes.
    """
    t0 = time.perf_counter()
    with blas_threads(threads):
        dev = ProfiledDeviance(y, X, terms, reml=reml)
        k = dev.k
        x0 = np.ones(k) if start is None else np.maximum(np.asarray(start, float).ravel(), 0.0)
        if x0.shape != (k,):
            raise ValueError(f"start must have {k} entries")
        theta, fval, conv, msg = _optimise(dev, x0, maxiter)
        ev = dev._evaluate(theta, grad=True)  # also the solution (phi, u)
        g = ev.grad
        pg = np.where(theta > 0, g, np.minimum(g, 0.0))
        fac = dev.n - dev.p if reml else dev.n
        sigma2 = ev.r2 / fac
        cov_beta = sigma2 * np.linalg.inv(ev.rxx) if dev.p else np.zeros((0, 0))
        modes = dev._modes_from(theta, ev)
        n_evals = dev.n_evals
        cov_params = dev.statsmodels_cov(theta) if variance_cov else None
    return ProfiledFit(
        theta=theta,
        beta=ev.beta,
        sigma=math.sqrt(sigma2),
        llf=-0.5 * ev.dev,
        cov_beta=cov_beta,
        modes=modes,
        n_evals=n_evals,
        converged=conv,
        message=msg,
        gradient_norm=float(np.linalg.norm(pg)),
        reml=bool(reml),
        deviance=ev.dev,
        cov_params=cov_params,
        names=dev.names,
        seconds=time.perf_counter() - t0,
    )


def _optimise(dev: ProfiledDeviance, x0: np.ndarray, maxiter: int) -> tuple:
    """L-BFGS-B on theta >= 0 with the analytic gradient, plus a boundary check."""

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        return dev.deviance_and_gradient(x)

    bounds = [(0.0, None)] * dev.k
    opts = {"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-7 * max(dev.n, 1), "maxls": 40}
    res = optimize.minimize(fg, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
    best_x, best_f = np.maximum(res.x, 0.0), float(res.fun)
    conv, msg = bool(res.success), str(res.message)
    # theta_j = 0 is always a stationary point (the deviance is even in theta_j):
    # make sure a term at the boundary really belongs there.
    for _ in range(dev.k):
        moved = False
        for j in np.flatnonzero(best_x < 1e-4):
            trial = best_x.copy()
            trial[j] = 0.1
            res2 = optimize.minimize(
                fg, trial, jac=True, method="L-BFGS-B", bounds=bounds, options=opts
            )
            if res2.fun < best_f - 1e-9 * abs(best_f):
                best_x, best_f = np.maximum(res2.x, 0.0), float(res2.fun)
                conv, msg = bool(res2.success), str(res2.message)
                moved = True
        if not moved:
            break
    return best_x, best_f, conv, msg
