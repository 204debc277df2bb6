r"""GLM families for glmer: binomial (logit, probit, cloglog) and Poisson (log).

Each family gives what PIRLS and the Laplace deviance need, written as R's
``family()`` objects (and lme4's C++ copies of them) write them, clamps included:

* the link :math:`\eta = g(\mu)`, its inverse and :math:`d\mu/d\eta`;
* the variance function :math:`V(\mu)`;
* the deviance residuals :math:`d_i` (:math:`\sum d_i` is the GLM deviance);
* ``aic``: :math:`-2 \log p(y \mid \mu)` with every constant, which lme4 adds to
  :math:`\|u\|^2 + \log|L_\theta|^2` for the Laplace deviance.

``family`` may be a string (``"binomial"``, ``"poisson"``, ``"binomial(link='probit')"``)
or a statsmodels family instance (``sm.families.Binomial(sm.families.links.Probit())``).
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
        if self.name == "logit":
            return np.log(mu / (1.0 - mu))
        if self.name == "probit":
            return stats.norm.ppf(mu)
        if self.name == "cloglog":
            return np.log(-np.log1p(-mu))
        return np.log(mu)

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        if self.name == "logit":  # R clamps eta at +-30, which is expit's [eps, 1 - eps]
            return np.clip(special.expit(eta), EPS, 1.0 - EPS)
        if self.name == "probit":
            thresh = -stats.norm.ppf(EPS)
            return special.ndtr(np.clip(eta, -thresh, thresh))
        if self.name == "cloglog":
            return np.clip(-np.expm1(-np.exp(np.minimum(eta, 700.0))), EPS, 1.0 - EPS)
        return np.maximum(np.exp(np.minimum(eta, 700.0)), EPS)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        if self.name == "logit":
            mu = special.expit(eta)
            return np.maximum(mu * (1.0 - mu), EPS)
        if self.name == "probit":
            return np.maximum(stats.norm.pdf(eta), EPS)
        if self.name == "cloglog":
            e = np.minimum(eta, 700.0)
            return np.maximum(np.exp(e) * np.exp(-np.exp(e)), EPS)
        return np.maximum(np.exp(np.minimum(eta, 700.0)), EPS)


LINKS = {"binomial": ("logit", "probit", "cloglog"), "poisson": ("log",)}


@dataclass(frozen=True)
class Family:
    """One GLM family and link (R's ``binomial(link = "logit")``)."""

    name: str
    link: Link

    @property
    def link_name(self) -> str:
        return self.link.name

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
            if np.max(np.abs(eta), initial=0.0) < THRESH:
                return me, me
        me = self.link.mu_eta(eta)
        return me, me * me / self.variance(mu)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        if self.name == "binomial":
            return mu * (1.0 - mu)
        return mu

    def dev_resids(
        self, y: np.ndarray, mu: np.ndarray, wt: np.ndarray, ylogy: np.ndarray | None = None
    ) -> np.ndarray:
        """Each row's contribution to the deviance (R's ``family$dev.resids``);
        ``ylogy`` (:meth:`saturated`) saves the terms that do not depend on ``mu``."""
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

    def saturated(self, y: np.ndarray) -> np.ndarray:
        """The part of each deviance residual free of ``mu`` (divided by 2 wt); for 0/1
        binomial answers, which answer is a success (a boolean array)."""
        if self.name == "binomial":
            if np.all((y == 0) | (y == 1)):
                return y == 1  # boolean: dev_resids takes the one-log path
            return special.xlogy(y, y) + special.xlogy(1 - y, 1 - y)
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
        return float(-2.0 * np.sum(stats.poisson.logpmf(y, mu) * wt))

    def mustart(self, y: np.ndarray, wt: np.ndarray) -> np.ndarray:
        """R's ``family$initialize`` starting means."""
        if self.name == "binomial":
            return (wt * y + 0.5) / (wt + 1.0)
        return y + 0.1


def get_family(family) -> Family:
    """A :class:`Family` from a string, a statsmodels family or a Family."""
    if isinstance(family, Family):
        return family
    if isinstance(family, str):
        text = family.strip().replace(" ", "")
        match = re.fullmatch(r"(\w+)(?:\((?:link=)?[\"']?(\w*)[\"']?\))?", text)
        if not match:
            raise ArgumentError(f"family {family!r} is not understood; write e.g. 'binomial'")
        name, link = match.group(1).lower(), (match.group(2) or "").lower()
        return _checked(name, link, family)
    cls = type(family).__name__.lower()
    if hasattr(family, "link") and cls in ("binomial", "poisson"):
        link = type(family.link).__name__.lower()
        link = {"loglog": "loglog", "cloglog": "cloglog", "logit": "logit"}.get(link, link)
        return _checked(cls, link, family)
    raise ArgumentError(
        f"family {family!r} is not supported: glmer fits 'binomial' (logit, probit, "
        "cloglog links) and 'poisson' (log link)"
    )


def _checked(name: str, link: str, original) -> Family:
    if name not in LINKS:
        raise ArgumentError(
            f"family {original!r} is not supported: glmer fits 'binomial' and 'poisson' "
            "(Gaussian models are lmer's; other families are not implemented)"
        )
    link = link or LINKS[name][0]
    if link not in LINKS[name]:
        raise ArgumentError(
            f"the {link} link is not supported for {name}; use one of " + ", ".join(LINKS[name])
        )
    return Family(name, Link(link))
