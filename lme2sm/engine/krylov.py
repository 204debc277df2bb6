r"""An approximate profiled deviance for crossed designs too large for the exact factor.

Opt-in (``lmer(..., factor="krylov")``, issue #21): nothing is factorised but the first
term's block-diagonal block. With the terms split into the largest one (``1``, its
diagonal block :math:`A_{11}` is block diagonal, one k x k block per level) and the rest
(``r``),

.. math::

    A = \Lambda'Z'Z\Lambda + I = \begin{pmatrix} A_{11} & A_{r1}' \\ A_{r1} & A_{rr}
    \end{pmatrix}, \qquad S = A_{rr} - A_{r1} A_{11}^{-1} A_{r1}',

:math:`\log|A| = \log|A_{11}| + \log|S|`, and :math:`S` is only ever applied to vectors
(sparse products with :math:`Z'Z`'s blocks, never formed):

* **solves** (the penalised least squares for :math:`[X\,y]`, the modes): conjugate
  gradients on :math:`S`, preconditioned by its diagonal blocks (block Jacobi: one
  k x k block per level of each rest term; :math:`A_{11}` is eliminated exactly, block
  by block), to a relative residual of :data:`RTOL` per column. The quadratic form
  :math:`C'A^{-1}C` is taken as :math:`2\,\mathrm{sym}(w'c) - w'Sw`, whose error is
  quadratic in the solve's (``-(w - w^*)'S(w - w^*)``): at 1e-8 the deviance is exact
  to rounding.
* **log|S|** is the approximation: the log-determinants of :math:`S`'s diagonal blocks
  exactly, plus :math:`\mathrm{tr}\log M` of the scaled :math:`M = L^{-1} S L^{-T}`
  (L: the blocks' Cholesky factors, so M has identity diagonal blocks) by stochastic
  Lanczos quadrature (Ubaru, Chen & Saad 2017): ``probes`` Rademacher vectors drawn
  once (seeded) and kept for every ``theta``, and a fixed number of Lanczos steps, so
  the estimate is a smooth function of ``theta`` that the optimiser can follow. Two
  variance reductions (:func:`deflated_logdet`): a deflation subspace whose trace is
  taken without probes (it catches the outlying eigenvalues: on MovieLens-shaped data
  one eigenvalue of M is far below the rest, and deflating it cuts the error 100-fold),
  and the control variate :math:`z'(M - I)z`, whose mean is known exactly
  (:math:`\mathrm{tr}(M - I) = 0`): it removes the first-order term of
  :math:`\log M = (M - I) - (M - I)^2/2 + \dots`. The spread of the probes'
  estimates gives a standard error of the log-determinant, reported on the fit.

The fixed effects, ``theta`` and ``sigma`` follow from the approximate deviance; its
error is nearly the same at every ``theta`` (the probes are fixed), so the optimum moves
much less than the logLik is off. Measured figures: ``benchmarks/krylov_crossed.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from lme2sm.engine.crossprod import CrossProducts
from lme2sm.engine.driver import FitDriver
from lme2sm.engine.krylov_ops import CrossedBlock, KrylovSystem
from lme2sm.engine.record import Evaluation, LmmFit, profiled_criteria
from lme2sm.engine.structure import off_block
from lme2sm.engine.theta import TermSpec, theta_lower, unpack_theta

__all__ = [
    "DEFLATE",
    "KRYLOV_HINT",
    "KrylovLMM",
    "PROBES",
    "RTOL",
    "SMALL_NNZ",
    "STEPS",
    "deflated_logdet",
    "pcg",
]
__all__ += ["slq_quadrature"]

KRYLOV_HINT = (
    "lmer(..., factor='krylov') fits such crossed designs approximately (conjugate "
    "gradients and a stochastic log-determinant; its logLik is approximate)"
)
"""Appended to the exact factor's refusal of a too-large dense block (in memory and
beyond it)."""

PROBES = 16
"""Rademacher probes of the log-determinant (fixed across theta). Measured on 1M
MovieLens-shaped rows at theta = (0.8, 0.5), five seeds: deviance error rms 4e-4 with 32
probes, 6e-4 with 16, 2e-3 with 8; the stated SE tracks it (|err|/SE 0.6-1.3)."""
STEPS = 6
"""Lanczos steps per probe (fixed, so the estimate is smooth in theta). 6, 10, 15 and
20 steps gave the same deviance to 1e-4 at 1M and 30M rows (block Jacobi leaves M's
spectrum clustered: PCG converges in 5-6 iterations)."""
DEFLATE = 2
"""Columns of the deflation subspace (its trace is taken without probes). One outlying
eigenvalue: 1, 2, 4 or 16 columns gave the same error at 1M; none gave rms 0.88."""
POWER = 1
"""Subspace-iteration rounds that build the deflation subspace."""
SMALL_NNZ = 200_000
"""Below this many stored level x level pairs, 32 probes, 20 steps and 16 deflated
columns (cheap there; on InstEval's 348 x 276 design 16 probes moved a fixed effect
5e-4 relative from lme4's, 32 keep it within 1e-4)."""
RTOL = 1e-8
"""Relative residual at which conjugate gradients stop, per right-hand side."""
MAXITER = 1000


def pcg(apply, precond, B: np.ndarray, rtol: float = RTOL, maxiter: int = MAXITER, x0=None):
    """Preconditioned conjugate gradients on every column of ``B`` at once; ``(X,
    iterations)``. ``precond`` applies the preconditioner's inverse to a block of
    columns (an array: the diagonal, Jacobi). Columns that have converged stop moving.
    ``x0``: a starting guess (the last theta's solution), same shape as ``B``."""
    if isinstance(precond, np.ndarray):
        diag = precond

        def precond(V):
            return V / diag[:, None]

    bnorm = np.linalg.norm(B, axis=0)
    if x0 is not None and x0.shape == B.shape:
        X = np.where(bnorm > 0, x0, 0.0)
        R = B - apply(X)
    else:
        X = np.zeros_like(B)
        R = B.copy()
    active = bnorm > 0
    active &= np.linalg.norm(R, axis=0) > rtol * bnorm
    Zp = precond(R)
    P = Zp.copy()
    rz = np.einsum("ij,ij->j", R, Zp)
    for it in range(1, maxiter + 1):
        if not active.any():
            return X, it - 1
        AP = apply(P[:, active])
        pap = np.einsum("ij,ij->j", P[:, active], AP)
        alpha = np.where(pap > 0, rz[active] / np.where(pap > 0, pap, 1.0), 0.0)
        X[:, active] += alpha * P[:, active]
        R[:, active] -= alpha * AP
        done = np.linalg.norm(R[:, active], axis=0) <= rtol * bnorm[active]
        idx = np.flatnonzero(active)
        Zp = precond(R[:, idx])
        rz_new = np.einsum("ij,ij->j", R[:, idx], Zp)
        P[:, idx] = Zp + (rz_new / np.where(rz[idx] > 0, rz[idx], 1.0)) * P[:, idx]
        rz[idx] = rz_new
        active[idx[done]] = False
    return X, maxiter


def slq_quadrature(apply, V: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Lanczos on the SPD operator ``apply`` from each unit column of ``V`` (all at
    once, no reorthogonalisation, ``steps`` steps unless a column's Krylov space is
    exhausted first); for each column ``v``, the Gauss quadrature of ``v' log(M) v``
    and ``v'Mv`` (the control variate)."""
    q, k = V.shape
    steps = max(1, min(steps, q))
    alphas = np.zeros((steps, k))
    betas = np.zeros((steps, k))
    length = np.full(k, steps)
    V_prev = np.zeros_like(V)
    beta = np.zeros(k)
    for j in range(steps):
        W = apply(V) - beta * V_prev
        a = np.einsum("ij,ij->j", V, W)
        W -= a * V
        alphas[j] = a
        beta = np.linalg.norm(W, axis=0)
        ended = (beta <= 1e-10 * np.abs(a)) & (length == steps)
        length[ended] = j + 1
        if j == steps - 1:
            break
        betas[j] = beta
        safe = np.where(beta > 0, beta, 1.0)
        V_prev, V = V, np.where(length > j + 1, W / safe, 0.0)
        beta = np.where(length > j + 1, beta, 0.0)
    quad = np.empty(k)
    for c in range(k):
        m = int(length[c])
        ev, U = sla.eigh_tridiagonal(alphas[:m, c], betas[: m - 1, c])
        quad[c] = float(np.sum(U[0] ** 2 * np.log(np.maximum(ev, 1e-300))))
    return quad, alphas[0]


def deflated_logdet(apply, V: np.ndarray, Omega: np.ndarray | None, steps: int, power: int):
    """tr log M for the SPD operator ``apply`` (unit diagonal): ``(exact part,
    per-probe estimates of the rest)``, the estimate being their sum's mean.

    Hutch++-like (Meyer, Musco, Musco & Woodruff 2021): an orthonormal Q (subspace
    iteration on I - M from the fixed ``Omega``, ``power`` rounds) catches the outlying
    eigenvalues (a crossed design's common "popularity" direction gives one eigenvalue
    far below the rest), ``tr(Q' log(M) Q)`` is taken column by column by Lanczos
    quadrature (no randomness), and the probes ``V`` (unit Rademacher columns),
    projected off Q, estimate the rest, each with the control variate
    ``z'(M - I)z``, whose mean over the complement of Q is known exactly."""
    q = V.shape[0]
    exact, known = 0.0, 0.0
    Z = V * math.sqrt(q)
    if Omega is not None and Omega.shape[1]:
        Q = np.linalg.qr(Omega - apply(Omega))[0]
        for _ in range(power):
            Q = np.linalg.qr(Q - apply(Q))[0]
        quad_q, first_q = slq_quadrature(apply, Q, steps)
        exact = float(np.sum(quad_q))
        known = float(Q.shape[1] - np.sum(first_q))  # tr(P (M - I) P) = -tr(Q'(M - I)Q)
        Z = Z - Q @ (Q.T @ Z)
    norms2 = np.einsum("ij,ij->j", Z, Z)
    quad, first = slq_quadrature(apply, Z / np.sqrt(norms2), steps)
    return exact, norms2 * quad - (norms2 * (first - 1.0) - known)


class KrylovLMM(FitDriver):
    """The approximate profiled deviance (see the module docstring), with the exact
    engine's optimiser (:class:`~lme2sm.engine.driver.FitDriver`) around it.

    Parameters
    ----------
    cp, specs : as for :class:`~lme2sm.engine.lmm.ProfiledLMM`.
    probes, steps, rtol, seed : the log-determinant's probes and Lanczos steps, the
        solves' tolerance, the probes' seed.
    """

    def __init__(
        self,
        cp: CrossProducts,
        specs: Sequence[TermSpec],
        *,
        probes: int | None = None,
        steps: int | None = None,
        deflate: int | None = None,
        power: int | None = None,
        rtol: float = RTOL,
        seed: int = 20260421,
        warm: bool = True,
    ):
        self.specs = tuple(specs)
        self.cp = cp
        self.lower = theta_lower(self.specs)
        self.n_theta = len(self.lower)
        self.n, self.p = cp.n, cp.p
        sizes = [s.n_levels * s.k for s in self.specs]
        self.first = int(np.argmax(sizes))
        self.rest = [j for j in range(len(self.specs)) if j != self.first]
        self.m_rest = sum(sizes[j] for j in self.rest)
        self._assemble()
        nnz = self.Bop.nnz if self.rest else 0
        small = nnz < SMALL_NNZ  # accuracy is cheap there: the first defaults
        defaults = (32, 20, 16, 3) if small else (PROBES, STEPS, DEFLATE, POWER)
        given = (probes, steps, deflate, power)
        probes, steps, deflate, power = (d if g is None else g for g, d in zip(given, defaults))
        self.probes, self.steps, self.rtol = probes, steps, rtol
        self.deflate, self.power = deflate, power
        rng = np.random.default_rng(seed)
        m = max(self.m_rest, 1)
        self.V0 = rng.choice([-1.0, 1.0], size=(m, probes)) / math.sqrt(m)
        r = min(deflate, m // 2)
        self.Omega = rng.standard_normal((m, r)) if r else None
        self.cg_iterations: list[int] = []
        self.counts = {"products": 0, "evaluations": 0, "logdet_s": 0.0, "solve_s": 0.0}
        """Columns multiplied by S, evaluations, CPU seconds in log|S| and in the solves."""
        self.warm = warm
        self._warm = None
        self.last_logdet_se = 0.0

    def _assemble(self) -> None:
        """Z'Z's blocks the products need (from the cross-products, once)."""
        cp, specs, first, rest = self.cp, self.specs, self.first, self.rest
        self.C = [np.asarray(cp.zxy[j]).reshape(self.p + 1, -1).T for j in range(len(specs))]
        if not rest:
            return
        self.C_rest = np.vstack([self.C[j] for j in rest])
        rows = []
        for j in rest:
            row = []
            for j2 in rest:
                if j2 == j:
                    row.append(sp.block_diag(list(cp.diag[j]), format="csr"))
                else:
                    row.append(off_block(cp, j, j2))
            rows.append(row)
        self.ZtZ_rest = sp.bmat(rows, format="csr")
        self.Bop = CrossedBlock(sp.vstack([off_block(cp, j, first) for j in rest], format="csc"))

    @property
    def approximation(self) -> str:
        """How the deviance is approximated (without the uncertainty), for the record."""
        return (
            f"log|L|^2 by stochastic Lanczos quadrature ({self.probes} fixed probes, "
            f"{self.steps} steps, {self.deflate} deflated directions), solves by conjugate "
            f"gradients (rtol {self.rtol:g})"
        )

    # ------------------------------------------------------------ evaluation

    def _logdet_rest(self, system: KrylovSystem) -> float:
        """log|S|: its diagonal blocks' log-determinants exactly, then tr log M
        (M = L^-1 S L^-T, L the blocks' Cholesky factors) as
        the exact-quadrature trace on a deflation subspace plus SLQ with the control
        variate on the rest (:func:`deflated_logdet`); the probes' standard error is
        kept in ``last_logdet_se``."""
        sc = system.scaling

        def scaled(V):
            return sc.left(system.schur(sc.right(V)))

        trace, estimates = deflated_logdet(scaled, self.V0, self.Omega, self.steps, self.power)
        root = math.sqrt(len(estimates))
        spread = float(np.std(estimates, ddof=1)) if len(estimates) > 1 else 0.0
        self.last_logdet_se = spread / root
        return float(sc.logdet + trace + np.mean(estimates))

    def _solve(self, system: KrylovSystem, C1: np.ndarray, Cr: np.ndarray):
        """A^-1 [C1; Cr] by the Schur route, and C'A^-1C (second-order accurate). The
        conjugate gradients start from the last evaluation's solution (``warm``)."""
        H1 = system.solve11(C1)
        Q = C1.T @ H1
        if self.m_rest == 0:
            return H1, None, Q
        ctil = Cr - system.a_r1(H1)
        w, it = pcg(system.schur, system.scaling.precond, ctil, self.rtol, x0=self._warm)
        if self.warm:
            self._warm = w
        self.cg_iterations.append(it)
        wc = w.T @ ctil
        Qr = wc + wc.T - w.T @ system.schur(w)
        W1 = system.solve11(C1 - system.a_1r(w))
        return W1, w, Q + 0.5 * (Qr + Qr.T)

    def _evaluate(self, theta, factors: list[np.ndarray], modes: bool) -> Evaluation:
        system = KrylovSystem(self, factors)
        counts, t0 = self.counts, time.process_time()
        counts["evaluations"] += 1
        ld = system.logdet11 + (self._logdet_rest(system) if self.m_rest else 0.0)
        t1 = time.process_time()
        C1 = system.lam1(self.C[self.first], True)
        Cr = system.lam_rest(self.C_rest, True) if self.rest else None
        W1, Wr, Q = self._solve(system, C1, Cr)
        counts["logdet_s"] += t1 - t0
        counts["solve_s"] += time.process_time() - t1
        G = self.cp.xy - Q
        p = self.p
        if p:
            RX = sla.cholesky(G[:p, :p], lower=False)  # raises LinAlgError if not PD
            beta = sla.cho_solve((RX, False), G[:p, p])
            ldRX2 = 2.0 * float(np.sum(np.log(np.diag(RX))))
        else:
            RX, beta, ldRX2 = np.zeros((0, 0)), np.zeros(0), 0.0
        r2 = float(G[p, p] - G[:p, p] @ beta)
        dev_reml, dev_ml = self._criteria(ld, ldRX2, r2)
        cp = self.cp
        shifted = beta if cp.beta_shift is None else beta + cp.beta_shift
        ev = Evaluation(theta, ld, ldRX2, r2, shifted, RX, dev_reml, dev_ml)
        if modes:
            ev.u = self._modes(W1, Wr, beta)
        return ev

    def _modes(self, W1, Wr, beta) -> list[np.ndarray]:
        """Spherical modes per term, u = A^-1 (C_y - C_X beta)."""
        p = self.p
        u1 = W1[:, p] - W1[:, :p] @ beta
        out: list[np.ndarray | None] = [None] * len(self.specs)
        out[self.first] = u1.reshape(self.specs[self.first].n_levels, -1)
        if Wr is not None:
            ur = Wr[:, p] - Wr[:, :p] @ beta
            pos = 0
            for j in self.rest:
                size = self.specs[j].n_levels * self.specs[j].k
                out[j] = ur[pos : pos + size].reshape(self.specs[j].n_levels, -1)
                pos += size
        return out

    def _criteria(self, ldL2: float, ldRX2: float, r2: float) -> tuple[float, float]:
        """The REML and ML deviances from the log-determinants and ``r^2``."""
        return profiled_criteria(ldL2, ldRX2, r2, self.n, self.p, self.cp.sum_log_w)

    def evaluate(self, theta: np.ndarray, modes: bool = False) -> Evaluation:
        theta = np.asarray(theta, dtype=float)
        return self._evaluate(theta, unpack_theta(theta, self.specs), modes)

    def deviance(self, theta: np.ndarray, reml: bool = True) -> float:
        theta = np.asarray(theta, dtype=float)
        return self.deviance_of_factors(unpack_theta(theta, self.specs), reml)

    def deviance_of_factors(self, factors: list[np.ndarray], reml: bool = True) -> float:
        try:
            return self._evaluate(None, factors, False).deviance(reml)
        except np.linalg.LinAlgError:
            return np.inf

    def fit(self, *args, **kwargs) -> LmmFit:
        """:meth:`FitDriver.fit` on the approximate deviance; the record says so."""
        record = super().fit(*args, **kwargs)
        se = self.last_logdet_se
        record.approximation = (
            f"approximate fit (factor='krylov'): logLik +/- {0.5 * se:.2g} (one standard "
            f"error of the probes);\n  {self.approximation}"
        )
        record.logdet_se = se
        return record
