"""Handing a translation to the profiled-deviance engine.

Applies when ``re_formula`` is ``"0"`` and every term is a variance component
(``(1|g)`` or ``(0 + x|g)``): the crossed and partially crossed designs that MixedLM
fits slowly. The engine's result is a genuine ``MixedLMResults`` with the same
parameter and random-effect names plain MixedLM would give, so relabelling is shared.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy

from ..formula.patsy_text import name_to_patsy, part_to_patsy, term_to_patsy
from ..naming import patsy_env
from ..translation import Translation
from . import ScalarTerm, VarianceComponentsMixedLM, fit_profiled


def applies(translation: Translation) -> bool:
    """True when every random term of ``translation`` is a variance component."""
    return translation.re_formula == "0" and all(
        p.slot == "vc_formula" and len(p.columns) == 1 for p in translation.placements
    )


def scalar_terms(translation: Translation) -> list[ScalarTerm]:
    """Every random term of ``translation`` as a ScalarTerm (all must be one-column)."""
    frame = translation.data
    env = patsy_env()
    terms = []
    for p in translation.placements:
        col = translation.group_columns[p.term.group]
        codes, levels = pd.factorize(frame[col], sort=True)
        covariate = None
        if not p.term.intercept:
            Z = patsy.dmatrix(part_to_patsy(p.term.effects_part), frame, eval_env=env)
            covariate = np.asarray(Z, dtype=float)[:, 0]
        covariate_name = None if p.term.intercept else term_to_patsy(p.term.effects_part.terms[0])
        terms.append(
            ScalarTerm(
                p.key if p.key is not None else col,
                codes.astype(np.int64),
                tuple(str(v) for v in levels),
                covariate,
                factor=name_to_patsy(col),
                covariate_name=covariate_name,
            )
        )
    return terms


def _response_and_design(translation: Translation) -> tuple[np.ndarray, np.ndarray]:
    y, X = translation.fixed_matrices
    return np.asarray(y, dtype=float)[:, 0], np.asarray(X, dtype=float)


def engine_model(translation: Translation) -> VarianceComponentsMixedLM:
    """The engine's MixedLM subclass for ``translation`` (built without patsy's vc designs)."""
    y, X = _response_and_design(translation)
    y_frame, X_frame = translation.fixed_matrices
    return VarianceComponentsMixedLM.from_terms(
        y,
        X,
        list(X_frame.columns),
        translation.data[translation.groups].to_numpy(),
        scalar_terms(translation),
        endog_name=str(y_frame.columns[0]),
    )


def all_scalar(translation: Translation) -> bool:
    """True when every random term has one model-matrix column."""
    return all(len(p.columns) == 1 for p in translation.placements)


def statsmodels_start(translation: Translation, reml: bool):
    """lme4's optimum, found by the engine, as statsmodels ``start_params``.

    For one-column models whose ``re_formula`` holds a term (``(1 | school)`` with
    ``(1 | school:class)`` nested in it): statsmodels then fits its own canonical
    model starting at the optimum, so it only has to confirm it.
    """
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    y, X = _response_and_design(translation)
    fit = fit_profiled(y, X, scalar_terms(translation), reml=reml)
    # statsmodels gives a degenerate (infinite) likelihood at exactly zero: start just
    # above it, below lme4's singularity tolerance (theta = 1e-5 < 1e-4)
    theta2 = {p: max(float(th) ** 2, 1e-10) for p, th in zip(translation.placements, fit.theta)}
    re = [v for p, v in theta2.items() if p.slot == "re_formula"]
    vc = {p.key: v for p, v in theta2.items() if p.slot == "vc_formula"}
    return MixedLMParams.from_components(
        fe_params=np.asarray(fit.beta, dtype=float),
        cov_re=np.diag(re) if re else np.zeros((0, 0)),
        vcomp=np.array([vc[k] for k in sorted(vc)]),
    )


def fit_with_engine(translation: Translation, reml: bool):
    """Fit with the engine; returns a statsmodels ``MixedLMResults``.

    The fixed effects' covariance is lme4's ``sigma^2 (X'V^-1X)^-1`` (``fe_cov="vcov"``).
    """
    result = engine_model(translation).fit(reml=reml, fe_cov="vcov")
    result._lme2sm_cov_fe = result.profiled_fit.cov_beta
    return result
