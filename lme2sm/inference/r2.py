r"""Nakagawa's R² and the ICC of a mixed model, as R's ``performance`` package.

``performance::r2_nakagawa(m)`` and ``performance::icc(m)`` (version 0.10.2, with
``insight::get_variance`` 0.19) split the variance of the linear predictor's scale into

* ``var.fixed``: the sample variance (``n - 1``) of :math:`X\hat\beta` (offsets left out);
* ``var.random``: for each random term, the mean over the rows of :math:`x_i' \Sigma x_i`
  with :math:`x_i` the row of the *fixed-effects* design at the term's column names
  (Johnson 2014's random-slope variance; columns the fixed design lacks are left out,
  an intercept is added when it lacks one) -- terms whose grouping factor has one level
  per row are left out here and count as ``var.dispersion`` for a GLMM. insight takes
  one term per grouping factor (``VarCorr``'s entries named as ``ranef``'s groups), so of
  ``(Days || Subject)``'s two terms only the intercept's counts; this module does the same;
* ``var.distribution``: :math:`\sigma^2` for lmer; :math:`\pi^2/3`, 1, :math:`\pi^2/6`
  for the binomial's logit, probit and cloglog; :math:`\log(1 + 1/\mu)` for Poisson's log
  link with :math:`\mu = \exp(\beta_0)` of the *null model* (the refit with only an
  intercept, the offsets and the same random terms); ``family$variance(sigma)`` =
  :math:`\sigma^2` for Gamma (insight's choice, kept as it is); and
  ``var.residual = var.distribution + var.dispersion``.

Then ``R2_marginal = fixed / (fixed + random + residual)``, ``R2_conditional = (fixed +
random) / (...)``, ``ICC_adjusted = random / (random + residual)`` and ``ICC_unadjusted =
random / (fixed + random + residual)``; ``icc(by_group=True)`` gives each grouping
factor's intercept variance over ``random + residual``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lme2sm import arguments
from lme2sm.errors import ArgumentError

__all__ = ["Variances", "get_variance", "r2_nakagawa", "icc", "null_formula", "needs_null_model"]

BINOMIAL_DISTRIBUTION = {"logit": math.pi**2 / 3, "probit": 1.0, "cloglog": math.pi**2 / 6}


@dataclass(frozen=True)
class Variances:
    """``insight::get_variance(m)`` (the names without ``var.``)."""

    fixed: float
    random: float
    residual: float
    distribution: float
    dispersion: float
    intercept: dict[str, float] = field(default_factory=dict)
    slope: dict[str, float] = field(default_factory=dict)


def _family(m: Any) -> tuple[str, str]:
    fam = getattr(m, "family", None)
    if fam is None:
        return "gaussian", "identity"
    return fam.name, fam.link_name


def needs_null_model(m: Any) -> bool:
    """Whether the distribution variance needs the null model's intercept (count
    families on the log link)."""
    name, link = _family(m)
    return name in ("poisson", "negative.binomial") and link == "log"


def null_formula(m: Any) -> str:
    """The null model's formula: the response, an intercept, the offsets and the same
    random terms (``insight::null_model``)."""
    parsed = m.frame.parsed
    parts = ["1"] + [f"offset({o.label})" for o in parsed.fixed_part.offsets]
    parts += [t.term_text for t in parsed.random_terms]
    return f"{parsed.response} ~ " + " + ".join(parts)


def _term_covariances(m: Any) -> list[np.ndarray]:
    """Each random term's covariance on the linear predictor's scale, lme4's order."""
    if hasattr(m, "term_covariances"):
        return [np.asarray(tc.cov, dtype=float) for tc in m.term_covariances]
    covs = [np.asarray(c, dtype=float) for c in m._covariances()]
    scale = _dispersion_scale(m)
    return [scale * c for c in covs]


def _dispersion_scale(m: Any) -> float:
    """sigma^2 for GLMM families lme4 fits with a scale (Gamma, inverse Gaussian), else 1."""
    name, _ = _family(m)
    if name in ("Gamma", "inverse.gaussian"):
        return float(m.sigma) ** 2
    return 1.0


def _suffixed(groups: list[str]) -> list[str]:
    """R's make.unique as VarCorr's names: ``Subject``, ``Subject.1``."""
    seen: dict[str, int] = {}
    out = []
    for g in groups:
        if g in seen:
            out.append(f"{g}.{seen[g]}")
            seen[g] += 1
        else:
            out.append(g)
            seen[g] = 1
    return out


def _random_variance(X: np.ndarray, fixed_names: list[str], names, cov: np.ndarray) -> float:
    """Mean over rows of x' Sigma x at the term's columns of the fixed design."""
    cols = {n: X[:, i] for i, n in enumerate(fixed_names)}
    cols.setdefault("(Intercept)", np.ones(X.shape[0]))
    keep = [i for i, n in enumerate(names) if n in cols]
    if not keep:
        return 0.0
    Z = np.column_stack([cols[names[i]] for i in keep])
    S = cov[np.ix_(keep, keep)]
    return float(np.einsum("ij,jk,ik->", Z, S, Z) / X.shape[0])


def _distribution_variance(m: Any, null_intercept: float | None) -> float:
    name, link = _family(m)
    if name == "gaussian":
        return float(m.sigma) ** 2
    if name == "binomial":
        if link not in BINOMIAL_DISTRIBUTION:
            raise ArgumentError(f"no distribution-specific variance for binomial({link})")
        return BINOMIAL_DISTRIBUTION[link]
    if name == "poisson":
        if link == "sqrt":
            return 0.25
        if null_intercept is None:
            raise ArgumentError(
                "the Poisson model's distribution variance needs the null model's intercept: "
                "use m.r2_nakagawa() or pass null_intercept (the intercept of a refit of "
                f"{null_formula(m)!r})"
            )
        mu = math.exp(null_intercept)
        return math.log1p(1.0 / mu)
    if name == "Gamma":
        return float(m.sigma) ** 2
    if name == "inverse.gaussian":
        return float(m.sigma)
    raise ArgumentError(f"r2_nakagawa is not available for the {name} family")


def get_variance(m: Any, null_intercept: float | None = None) -> Variances:
    """The variance components of :mod:`this module's <lme2sm.inference.r2>` docstring.

    Parameters
    ----------
    m : LmerResult or GlmerResult
    null_intercept : float, optional
        The null model's intercept (needed for Poisson models; see :func:`null_formula`).
    """
    f = m.frame
    X = np.asarray(f.X, dtype=float)
    fixed_names = list(f.fixed_names)
    beta = np.asarray(m.fixef(), dtype=float)
    var_fixed = float(np.var(X @ beta, ddof=1))
    n = X.shape[0]
    covs = _term_covariances(m)
    groups = _suffixed([t.group for t in f.terms])
    random = dispersion = 0.0
    intercept: dict[str, float] = {}
    slope: dict[str, float] = {}
    counted: set[str] = set()
    for t, cov, g in zip(f.terms, covs, groups):
        if t.group not in counted:  # insight counts one term per grouping factor
            counted.add(t.group)
            v = _random_variance(X, fixed_names, list(t.names), cov)
            if t.n_levels == n:
                dispersion += v
            else:
                random += v
        if t.names[0] == "(Intercept)":
            intercept[g] = float(cov[0, 0])
        for i, name in enumerate(t.names):
            if name != "(Intercept)":
                slope[f"{t.group}.{name}"] = float(cov[i, i])
    if _family(m)[0] == "gaussian":
        dispersion = 0.0
    distribution = _distribution_variance(m, null_intercept)
    return Variances(
        fixed=var_fixed,
        random=random,
        residual=distribution + dispersion,
        distribution=distribution,
        dispersion=dispersion,
        intercept=intercept,
        slope=slope,
    )


def r2_nakagawa(m: Any, null_intercept: float | None = None) -> pd.Series:
    """``performance::r2_nakagawa(m)``: ``R2_conditional`` and ``R2_marginal``."""
    v = get_variance(m, null_intercept)
    total = v.fixed + v.random + v.residual
    return pd.Series(
        {"R2_conditional": (v.fixed + v.random) / total, "R2_marginal": v.fixed / total},
        name="r2_nakagawa",
    )


def icc(m: Any, by_group: bool = False, null_intercept: float | None = None) -> pd.Series:
    """``performance::icc(m)``: ``ICC_adjusted`` and ``ICC_unadjusted`` (also named
    ``ICC_conditional`` by performance); ``by_group=True``: one ICC per grouping factor
    with a random intercept (its intercept variance over random + residual)."""
    by_group = arguments.flag("by_group", by_group)
    v = get_variance(m, null_intercept)
    if by_group:
        denom = v.random + v.residual
        return pd.Series({g: x / denom for g, x in v.intercept.items()}, name="ICC")
    total = v.fixed + v.random + v.residual
    return pd.Series(
        {
            "ICC_adjusted": v.random / (v.random + v.residual),
            "ICC_unadjusted": v.random / total,
        },
        name="icc",
    )
