"""The optimiser's driver: BOBYQA in the orthonormal coordinates, lme4's edge
restarts, a polish of near-singular optima, one Newton step in lme4's ``theta``, and the
record of the fit (lme4's ``optimizeLmer`` and ``mkMerMod``'s part)."""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.linalg as sla

from lme2sm.engine.coordinates import ThetaCoordinates
from lme2sm.engine.moment_start import FLOOR, moment_theta
from lme2sm.engine.newton import COARSE_FROM_EFFECTS, COARSE_XTOL_REL, at_bound, newton_step
from lme2sm.engine.optimize import XTOL_REL, OptimResult, goes_down_from_zero, minimize_theta
from lme2sm.engine.progress import FitProgress, watched
from lme2sm.engine.record import Evaluation, LmmFit
from lme2sm.engine.theta import (
    TermSpec,
    correlation_parameter,
    snap_to_edge,
    theta_start,
    unpack_theta,
)
from lme2sm.engine.threads import blas_threads

__all__ = ["FitDriver", "correlation_slots"]


def _offsets(specs) -> list[int]:
    """Where each term's parameters start in ``theta``."""
    return list(np.cumsum([0] + [s.n_theta for s in specs])[:-1])


def correlation_slots(specs) -> list[tuple[int, TermSpec]]:
    """``(index in theta, spec)`` of each ``cs``/``ar1`` term's correlation parameter (the
    term's last entry of ``theta``)."""
    return [
        (i + s.n_theta - 1, s) for s, i in zip(specs, _offsets(specs))
        if s.structure in ("cs", "ar1")
    ]  # fmt: skip


class FitDriver:
    """:class:`~lme2sm.engine.lmm.ProfiledLMM`'s optimisation (a mixin: it calls the
    model's ``deviance``, ``deviance_of_factors`` and ``evaluate``)."""

    def fit(
        self,
        reml: bool = True,
        start: np.ndarray | None = None,
        optimizer: str = "auto",
        blas_limit: int | None = 1,
        progress: FitProgress | None = None,
    ) -> LmmFit:
        """Optimise ``theta``; the record of the fit (lme4's checks included).

        BOBYQA and its restarts work in :class:`~.coordinates.ThetaCoordinates` (each
        vector term's columns orthonormal), from the moments' start (:meth:`_start`); the
        final Newton step and the derivatives of lme4's convergence check are taken in
        lme4's own ``theta``. ``progress`` (:mod:`~lme2sm.engine.progress`) is told
        every deviance evaluated; the caller ends it."""
        t0 = time.perf_counter()
        if self.ORTHONORMAL:
            coords = ThetaCoordinates.from_blocks(self.specs, self.cp.diag, self.n)
        else:
            coords = ThetaCoordinates.identity(self.specs)
        first_step = None
        structured = bool(correlation_slots(self.specs))
        q = sum(s.n_levels * s.k for s in self.specs)
        coarse = not structured and q >= COARSE_FROM_EFFECTS
        self._xtol_rel = COARSE_XTOL_REL if coarse else XTOL_REL
        if start is None:
            start_phi, first_step = self._start(coords)
        else:
            start_phi = coords.from_theta(np.asarray(start, dtype=float))

        @watched(progress)
        def dev(th):
            return self.deviance(th, reml)

        @watched(progress)
        def dev_phi(phi):
            return self.deviance_of_factors(coords.factors(phi), reml)

        objective = dev if coords.is_identity else dev_phi

        with blas_threads(blas_limit):
            probed: dict[bytes, float] = {}
            opt = self._first_optimisation(objective, start_phi, first_step, optimizer, probed)
            tried: set[bytes] = set()
            opt = self._restart_at_edge(objective, opt, optimizer, tried)
            opt = self._polish(objective, opt, optimizer, probed)
            # the polish may have brought another diagonal entry near zero
            opt = self._restart_at_edge(objective, opt, optimizer, tried)
            opt = self._other_correlation_starts(objective, opt, optimizer, start_phi, tried)
            for _ in range(self.LOG_SCALE_ROUNDS):  # BOBYQA restarted from its own stop
                polished = self._log_scale_polish(objective, opt, optimizer)
                done = not polished.fun < opt.fun - 1e-7
                opt = polished
                if done:
                    break
            opt.x = coords.to_theta(opt.x)
            opt, derivatives = self._settle(dev, objective, coords, opt, optimizer)
            ev = self.evaluate(opt.x, modes=True)
        record = self._record(ev, reml, opt, time.perf_counter() - t0)
        record.derivatives = derivatives
        return record

    MOMENT_START = True
    """Start from the moments' ``theta`` (:mod:`.moment_start`), not lme4's identity.
    Measured on the 50 fixture models (``benchmarks/lmer_evals.py``): 2,357 evaluations
    against 3,920 from lme4's start, every logLik the same to 2e-10. (Before the start
    held near-zero entries at zero and gave unplaced ones a step of their own: 3,049,
    ``igf_singular`` 98 against 69 from lme4's start, ``schools_polish`` 308 against
    244; now 51 and 59.)"""
    MOMENT_STEP = 0.2
    """BOBYQA's first step from the moments' start, relative to each entry (at least
    :data:`~.moment_start.FLOOR`): on the 50 fixtures (without the term share below)
    0.2 took 3,781 evaluations, 0.15 3,967, 0.25 3,857, 0.35 4,030 and 0.5 4,133."""

    MOMENT_TERM_SHARE = 0.25
    """...and at least this share of the largest entry of the same term (an entry near 0,
    the orthonormal coordinates' off-diagonal, still moves on the term's scale): on the
    50 fixtures 2,938 evaluations against 3,781 without it (0.5: 2,985);
    ``machines_factor_slope`` 211 -> 105."""

    MOMENT_LEVELS = 300.0
    """The first step, for a term of ``q`` levels above this many, times ``sqrt(MOMENT_LEVELS /
    q)``: the deviance's curvature in a term's relative SD grows with its levels (its
    standard error as ``1 / sqrt(q)``), and on InstEval's 2,972 students a step of 0.2
    put BOBYQA's first points 77-126 deviance units up (the start: 14). With the coarse
    stop (:data:`~.newton.COARSE_XTOL_REL`) InstEval's ``(1|s) + (1|d) + (1|dept:service)``
    takes 45 evaluations without it, 34 with 300, 39 with 500 or 700, 44 with 1,000.
    Alone it costs ``insteval_small_dept`` (348 students) 10 evaluations (42 -> 52)."""

    MOMENT_AT_ZERO = 1.0
    """A diagonal entry the moments put below this many of its first steps starts at
    zero (nlopt would move it a step inwards) and is held there at first
    (:meth:`_first_optimisation`); only in terms whose columns share one scale (the
    orthonormal coordinates' ``us`` terms: a ``diag`` term's SDs are each in their own
    column's units, and ``bw_diag_ml``'s slope, 2 % of the intercept's, took 92
    evaluations held against 71). On the 50 fixtures (with :attr:`EDGE_FIRST_FTOL`
    at the engine's 1e-8) 2,343 evaluations against 2,724 with none held (0.5: 2,347;
    1.5: 2,758; 2: 2,843)."""

    MOMENT_UNPLACED_STEP = 0.2
    """The first step of a relative SD the moments put at or below
    :data:`~.moment_start.FLOOR` (where it starts): the moments say little of its size,
    and its step is the one it would have at lme4's start of 1. ``schools_polish`` (its
    classroom intercepts' SD 0.58 started at the floor) takes 59 evaluations against 308
    with the floor's own step (0.004); on the 50 fixtures (with :attr:`EDGE_FIRST_FTOL`
    at 1e-8) 2,343 against 2,631 (0.1: 2,351; 0.3: 2,359; 0.5: 2,384)."""

    def _start(self, coords: ThetaCoordinates) -> tuple[np.ndarray, np.ndarray | None]:
        """The optimiser's start (in ``coords``) and its first step (None: nlopt's own):
        the moments' ``theta`` when they give one, else lme4's identity. Models with
        ``cs``/``ar1`` terms keep lme4's start: their restarts from other correlations and
        their log-scale polish were measured from it (from the moments ``cw_ar1_ml``'s
        ridge to sigma = 0 stopped at a relative SD of 5.1e3, 2.9e-4 lower in logLik
        than from lme4's start, at 9.3e3)."""
        structured = bool(correlation_slots(self.specs))
        theta = moment_theta(self.cp, self.specs) if self.MOMENT_START and not structured else None
        if theta is None:
            return theta_start(self.specs), None
        phi = coords.from_theta(theta)
        size = np.maximum(np.abs(phi), FLOOR)
        common = np.zeros(len(phi), dtype=bool)  # a term's columns on one scale
        for s, i, B in zip(self.specs, _offsets(self.specs), coords.basis):
            term = slice(i, i + s.n_theta)
            size[term] = np.maximum(size[term], self.MOMENT_TERM_SHARE * size[term].max())
            common[term] = B is not None
        step = self.MOMENT_STEP * size
        if self.MOMENT_LEVELS:
            for s, i in zip(self.specs, _offsets(self.specs)):
                shrink = min(1.0, math.sqrt(self.MOMENT_LEVELS / max(s.n_levels, 1)))
                step[i : i + s.n_theta] *= shrink
        near_zero = (self.lower == 0) & common & (phi < self.MOMENT_AT_ZERO * step)
        unplaced = (self.lower == 0) & ~near_zero & (phi <= FLOOR)
        phi[near_zero] = 0.0
        step[unplaced] = self.MOMENT_UNPLACED_STEP
        return phi, step

    ORTHONORMAL = True
    """Optimise in :class:`~.coordinates.ThetaCoordinates` (False: lme4's ``theta``,
    for comparison)."""

    POLISH_BELOW = 0.05
    """Polish only optima with a diagonal entry of T below this (near-singular terms).
    Entries at exactly zero too: the deviance depends on a diagonal entry through its
    square, so its slope is zero at the bound and BOBYQA can stop there on a saddle
    (a (x | g) + (1 | h) model stopped 0.024 above its optimum in deviance with the
    slope's entry at 0; the polish finds the way off it). Skipping those would save
    218 of 4,069 evaluations on the 50 fixtures."""

    EDGE_FIRST_FTOL = 1.0
    """The held stage of :meth:`_first_optimisation` stops when a step changes the
    deviance by less than this: it only has to bring the others near enough for the
    probes to tell; then it is finished with steps :attr:`EDGE_FIRST_REFINE` times the
    first ones if no probe went down. Measured against the engine's own tolerance
    (1e-8): 2,357 evaluations against 2,343 on the 50 fixtures, but glmmTMB's
    ``cw_us_nested_ml`` and ``_reml`` (whose held slope optimises at 0.17 in the
    orthonormal coordinates) 120 and 132 against 200 and 197 (main, holding nothing:
    156 and 160); 0.01: 2,326 and 167, 166; 0.1: 2,345 and 120, 198; 2: as 1."""
    EDGE_FIRST_REFINE = 0.2

    def _first_optimisation(self, dev, start, step, optimizer, probed):
        """BOBYQA from the start. From the moments' start (``step`` given) the entries
        it puts at zero (:attr:`MOMENT_AT_ZERO`) are held there first, the others
        optimised alone (to :attr:`EDGE_FIRST_FTOL`); then each held entry is probed
        (:meth:`_goes_down_from_zero`, as lme4's ``restart_edge`` looks at the gradient
        on the boundary): if one lowers the deviance everything is optimised from that
        point, else the held stage is finished. Started at zero but free,
        ``igf_singular``'s slope wandered off the edge and BOBYQA crawled back to it
        (on the 50 fixtures 2,724 evaluations against 2,357 so)."""
        held = (self.lower == 0) & (start == 0) if step is not None else None
        if held is None or not held.any():
            return minimize_theta(
                dev,
                start,
                self.lower,
                method=optimizer,
                initial_step=step,
                xtol_rel=self._xtol_rel,
            )
        free = ~held

        def sub(x):
            full = np.array(start, dtype=float)
            full[free] = x
            return dev(full)

        def stage(x0, first, ftol=None):
            return minimize_theta(
                sub, x0, self.lower[free], method=optimizer, initial_step=first,
                ftol_abs=ftol, xtol_rel=self._xtol_rel,
            )  # fmt: skip

        edge = stage(start[free], step[free], self.EDGE_FIRST_FTOL)
        x = np.array(start, dtype=float)
        x[free] = edge.x
        probes, down = self._goes_down_from_zero(dev, x, edge.fun, held, probed)
        n_evals = edge.n_evals + probes
        if down:
            again = minimize_theta(
                dev, x, self.lower, method=optimizer, initial_step=step, xtol_rel=self._xtol_rel
            )
            again.n_evals += n_evals  # it starts at x: never above the edge's optimum
            return again
        fine = stage(edge.x, self.EDGE_FIRST_REFINE * step[free])
        n_evals += fine.n_evals
        if fine.fun < edge.fun:
            edge = fine
            x[free] = edge.x
        return type(edge)(x, edge.fun, n_evals, edge.converged, edge.message, edge.method)

    def _polish(self, dev, opt, optimizer, probed=None):
        """BOBYQA again from its own optimum with a small trust region, when a term is
        nearly singular: along such a ridge the deviance is so flat that the first stop
        can be 1e-5 away in theta (lme4's and MixedModels.jl's restarts do the same).

        Measured on the 51 fixture models with nlopt's own first step: polishing every
        fit cost 25 % more evaluations (4,182 against 3,341) and changed the deviance by
        at most 2e-9, except on the seed's nested example 2, a ridge (one diagonal entry
        0.002), where it gained 2.8e-6. Where the near-singular entries are all exactly
        zero, :meth:`_goes_down_from_zero` decides whether to polish."""
        diagonal = self._diagonal(opt.x)
        if len(opt.x) == 0 or not np.any(diagonal < self.POLISH_BELOW):
            return opt
        if not np.any((diagonal > 0) & (diagonal < self.POLISH_BELOW)):
            # only exact zeros: polish if a probe goes down
            zeros = (self.lower == 0) & (np.asarray(opt.x) == 0)
            probes, down = self._goes_down_from_zero(dev, opt.x, opt.fun, zeros, probed)
            if not down:
                n_evals = opt.n_evals + probes
                return type(opt)(opt.x, opt.fun, n_evals, opt.converged, opt.message, opt.method)
        again = minimize_theta(
            dev, opt.x, self.lower, method=optimizer, initial_step=1e-3, xtol_rel=self._xtol_rel
        )
        n_evals = opt.n_evals + again.n_evals
        best = again if again.fun < opt.fun else opt
        return type(opt)(best.x, best.fun, n_evals, opt.converged, opt.message, opt.method)

    POLISH_PROBE = (1e-3, 1e-2)
    """The steps from zero at which :meth:`_goes_down_from_zero` tries each zero entry:
    the polish's own first step, and ten times it for a shallow saddle (on the 50
    fixtures 8 evaluations more than the first alone)."""

    def _goes_down_from_zero(self, dev, x, fun, entries, probed=None) -> tuple[int, bool]:
        """:func:`~.optimize.goes_down_from_zero` at :attr:`POLISH_PROBE`. Probing
        instead of polishing where the near-singular entries are exact zeros: on the 50
        fixtures, where no probe went down, 223 of 3,049 evaluations fewer
        (``igf_singular`` 98 -> 77, with no other change), every logLik the same to
        4e-11."""
        return goes_down_from_zero(dev, x, fun, entries, self.POLISH_PROBE, probed)

    OTHER_RHOS = (0.5, 0.9, -0.5)
    """A model with ``cs`` or ``ar1`` terms is optimised again from these correlations
    (glmmTMB's fixtures: from a correlation of 0 ``cw_cs_reml`` stopped 133
    log-likelihood units short and ``bw_ar1_slope_reml`` 10 units; that model's second
    local optimum, 0.002 below, is where 0.5 leads, while -0.5 and 0.9 reach glmmTMB's)."""

    def _other_correlation_starts(self, dev, opt, optimizer, start_phi, tried):
        """BOBYQA again from ``start_phi`` with each ``cs``/``ar1`` correlation at each
        of :attr:`OTHER_RHOS`; the lowest optimum is kept. With one column per
        observation (``ar1(0 + time | subject)``) a correlation of 0 makes the term the
        residual's double, and with a random intercept beside it a correlation near 1
        makes it the intercept's: the deviance has several valleys."""
        slots = correlation_slots(self.specs)
        best, n_evals = opt, opt.n_evals
        for rho in self.OTHER_RHOS if slots else ():
            start = np.array(start_phi, dtype=float)
            for j, s in slots:
                start[j] = correlation_parameter(s, rho)
            again = minimize_theta(
                dev,
                start,
                self.lower,
                method=optimizer,
                initial_step=None,
                xtol_rel=self._xtol_rel,
            )
            again = self._restart_at_edge(dev, again, optimizer, tried)
            n_evals += again.n_evals
            best = again if again.fun < best.fun else best
        return type(opt)(best.x, best.fun, n_evals, best.converged, best.message, best.method)

    LOG_SCALE_ABOVE = 10.0
    """Relative SDs of structured terms above this are polished on the log scale."""
    LOG_SCALE_ROUNDS = 4
    """At most this many log-scale polishes, each from the last one's stop, while they
    gain (``cw_ar1_ml``: 0.02 below glmmTMB, then 2.4e-4 below, then 4.8e-5 above)."""
    LOG_SCALE_CAP = 1e4
    """...and kept below this (the residual SD 1e-4 of the term's): beyond it the
    deviance loses digits to rounding (``cw_ar1_ml``'s ML logLik at relative SD 1e5 is
    0.017 above its value at 1e4, at 1e6 4.1 above, at 1e7 744: noise, not likelihood)."""

    def _log_scale_polish(self, dev, opt, optimizer):
        """BOBYQA again over the logs of the large relative SDs of ``diag``, ``cs`` and
        ``ar1`` terms. A term that takes over the residual (``ar1(0 + time | subject)``
        with sigma going to 0) has relative SDs growing without bound along a flat
        ridge, which steps of fixed size climb slowly: ``cw_ar1_ml`` stopped 0.02 below
        glmmTMB at a relative SD of 475, the log-scale polish reaches it (4,800) in 57
        evaluations."""
        x = np.array(opt.x, dtype=float)
        big = np.zeros(len(x), dtype=bool)
        for s, i in zip(self.specs, _offsets(self.specs)):
            if s.structure != "us":
                big[i : i + s.n_sd] = x[i : i + s.n_sd] > self.LOG_SCALE_ABOVE
        if not big.any():
            return opt
        nb = int(big.sum())

        def full(z):
            out = x.copy()
            out[big] = np.exp(z[:nb])
            out[~big] = z[nb:]
            return out

        cap = math.log(self.LOG_SCALE_CAP)
        z0 = np.concatenate([np.minimum(np.log(x[big]), cap), x[~big]])
        lower = np.concatenate([np.full(nb, -np.inf), self.lower[~big]])
        upper = np.concatenate([np.full(nb, cap), np.full(len(x) - nb, np.inf)])
        again = minimize_theta(
            lambda z: dev(full(z)), z0, lower, method=optimizer, initial_step=0.5,
            upper=upper, xtol_rel=self._xtol_rel,
        )  # fmt: skip
        n_evals = opt.n_evals + again.n_evals
        if again.fun < opt.fun:
            return type(opt)(
                full(again.x), again.fun, n_evals, opt.converged, opt.message, opt.method
            )
        return type(opt)(opt.x, opt.fun, n_evals, opt.converged, opt.message, opt.method)

    _xtol_rel = XTOL_REL
    """BOBYQA's ``xtol_rel`` in this fit (:meth:`fit`: :data:`~.newton.COARSE_XTOL_REL`
    without ``cs``/``ar1`` terms)."""

    FINE_STEP = 1e-2
    """The first step of the fine BOBYQA of :meth:`_settle`, relative to each entry (at
    least 0.1)."""

    def _settle(self, dev, objective, coords, opt, optimizer):
        """The end of the fit from BOBYQA's stop (``opt`` in lme4's theta): the Newton
        step (:func:`~.newton.newton_step`), and the derivatives it took. After a coarse
        stop (:data:`~.newton.COARSE_XTOL_REL`) the step must be verified, and an entry at its
        bound is not trusted at all (``(conc || Plant)`` on CO2 stopped coarse at
        ``theta = 0``, 0.093 below lme4, where the slope's SD is 3.9e-4): otherwise
        BOBYQA runs again from there at the engine's tolerance before the step."""
        coarse = self._xtol_rel > XTOL_REL
        if not coarse:
            return newton_step(dev, opt, self.lower)[:2]
        if not at_bound(opt.x, self.lower):
            stepped, derivatives, verified = newton_step(dev, opt, self.lower)
            if verified:
                return stepped, derivatives
            opt = stepped
        phi = coords.from_theta(np.asarray(opt.x, dtype=float))
        step = self.FINE_STEP * np.maximum(np.abs(phi), 0.1)
        again = minimize_theta(
            objective, phi, self.lower, method=optimizer, initial_step=step, xtol_rel=XTOL_REL
        )
        n_evals = opt.n_evals + again.n_evals
        x, fun = (coords.to_theta(again.x), again.fun) if again.fun < opt.fun else (opt.x, opt.fun)
        best = type(opt)(x, fun, n_evals, opt.converged, opt.message, opt.method)
        return newton_step(dev, best, self.lower)[:2]

    def _diagonal(self, theta: np.ndarray) -> np.ndarray:
        """The diagonal entries of every term's T (the entries bounded below by 0)."""
        return np.asarray(theta)[self.lower == 0]

    EDGE = 1e-3
    """A diagonal entry of T below this is tried at exactly zero (lme4's restart_edge)."""
    EDGE_STEP = 0.05
    """The first step of the optimisation from the edge..."""
    EDGE_NEAR = 1e-4
    """...and 1e-3 (the polish's) when no entry snapped moved more than this: BOBYQA
    had all but reached the edge and the others are near their optimum. On the 50
    fixtures (every snap moved less than 1e-4) 2,343 evaluations against 2,369 with
    0.05 (alone, before the moments' start held entries at zero: 2,934 against 3,049;
    a step of 5e-3: 2,939, 1e-2: 2,951)."""

    def _restart_at_edge(self, dev, opt, optimizer, tried: set[bytes] | None = None):
        """Optimisers crawl along a boundary: where a term's diagonal entry (a structured
        term's SD) ended near zero, try that column of T at exactly zero and optimise again from there (as
        lme4's ``restart_edge``); keep whichever point is lower. ``tried`` holds the
        sets of snapped entries already tried in this fit (each is tried once: the
        seed's nested example 2 spent 721 evaluations on a second, equal attempt)."""
        theta = np.array(opt.x, dtype=float)
        snapped = snap_to_edge(theta, self.specs, self.EDGE)
        changed = bool(np.any(snapped != theta))
        if not changed:
            return opt
        pattern = np.packbits((snapped == 0) & (theta != 0)).tobytes()
        if tried is not None:
            if pattern in tried:
                return opt
            tried.add(pattern)
        base = dev(snapped)
        if not np.isfinite(base):
            return opt
        # optimise the other entries with the snapped columns held at zero: without
        # the ridge along the boundary the optimiser converges in a few steps
        free = ~((snapped == 0) & (theta != 0)) & ~((snapped == 0) & (self.lower == 0))
        free |= snapped != 0

        def sub(x):
            full = snapped.copy()
            full[free] = x
            return dev(full)

        step = self.EDGE_STEP if np.abs(snapped - theta).max() > self.EDGE_NEAR else 1e-3
        again = minimize_theta(
            sub,
            snapped[free],
            self.lower[free],
            method=optimizer,
            initial_step=step,
            xtol_rel=self._xtol_rel,
        )
        x = snapped.copy()
        x[free] = again.x
        n_evals = opt.n_evals + again.n_evals + 1
        if again.fun < opt.fun:
            return type(opt)(x, again.fun, n_evals, again.converged, again.message, again.method)
        return type(opt)(opt.x, opt.fun, n_evals, opt.converged, opt.message, opt.method)

    def record_at(self, theta: np.ndarray, reml: bool = True) -> LmmFit:
        """A fit record at a given ``theta`` (no optimisation)."""
        ev = self.evaluate(np.asarray(theta, dtype=float), modes=True)
        opt = OptimResult(np.asarray(theta, dtype=float), ev.deviance(reml), 1, True, "given")
        return self._record(ev, reml, opt, 0.0)

    def _record(self, ev: Evaluation, reml: bool, opt, seconds: float) -> LmmFit:
        n, p = self.n, self.p
        sigma = math.sqrt(ev.r2 / ((n - p) if reml else n))
        factors = unpack_theta(ev.theta, self.specs)
        b = [u @ T.T for u, T in zip(ev.u, factors)]
        if p:
            RXinv = sla.solve_triangular(ev.RX, np.eye(p), lower=False)
            cov_beta = sigma**2 * (RXinv @ RXinv.T)
        else:
            cov_beta = np.zeros((0, 0))
        return LmmFit(
            theta=ev.theta,
            beta=ev.beta,
            sigma=sigma,
            reml=reml,
            deviance=ev.deviance(reml),
            evaluation=ev,
            factors=factors,
            b=b,
            cov_beta=cov_beta,
            n_evals=opt.n_evals,
            converged=opt.converged,
            message=opt.message,
            optimizer=opt.method,
            seconds=seconds,
        )
