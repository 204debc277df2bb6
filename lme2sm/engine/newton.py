"""The end of an LMM fit: one Newton step in lme4's ``theta`` from the optimiser's stop,
and whether its quadratic model can be trusted to have finished the optimum.

BOBYQA stops when its steps change ``theta`` by less than its tolerance; on a flat
optimum that leaves ``theta`` 1e-5 from the minimum, and where it stops depends on
rounding in the sums (the same data summed by Parquet batch or in memory stopped 2e-5
apart in a standard deviation). The deviance is smooth there, so one Newton step
(central-difference gradient, forward-difference Hessian: ``2 n + n (n - 1) / 2 + 1``
evaluations) lands on the minimum to rounding. The same derivatives serve lme4's
convergence check (:func:`lme2sm.models.lmer.convergence_messages`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg as sla

__all__ = [
    "newton_step", "at_bound", "COARSE_XTOL_REL", "COARSE_FROM_EFFECTS", "NEWTON_MISS",
    "NEWTON_CONVERGED",
]  # fmt: skip

COARSE_XTOL_REL = 3e-3
"""BOBYQA's relative step tolerance in the LMM engine on models without ``cs``/``ar1``
terms: the Newton step finishes the optimum; where it is not verified, or an entry
stopped at its bound, the driver (``FitDriver._settle``) runs BOBYQA again at
:data:`~.optimize.XTOL_REL` (1e-4) first. Measured with ``benchmarks/lmer_evals.py``:
the 50 fixtures 2,357 -> 2,305 evaluations, no logLik changed by more than 1.2e-10;
glmmTMB's 51 Gaussian fixtures 43,071 -> 42,815, 5.8e-10; InstEval (with the
moments' level-scaled first step) 27 -> 22 and 58 -> 34. 1e-2 left
``cw_us_nested_reml`` 1.5e-6 lower; with ``cs``/``ar1`` terms ``orth_cs_ml`` was 0.34
lower (their other starts and log-scale polish stop short), so those keep 1e-4."""
COARSE_FROM_EFFECTS = 500
"""...and only on models with at least this many random effects, where an evaluation
is a large factorisation: on every model the fine restarts of singular fits cost more
than the coarse stops saved (``schools_seed2`` 186 -> 243 evaluations, 45.7 -> 55.9 ms
CPU). From 500 the fixtures' InstEval samples (624-900 random effects) gain:
``insteval_small`` 26 -> 21, ``_dept`` 42 -> 33, ``_slopes`` 61 -> 58 (from 1,000:
none of them, ``_dept`` 52 with the level-scaled first step alone)."""

NEWTON_MISS = 1e-6
"""A step is verified when its gain in deviance is within this of what its quadratic
model predicted (and it crossed no bound): what is left of the optimum is then of the
model's error. (Within 25 % of the prediction was not enough: Orthodont's
``(age | Subject)`` in lme4's coordinates, stopped 0.039 short, gained 0.0394 against
0.0389 predicted and was left 4.3e-5 short.)..."""
NEWTON_CONVERGED = 1e-7
"""...or when the model predicts a gain below this (already at the optimum)."""

Derivatives = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""``(free entries, gradient, Hessian, theta they were taken at)``."""


def _steps(theta: np.ndarray) -> np.ndarray:
    """Difference steps of 1e-4 relative, at least 1e-5: the forward-difference
    Hessian's rounding error is eps_f / h^2, which swamped a ridge's curvature at
    h = 1e-6."""
    return 1e-4 * np.maximum(np.abs(theta), 0.1)


def at_bound(theta: np.ndarray, lower: np.ndarray) -> bool:
    """Whether an entry of ``theta`` is within a difference step of its bound (the
    Newton step leaves such entries where they are)."""
    theta = np.asarray(theta, dtype=float)
    return bool(np.any(theta - _steps(theta) < lower))


def newton_step(
    dev: Callable[[np.ndarray], float], opt, lower: np.ndarray
) -> tuple[object, Derivatives | None, bool]:
    """One Newton step from ``opt`` (an :class:`~.optimize.OptimResult` in lme4's
    ``theta``) on the entries not within a step of their bound.

    A step across a bound stops on it (a ridge ending at a singular fit: the seed's
    nested example 2 reaches lme4's tight optimum so); the step is kept only if it lowers
    the deviance. Returns the result (evaluations counted), the derivatives, and whether
    the step is verified: every entry free, and the gain as predicted
    (:data:`NEWTON_MISS`) or too small to matter (:data:`NEWTON_CONVERGED`)."""
    theta = np.array(opt.x, dtype=float)
    h_all = _steps(theta)
    free = np.flatnonzero(~(theta - h_all < lower))
    if len(free) == 0 or not np.isfinite(opt.fun):
        return opt, None, False
    f0 = float(opt.fun)
    h = h_all[free]
    n = len(free)
    plus, minus = np.empty(n), np.empty(n)
    for a, j in enumerate(free):
        e = np.zeros_like(theta)
        e[j] = h[a]
        plus[a], minus[a] = dev(theta + e), dev(theta - e)
    evals = 2 * n
    grad = (plus - minus) / (2 * h)
    hess = np.diag((plus - 2 * f0 + minus) / (h * h))
    for a in range(n):
        for b in range(a):
            e = np.zeros_like(theta)
            e[free[a]], e[free[b]] = h[a], h[b]
            value = (dev(theta + e) - plus[a] - plus[b] + f0) / (h[a] * h[b])
            hess[a, b] = hess[b, a] = value
            evals += 1
    n_evals = opt.n_evals + evals
    derivatives = (free, grad, hess, theta)
    same = type(opt)(opt.x, opt.fun, n_evals, opt.converged, opt.message, opt.method)
    if not np.all(np.isfinite(hess)) or not np.all(np.isfinite(grad)):
        return same, derivatives, False
    try:
        step = -sla.cho_solve(sla.cho_factor(hess), grad)
    except np.linalg.LinAlgError:
        return same, derivatives, False
    predicted = -float(grad @ step + 0.5 * step @ hess @ step)
    candidate = theta.copy()
    candidate[free] += step
    clipped = bool(np.any(candidate < lower))
    candidate = np.maximum(candidate, lower)  # a bound crossed: stop on it
    value = dev(candidate)
    gain = f0 - value
    verified = len(free) == len(theta) and (
        predicted <= NEWTON_CONVERGED or (not clipped and abs(gain - predicted) <= NEWTON_MISS)
    )
    if not value < f0:
        x, value = opt.x, opt.fun
    else:
        x = candidate
    stepped = type(opt)(x, value, n_evals + 1, opt.converged, opt.message, opt.method)
    return stepped, derivatives, verified
