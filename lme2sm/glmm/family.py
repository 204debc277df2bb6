r"""GLM families for glmer: binomial (logit, probit, cloglog), Poisson (log), Gamma
(inverse, log, identity) and inverse Gaussian (1/mu^2, log, inverse, identity).

Each family gives what PIRLS and the Laplace deviance need, written as R's
``family()`` objects (and lme4's C++ copies of them) write them, clamps included:

* the link :math:`\eta = g(\mu)`, its inverse and :math:`d\mu/d\eta`;
* the variance function :math:`V(\mu)`;
* the deviance residuals :math:`d_i` (:math:`\sum d_i` is the GLM deviance);
* ``aic``: :math:`-2 \log p(y \mid \mu)` with every constant, which lme4 adds to
  :math:`\|u\|^2 + \log|L_\theta|^2` for the Laplace deviance.

Gamma and the inverse Gaussian have a dispersion (:attr:`Family.has_dispersion`): their
``aic`` is R's, with the dispersion estimated as ``deviance / sum(weights)`` inside it
(R's ``Gamma()$aic`` and ``inverse.gaussian()$aic``, and lme4's C++ copies, include the
``+ 2`` for that parameter), so lme4's Laplace deviance -- and this one -- depends on
:math:`\mu` through the dispersion too; lme4 then reports
:math:`\sigma = \sqrt{(\sum_i a_i (y_i-\mu_i)^2 / V(\mu_i) + \|u\|^2) / n}`.

``family`` may be a string (``"binomial"``, ``"poisson"``, ``"binomial(link='probit')"``,
``"Gamma(link='log')"``, ``"inverse.gaussian"``) or a statsmodels family instance
(``sm.families.Binomial(sm.families.links.Probit())``, ``sm.families.Gamma(...)``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from lme2sm.errors import ArgumentError

__all__ = ["Family", "LINKS", "get_family"]

EPS = np.finfo(float).eps
THRESH = 30.0
INVEPS = 1.0 / EPS


@dataclass(frozen=True)
class Link:
    name: str

    def link(self, mu: np.ndarray) -> np.ndarray:
        if self.name == "identity":
            return np.asarray(mu, dtype=float)
        if self.name == "inverse":
            return 1.0 / mu
        if self.name == "1/mu^2":
            return 1.0 / (mu * mu)
        if self.name == "logit":
            return np.log(mu / (1.0 - mu))
        if self.name == "probit":
            return stats.norm.ppf(mu)
        if self.name == "cloglog":
            return np.log(-np.log1p(-mu))
        return np.log(mu)

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        if self.name == "identity":
            return np.asarray(eta, dtype=float)
        if self.name == "inverse":
            return 1.0 / eta
        if self.name == "1/mu^2":
            return 1.0 / np.sqrt(eta)
        if self.name == "logit":  # R clamps eta at +-30, which is expit's [eps, 1 - eps]
            return _clamped(special.expit(eta))
        if self.name == "probit":
            thresh = -stats.norm.ppf(EPS)
            return special.ndtr(np.clip(eta, -thresh, thresh))
        if self.name == "cloglog":
            return _clamped(-np.expm1(-np.exp(np.minimum(eta, 700.0))))
        return np.maximum(np.exp(np.minimum(eta, 700.0)), EPS)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        if self.name == "identity":
            return np.ones_like(np.asarray(eta, dtype=float))
        if self.name == "inverse":
            return -1.0 / (eta * eta)
        if self.name == "1/mu^2":
            return -1.0 / (2.0 * np.power(eta, 1.5))
        if self.name == "logit":
            mu = special.expit(eta)
            return np.maximum(mu * (1.0 - mu), EPS)
        if self.name == "probit":
            return np.maximum(stats.norm.pdf(eta), EPS)
        if self.name == "cloglog":
            e = np.minimum(eta, 700.0)
            return np.maximum(np.exp(e) * np.exp(-np.exp(e)), EPS)
        return np.maximum(np.exp(np.minimum(eta, 700.0)), EPS)


def _clamped(mu):
    """``np.clip(mu, EPS, 1 - EPS)``, in place for an array (np.clip's wrappers cost
    more than the clip on PIRLS's few dozen rows; the same numbers, NaN included)."""
    if not isinstance(mu, np.ndarray) or mu.ndim == 0:
        return np.clip(mu, EPS, 1.0 - EPS)
    np.maximum(mu, EPS, out=mu)
    return np.minimum(mu, 1.0 - EPS, out=mu)


LINKS = {
    "binomial": ("logit", "probit", "cloglog"),
    "poisson": ("log",),
    "Gamma": ("inverse", "log", "identity"),
    "inverse.gaussian": ("1/mu^2", "log", "inverse", "identity"),
}
DISPERSION = ("Gamma", "inverse.gaussian")
"""Families lme4 fits with a scale parameter (``sigma(m)``, a Residual row in VarCorr)."""


@dataclass(frozen=True)
class Family:
    """One GLM family and link (R's ``binomial(link = "logit")``)."""

    name: str
    link: Link

    @property
    def link_name(self) -> str:
        return self.link.name

    @property
    def has_dispersion(self) -> bool:
        """Whether lme4 estimates a scale (Gamma, inverse Gaussian)."""
        return self.name in DISPERSION

    def __str__(self) -> str:
        return f"{self.name}({self.link.name})"

    def working(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""``(mu_eta, mu_eta^2 / V(mu))`` at ``eta`` with ``mu`` = the inverse link of
        ``eta``: PIRLS's working-response slope and working weights (before the prior
        weights). The canonical links need no second exponential: logit's
        :math:`d\mu/d\eta = V(\mu) = \mu(1-\mu)` (below ``|eta| = 30`` R's clamps do not
        act and the expressions are R's), log's :math:`d\mu/d\eta = V(\mu) = \mu`."""
        if self.link.name == "log" and self.name == "poisson":
            return mu, mu  # exp(eta) clamped exactly as mu is
        if self.link.name == "logit" and self.name == "binomial":
            me = mu * (1.0 - mu)
            eta = np.asarray(eta)  # |eta| < 30 everywhere (NaN fails both), no |eta| array
            if eta.size == 0 or (eta.max() < THRESH and eta.min() > -THRESH):
                return me, me
        me = self.link.mu_eta(eta)
        return me, me * me / self.variance(mu)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        if self.name == "binomial":
            return mu * (1.0 - mu)
        if self.name == "Gamma":
            return mu * mu
        if self.name == "inverse.gaussian":
            return mu * mu * mu
        return mu

    def dev_resids(
        self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, ylogy: np.ndarray | None = None
    ) -> np.ndarray:
        """Each row's contribution to the deviance (R's ``family$dev.resids``);
        ``ylogy`` (:meth:`saturated`) saves the terms that do not depend on ``mu``."""
        if self.has_dispersion:
            # a mean outside (0, inf) (a step of the inverse or identity link past 0)
            # counts as an infinite deviance, so PIRLS halves the step (R's validmu)
            with np.errstate(all="ignore"):
                if self.name == "Gamma":  # R: -2 wt (log(ifelse(y == 0, 1, y/mu)) - (y-mu)/mu)
                    ratio = np.where(y == 0, 1.0, y / mu)
                    d = -2.0 * wt * (np.log(ratio) - (y - mu) / mu)
                else:
                    d = wt * ((y - mu) ** 2) / (y * mu * mu)
            return np.where((mu > 0) & np.isfinite(mu), d, np.inf)
        if ylogy is not None:
            if self.name == "binomial" and ylogy.dtype == bool:  # 0/1 answers: one log
                out = np.log(np.where(ylogy, mu, 1.0 - mu))
                out *= wt  # in place, the same numbers as -2 wt log(.)
                out *= -2.0
                return out
            if self.name == "binomial":
                return 2.0 * wt * (ylogy - y * np.log(mu) - (1.0 - y) * np.log1p(-mu))
            return 2.0 * wt * (ylogy - y * np.log(mu) + mu)
        if self.name == "binomial":
            return 2.0 * wt * (special.xlogy(y, y / mu) + special.xlogy(1 - y, (1 - y) / (1 - mu)))
        return 2.0 * wt * (special.xlogy(y, y / mu) - (y - mu))

    def deviance_residuals(self, y: np.ndarray, wt: np.ndarray, ylogy: np.ndarray):
        """``mu -> dev_resids(y, mu, wt, ylogy)`` for fixed ``y`` and ``wt``: PIRLS's
        hundreds of calls on the same rows. For binomial and Poisson the factors free of
        ``mu`` (``2 wt``, ``1 - y``) are formed once and the rest in place: the same
        operations on the same numbers as :meth:`dev_resids`, so the same results."""
        if type(self).dev_resids is not Family.dev_resids or self.has_dispersion:
            return lambda mu: self.dev_resids(y, mu, wt, ylogy)
        if self.name == "binomial" and ylogy.dtype == bool:
            m2w = -2.0 * wt  # x wt x -2 rounds as x (-2 wt): a factor of 2 is exact

            def binary(mu):
                out = np.subtract(1.0, mu)
                np.copyto(out, mu, where=ylogy)  # np.where(ylogy, mu, 1 - mu)
                np.log(out, out=out)
                out *= m2w
                return out

            return binary
        tw = 2.0 * wt
        if self.name == "binomial":
            omy = 1.0 - y

            def proportion(mu):  # 2 wt (ylogy - y log(mu) - (1 - y) log1p(-mu))
                out = np.log(mu)
                out *= y
                np.subtract(ylogy, out, out=out)
                rest = np.negative(mu)
                np.log1p(rest, out=rest)
                rest *= omy
                out -= rest
                out *= tw
                return out

            return proportion

        def counts(mu):  # 2 wt (ylogy - y log(mu) + mu)
            out = np.log(mu)
            out *= y
            np.subtract(ylogy, out, out=out)
            out += mu
            out *= tw
            return out

        return counts

    def saturated(self, y: np.ndarray) -> np.ndarray:
        """The part of each deviance residual free of ``mu`` (divided by 2 wt); for 0/1
        binomial answers, which answer is a success (a boolean array)."""
        if self.name == "binomial":
            if np.all((y == 0) | (y == 1)):
                return y == 1  # boolean: dev_resids takes the one-log path
            return special.xlogy(y, y) + special.xlogy(1 - y, 1 - y)
        if self.has_dispersion:
            return np.zeros_like(y)  # unused: dev_resids computes these families whole
        return special.xlogy(y, y) - y

    def aic(self, y: np.ndarray, trials: np.ndarray, mu: np.ndarray, wt: np.ndarray) -> float:
        """-2 log-likelihood with all constants (R's ``family$aic`` without the 2 p).

        ``trials`` is R's ``n`` (binomial trials per row), ``wt`` the prior weights
        times the trials (glm's ``weights``).
        """
        if self.name == "binomial":
            m = trials
            k = np.round(m * y)
            ll = stats.binom.logpmf(k, np.round(m), mu)
            return float(-2.0 * np.sum(np.where(m > 0, wt / m, 0.0) * ll))
        if self.has_dispersion:
            nn = float(np.sum(wt))
            disp = float(np.sum(self.dev_resids(y, mu, wt))) / nn
            if self.name == "Gamma":
                ll = stats.gamma.logpdf(y, 1.0 / disp, scale=mu * disp)
                return float(-2.0 * np.sum(ll * wt) + 2.0)
            return float(
                nn * (np.log(disp * 2 * np.pi) + 1.0) + 3.0 * np.sum(np.log(y) * wt) + 2.0
            )
        return float(-2.0 * np.sum(stats.poisson.logpmf(y, mu) * wt))

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """R's ``family$initialize`` starting means."""
        if self.name == "binomial":
            return (wt * y + 0.5) / (wt + 1.0)
        if self.has_dispersion:
            return np.asarray(y, dtype=float).copy()
        return y + 0.1


def get_family(family) -> Family:
    """A :class:`Family` from a string, a statsmodels family or a Family."""
    if isinstance(family, Family):
        return family
    if isinstance(family, str):
        text = family.strip().replace(" ", "")
        match = re.fullmatch(r"([\w.]+)(?:\((?:link=)?[\"']?([\w/^]*)[\"']?\))?", text)
        if not match:
            raise ArgumentError(f"family {family!r} is not understood; write e.g. 'binomial'")
        name, link = (
            _NAMES.get(match.group(1).lower(), match.group(1).lower()),
            match.group(2) or "",
        )
        return _checked(name, link if link == "1/mu^2" else link.lower(), family)
    cls = type(family).__name__.lower()
    if hasattr(family, "link") and cls in ("binomial", "poisson", "gamma", "inversegaussian"):
        link = type(family.link).__name__.lower()
        link = _SM_LINKS.get(link, link)
        return _checked(_NAMES[cls], link, family)
    raise ArgumentError(
        f"family {family!r} is not supported: glmer fits 'binomial' (logit, probit, "
        "cloglog links), 'poisson' (log link), 'Gamma' (inverse, log, identity) and "
        "'inverse.gaussian' (1/mu^2, log, inverse, identity)"
    )


_NAMES = {
    "binomial": "binomial",
    "poisson": "poisson",
    "gamma": "Gamma",
    "inverse.gaussian": "inverse.gaussian",
    "inversegaussian": "inverse.gaussian",
}
_SM_LINKS = {"inversepower": "inverse", "inversesquared": "1/mu^2", "cloglog": "cloglog"}


def _checked(name: str, link: str, original) -> Family:
    if name not in LINKS:
        raise ArgumentError(
            f"family {original!r} is not supported: glmer fits 'binomial', 'poisson', 'Gamma' "
            "and 'inverse.gaussian' (Gaussian models are lmer's; other families are not "
            "implemented)"
        )
    link = link or LINKS[name][0]
    if link not in LINKS[name]:
        raise ArgumentError(
            f"family {original!r}: the {link} link is not supported for {name}; use one of "
            + ", ".join(LINKS[name])
        )
    return Family(name, Link(link))
