r"""``glmer_nb``: negative binomial mixed models, as lme4's ``glmer.nb``.

The family is MASS's ``negative.binomial(theta)`` with the log link:
:math:`V(\mu) = \mu + \mu^2/\theta`, deviance residuals
:math:`2 w [y \log(\max(1, y)/\mu) - (y + \theta)\log((y + \theta)/(\mu + \theta))]`, and
``aic`` :math:`-2 \log p(y\mid\mu)` with every constant (``lgamma`` terms in ``theta``
included, so Laplace deviances at different ``theta`` compare).

lme4's outer loop (``R/nbinom.R``): a Poisson ``glmer`` fit; a first ``theta`` from its
fitted means by MASS's ``theta.ml`` (Newton steps on the score of the NB likelihood);
then a one-dimensional search over :math:`\log\theta` in
:math:`[\log\theta_0 - 3, \log\theta_0 + 3]`, each point a complete glmer fit at that
fixed ``theta`` scored by its Laplace deviance (R's ``optimize``, golden section with
parabolic steps; here scipy's bounded Brent with a tighter tolerance). The fit at the
best ``theta`` is the result; ``getME(m, "glmer.nb.theta")`` is its ``theta``, and the
number of parameters counts it (lme4's ``logLik`` df).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from lme2sm.engine.threads import blas_threads
from lme2sm.errors import ArgumentError, ConvergenceWarning, DataError, SingularFitWarning
from lme2sm.frame.model_frame import build_model_frame
from lme2sm.glmm.family import Family, Link, get_family
from lme2sm.glmm.fit import fit_glmm
from lme2sm.glmm.pirls import GlmmProblem
from lme2sm.glmm.response import glm_response
from lme2sm.results.glmer import GlmerResult

__all__ = ["NegativeBinomial", "GlmerNbResult", "glmer_nb", "theta_ml"]

LOG_THETA_TOL = 1e-5
"""Tolerance of the search on log(theta) (lme4: 5e-5); each step is a whole glmer fit."""


@dataclass(frozen=True)
class NegativeBinomial(Family):
    """MASS's ``negative.binomial(theta)``, log link."""

    theta: float = 1.0

    @property
    def label(self) -> str:
        """R's family name, ``Negative Binomial(3.3034)``."""
        return f"Negative Binomial({_r_number(round(self.theta, 4))})"

    def __str__(self) -> str:
        return f"{self.label}(log)"

    def variance(self, mu: np.ndarray) -> np.ndarray:
        return mu + mu * mu / self.theta

    def saturated(self, y: np.ndarray) -> np.ndarray:
        th = self.theta
        return special.xlogy(y, np.maximum(1.0, y)) - (y + th) * np.log(y + th)

    def dev_resids(
        self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, ylogy: np.ndarray | None = None
    ) -> np.ndarray:
        th = self.theta
        sat = self.saturated(y) if ylogy is None else ylogy
        return 2.0 * wt * (sat - special.xlogy(y, mu) + (y + th) * np.log(mu + th))

    def aic(self, y: np.ndarray, trials: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        th = self.theta
        term = (
            (y + th) * np.log(mu + th)
            - special.xlogy(y, mu)
            + special.gammaln(y + 1)
            - th * math.log(th)
            + special.gammaln(th)
            - special.gammaln(th + y)
        )
        return float(2.0 * np.sum(term * wt))

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        return y + (y == 0) / 6.0


def negative_binomial(theta: float) -> NegativeBinomial:
    """The family at a fixed ``theta`` (R's ``MASS::negative.binomial(theta)``)."""
    if not (isinstance(theta, int | float | np.floating) and np.isfinite(theta) and theta > 0):
        raise ArgumentError(
            f"the negative binomial theta must be a positive number, not {theta!r}"
        )
    return NegativeBinomial("negative_binomial", Link("log"), float(theta))


def _r_number(x: float) -> str:
    """R's ``format()`` of a number with 7 significant digits."""
    text = f"{x:.7g}"
    return text if "e" not in text else f"{x:g}"


def theta_ml(
    y: np.ndarray, mu: np.ndarray, weights: np.ndarray, limit: int = 20, eps: float = 1e-4
) -> float:
    """MASS's ``theta.ml``: the NB ``theta`` maximising the likelihood at fixed means."""
    w = np.asarray(weights, dtype=float)
    n = w.sum()
    t0 = n / np.sum(w * (y / mu - 1.0) ** 2)
    for _ in range(limit):
        t0 = abs(t0)
        score = np.sum(
            w
            * (
                special.digamma(t0 + y)
                - special.digamma(t0)
                + math.log(t0)
                + 1.0
                - np.log(t0 + mu)
                - (y + t0) / (mu + t0)
            )
        )
        info = np.sum(
            w
            * (
                -special.polygamma(1, t0 + y)
                + special.polygamma(1, t0)
                - 1.0 / t0
                + 2.0 / (mu + t0)
                - (y + t0) / (mu + t0) ** 2
            )
        )
        step = score / info
        t0 = t0 + step
        if abs(step) <= eps:
            break
    if not np.isfinite(t0) or t0 <= 0:
        return 1.0
    return float(t0)


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

    Returns
    -------
    GlmerNbResult
        ``nb_theta`` (``getME(m, "glmer.nb.theta")``), and everything a glmer result has.
    """
    if isinstance(nAGQ, bool) or nAGQ not in (0, 1):
        raise ArgumentError(f"glmer_nb fits nAGQ=1 (Laplace) or nAGQ=0, not {nAGQ!r}")
    poisson = get_family("poisson")
    frame = build_model_frame(formula, data, weights=weights, glm=True)
    try:
        response = glm_response(frame, poisson)
    except DataError as exc:
        raise DataError(str(exc).replace("Poisson", "negative binomial")) from None

    def problem(fam: Family) -> GlmmProblem:
        return GlmmProblem.from_frame(frame, response, fam)

    with blas_threads(1):
        if theta is None:
            pois = fit_glmm(problem(poisson), nAGQ, calc_derivs=False)
            theta0 = theta_ml(response.y, pois.state.mu, response.weights)
        else:
            theta0 = negative_binomial(theta).theta

        def deviance(log_theta: float) -> float:
            fam = negative_binomial(math.exp(log_theta))
            try:
                return fit_glmm(problem(fam), nAGQ, calc_derivs=False).deviance
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
        fit = fit_glmm(pr, nAGQ)  # with the Hessian (the search's fits skip it)
    result = GlmerNbResult(frame, response, fam, pr, fit, data_name)
    messages = list(fit.warnings)
    if log_theta - centre > 3.0 - 1e-3:
        messages.append(
            f"the NB theta search stopped at the upper end of its interval (theta = "
            f"{fam.theta:.4g}, started at {theta0:.4g}): the counts show little "
            "overdispersion beyond the random effects (theta -> infinity is the Poisson "
            "glmer); pass theta= to search elsewhere"
        )
    elif centre - log_theta > 3.0 - 1e-3:
        messages.append(
            f"the NB theta search stopped at the lower end of its interval (theta = "
            f"{fam.theta:.4g}, started at {theta0:.4g}); pass theta= nearer the optimum"
        )
    for message in messages:
        warnings.warn(message, ConvergenceWarning, stacklevel=2)
    if result.isSingular():
        warnings.warn(
            "boundary (singular) fit: see help('isSingular')", SingularFitWarning, stacklevel=2
        )
    return result
