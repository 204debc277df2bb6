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
from ..translate import Translation
from . import ScalarTerm, VarianceComponentsMixedLM


def applies(translation: Translation) -> bool:
    """True when every random term of ``translation`` is a variance component."""
    return translation.re_formula == "0" and all(
        p.slot == "vc_formula" and len(p.columns) == 1 for p in translation.placements
    )


def engine_model(translation: Translation) -> VarianceComponentsMixedLM:
    """The engine's MixedLM subclass for ``translation`` (built without patsy's vc designs)."""
    frame = translation.data
    env = patsy_env()
    y, X = translation.fixed_matrices
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
                p.key,
                codes.astype(np.int64),
                tuple(str(v) for v in levels),
                covariate,
                factor=name_to_patsy(col),
                covariate_name=covariate_name,
            )
        )
    return VarianceComponentsMixedLM.from_terms(
        np.asarray(y, dtype=float)[:, 0],
        np.asarray(X, dtype=float),
        list(X.columns),
        frame[translation.groups].to_numpy(),
        terms,
        endog_name=str(y.columns[0]),
    )


def fit_with_engine(translation: Translation, reml: bool):
    """Fit with the engine; returns a statsmodels ``MixedLMResults``.

    The fixed effects' covariance is lme4's ``sigma^2 (X'V^-1X)^-1`` (``fe_cov="vcov"``).
    """
    result = engine_model(translation).fit(reml=reml, fe_cov="vcov")
    result._lme2sm_cov_fe = result.profiled_fit.cov_beta
    return result
