"""``glmer``: binomial and Poisson mixed models by lme4's Laplace approximation.

The stages, as lme4's ``glFormula`` -> ``mkGlmerDevfun`` -> ``optimizeGlmer`` ->
``mkMerMod``: the model frame (shared with lmer), the response as R's family reads it
(:mod:`.response`), PIRLS on the LMM engine (:mod:`.pirls`), lme4's two optimisation
stages and the Hessian (:mod:`.fit`), and lme4-named results (:mod:`.results`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from lme2sm.engine.threads import blas_threads
from lme2sm.errors import ArgumentError, ConvergenceWarning, SingularFitWarning
from lme2sm.faces.glmer_translate import GlmerTranslation, translate_glmer
from lme2sm.frame.model_frame import build_model_frame
from lme2sm.glmm.family import Family, get_family
from lme2sm.glmm.fit import GlmmFit, fit_glmm
from lme2sm.glmm.pirls import GlmmProblem
from lme2sm.glmm.response import glm_response
from lme2sm.results.glmer import GlmerResult, anova

__all__ = [
    "glmer",
    "GlmerResult",
    "GlmerTranslation",
    "Family",
    "get_family",
    "GlmmFit",
    "GlmmProblem",
    "anova",
    "translate_glmer",
]


def glmer(
    formula: str,
    data: pd.DataFrame,
    family="binomial",
    *,
    weights: str | np.ndarray | pd.Series | None = None,
    nAGQ: int = 1,
    data_name: str = "data",
) -> GlmerResult:
    """Fit a generalised linear mixed model as lme4's ``glmer``.

    Parameters
    ----------
    formula : str
        An lme4 formula. The binomial response may be 0/1, a two-level factor (the
        first level is failure), ``cbind(successes, failures)``, or a proportion with
        ``weights=`` the numbers of trials; ``offset(log(exposure))`` is allowed.
    data : pandas.DataFrame
    family : str or statsmodels family
        ``"binomial"`` (logit; ``"binomial(link='probit')"``, cloglog) or ``"poisson"``,
        or e.g. ``sm.families.Binomial(sm.families.links.Probit())``.
    weights : column name or array, optional
        Prior weights (binomial: numbers of trials for a proportion response).
    nAGQ : int
        1: Laplace (default). 0: lme4's first stage only (beta inside PIRLS). > 1:
        adaptive Gauss-Hermite with that many nodes (one scalar random term only).

    Returns
    -------
    GlmerResult
    """
    fam = get_family(family)
    if isinstance(nAGQ, bool) or not isinstance(nAGQ, int | np.integer) or nAGQ < 0:
        raise ArgumentError(f"nAGQ must be a whole number >= 0, not {nAGQ!r}")
    nAGQ = int(nAGQ)
    frame = build_model_frame(formula, data, weights=weights, glm=True)
    if nAGQ > 1 and (len(frame.terms) != 1 or frame.terms[0].k != 1):
        raise ArgumentError(
            "nAGQ > 1 is only available for models with a single, scalar random-effects "
            f"term (this model has {len(frame.terms)} term(s)"
            + (
                f", ({frame.terms[0].term.text}) with {frame.terms[0].k} columns"
                if frame.terms[0].k > 1
                else ""
            )
            + "); adaptive Gauss-Hermite quadrature integrates one random effect per level. "
            "Use nAGQ=1 (Laplace)"
        )
    response = glm_response(frame, fam)
    problem = GlmmProblem.from_frame(frame, response, fam)
    with blas_threads(1):  # many small factorisations: threads only contend
        fit = fit_glmm(problem, nAGQ)
    result = GlmerResult(frame, response, fam, problem, fit, data_name)
    for message in fit.warnings:
        warnings.warn(message, ConvergenceWarning, stacklevel=2)
    if result.isSingular():
        warnings.warn(
            "boundary (singular) fit: see help('isSingular')", SingularFitWarning, stacklevel=2
        )
    return result
