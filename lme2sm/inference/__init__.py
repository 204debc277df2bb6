"""Inference R users expect from lmerTest and lme4.

* :func:`satterthwaite_table`: t tests of the fixed effects with Satterthwaite's
  degrees of freedom (lmerTest's ``summary(m)``);
* :func:`anova`: type III F tests with Satterthwaite's (or, ``ddf="Kenward-Roger"``,
  Kenward-Roger's) denominator df (lmerTest's ``anova(m, ddf = ...)``);
* :func:`coef_table`: the fixed effects' t tests with Satterthwaite's or Kenward-Roger's
  df, or lme4's table (lmerTest's ``coef(summary(m, ddf = ...))``);
* :func:`vcov_adj`: pbkrtest's Kenward-Roger-adjusted ``vcovAdj(m)``;
* :func:`confint`: profile-likelihood (``method="profile"``), parametric bootstrap
  (``"boot"``) or Wald intervals, rows named as lme4 names them.

The computations rebuild the model in lme4's form (:mod:`lme2sm.inference._design`),
so the deviance can be evaluated at any variance parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from lme2sm.errors import ArgumentError
from lme2sm.inference.bootstrap import boot_confint, bootstrap_samples
from lme2sm.inference.coef_table import coef_table
from lme2sm.inference.interval_args import interval_arguments, wald_confint
from lme2sm.inference.intervals import profile_confint
from lme2sm.inference.kenward_roger import kenward_roger_model, vcov_adj
from lme2sm.inference.satterthwaite import (
    anova_table,
    satterthwaite_model,
    satterthwaite_table,
    type3_contrasts,
)

if TYPE_CHECKING:
    from lme2sm.results.lmer import LmerEstimates

__all__ = [
    "anova",
    "anova_table",
    "boot_confint",
    "bootstrap_samples",
    "coef_table",
    "confint",
    "kenward_roger_model",
    "profile_confint",
    "satterthwaite_model",
    "satterthwaite_table",
    "type3_contrasts",
    "vcov_adj",
]


def confint(
    m: LmerEstimates,
    level: float = 0.95,
    method: str = "profile",
    *,
    nsim: int = 500,
    seed=None,
    progress: bool = True,
    parm=None,
    n_jobs: int | None = 1,
) -> pd.DataFrame:
    """Confidence intervals as lme4's ``confint(m, method=..., oldNames=FALSE)``, of an
    lmer or a glmer fit.

    Parameters
    ----------
    m : LmerEstimates or GlmerEstimates
    level : float
        Strictly between 0 and 1.
    method : {"profile", "boot", "Wald"}
        ``"profile"``: likelihood-ratio (ML deviance) profile intervals for every
        parameter. ``"boot"``: parametric-bootstrap percentile intervals from ``nsim``
        refits (``seed`` makes them reproducible; ``progress=False`` silences the
        progress bar on stderr). ``"Wald"``: the fixed effects' normal intervals.
        Any case (``"wald"``).
    parm : str or list of str, optional
        Only these rows (``"sigma"``, ``"sd_(Intercept)|Subject"``, ``"Days"``; lme4's
        ``"theta_"``: the random-effects parameters, ``"beta_"``: the fixed effects).
    n_jobs : int
        Processes for the profiles or the bootstrap's refits: 1 (default) runs them
        here, -1 on every core. The numbers do not depend on it (the bootstrap's
        responses are drawn here, in order, from the seeded generator).

    Every argument is checked first (:mod:`lme2sm.inference.interval_args`): a bad one
    is an ArgumentError naming it, before any profile or refit runs.
    """
    a = interval_arguments(m, level, method, parm, nsim, seed, progress, n_jobs)
    glmer = hasattr(m, "family")
    if a.method in ("profile", "boot"):
        refuse_structured_intervals(m, a.method)
    if a.method == "Wald":
        return wald_confint(m, a.level, a.parm)
    if a.method == "profile" and glmer:
        from lme2sm.inference.glmer_profile import glmer_profile_confint

        return glmer_profile_confint(m, level=a.level, parm=a.parm, n_jobs=a.n_jobs)
    if a.method == "profile":
        return profile_confint(m, level=a.level, parm=a.parm, n_jobs=a.n_jobs)
    if glmer:
        from lme2sm.inference.glmer_bootstrap import glmer_boot_confint

        return glmer_boot_confint(
            m, a.level, a.nsim, seed=a.rng, progress=a.progress, n_jobs=a.n_jobs, parm=a.parm
        )
    return boot_confint(
        m,
        level=a.level,
        nsim=a.nsim,
        seed=a.rng,
        progress=a.progress,
        n_jobs=a.n_jobs,
        parm=a.parm,
    )


def refuse_structured_intervals(m, method: str) -> None:
    """Profile and bootstrap intervals are rows of lme4's sd/cor parameters of
    unstructured terms; a ``diag``, ``cs`` or ``ar1`` term has other parameters (its SDs
    and one correlation), which those intervals do not have yet."""
    structured = [t for t in m.frame.terms if t.structure != "us"]
    if structured:
        t = structured[0]
        raise ArgumentError(
            f"confint(method={method!r}) is not available for the {t.structure}() term "
            f"{t.term.term_text}: its intervals are for lme4's unstructured terms' sd and "
            "cor parameters; use method='Wald' for the fixed effects, or write the term "
            f"as ({t.term.text}) to profile an unstructured covariance"
        )


def anova(m: LmerEstimates, type: int | str = 3, ddf: str = "Satterthwaite") -> pd.DataFrame:
    """lmerTest's single-model ``anova(m, ddf = ddf)``: type III tests with
    Satterthwaite's (default) or Kenward-Roger's denominator df."""
    from lme2sm.inference.coef_table import ddf_method

    method = ddf_method(ddf)
    if method == "Kenward-Roger":
        from lme2sm.inference.kenward_roger import kr_anova

        return kr_anova(m, type=type)
    if method != "Satterthwaite":
        raise ArgumentError(
            f"ddf must be 'Satterthwaite' or 'Kenward-Roger' for anova(m), not {ddf!r} "
            "(lme4's own anova(m) has no df)"
        )
    return anova_table(m, type=type)
