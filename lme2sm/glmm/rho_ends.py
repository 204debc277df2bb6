"""glmer's correlations at the ends of their range: a ``cs``/``ar1`` correlation that an
optimiser stage left near +-1 (or cs' -1/(k-1)) is either an optimum at the end, reached
only in the limit of its unbounded parameter, or a plateau the optimiser wandered onto.

The parameter ``t`` of a correlation is unbounded (glmmTMB's transforms,
:mod:`lme2sm.engine.theta`), and ``d rho / d t`` vanishes exponentially at the ends. An
optimiser that steps far into ``t`` sees a flat deviance and stops, whether or not the
deviance falls as rho comes back inside: sleepstudy's identity-link Gamma fit with
``cs(1 + Days | Subject)`` left stage 1 at ``t`` = 184 (rho 1 to rounding), 16.4 below
us()'s logLik, while rho = 0.5 with everything else held was 8.2 lower in deviance.

Two tests, each cheap against a restart from scratch:

* :func:`off_plateau`: the deviance at a few correlations inside the range
  (:data:`PROBE_RHOS`) with every other parameter held, a handful of PIRLS; if one is lower than
  the stop, the end was a plateau, and the stage is restarted from the lowest probe.
* :func:`restart_at_correlation_ends`: otherwise the end may be the optimum; the stage is
  run again with the correlation held at the end (the edge restart of an SD near 0, for a
  correlation).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from lme2sm.engine.driver import correlation_slots
from lme2sm.engine.theta import correlation_of, correlation_parameter

__all__ = ["PROBE_RHOS", "RHO_EDGE", "end_near", "off_plateau", "restart_at_correlation_ends"]

RHO_EDGE = 0.05
"""A ``cs``/``ar1`` correlation closer than this to an end of its range (1; -1 for ar1,
-1/(k-1) for cs) is tested (:func:`off_plateau`) and tried at that end
(:func:`restart_at_correlation_ends`)."""

PROBE_RHOS = (0.9, 0.5, 0.0, -0.5)
"""The correlations :func:`off_plateau` tries, those inside the term's range and at least
:data:`RHO_EDGE` from its ends."""


def end_near(spec, t: float) -> float | None:
    """The end of a ``cs``/``ar1`` correlation's range its parameter ``t`` is within
    :data:`RHO_EDGE` of, or None."""
    end = correlation_of(spec, math.copysign(math.inf, t))
    return end if abs(correlation_of(spec, t) - end) < RHO_EDGE else None


def _inside(spec, rho: float) -> bool:
    lo, hi = correlation_of(spec, -math.inf), correlation_of(spec, math.inf)
    return lo + RHO_EDGE <= rho <= hi - RHO_EDGE


def off_plateau(deviance, x: np.ndarray, fun: float, specs) -> tuple[np.ndarray | None, int]:
    """The lowest point below ``fun`` (the deviance at ``x``) found by moving one
    correlation near an end of its range (:func:`end_near`) to each of
    :data:`PROBE_RHOS`, the other entries of ``x`` held; None if there is none. Also how
    many deviances were evaluated. ``x`` starts with lme4's ``theta`` (stage 2: then
    beta), ``deviance(x)`` is the stage's criterion.

    Where the optimum is at the end (gt_ar1_nested, gt_cs_nested: glmmTMB's rho is
    0.99999) every probe is higher, and the cost is the probes alone."""
    x = np.asarray(x, dtype=float)
    best, best_fun, n = None, fun, 0
    for j, s in correlation_slots(specs):
        if end_near(s, x[j]) is None:
            continue
        for rho in PROBE_RHOS:
            if not _inside(s, rho):
                continue
            probe = x.copy()
            probe[j] = correlation_parameter(s, rho)
            value = deviance(probe)
            n += 1
            if value < best_fun:
                best, best_fun = probe, value
    return best, n


def restart_at_correlation_ends(stage2, specs, opt):
    """Stage 2 again from its stop with each correlation near an end of its range
    (:data:`RHO_EDGE`) at that end, the other parameters free; the lower of the two
    stops, and which entries of (theta, beta) it holds at an end. ``stage2(start,
    held)`` runs stage 2 from ``start`` (lme4's (theta, beta)) with the entries ``held``
    kept where they are.

    The correlation's parameter is unbounded and the deviance's slope in it vanishes
    as the correlation nears its end, so an optimum at the end (a term whose columns
    are one effect) is approached and never reached: gt_cs_nested's stage 2 stopped at
    rho 0.99996, 9.2e-5 below its logLik at rho = 1, gt_ar1_nested's at 0.989, 2.4e-3
    below (glmmTMB's are 1 to 1e-5; rho = 1 is then the end's parameter to rounding,
    :func:`~lme2sm.engine.theta.correlation_parameter`)."""
    x = np.array(opt.x, dtype=float)
    held = np.zeros(len(x), dtype=bool)
    for j, s in correlation_slots(specs):
        end = end_near(s, x[j])
        if end is not None:
            x[j], held[j] = correlation_parameter(s, end), True
    if not held.any():
        return opt, held
    again = stage2(x, held)
    n_evals = opt.n_evals + again.n_evals
    best, held = (again, held) if again.fun < opt.fun else (opt, np.zeros_like(held))
    return replace(best, n_evals=n_evals), held
