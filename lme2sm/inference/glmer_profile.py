"""Profile-likelihood intervals of a glmer fit, as lme4's confint(glmer(...)).

The Laplace deviance is profiled over each random-effect sd, correlation and fixed effect
with the other parameters re-optimised by BOBYQA; the ends are where the signed root of the
deviance difference crosses the normal quantile, as for lmer fits (:mod:`.intervals`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from lme2sm.errors import ArgumentError
from lme2sm.inference._design import one_blas_thread
from lme2sm.inference.intervals import (
    DevianceProfile,
    column_names,
    profile_interval,
    sig_parameters,
    sig_to_theta,
    theta_to_sig,
)

if TYPE_CHECKING:
    pass


def bobyqa_minimize(initial_step: float = 0.1, ftol_abs: float = 1e-9):
    """The inner minimiser for deviances computed by PIRLS (glmer's), whose ~1e-8 noise
    defeats finite-difference gradients: BOBYQA within the bounds
    (:func:`~lme2sm.engine.optimize.minimize_theta`), its first step kept inside them."""
    from lme2sm.engine.optimize import minimize_theta

    def minimize(f, x0, bounds):
        x0 = np.asarray(x0, dtype=float)
        if len(x0) == 0:
            return x0, float(f(x0))
        lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
        hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
        x0 = np.clip(x0, lo, hi)
        room = np.minimum(hi - x0, x0 - lo)
        step = np.where(room > 0, np.minimum(initial_step, room), initial_step)
        res = minimize_theta(
            f,
            x0,
            lo,
            initial_step=step,
            upper=hi,
            ftol_abs=ftol_abs,
            xtol_abs=1e-7,
            max_evals=20_000,
        )
        return res.x, float(res.fun)

    return minimize


class _GlmmTerms:
    """What the sd/cor conversions read from a glmer fit: its terms and theta's factors."""

    def __init__(self, frame):
        from lme2sm.engine.theta import TermSpec, unpack_theta

        self.terms = tuple(frame.terms)
        self._specs = [TermSpec(t.n_levels, t.k) for t in frame.terms]
        self._unpack = unpack_theta

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        return self._unpack(np.asarray(theta, dtype=float), self._specs)


def glmer_profile_confint(m, level: float = 0.95, parm=None) -> pd.DataFrame:
    """lme4's ``confint(m, oldNames = FALSE)`` for a glmer fit: profile intervals.

    The deviance (Laplace, or AGQ with ``nAGQ > 1``) is a function of the random
    effects' sds and correlations and the fixed effects; each parameter's profile
    re-minimises all the others (lme4 does the same, its fixed effects through the
    offset), by BOBYQA since PIRLS leaves too much noise for gradients.
    """
    if m.nAGQ == 0:
        raise ArgumentError(
            "profile intervals need the Laplace (nAGQ=1) or AGQ deviance; this fit has "
            "nAGQ=0 (lme4's first stage only): use method='Wald' or refit with nAGQ=1"
        )
    terms = _GlmmTerms(m.frame)
    pars = sig_parameters(terms, sigma=False)
    problem, fit = m.problem, m.engine_fit
    nrho = len(pars)
    rho = theta_to_sig(terms, fit.theta, None)
    beta = np.asarray(fit.beta, dtype=float)
    se = m.se().to_numpy()
    x_hat = np.concatenate([rho, beta])
    last = [fit.state.u]

    def dev(x: np.ndarray) -> float:
        theta = sig_to_theta(terms, x[:nrho], sigma=False)
        if theta is None:
            return math.inf
        b = x[nrho:]
        try:
            st = problem.pirls(theta, b, start=(b, last[0]))
        except Exception:  # noqa: BLE001 - retry from zero modes
            try:
                st = problem.pirls(theta, b)
            except Exception:  # noqa: BLE001 - not an admissible point
                return math.inf
        last[0] = st.u
        return problem.laplace(st) if m.nAGQ == 1 else problem.agq(st, m.nAGQ)

    z = float(stats.norm.ppf((1 + level) / 2))
    lower = [p.lower for p in pars] + [-math.inf] * len(beta)
    upper = [p.upper for p in pars] + [math.inf] * len(beta)
    scales = [1.0 if p.kind == "cor" else max(abs(v), 0.1) for p, v in zip(pars, rho)]
    scales += [float(s) if np.isfinite(s) and s > 0 else 1.0 for s in se]
    names = [p.name for p in pars] + list(m.frame.fixed_names)
    rows, kept = [], []
    with one_blas_thread(), np.errstate(all="ignore"):
        dev_min = min(dev(x_hat), fit.deviance)
        prof = DevianceProfile(dev, x_hat, dev_min, lower, upper, scales, bobyqa_minimize())
        for i, name in enumerate(names):
            if parm is not None and name not in parm:
                continue
            if i < nrho:
                step = 0.1 if pars[i].kind == "cor" else 0.25 * max(x_hat[i], 0.1)
            else:
                step = scales[i]
            # each side starts its re-minimisation from the optimum
            zeta_lo, _ = prof.zeta(i)
            zeta_hi, _ = prof.zeta(i)
            rows.append(
                profile_interval(zeta_lo, zeta_hi, float(x_hat[i]), step, lower[i], upper[i], z)
            )
            kept.append(name)
    return pd.DataFrame(rows, index=kept, columns=column_names(level))
