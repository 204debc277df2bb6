r"""The negative binomial family and its ``theta``, for lme4's ``glmer.nb``
(:func:`lme2sm.models.glmer_nb.glmer_nb` runs the search).

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
from dataclasses import dataclass

import numpy as np
from scipy import special

from lme2sm.errors import ArgumentError
from lme2sm.glmm.family import Family, Link

__all__ = ["NegativeBinomial", "negative_binomial", "theta_ml", "LOG_THETA_TOL"]

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
