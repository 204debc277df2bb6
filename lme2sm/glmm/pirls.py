r"""Penalised iteratively reweighted least squares and the Laplace / AGQ deviance.

For given :math:`\theta` (and, in lme4's second stage, given :math:`\beta`), the
conditional modes :math:`\tilde u` minimise the penalised deviance
:math:`\sum_i d_i(y_i, \mu_i) + \|u\|^2` with
:math:`\eta = o + X\beta + Z\Lambda_\theta u`, :math:`\mu = g^{-1}(\eta)`. Each PIRLS step
is a penalised weighted least-squares problem, which the LMM engine solves: working
weights :math:`w_i = a_i\,\mu_\eta(\eta_i)^2 / V(\mu_i)` (``a`` the glm weights) and
working response :math:`z_i = \eta_i - o_i + (y_i - \mu_i)/\mu_\eta(\eta_i)` go into
:class:`~lme2sm.engine.reweight.WeightedPLS` (the structure analysed once, the engine's
blocks refilled per step) and the same factor comes out.
A step that raises the penalised deviance is halved, as lme4's ``pwrssUpdate`` does.

Laplace deviance (lme4's ``glmerLaplace``):
:math:`-2\log p(y\mid\tilde\mu) + \|\tilde u\|^2 + \log|L_\theta|^2`, where the first term
is the family's ``aic`` (all constants). Adaptive Gauss-Hermite (lme4's ``glmerAGQ``, one
scalar term): per level :math:`l`, with :math:`c_l(u)` = :math:`u^2 + \sum_{i\in l} d_i`
and :math:`s_l = 1/L_{ll}`,

.. math::

    -2\log\ell = \sum_l c_l(\tilde u_l) + \log|L_\theta|^2
        - 2\sum_l \log \sum_k w_k\, e^{-(c_l(\tilde u_l + z_k s_l) - c_l(\tilde u_l))/2 + z_k^2/2},

with :math:`(z_k, w_k)` the Gauss-Hermite rule for the standard normal. Like lme4 it is
measured from the saturated model (deviance residuals, not ``aic``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from lme2sm.engine.crossprod import TermRows
from lme2sm.engine.frame_input import term_rows, term_specs
from lme2sm.engine.record import Evaluation
from lme2sm.engine.reweight import WeightedPLS
from lme2sm.engine.theta import TermSpec, unpack_theta
from lme2sm.errors import FitError
from lme2sm.glmm.family import Family

__all__ = ["GlmmProblem", "PirlsState", "gauss_hermite"]

PIRLS_TOL = 1e-11
"""Relative change of the penalised deviance that ends PIRLS (lme4: 1e-7)."""
STEP_TOL = 1e-12
"""Largest change of any mode in the last step (the deviance's Hessian by finite
differences needs the modes far tighter than lme4's default ``tolPwrss``)."""
ROUNDOFF = 1e-13
"""A step that raises the penalised deviance by less than this (relative) is roundoff."""
MAX_ITER = 60
MAX_HALVINGS = 20
STALL_BELOW = 1e-9
"""A Newton step below this that is not below ``STALL_RATIO`` times the smallest step
so far has reached the modes' roundoff floor: PIRLS ends there."""
STALL_RATIO = 0.9
"""(see ``STALL_BELOW``) With an intercept far from 0 or a badly scaled column the floor
is above ``STEP_TOL``, and PIRLS took all ``SMALL_STEPS`` at it (Arabidopsis'
``total.fruits ~ nutrient + amd + rack + status + (1|reg) + (1|popu) + (1|gen)``
poisson: 32-34 solves per stage-1 evaluation, 1,981 in all). Linear convergence (a
non-canonical link) shrinks each step by a constant factor below ``STALL_RATIO``."""
STALL_STEPS = 3
"""Steps in a row at the floor (see ``STALL_BELOW``) that end PIRLS."""
SMALL_STEPS = 30
"""Steps with a negligible change of the penalised deviance that end PIRLS even though the
modes still move by more than ``STEP_TOL`` (roundoff). Not fewer: with a non-canonical
link PIRLS converges linearly, and the penalised deviance, quadratic in the modes, stops
changing long before log|L|^2 does (cbpp's cloglog: stopped after 3 such steps, the
Laplace deviance varies by 1e-9 with the start, its Hessian's theta entry by 1e-1)."""


_SINGULAR = (
    "PIRLS failed: the weighted fixed-effects system is singular at these "
    "working weights (lme4: 'Downdated VtV is not positive definite'). The fixed "
    "effects are likely saturated or separated (as many columns as distinct "
    "response patterns); simplify the fixed part or check the response."
)

_EMPTY = np.zeros(0)
_EMPTY.flags.writeable = False


def _max_change(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b|`` (0 for empty arrays), without np.max's wrappers."""
    d = a - b
    if not d.size:
        return 0.0
    return float(np.abs(d, out=d).max())


@dataclass
class PirlsState:
    """The converged modes at one (theta, beta)."""

    theta: np.ndarray
    beta: np.ndarray
    u: list[np.ndarray]
    """Spherical modes per term, (q_j, k_j)."""
    eta: np.ndarray
    mu: np.ndarray
    dev_resid: np.ndarray
    sqrL: float
    ldL2: float
    """log|L_theta|^2 at the final state's working weights."""
    weights: np.ndarray
    """The working weights at the final state."""
    iterations: int
    working_response: np.ndarray | None = None
    """The working response at the final state (less the offset, and in the second
    stage less ``X beta``)."""

    @property
    def pdev(self) -> float:
        return float(self.dev_resid.sum() + self.sqrL)

    @property
    def u_flat(self) -> np.ndarray:
        return np.concatenate([a.ravel() for a in self.u])


@cache
def gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for the standard normal density (weights sum to 1)."""
    z, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / np.sqrt(2.0 * np.pi)
    z.flags.writeable = False
    w.flags.writeable = False
    return z, w


class GlmmProblem:
    """One generalised model's data and structure, ready for PIRLS at any (theta, beta).

    Parameters
    ----------
    rows : list of TermRows
        Random terms in lme4's order.
    specs : list of TermSpec
    X : (n, p) array
    y, trials, weights : arrays
        R's ``y``, ``n`` and glm weights (see :mod:`lme2sm.glmm.response`).
    offset : array
    family : Family
    """

    def __init__(
        self,
        rows: list[TermRows],
        specs: list[TermSpec],
        X: np.ndarray,
        y: np.ndarray,
        trials: np.ndarray,
        weights: np.ndarray,
        offset: np.ndarray,
        family: Family,
    ):
        self.rows = rows
        self.specs = specs
        self.X = np.asarray(X, dtype=float)
        self.y = y
        self.trials = trials
        self.wts = weights
        self.offset = offset
        self.family = family
        self.n, self.p = self.X.shape
        mu0 = family.mustart(y, weights)
        self.eta0 = family.link.link(mu0)
        self._ylogy = family.saturated(y)
        self._dev_resid = None  # family.deviance_residuals, made on first use
        # aic(mu) - sum(dev_resid(mu)) does not depend on mu (-2 x the saturated
        # log-likelihood): computed once, the Laplace deviance needs only deviance residuals
        # (not so with a dispersion estimated from the deviance: aic() computes it whole)
        self._aic_offset = (
            0.0
            if getattr(family, "has_dispersion", False)
            else family.aic(y, trials, mu0, weights)
            - float(family.dev_resids(y, mu0, weights).sum())
        )
        sizes = [sp.n_levels * sp.k for sp in specs]
        self.Q = int(sum(sizes))
        self._bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self._systems: dict[bool, WeightedPLS] = {}
        self._zl: tuple[np.ndarray, list] | None = None
        self._uidx: list[np.ndarray] | None = None
        self.evaluations = 0

    # ---------------------------------------------------------------- pieces

    @classmethod
    def from_frame(cls, frame, response, family: Family) -> GlmmProblem:
        """The problem of a model frame (its terms, X and offset) and a glm response
        (:func:`lme2sm.glmm.response.glm_response`) under ``family``."""
        return cls(
            [term_rows(t) for t in frame.terms],
            term_specs(frame),
            frame.X,
            response.y,
            response.trials,
            response.weights,
            frame.offset,
            family,
        )

    def random_part(self, theta: np.ndarray, u: list[np.ndarray]) -> np.ndarray:
        """Z Lambda_theta u on the rows."""
        out = np.zeros(self.n)
        for t, T, uj in zip(self.rows, unpack_theta(theta, self.specs), u):
            b = uj @ T.T
            out += np.einsum("nk,nk->n", t.Z, b[t.codes])
        return out

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        # rebuilt on first use: smaller pickles (and a closure does not pickle)
        state["_systems"], state["_zl"], state["_uidx"], state["_dev_resid"] = {}, None, None, None
        return state

    def system(self, joint: bool) -> WeightedPLS:
        """The engine's weighted PLS on these rows: with ``X`` (``joint``: beta estimated
        with u) or without (beta fixed), built on first use."""
        if joint not in self._systems:
            X = self.X if joint else self.X[:, :0]
            try:
                self._systems[joint] = WeightedPLS(self.rows, self.specs, X)
            except MemoryError as exc:  # the engine's crossed block too large, as lmer's
                raise FitError(str(exc)) from None
        return self._systems[joint]

    def solve(self, theta: np.ndarray, w: np.ndarray, z: np.ndarray, joint: bool) -> Evaluation:
        """One PLS step at ``theta``: the engine's factor for weights ``w`` and response
        ``z``; a singular system is lme4's pwrssUpdate failure, a FitError."""
        try:
            return self.system(joint).evaluate(theta, w, z)
        except np.linalg.LinAlgError:
            raise FitError(_SINGULAR) from None

    def _steps(self, theta: np.ndarray, joint: bool):
        """PIRLS's PLS steps at ``theta``, ``(w, z) -> (log|L|^2, u flat, beta)``
        (:meth:`WeightedPLS.at`: theta's part made once); singular is a FitError."""
        steps = self.system(joint).at(theta)

        def step(w: np.ndarray, z: np.ndarray):
            try:
                return steps(w, z)
            except np.linalg.LinAlgError:
                raise FitError(_SINGULAR) from None

        return step

    def rx(self, state: PirlsState) -> np.ndarray:
        """Upper-triangular R_X (R_X'R_X = beta's precision given theta) at ``state``'s
        working weights. The response does not enter R_X; the state's working response
        is one for which the factor exists (a positive penalised residual)."""
        r = state.working_response
        if r is None:
            r = state.eta - self.offset
        return self.solve(state.theta, state.weights, r, joint=True).RX

    def split(self, u: np.ndarray) -> list[np.ndarray]:
        """Flat spherical modes as one ``(q_j, k_j)`` array per term."""
        b = self._bounds
        return [u[b[j] : b[j + 1]].reshape(s.n_levels, s.k) for j, s in enumerate(self.specs)]

    def _random_part_flat(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Z Lambda_theta u on the rows for flat ``u``."""
        return self._random_part_at(theta)(u)

    def _random_part_at(self, theta: np.ndarray):
        """``u -> Z Lambda_theta u`` on the rows for flat ``u`` (each term's ``Z_j T_j``
        kept while theta stays, and each row's places in ``u``: PIRLS calls it at one
        theta for every step and halving)."""
        if self._zl is None or not np.array_equal(self._zl[0], theta):
            factors = unpack_theta(theta, self.specs)
            zl = []
            for t, T, idx in zip(self.rows, factors, self._u_index()):
                zt = t.Z @ T
                zl.append((np.ascontiguousarray(zt[:, 0]) if t.k == 1 else zt, idx))
            self._zl = (theta.copy(), zl)
        terms = self._zl[1]

        def random_part(u: np.ndarray) -> np.ndarray:
            out = None
            for zt, idx in terms:
                part = zt * u[idx] if zt.ndim == 1 else np.einsum("nk,nk->n", zt, u[idx])
                if out is None:
                    out = part
                else:
                    out += part
            return out

        return random_part

    def _u_index(self) -> list[np.ndarray]:
        """Each row's places in flat ``u``, per term: ``(n,)`` for one column, else
        ``(n, k_j)``."""
        if self._uidx is None:
            self._uidx = [
                b + t.codes if t.k == 1 else b + t.codes[:, None] * t.k + np.arange(t.k)
                for t, b in zip(self.rows, self._bounds)
            ]
        return self._uidx

    def dev_resid(self, mu: np.ndarray) -> np.ndarray:
        if self._dev_resid is None:
            self._dev_resid = self.family.deviance_residuals(self.y, self.wts, self._ylogy)
        return self._dev_resid(mu)

    def aic(self, mu: np.ndarray) -> float:
        """-2 log p(y | mu), all constants included (the family's ``aic``; with a
        dispersion estimated from the deviance it is not deviance + a constant)."""
        if getattr(self.family, "has_dispersion", False):
            return self.family.aic(self.y, self.trials, mu, self.wts)
        return float(self.dev_resid(mu).sum()) + self._aic_offset

    # ---------------------------------------------------------------- PIRLS

    def pirls(
        self,
        theta: np.ndarray,
        beta: np.ndarray | None = None,
        start: tuple[np.ndarray, list[np.ndarray] | np.ndarray] | None = None,
        tol: float = PIRLS_TOL,
    ) -> PirlsState:
        """Conditional modes at ``theta``; ``beta`` fixed (lme4's stage 2) or, when None,
        estimated with ``u`` (stage 1, nAGQ = 0). ``start``: (beta, u) to start from."""
        theta = np.asarray(theta, dtype=float)
        fam = self.family
        joint = beta is None
        base = self.offset if joint else self.offset + self.X @ beta
        random_part = self._random_part_at(theta)
        offset, X = self.offset, self.X

        def linpred(b, u):
            fixed = offset + X @ b if joint else base
            return fixed + random_part(u)

        cur_beta, cur_u, eta, mu, dr, old_pdev = self._start(beta, start, linpred)
        converged = False
        n_small = 0
        with_beta = joint and self.p > 0
        step = self._steps(theta, with_beta)
        smallest, n_stalled = math.inf, 0
        for it in range(1, MAX_ITER + 1):
            # mu (and dr) at eta: carried from the accepted step
            me, wf = fam.working(eta, mu)
            w = self.wts * wf
            z = eta - base + (self.y - mu) / me
            ldL2, new_u, new_beta = step(w, z)
            if not with_beta:
                new_beta = _EMPTY
            self.evaluations += 1
            # the point is the mode when the full Newton step from it is negligible: the
            # state there, at this solve's weights (no further solve to confirm)
            newton = _max_change(new_u, cur_u)
            if with_beta:
                newton = max(newton, _max_change(new_beta, cur_beta))
            stall = newton <= STALL_BELOW and newton > STALL_RATIO * smallest
            n_stalled = n_stalled + 1 if stall else 0
            stalled = n_stalled >= STALL_STEPS
            smallest = min(smallest, newton)
            if converged or stalled or newton <= STEP_TOL:
                if dr is None:
                    dr = self.dev_resid(mu)
                return PirlsState(
                    theta,
                    cur_beta,
                    self.split(cur_u),
                    eta,
                    mu,
                    dr,
                    float(cur_u @ cur_u),
                    ldL2,
                    w,
                    it,
                    z,
                )
            if not joint:
                new_beta = beta
            cand_u, cand_beta, cand_eta, cand_mu, cand_dr, pdev = self._halve(
                (cur_u, cur_beta), (new_u, new_beta), old_pdev, joint, linpred
            )
            moved = _max_change(cand_u, cur_u)
            if with_beta:
                moved = max(moved, _max_change(cand_beta, cur_beta))
            small = math.isfinite(old_pdev) and abs(old_pdev - pdev) <= tol * (1.0 + abs(pdev))
            n_small = n_small + 1 if small else 0
            if small and (moved <= STEP_TOL or n_small >= SMALL_STEPS):
                converged = True
            cur_u, cur_beta, eta, old_pdev = cand_u, cand_beta, cand_eta, pdev
            mu, dr = cand_mu, cand_dr
        raise FitError(f"PIRLS did not converge in {MAX_ITER} iterations")

    def _start(self, beta, start, linpred):
        """PIRLS's first point: ``start`` = (beta, u) if given, else u = 0 at R's
        ``mustart`` (its penalised deviance unknown: any first step is accepted)."""
        joint = beta is None
        if start is not None:
            cur_beta = np.asarray(start[0], dtype=float) if joint else beta
            su = start[1]
            cur_u = np.concatenate([a.ravel() for a in su]) if isinstance(su, list) else su.copy()
            eta = linpred(cur_beta, cur_u)
            mu = self.family.link.inverse(eta)
            dr = self.dev_resid(mu)
            return cur_beta, cur_u, eta, mu, dr, float(dr.sum() + cur_u @ cur_u)
        cur_beta = np.zeros(self.p) if joint else beta
        eta = self.eta0.copy()
        return cur_beta, np.zeros(self.Q), eta, self.family.link.inverse(eta), None, np.inf

    def _halve(self, current, proposed, old_pdev: float, joint: bool, linpred):
        """The PLS step from ``current`` (u, beta) towards ``proposed``, halved until
        the penalised deviance does not rise (lme4's ``pwrssUpdate``)."""
        (cur_u, cur_beta), (new_u, new_beta) = current, proposed
        du = new_u - cur_u
        db = new_beta - cur_beta if joint else None
        inverse = self.family.link.inverse
        step = 1.0
        for _ in range(MAX_HALVINGS + 1):
            cand_u = cur_u + step * du
            cand_beta = cur_beta + step * db if joint else new_beta
            cand_eta = linpred(cand_beta, cand_u)
            cand_mu = inverse(cand_eta)
            cand_dr = self.dev_resid(cand_mu)
            pdev = float(cand_dr.sum() + cand_u @ cand_u)
            if math.isfinite(pdev) and (
                not math.isfinite(old_pdev) or pdev <= old_pdev + ROUNDOFF * (1 + abs(old_pdev))
            ):
                break
            step /= 2.0
        else:
            if not math.isfinite(pdev) or pdev - old_pdev > 1e-8 * (1 + abs(old_pdev)):
                raise FitError(
                    "PIRLS step-halvings failed to reduce the deviance (lme4's pwrssUpdate error)"
                )
        return cand_u, cand_beta, cand_eta, cand_mu, cand_dr, pdev

    # ------------------------------------------------------------ deviances

    def laplace(self, state: PirlsState) -> float:
        """lme4's Laplace deviance: aic + ||u||^2 + log|L|^2."""
        if getattr(self.family, "has_dispersion", False):
            return self.aic(state.mu) + state.sqrL + state.ldL2
        return float(state.dev_resid.sum()) + self._aic_offset + state.sqrL + state.ldL2

    def agq(self, state: PirlsState, nAGQ: int) -> float:
        """lme4's adaptive Gauss-Hermite deviance (one scalar term)."""
        t = self.rows[0]
        theta = float(state.theta[0])
        q = t.n_levels
        zcol = t.Z[:, 0]
        L2 = 1.0 + theta * theta * np.bincount(t.codes, state.weights * zcol * zcol, minlength=q)
        sd = 1.0 / np.sqrt(L2)
        u0 = state.u[0][:, 0]
        fixed_eta = state.eta - theta * zcol * u0[t.codes]
        devc0 = u0 * u0 + np.bincount(t.codes, state.dev_resid, minlength=q)
        nodes, weights = gauss_hermite(nAGQ)
        mult = np.zeros(q)
        off = nodes != 0  # the node at 0 is the mode itself: its term is its weight
        mult += weights[~off].sum()
        zk, wk = nodes[off], weights[off]
        if len(zk):
            # all nodes at once: (nodes, levels) and (nodes, rows)
            u = u0[None, :] + zk[:, None] * sd[None, :]
            eta = fixed_eta[None, :] + (theta * zcol)[None, :] * u[:, t.codes]
            dr = self.dev_resid(self.family.link.inverse(eta))
            K = len(zk)
            keys = (np.arange(K)[:, None] * q + t.codes[None, :]).ravel()
            devc = u * u + np.bincount(keys, dr.ravel(), minlength=K * q).reshape(K, q)
            terms = np.exp(-0.5 * (devc - devc0[None, :]) + 0.5 * (zk * zk)[:, None])
            mult += (wk[:, None] * terms).sum(axis=0)
        return float(devc0.sum() + state.ldL2 - 2.0 * np.sum(np.log(mult)))
