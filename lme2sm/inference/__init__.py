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
    """Confidence intervals as lme4's ``confint(m, method=..., oldNames=FALSE)``.

    Parameters
    ----------
    m : LmerEstimates
    level : float
    method : {"profile", "boot", "Wald"}
        ``"profile"``: likelihood-ratio (ML deviance) profile intervals for every
        parameter. ``"boot"``: parametric-bootstrap percentile intervals from ``nsim``
        refits (``seed`` makes them reproducible; ``progress=False`` silences the
        progress bar on stderr). ``"Wald"``: the fixed effects' normal intervals.
    parm : list of str, optional
        Profile only these rows (``"sigma"``, ``"sd_(Intercept)|Subject"``, ``"Days"``).
    n_jobs : int
        Processes for the profiles or the bootstrap's refits: 1 (default) runs them
        here, -1 on every core. The numbers do not depend on it (the bootstrap's
        responses are drawn here, in order, from the seeded generator).
    """
    if not 0 < level < 1:
        raise ArgumentError(f"level must be between 0 and 1, not {level}")
    key = method.lower()
    if key in ("profile", "boot"):
        refuse_structured_intervals(m, key)
    if key == "profile":
        return profile_confint(m, level=level, parm=parm, n_jobs=n_jobs)
    if key == "boot":
        return boot_confint(
            m, level=level, nsim=nsim, seed=seed, progress=progress, n_jobs=n_jobs, parm=parm
        )
    if key == "wald":
        return m.confint(level=level, method="Wald")
    raise ArgumentError(f"method must be 'profile', 'boot' or 'Wald', not {method!r}")


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
        raise ArgumentError("anova(m) has Satterthwaite's or Kenward-Roger's df, not lme4's")
    return anova_table(m, type=type)
