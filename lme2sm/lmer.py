"""``lmer``: translate, fit, relabel — the composition of the pipeline's stages."""

from __future__ import annotations

import pandas as pd

from .fit import fit
from .results import LmerResult
from .translation import translate


def lmer(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,
    *,
    approximate: bool = False,
    engine: str = "auto",
    data_name: str | None = None,
) -> LmerResult:
    """Fit a linear mixed model written as an lme4 formula.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : pandas.DataFrame
        Never modified.
    REML : bool
        Restricted maximum likelihood (lme4's default) or maximum likelihood.
    approximate : bool
        Fit the nearest expressible model when a term cannot be expressed in
        MixedLM (see :func:`lme2sm.translate`), with a warning naming what was dropped.
    engine : {"auto", "statsmodels", "profiled"}
        ``"auto"`` fits models made only of scalar terms with the profiled-deviance
        engine, and everything else with statsmodels' own optimisers.
    data_name : str, optional
        Shown as ``Data:`` in the summary, as lme4 shows the data's name.

    Returns
    -------
    LmerResult
    """
    translation = translate(formula, data, REML=REML, approximate=approximate)
    outcome = fit(translation, reml=REML, engine=engine)
    return LmerResult(translation, outcome, REML, data_name)


def refit_ml(m: LmerResult) -> LmerResult:
    """The same model fitted by maximum likelihood (lme4's ``refitML``)."""
    if not m.REML:
        return m
    outcome = fit(m.translation, reml=False)
    return LmerResult(m.translation, outcome, False, m.data_name)
