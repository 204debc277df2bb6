"""``glmer_nb``: negative binomial mixed models, as lme4's ``glmer.nb``.

lme4's outer loop (``R/nbinom.R``): a Poisson glmer fit, a first ``theta`` by MASS's
``theta.ml``, then a bounded one-dimensional search over ``log(theta)``, each point a
complete glmer fit (:mod:`lme2sm.glmm.nb` has the family and ``theta.ml``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import optimize

from lme2sm import arguments
from lme2sm.engine.progress import FitProgress, fit_progress
from lme2sm.engine.threads import blas_threads
from lme2sm.errors import ArgumentError, ConvergenceWarning, DataError, SingularFitWarning
from lme2sm.glmm.family import Family, get_family
from lme2sm.glmm.fit import fit_glmm
from lme2sm.glmm.nb import LOG_THETA_TOL, negative_binomial, theta_ml
from lme2sm.glmm.pirls import GlmmProblem
from lme2sm.glmm.response import glm_response
from lme2sm.models.glmer import GlmerResult
from lme2sm.models.lmer import one_thread_frame

__all__ = ["GlmerNbResult", "glmer_nb"]


class GlmerNbResult(GlmerResult):
    """A negative binomial mixed model fitted as lme4's ``glmer.nb``."""

    @property
    def nb_theta(self) -> float:
        """The NB dispersion ``theta`` (lme4's ``getME(m, "glmer.nb.theta")``)."""
        return float(self.family.theta)

    def getME(self, name: str):
        """lme4's ``getME`` for ``"glmer.nb.theta"`` and ``"theta"``."""
        if name == "glmer.nb.theta":
            return self.nb_theta
        if name == "theta":
            return self.theta
        raise ArgumentError(f"getME({name!r}): this result has 'glmer.nb.theta' and 'theta'")

    def df(self) -> int:
        """Fixed effects, covariance parameters and the NB theta (lme4's logLik df)."""
        return super().df() + 1

    def __repr__(self) -> str:
        return f"<GlmerNbResult {self.formula!r} {self.family.label} logLik={self.logLik():.4f}>"


def glmer_nb(
    formula: str,
    data: pd.DataFrame,
    *,
    weights: str | np.ndarray | pd.Series | None = None,
    nAGQ: int = 1,
    theta: float | None = None,
    data_name: str = "data",
    progress: bool = True,
) -> GlmerNbResult:
    """Fit a negative binomial GLMM (log link) as lme4's ``glmer.nb``.

    Parameters
    ----------
    formula : str
        An lme4 formula with a count response; ``offset(log(exposure))`` is allowed.
    data : pandas.DataFrame
    weights : column name or array, optional
        Prior weights.
    nAGQ : int
        1: Laplace (default); 0: lme4's first stage only.
    theta : float, optional
        The NB ``theta`` to start from (lme4's ``initCtrl$theta``); by default MASS's
        ``theta.ml`` at the fitted means of a Poisson fit. The search covers
        ``log(theta) +- 3``, as lme4's.
    progress : bool
        Progress lines on stderr for a long fit (the NB theta being tried, the glmer
        stage, evaluations, best deviance, elapsed seconds), none for one that ends
        within 5 s; False, or the environment variable ``LME2SM_PROGRESS=0``, silences
        them.

    Returns
    -------
    GlmerNbResult
        ``nb_theta`` (``getME(m, "glmer.nb.theta")``), and everything a glmer result has.
    """
    if (
        isinstance(nAGQ, bool | np.bool_)
        or not isinstance(nAGQ, int | np.integer)
        or nAGQ not in (0, 1)
    ):
        raise ArgumentError(f"glmer_nb fits nAGQ=1 (Laplace) or nAGQ=0, not {nAGQ!r}")
    progress = arguments.flag("progress", progress)
    nAGQ = int(nAGQ)
    theta = None if theta is None else arguments.positive("theta", theta)
    data_name = arguments.text("data_name", data_name, optional=False)
    poisson = get_family("poisson")
    frame = one_thread_frame(formula, data, weights=weights, glm=True)
    try:
        response = glm_response(frame, poisson)
    except DataError as exc:
        raise DataError(str(exc).replace("Poisson", "negative binomial")) from None
    reporter = fit_progress("glmer_nb", progress)
    with blas_threads(1):
        fam, pr, fit, theta0, log_theta = _search_theta(frame, response, nAGQ, theta, reporter)
    if reporter is not None:
        reporter.set_model("glmer_nb")
        reporter.finish(fit.deviance)
    result = GlmerNbResult(frame, response, fam, pr, fit, data_name)
    messages = list(fit.warnings) + _edge_messages(fam, theta0, log_theta)
    for message in messages:
        warnings.warn(message, ConvergenceWarning, stacklevel=2)
    if result.isSingular():
        warnings.warn(
            "boundary (singular) fit: see help('isSingular')", SingularFitWarning, stacklevel=2
        )
    return result


def _search_theta(
    frame, response, nAGQ: int, theta: float | None, progress: FitProgress | None = None
):
    """lme4's search over ``log(theta)`` in ``log(theta0) +- 3``, each point a glmer fit at
    that fixed theta scored by its Laplace deviance; the fit at the best theta (with its
    Hessian), ``theta0`` and the best ``log(theta)``. ``progress``'s label names the fit
    under way (the Poisson start, each theta)."""
    poisson = get_family("poisson")

    def problem(fam: Family) -> GlmmProblem:
        if progress is not None:
            what = "Poisson start" if fam is poisson else f"theta {fam.theta:.6g}"
            progress.set_model(f"glmer_nb ({what})")
        return GlmmProblem.from_frame(frame, response, fam)

    if theta is None:
        pois = fit_glmm(problem(poisson), nAGQ, calc_derivs=False, progress=progress)
        theta0 = theta_ml(response.y, pois.state.mu, response.weights)
    else:
        theta0 = negative_binomial(theta).theta

    def deviance(log_theta: float) -> float:
        fam = negative_binomial(math.exp(log_theta))
        try:
            return fit_glmm(problem(fam), nAGQ, calc_derivs=False, progress=progress).deviance
        except Exception:  # noqa: BLE001 - a failed fit is not an admissible theta
            return math.inf

    centre = math.log(theta0)
    best = optimize.minimize_scalar(
        deviance,
        bounds=(centre - 3.0, centre + 3.0),
        method="bounded",
        options={"xatol": LOG_THETA_TOL},
    )
    log_theta = float(best.x)
    fam = negative_binomial(math.exp(log_theta))
    pr = problem(fam)
    return fam, pr, fit_glmm(pr, nAGQ, progress=progress), theta0, log_theta  # with the Hessian


SEARCH_EDGE = 1e-2
"""A best ``log(theta)`` this close to an end of the search interval is at that end. Toward
the Poisson limit the deviance is flat to rounding, so Brent's search stops short of the
end by an amount that depends on the last digits: 1.1e-3 on one machine's numpy/scipy
(the old 1e-3 then missed the warning), 1e-4 on another."""


def _edge_messages(fam, theta0: float, log_theta: float) -> list[str]:
    """What a theta at either end of the search interval means."""
    centre = math.log(theta0)
    if log_theta - centre > 3.0 - SEARCH_EDGE:
        return [
            f"the NB theta search stopped at the upper end of its interval (theta = "
            f"{fam.theta:.4g}, started at {theta0:.4g}): the counts show little "
            "overdispersion beyond the random effects (theta -> infinity is the Poisson "
            "glmer); pass theta= to search elsewhere"
        ]
    if centre - log_theta > 3.0 - SEARCH_EDGE:
        return [
            f"the NB theta search stopped at the lower end of its interval (theta = "
            f"{fam.theta:.4g}, started at {theta0:.4g}); pass theta= nearer the optimum"
        ]
    return []
