"""Minimising a profiled deviance over ``theta`` within lme4's bounds.

``theta`` has a handful of entries and each evaluation is one blocked Cholesky, so the
number of evaluations decides the time. Methods: ``"bobyqa"`` (Powell's derivative-free
BOBYQA through nlopt, lme4's and MixedModels.jl's choice), ``"lbfgsb"`` (scipy's L-BFGS-B
with central-difference gradients). ``"auto"`` is BOBYQA when nlopt is installed. The
stopping rules are on ``theta`` and on the deviance, never scaled by the number of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["OptimResult", "minimize_theta", "goes_down_from_zero", "HAVE_NLOPT"]

try:
    import nlopt

    HAVE_NLOPT = True
except ImportError:  # pragma: no cover - depends on the environment
    nlopt = None
    HAVE_NLOPT = False

FTOL_ABS = 1e-8
"""Stop when a step changes the deviance by less than this (absolute, not per row):
lme4's own ``ftol_abs``. Measured on the 50 fixtures with the engine's orthonormal
coordinates and final Newton step: 4,333 evaluations against 4,762 at 1e-10 (and
``xtol_abs`` 1e-9), no deviance higher by more than 3e-10."""
XTOL_ABS = 1e-8
"""lme4's ``xtol_abs``."""
XTOL_REL = 1e-4
"""The LMM engine's relative step tolerance on ``theta`` (``minimize_theta``'s
``xtol_rel``; none by default): nloptr's default, which lme4's ``nloptwrap`` keeps.
With the engine's final Newton step, measured on the 50 fixtures: 4,069 evaluations
against 4,333 without it, no deviance higher by more than 3e-10."""
MAX_EVALS = 100_000


@dataclass
class OptimResult:
    x: np.ndarray
    fun: float
    n_evals: int
    converged: bool
    message: str
    method: str = ""


def minimize_theta(
    fun: Callable[[np.ndarray], float],
    start: np.ndarray,
    lower: np.ndarray,
    method: str = "auto",
    initial_step: float | np.ndarray | None = 0.2,
    *,
    upper: np.ndarray | None = None,
    ftol_abs: float | None = None,
    xtol_abs: float | None = None,
    xtol_rel: float = 0.0,
    max_evals: int = MAX_EVALS,
) -> OptimResult:
    """Minimise ``fun`` from ``start`` subject to ``lower <= theta (<= upper)``.

    The one BOBYQA call of the package: the LMM engine, glmer's two stages (their own
    tolerances) and the profiles of confidence intervals all come here. ``initial_step``
    None is nlopt's own first step; a number or one per coordinate sets it. The
    tolerances default to the engine's (``FTOL_ABS``, ``XTOL_ABS``)."""
    ftol_abs = FTOL_ABS if ftol_abs is None else ftol_abs
    xtol_abs = XTOL_ABS if xtol_abs is None else xtol_abs
    if method == "auto":
        method = "bobyqa" if HAVE_NLOPT else "lbfgsb"
    start = np.maximum(np.asarray(start, dtype=float), lower)
    if upper is not None:
        start = np.minimum(start, upper)
    if len(start) == 0:
        return OptimResult(start, float(fun(start)), 1, True, "no parameters", method)
    if method == "bobyqa":
        return _bobyqa(
            fun, start, lower, upper, initial_step, ftol_abs, xtol_abs, xtol_rel, max_evals
        )
    if method == "lbfgsb":
        return _lbfgsb(fun, start, lower, upper)
    raise ValueError(f"unknown optimizer {method!r}")


def goes_down_from_zero(
    fun: Callable[[np.ndarray], float],
    x: np.ndarray,
    value: float,
    entries: np.ndarray,
    steps: Sequence[float],
    probed: dict[bytes, float] | None = None,
) -> tuple[int, bool]:
    """Whether ``fun`` with one of ``entries`` (a mask; those entries at zero in ``x``)
    at one of ``steps``, the others where they are, is below ``value``; and the number
    of evaluations (points already in ``probed``, which it fills, are not evaluated
    again).

    lme4's ``restart_edge`` looks at the one-sided gradient on the boundary; here a
    step is needed: a profiled deviance depends on a column of T only through T T', so
    it is even in the diagonal entry of the column's last row, with a zero slope and
    zero cross-derivatives with the other entries there; a saddle at the bound shows
    along that entry alone."""
    probed = {} if probed is None else probed
    evals = 0
    for j in np.flatnonzero(entries):
        for step in steps:
            point = np.array(x, dtype=float)
            point[j] = step
            key = point.tobytes()
            if key not in probed:
                probed[key] = float(fun(point))
                evals += 1
            if probed[key] < value:
                return evals, True
    return evals, False


def _bobyqa(fun, start, lower, upper, initial_step, ftol_abs, xtol_abs, xtol_rel, max_evals):
    if not HAVE_NLOPT:
        raise ImportError("optimizer='bobyqa' needs nlopt: pip install nlopt")
    count = [0]
    best = [np.inf, start.copy()]

    def objective(x, grad):
        count[0] += 1
        value = float(fun(x))
        if not np.isfinite(value):
            return 1e300
        if value < best[0]:
            best[0], best[1] = value, x.copy()
        return value

    n = len(start)
    opt = nlopt.opt(nlopt.LN_BOBYQA, n)
    opt.set_min_objective(objective)
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    if upper is not None:
        opt.set_upper_bounds(np.where(np.isfinite(upper), upper, np.inf))
    opt.set_ftol_abs(ftol_abs)
    opt.set_xtol_abs(xtol_abs)
    if xtol_rel:
        opt.set_xtol_rel(xtol_rel)
    opt.set_maxeval(max_evals)
    # None: nlopt's own first step, as lme4's nloptwrap leaves it (3/4 of a nonzero start
    # value, 1 from zero). Measured on the 47 fixture models: 0.2 everywhere took 17 %
    # more evaluations (sleepstudy's (Days|Subject): 75 against 51) to the same optimum.
    if initial_step is not None:
        opt.set_initial_step(np.broadcast_to(np.asarray(initial_step, dtype=float), (n,)).copy())
    try:
        opt.optimize(start.copy())
        result = opt.last_optimize_result()
        ok = result > 0 and result != nlopt.MAXEVAL_REACHED
        message = {
            nlopt.SUCCESS: "success",
            nlopt.FTOL_REACHED: "ftol reached",
            nlopt.XTOL_REACHED: "xtol reached",
            nlopt.MAXEVAL_REACHED: "maximum evaluations reached",
        }.get(result, f"nlopt code {result}")
    except (nlopt.RoundoffLimited, RuntimeError, ValueError) as exc:
        ok, message = True, f"stopped: {exc}"
    # the lowest point evaluated (nlopt returns it too; no evaluation to confirm it)
    return OptimResult(
        np.asarray(best[1], dtype=float), float(best[0]), count[0], ok, message, "bobyqa"
    )


def _lbfgsb(fun, start, lower, upper=None) -> OptimResult:
    from scipy import optimize

    count = [0]

    def f(x):
        count[0] += 1
        value = float(fun(x))
        return value if np.isfinite(value) else 1e300

    def grad(x):
        g = np.empty_like(x)
        for j in range(len(x)):
            h = 1e-6 * max(1.0, abs(x[j]))
            lo = x.copy()
            hi = x.copy()
            hi[j] += h
            lo[j] = max(x[j] - h, lower[j]) if np.isfinite(lower[j]) else x[j] - h
            g[j] = (f(hi) - f(lo)) / (hi[j] - lo[j])
        return g

    hi = np.full(len(lower), np.inf) if upper is None else upper
    bounds = [
        (lo if np.isfinite(lo) else None, up if np.isfinite(up) else None)
        for lo, up in zip(lower, hi)
    ]
    res = optimize.minimize(
        f,
        start,
        jac=grad,
        method="L-BFGS-B",
        bounds=bounds,
        options={"ftol": 1e-14, "gtol": 1e-8, "maxiter": 10_000},
    )
    return OptimResult(
        np.asarray(res.x), float(res.fun), count[0], bool(res.success), str(res.message), "lbfgsb"
    )
