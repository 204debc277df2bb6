"""Profile-likelihood intervals of a glmer fit, as lme4's confint(glmer(...)).

The Laplace deviance is profiled over each random-effect sd, correlation and fixed effect
with the other parameters re-optimised by BOBYQA; the ends are where the signed root of the
deviance difference crosses the normal quantile, as for lmer fits (:mod:`.intervals`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from lme2sm import arguments
from lme2sm.errors import ArgumentError
from lme2sm.inference._design import one_blas_thread
from lme2sm.inference.intervals import (
    DevianceProfile,
    column_names,
    profile_interval,
    selected_parm,
    sig_parameters,
    sig_to_theta,
    theta_to_sig,
)
from lme2sm.inference.parallel import resolve_n_jobs, run_tasks


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


class GlmmTerms:
    """What the sd/cor conversions read from a glmer fit: its terms (group, column names)
    and theta's factors; plain data, so it pickles for the worker processes."""

    def __init__(self, frame):
        from lme2sm.engine.frame_input import term_specs
        from lme2sm.inference._design import TermBlock

        blocks, offset = [], 0
        for t in frame.terms:
            blocks.append(TermBlock(t.group, tuple(t.names), t.n_levels, offset, t.structure))
            offset += t.n_levels * t.k
        self.terms = tuple(blocks)
        self._specs = term_specs(frame)

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        from lme2sm.engine.theta import unpack_theta

        return unpack_theta(np.asarray(theta, dtype=float), self._specs)


class GlmerProfileJob:
    """Everything one parameter's profile needs (sent once to each worker process)."""

    def __init__(self, m, level: float):
        fit = m.engine_fit
        self.terms = GlmmTerms(m.frame)
        self.pars = sig_parameters(self.terms, sigma=False)
        self.problem, self.nAGQ = m.problem, m.nAGQ
        self.u0, self.deviance = fit.state.u, float(fit.deviance)
        self.nrho = len(self.pars)
        rho = theta_to_sig(self.terms, fit.theta, None)
        self.x_hat = np.concatenate([rho, np.asarray(fit.beta, dtype=float)])
        self.z = float(stats.norm.ppf((1 + level) / 2))
        nbeta = len(fit.beta)
        self.lower = [p.lower for p in self.pars] + [-math.inf] * nbeta
        self.upper = [p.upper for p in self.pars] + [math.inf] * nbeta
        se = m.se().to_numpy()
        scales = [1.0 if p.kind == "cor" else max(abs(v), 0.1) for p, v in zip(self.pars, rho)]
        self.scales = scales + [float(s) if np.isfinite(s) and s > 0 else 1.0 for s in se]
        self.names = [p.name for p in self.pars] + list(m.frame.fixed_names)

    def deviance_function(self):
        """The Laplace (AGQ) deviance of (sds, cors, beta), PIRLS warm-started from the
        last point's modes (from the fit's modes at the first call)."""
        problem, nrho, last = self.problem, self.nrho, [self.u0]

        def dev(x: np.ndarray) -> float:
            theta = sig_to_theta(self.terms, x[:nrho], sigma=False)
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
            return problem.laplace(st) if self.nAGQ == 1 else problem.agq(st, self.nAGQ)

        return dev


def profile_parameter(job: GlmerProfileJob, i: int) -> list[float]:
    """One task: parameter ``i``'s interval, its profile started afresh from the fit (so
    it does not depend on which parameters were profiled before, nor in which process)."""
    with one_blas_thread(), np.errstate(all="ignore"):
        dev = job.deviance_function()
        dev_min = min(dev(job.x_hat), job.deviance)
        prof = DevianceProfile(
            dev, job.x_hat, dev_min, job.lower, job.upper, job.scales, bobyqa_minimize()
        )
        if i < job.nrho:
            step = 0.1 if job.pars[i].kind == "cor" else 0.25 * max(job.x_hat[i], 0.1)
        else:
            step = job.scales[i]
        # each side starts its re-minimisation from the optimum
        zeta_lo, _ = prof.zeta(i)
        zeta_hi, _ = prof.zeta(i)
        return profile_interval(
            zeta_lo, zeta_hi, float(job.x_hat[i]), step, job.lower[i], job.upper[i], job.z
        )


def glmer_profile_confint(
    m, level: float = 0.95, parm=None, n_jobs: int | None = 1
) -> pd.DataFrame:
    """lme4's ``confint(m, oldNames = FALSE)`` for a glmer fit: profile intervals.

    The deviance (Laplace, or AGQ with ``nAGQ > 1``) is a function of the random
    effects' sds and correlations and the fixed effects; each parameter's profile
    re-minimises all the others (lme4 does the same, its fixed effects through the
    offset), by BOBYQA since PIRLS leaves too much noise for gradients. The parameters
    are profiled independently, in ``n_jobs`` processes (-1: every core) with the same
    numbers as in one.
    """
    if m.nAGQ == 0:
        raise ArgumentError(
            "profile intervals need the Laplace (nAGQ=1) or AGQ deviance; this fit has "
            "nAGQ=0 (lme4's first stage only): use method='Wald' or refit with nAGQ=1"
        )
    level = arguments.probability("level", level)
    parm = selected_parm(m, parm, "profile")
    resolve_n_jobs(n_jobs)
    job = GlmerProfileJob(m, level)
    kept = [i for i, name in enumerate(job.names) if parm is None or name in parm]
    rows = list(run_tasks(profile_parameter, job, kept, n_jobs, len(kept)))
    return pd.DataFrame(rows, index=[job.names[i] for i in kept], columns=column_names(level))
