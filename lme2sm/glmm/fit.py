"""lme4's two optimisation stages for a generalised model, and the Hessian.

Stage 1 (lme4's ``nAGQ = 0``): optimise ``theta`` alone, ``beta`` and ``u`` found
together by PIRLS. Stage 2: optimise ``(theta, beta)`` together, ``u`` by PIRLS, with
the Laplace deviance (``nAGQ = 1``) or adaptive Gauss-Hermite (``nAGQ > 1``), started
from stage 1. Both stages use BOBYQA (lme4's default second stage is Nelder-Mead, which
sometimes stops short of the optimum; BOBYQA with tight tolerances reaches it). Then,
as lme4's ``calc.derivs``, the gradient and Hessian of the deviance in ``(theta, beta)``
by central differences (lme4's ``deriv12``, step 1e-4; its cross terms from two points
per pair instead of four, see :func:`hessian`): the Hessian gives the standard errors and
the convergence check, and one Newton step from it ends the fit (:func:`newton_step`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.linalg as sla

from lme2sm.engine.coordinates import ThetaCoordinates
from lme2sm.engine.crossprod import level_blocks
from lme2sm.engine.driver import correlation_slots
from lme2sm.engine.hessian_check import checked, is_singular, unidentifiable_messages
from lme2sm.engine.optimize import minimize_theta
from lme2sm.engine.progress import FitProgress, watched
from lme2sm.engine.theta import theta_lower, theta_start
from lme2sm.errors import FitError
from lme2sm.glmm.derivatives import deriv12, gradient, held_hessian, hessian
from lme2sm.glmm.pirls import GlmmProblem, PirlsState
from lme2sm.glmm.rho_ends import off_plateau, restart_at_correlation_ends

__all__ = ["GlmmFit", "fit_glmm", "deriv12", "hessian", "newton_step"]

GRAD_TOL = 2e-3
"""lme4's ``check.conv.grad`` tolerance on the Hessian-scaled gradient."""
THETA_STEP = 0.1
"""Scale of theta in stage 2 (BOBYQA's initial step 0.2 becomes 0.02)."""
STAGE1_TOL = (1e-6, 1e-4)
"""BOBYQA's stopping rule in stage 1: change of the deviance (absolute), of theta. Stage 1
only starts stage 2 (the LMM engine's 1e-10 and 1e-9 cost a fifth more evaluations)."""
STAGE2_TOL = (1e-7, 1e-5)
"""The same in stage 2, where theta is in units of THETA_STEP and beta in standard errors:
theta to 1e-6, beta to 1e-5 of its standard error, the deviance to 1e-7 (lme4's own
default stage 2, Nelder-Mead, stops at a relative 1e-10 change of the deviance, i.e.
1e-7 for grouseticks). Measured on the fixtures: logLik, theta, SE unchanged within the
tests' tolerances (largest fixef error 0.22 of the tolerance), 27% fewer evaluations."""


@dataclass
class GlmmFit:
    """The record of a glmer fit: everything the results read."""

    theta: np.ndarray
    beta: np.ndarray
    nAGQ: int
    deviance: float
    """The optimised criterion, -2 logLik (Laplace or AGQ)."""
    state: PirlsState
    """PIRLS at the optimum: modes, fitted means, working weights."""
    gradient: np.ndarray
    hessian: np.ndarray
    n_evals: int
    converged: bool
    message: str
    seconds: float
    stage1_theta: np.ndarray
    warnings: tuple[str, ...] = field(default=())
    stage_evals: tuple[int, int] = (0, 0)
    """Deviance evaluations of stage 1 and stage 2 (``n_evals`` is their sum)."""


def _pirls_from(problem: GlmmProblem, theta, beta, start_u, fallback=None) -> PirlsState:
    """PIRLS at (theta, beta) from modes ``start_u`` (stage 1: with its beta), from
    ``fallback`` or scratch if that fails."""
    try:
        if beta is None:
            return problem.pirls(theta, start=start_u)
        return problem.pirls(theta, beta, start=(beta, start_u))
    except Exception:  # noqa: BLE001 - a bad start: the usual one
        if beta is None:
            return problem.pirls(theta)
        return problem.pirls(theta, beta, start=(beta, fallback))


def fit_glmm(
    problem: GlmmProblem,
    nAGQ: int = 1,
    calc_derivs: bool = True,
    progress: FitProgress | None = None,
) -> GlmmFit:
    """Fit by lme4's two stages; ``nAGQ = 0`` stops after the first.

    Both stages move ``theta`` in the engine's :class:`ThetaCoordinates` (a vector
    term's columns orthonormal under the prior weights, as lmer's optimiser sees them);
    the Hessian and the record are in lme4's ``theta``. ``progress`` is told each
    deviance of stage 1, stage 2 and the Hessian (the caller ends it)."""
    t0 = time.perf_counter()
    coords = glmm_coordinates(problem)
    if progress is not None:
        progress.set_stage("stage 1")
    opt1, st1 = _stage1(problem, coords, progress)
    theta1 = coords.to_theta(opt1.x)
    g, H = np.zeros(0), np.zeros((0, 0))
    if nAGQ == 0:
        state, opt = st1, opt1
        theta, beta = theta1, st1.beta
        dev = problem.laplace(st1)
        n_evals = opt1.n_evals
    else:
        devfun_u, start_u, warm = _stage2_deviance(problem, nAGQ, st1)
        devfun_u = _reported(devfun_u, progress, "stage 2")
        opt = _stage2_off_plateau(problem, coords, devfun_u, st1)
        opt, held = restart_at_correlation_ends(
            lambda x, held: _stage2(problem, coords, devfun_u, st1, theta1, x, held),
            problem.specs,
            opt,
        )
        n_evals = opt1.n_evals + opt.n_evals
        theta, beta = opt.x[: len(theta1)], opt.x[len(theta1) :]
        state = _pirls_from(problem, theta, beta, warm[0], start_u)
        dev = _deviance(problem, state, nAGQ)
        if calc_derivs:
            if progress is not None:
                progress.set_stage("Hessian")
            g, H = held_hessian(devfun_u, opt.x, dev, state.u_flat, held)
            stop = opt.x
            opt.x, dev, state = newton_step(problem, nAGQ, opt.x, dev, g, H, state, held)
            theta, beta = opt.x[: len(theta1)], opt.x[len(theta1) :]
            if check_convergence(g, H) and not np.array_equal(opt.x, stop):
                # lme4 checks where it stops: the step's landing, not the point before it
                g = gradient(devfun_u, opt.x, state.u_flat, held)
    warn = ()
    if len(g) and not is_singular(theta, theta_lower(problem.specs)):  # as lme4's checkConv
        warn = check_convergence(g, H)
        if checked(problem.specs, theta, theta_lower(problem.specs)):
            warn += unidentifiable_messages(H)  # lme4's check.conv.hess, on (theta, beta)
    return GlmmFit(
        theta=np.asarray(theta, dtype=float),
        beta=np.asarray(beta, dtype=float),
        nAGQ=nAGQ,
        deviance=float(dev),
        state=state,
        gradient=g,
        hessian=H,
        n_evals=n_evals,
        converged=opt.converged,
        message=opt.message,
        seconds=time.perf_counter() - t0,
        stage1_theta=theta1,
        warnings=warn,
        stage_evals=(opt1.n_evals, n_evals - opt1.n_evals),
    )


def _deviance(problem: GlmmProblem, state: PirlsState, nAGQ: int) -> float:
    """Stage 2's criterion at ``state``: the Laplace deviance or adaptive Gauss-Hermite's."""
    return problem.laplace(state) if nAGQ == 1 else problem.agq(state, nAGQ)


NEWTON = True
"""End stage 2 with one Newton step from the Hessian (:func:`newton_step`)."""


def newton_step(
    problem: GlmmProblem, nAGQ: int, x, dev: float, g, H, state: PirlsState, held=None
):
    """One Newton step from stage 2's stop ``x`` (deviance ``dev``, PIRLS ``state``) with
    its gradient ``g`` and Hessian ``H`` in (theta, beta): ``(x, deviance, state)`` at the
    step if it lowers the deviance, else at the stop.

    Stage 2 stops at a deviance change of 1e-7 (:data:`STAGE2_TOL`), which left beta up
    to 5.3e-4 of max(|beta|, SE) from glmmTMB's optimum on its structured fixtures
    (tests/test_glmer_covstruct.py); the deviance is smooth there, so one step lands on
    the optimum to the Hessian's accuracy (beta within 7.2e-6 of glmmTMB's on those, the
    logLik at or above it) for one more PIRLS. Entries of theta at their lower bound with
    the gradient pushing out of it are held, as are those ``held`` (a correlation at the
    end of its range, :func:`~lme2sm.glmm.rho_ends.restart_at_correlation_ends`); a step
    across a bound stops on it (as the
    LMM engine's, ``engine.newton.newton_step``). The record keeps the gradient and Hessian
    measured at stage 2's stop (the gradient measured again at the step's landing when the
    stop's fails lme4's check: :func:`fit_glmm`), and counts the step's PIRLS as it counts the
    Hessian's, not among the optimiser's evaluations (``n_evals``)."""
    x = np.asarray(x, dtype=float)
    stop = (x, dev, state)
    if not NEWTON or not (np.all(np.isfinite(g)) and np.all(np.isfinite(H))):
        return stop
    nth = len(state.theta)
    lower = np.concatenate([theta_lower(problem.specs), np.full(problem.p, -np.inf)])
    free = ~((x <= lower) & (g > 0))
    if held is not None:
        free &= ~np.asarray(held, dtype=bool)
    try:
        step = sla.cho_solve(sla.cho_factor(H[np.ix_(free, free)]), g[free])
    except (np.linalg.LinAlgError, ValueError):  # not positive definite, or nothing free
        return stop
    x1 = x.copy()
    x1[free] -= step
    x1 = np.maximum(x1, lower)
    try:
        st = problem.pirls(x1[:nth], x1[nth:], start=(x1[nth:], state.u_flat))
    except Exception:  # noqa: BLE001 - PIRLS failed there: keep stage 2's stop
        return stop
    value = _deviance(problem, st, nAGQ)
    return (x1, value, st) if value < dev else stop


ORTHONORMAL = True
"""Optimise ``theta`` in :class:`ThetaCoordinates` (False: lme4's own ``theta``)."""


def glmm_coordinates(problem: GlmmProblem) -> ThetaCoordinates:
    """The optimiser's coordinates for ``theta``: each vector term's columns made
    orthonormal on average under the prior weights (lme4's own for scalar terms)."""
    if not ORTHONORMAL:
        return ThetaCoordinates.identity(problem.specs)
    blocks = [level_blocks(t, problem.wts) for t in problem.rows]
    return ThetaCoordinates.from_blocks(problem.specs, blocks, float(np.sum(problem.wts)))


def _stage1(problem: GlmmProblem, coords: ThetaCoordinates, progress=None):
    """lme4's nAGQ = 0 stage: theta alone, (beta, u) by PIRLS, each solve started from
    the last modes; restarted from a correlation inside its range if its stop's is on a
    plateau at an end (:func:`~lme2sm.glmm.rho_ends.off_plateau`). The optimum in the
    optimiser's coordinates and PIRLS there."""
    specs = problem.specs
    last: list = [None]

    @watched(progress)
    def dev0(theta):
        try:
            st = problem.pirls(theta, start=last[0])
        except Exception:  # noqa: BLE001 - a failed PIRLS is not an admissible point
            try:
                st = problem.pirls(theta)
            except Exception:  # noqa: BLE001
                return np.inf
        last[0] = (st.beta, st.u)
        return problem.laplace(st)

    objective = dev0 if coords.is_identity else (lambda phi: dev0(coords.to_theta(phi)))
    opt1 = _minimize(objective, theta_start(specs), theta_lower(specs), STAGE1_TOL)
    probe, n = off_plateau(dev0, coords.to_theta(opt1.x), opt1.fun, specs)
    if probe is not None:  # first steps a fifth of each entry: the stop may be far off
        phi = coords.from_theta(probe)
        step = 0.2 * np.maximum(np.abs(phi), 1.0)
        again = _minimize(objective, phi, theta_lower(specs), STAGE1_TOL, step)
        n += again.n_evals
        opt1 = again if again.fun < opt1.fun else opt1
    opt1 = replace(opt1, n_evals=opt1.n_evals + n)
    st1 = _pirls_from(problem, coords.to_theta(opt1.x), None, last[0])
    return opt1, st1


def _stage2_off_plateau(problem: GlmmProblem, coords, devfun_u, st1):
    """Stage 2 from stage 1's optimum; restarted from a correlation inside its range if
    its stop's is on a plateau at an end (:func:`~lme2sm.glmm.rho_ends.off_plateau`)."""
    opt = _stage2(problem, coords, devfun_u, st1, st1.theta)
    probe, n = off_plateau(lambda x: devfun_u(x)[0], opt.x, opt.fun, problem.specs)
    if probe is not None:
        again = _stage2(problem, coords, devfun_u, st1, st1.theta, start=probe)
        n += again.n_evals
        opt = again if again.fun < opt.fun else opt
    return replace(opt, n_evals=opt.n_evals + n)


def _stage2_deviance(problem: GlmmProblem, nAGQ: int, st1: PirlsState):
    """Stage 2's deviance at (theta, beta) and the modes there (None if PIRLS fails);
    PIRLS starts from ``start`` or the last modes (``warm``)."""
    nth = len(st1.theta)
    start_u = st1.u_flat
    warm = [start_u]

    def devfun_u(pars, start=None):
        th, be = pars[:nth], pars[nth:]
        try:
            st = problem.pirls(th, be, start=(be, warm[0] if start is None else start))
        except Exception:  # noqa: BLE001 - PIRLS failure: not an admissible point
            try:
                st = problem.pirls(th, be, start=(be, start_u))
            except Exception:  # noqa: BLE001
                return np.inf, None
        u = st.u_flat
        warm[0] = u
        return _deviance(problem, st, nAGQ), u

    return devfun_u, start_u, warm


def _reported(devfun_u, progress: FitProgress | None, stage: str):
    """``devfun_u`` telling ``progress`` each deviance, from stage ``stage`` on (itself
    when ``progress`` is None)."""
    if progress is None:
        return devfun_u
    progress.set_stage(stage)

    def reported(pars, start=None):
        value, u = devfun_u(pars, start)
        progress.tick(value)
        return value, u

    return reported


def _stage2(problem: GlmmProblem, coords, devfun_u, st1, theta1, start=None, held=None):
    """BOBYQA over (theta, beta) from stage 1's optimum (or from ``start``, lme4's (theta,
    beta), with the entries ``held`` kept where they are); the result's ``x`` in lme4's
    (theta, beta)."""
    nth = len(theta1)
    lower = theta_lower(problem.specs)
    # beta whitened by stage 1's R_X (beta = beta0 + R_X^-1 z): an uncentred covariate
    # makes intercept and slope nearly collinear, which stalls BOBYQA's steps
    R = _rx(problem, st1)
    theta0, beta0 = (theta1, st1.beta) if start is None else (start[:nth], start[nth:])

    def to_beta(z):
        return beta0 + (np.linalg.solve(R, z) if problem.p else z)

    # theta in units of THETA_STEP: BOBYQA's first steps (0.2) are then 0.02 in theta,
    # lme4's stage-2 step, and 0.2 standard errors in beta
    # (a cs/ar1 correlation's parameter has no units: not scaled by _theta_scale)
    step = np.full(nth, THETA_STEP * _theta_scale(problem, theta1))
    step[[j for j, _ in correlation_slots(problem.specs)]] = THETA_STEP

    def to_theta(scaled):
        return coords.to_theta(scaled * step)

    w0 = np.concatenate([coords.from_theta(theta0) / step, np.zeros(problem.p)])
    free = np.ones(len(w0), dtype=bool) if held is None else ~np.asarray(held, dtype=bool)

    def full(pars):
        w = w0.copy()
        w[free] = pars
        return np.concatenate([to_theta(w[:nth]), to_beta(w[nth:])])

    lower2 = np.concatenate([lower / step, np.full(problem.p, -np.inf)])
    opt2 = _minimize(lambda pars: devfun_u(full(pars))[0], w0[free], lower2[free], STAGE2_TOL)
    opt2.x = full(opt2.x)
    return opt2


def _theta_scale(problem: GlmmProblem, theta1: np.ndarray) -> float:
    """1, or for families with a dispersion (Gamma, inverse Gaussian) stage 1's largest
    |theta|: their theta is on the linear predictor's scale, which the identity and inverse
    links leave at the data's (sleepstudy's Gamma fits: theta 221 on the identity link,
    0.0027 on the inverse), so a fixed first step of 0.02 would be 1e-4 or 7 times theta."""
    if not getattr(problem.family, "has_dispersion", False) or not len(theta1):
        return 1.0
    big = float(np.max(np.abs(theta1)))
    return big if big > 0 else 1.0


def _minimize(fun, start: np.ndarray, lower: np.ndarray, tol: tuple[float, float], step=0.2):
    """BOBYQA from ``start`` (first step ``step``) with glmer's stopping rule ``tol`` =
    (ftol_abs, xtol_abs)."""
    return minimize_theta(fun, start, lower, initial_step=step, ftol_abs=tol[0], xtol_abs=tol[1])


def _rx(problem: GlmmProblem, state: PirlsState) -> np.ndarray:
    """Upper-triangular R_X (R_X'R_X = beta's precision) at ``state``'s weights; where
    that system is singular, the scale of X'WX's diagonal (a whitening only)."""
    if not problem.p:
        return np.zeros((0, 0))
    try:
        return problem.rx(state)
    except FitError:
        xwx = np.einsum("ij,i,ij->j", problem.X, state.weights, problem.X)
        return np.diag(np.sqrt(np.clip(xwx, 1e-12, None)))


def check_convergence(g: np.ndarray, H: np.ndarray) -> tuple[str, ...]:
    """lme4's ``checkConv`` on the gradient and Hessian, its wording."""
    out = []
    if not np.all(np.isfinite(H)):
        return ("Model failed to converge: the Hessian has non-finite entries",)
    try:
        R = np.linalg.cholesky(H).T
        scaled = np.linalg.solve(R, g)
    except np.linalg.LinAlgError:
        ev = np.linalg.eigvalsh(H)
        out.append(
            "Model failed to converge: degenerate  Hessian with "
            f"{int(np.sum(ev < 0))} negative eigenvalues"
        )
        scaled = g
    mingrad = np.minimum(np.abs(scaled), np.abs(g))
    if np.max(mingrad) > GRAD_TOL:
        out.append(
            f"Model failed to converge with max|grad| = {np.max(mingrad):.6g} "
            f"(tol = {GRAD_TOL:g}, component {int(np.argmax(mingrad)) + 1})"
        )
    return tuple(out)
