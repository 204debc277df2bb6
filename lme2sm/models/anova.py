"""Likelihood-ratio comparison of nested fits, as lme4's ``anova(m1, m2, ...)``: lmer fits
(REML ones refitted by ML) or glmer fits (:func:`lme2sm.results.glmer.anova`), never the
two mixed."""

from __future__ import annotations

import pandas as pd
from scipy import stats

from lme2sm import arguments
from lme2sm.errors import ArgumentError
from lme2sm.models.lmer import refit_ml
from lme2sm.models.lmer_result import LmerResult


def anova(*models: LmerResult, refit: bool = True) -> pd.DataFrame:
    """Likelihood-ratio tests between models fitted to the same rows.

    glmer fits (``lme2sm.glmer``, ``lme2sm.glmer_nb``) are compared by their Laplace (or
    AGQ) log-likelihoods, as lme4's ``anova`` does; mixing lmer and glmer fits is an
    :class:`~lme2sm.ArgumentError`.

    With one model, lmerTest's ``anova(m)``: type III F tests of the fixed terms with
    Satterthwaite's denominator df (:func:`lme2sm.inference.anova`).

    As lme4, REML fits are refitted with maximum likelihood first (``refit=True``),
    models are ordered by their number of parameters, and each is tested against
    the one before it.
    """
    from lme2sm.results.glmer import GlmerEstimates
    from lme2sm.results.glmer import anova as glmer_anova

    refit = arguments.flag("refit", refit)
    _check_fits(models)
    glmms = [isinstance(m, GlmerEstimates) for m in models]
    if any(glmms):
        if not all(glmms):
            kinds = ", ".join(
                f"m{i + 1} {'glmer' if g else type(m).__name__}"
                for i, (m, g) in enumerate(zip(models, glmms))
            )
            raise ArgumentError(
                f"anova() cannot compare lmer and glmer fits ({kinds}): a Gaussian model's "
                "likelihood and a binomial or count model's are of different data scales; "
                "compare lmer fits with lmer fits and glmer fits with glmer fits"
            )
        if len(models) == 1:
            raise ArgumentError(
                "anova(m) of one glmer fit (lme4's sequential table of the fixed terms) is "
                "not implemented; compare nested fits: anova(m1, m2)"
            )
        return glmer_anova(*models)
    if len(models) == 1:  # lmerTest's anova(m): type III F tests, Satterthwaite's df
        from lme2sm.inference import anova as single_anova

        return single_anova(models[0])
    if not models:
        raise ArgumentError("anova() needs a model: anova(m) or anova(m1, m2)")
    nobs = {m.nobs for m in models}
    if len(nobs) > 1:
        raise ArgumentError(
            f"models were fitted to different numbers of rows ({sorted(nobs)}): "
            "compare models fitted to the same data"
        )
    fits = [refit_ml(m) if (refit and m.REML) else m for m in models]
    names = [f"m{i + 1}" for i in range(len(fits))]
    order = sorted(range(len(fits)), key=lambda i: fits[i].df)
    rows = []
    prev = None
    for i in order:
        m = fits[i]
        dev = -2 * m.logLik()
        row = {
            "npar": m.df,
            "AIC": m.AIC(),
            "BIC": m.BIC(),
            "logLik": m.logLik(),
            "deviance": dev,
            "Chisq": float("nan"),
            "Df": float("nan"),
            "Pr(>Chisq)": float("nan"),
        }
        if prev is not None:
            chisq = max(prev["deviance"] - dev, 0.0)
            ddf = m.df - prev["npar"]
            row["Chisq"] = chisq
            row["Df"] = ddf
            row["Pr(>Chisq)"] = float(stats.chi2.sf(chisq, ddf)) if ddf > 0 else float("nan")
        rows.append(row)
        prev = row
    return pd.DataFrame(rows, index=[names[i] for i in order])


def _check_fits(models) -> None:
    """Each model a fit of lmer or glmer (an ArgumentError naming the first that is not)."""
    from lme2sm.results.glmer import GlmerEstimates
    from lme2sm.results.lmer import LmerEstimates

    for i, m in enumerate(models):
        if not isinstance(m, LmerEstimates | GlmerEstimates):
            raise ArgumentError(
                f"anova() compares fits of lme2sm.lmer or lme2sm.glmer; m{i + 1} is "
                f"{type(m).__name__} {_short(m)}"
            )


def _short(value) -> str:
    """A value's repr, cut to one short line for an error message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "..."
