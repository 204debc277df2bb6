"""The parametric bootstrap of a glmer fit, as lme4's ``confint(m, method = "boot")``.

Each replicate's response is drawn as lme4's ``simulate(m)`` draws it (new random effects,
then the family's draws around the means: :func:`lme2sm.inference.simulate.simulate`),
one replicate after the other from the one generator ``default_rng(seed)``; the model is
refitted to it by lme4's two stages (:func:`lme2sm.glmm.fit.fit_glmm`, no Hessian: only
the estimates are kept). The rows are lme4's ``bootFun``: the random effects' sds and
correlations (unscaled, as for any GLMM), ``sigma`` for the Gamma and inverse Gaussian
families, then the fixed effects.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd

from lme2sm import arguments
from lme2sm.errors import FitError
from lme2sm.glmm.fit import fit_glmm
from lme2sm.glmm.pirls import GlmmProblem
from lme2sm.inference.bootstrap import percentile_table, run_bootstrap
from lme2sm.inference.glmer_profile import GlmmTerms
from lme2sm.inference.interval_args import interval_arguments, sample_arguments
from lme2sm.inference.intervals import sig_parameters, theta_to_sig

__all__ = ["GlmerRefits", "glmer_boot_confint", "glmer_bootstrap_samples"]

REFIT_ERRORS = (FitError, np.linalg.LinAlgError, ValueError, ArithmeticError)
"""A refit that fails with one of these is NA, as bootMer's failures are."""


class GlmerRefits:
    """What a glmer refit needs (sent once to each worker): the problem's design (terms,
    X, trials, glm weights, offset, family) without its response, and nAGQ."""

    def __init__(self, m):
        pr = m.problem
        self.rows, self.specs, self.X = pr.rows, pr.specs, pr.X
        self.trials, self.weights, self.offset = pr.trials, pr.wts, pr.offset
        self.family, self.nAGQ = m.family, m.nAGQ
        self.terms = GlmmTerms(m.frame)
        self.dispersion = bool(m.family.has_dispersion)
        self.width = len(sig_parameters(self.terms, sigma=False)) + self.dispersion + pr.p

    def refit(self, y: np.ndarray) -> np.ndarray:
        """sds, correlations (sigma) and the fixed effects refitted to ``y`` (NaN when
        the refit fails)."""
        try:
            problem = GlmmProblem(
                self.rows,
                self.specs,
                self.X,
                y,
                self.trials,
                self.weights,
                self.offset,
                self.family,
            )
            fit = fit_glmm(problem, self.nAGQ, calc_derivs=False)
        except REFIT_ERRORS:
            return np.full(self.width, np.nan)
        parts = [theta_to_sig(self.terms, fit.theta, None)]
        if self.dispersion:
            parts.append([self.sigma(problem, fit)])
        parts.append(fit.beta)
        return np.concatenate(parts)

    def sigma(self, problem: GlmmProblem, fit) -> float:
        """lme4's ``sigma(m)`` of the refit (:attr:`GlmerEstimates.sigma`)."""
        st = fit.state
        wrss = float(np.sum(self.weights * (problem.y - st.mu) ** 2 / self.family.variance(st.mu)))
        ussq = float(sum(np.sum(np.asarray(u) ** 2) for u in st.u))
        return math.sqrt((wrss + ussq) / problem.n)


def glmer_responses(m, nsim: int, seed) -> Iterator[np.ndarray]:
    """``nsim`` responses from lme4's ``simulate(m)``, drawn one replicate at a time."""
    from lme2sm.inference.simulate import simulate

    rng = arguments.generator(seed)
    for _ in range(nsim):
        yield simulate(m, 1, rng).to_numpy()[:, 0]


def glmer_bootstrap_samples(
    m, nsim: int = 500, seed=None, progress: bool = True, n_jobs: int | None = 1
) -> pd.DataFrame:
    """lme4's ``bootMer(m, bootFun, nsim)`` samples of a glmer fit (see the module);
    ``n_jobs`` processes (-1: every core) give the same samples as one."""
    nsim, rng, progress, n_jobs = sample_arguments(nsim, seed, progress, n_jobs)
    shared = GlmerRefits(m)
    names = [p.name for p in sig_parameters(shared.terms, sigma=False)]
    names += ["sigma"] if shared.dispersion else []
    names += list(m.frame.fixed_names)
    return run_bootstrap(shared, glmer_responses(m, nsim, rng), nsim, names, progress, n_jobs)


def glmer_boot_confint(
    m,
    level: float = 0.95,
    nsim: int = 500,
    seed=None,
    progress: bool = True,
    n_jobs: int | None = 1,
    parm=None,
) -> pd.DataFrame:
    """Percentile intervals from :func:`glmer_bootstrap_samples` (lme4's ``method="boot"``);
    every argument is checked before the first refit."""
    a = interval_arguments(m, level, "boot", parm, nsim, seed, progress, n_jobs)
    level, parm, nsim, seed = a.level, a.parm, a.nsim, a.rng
    samples = glmer_bootstrap_samples(m, nsim, seed=seed, progress=progress, n_jobs=n_jobs)
    return percentile_table(samples, level, parm)
