"""The engine's fit seen as statsmodels: a ``MixedLMResults`` built at the optimum.

MixedLM parameterises the model by fixed effects, ``cov_re / scale`` (the groups
factor's covariance) and ``vcomp / scale`` (variance components), named by
``_make_param_names``; :class:`~lme2sm.faces.translation.Translation` maps each name to the lme4
quantity it is (``ParamLabel``). Here that map is read the other way: lme4's covariances
become statsmodels' packed parameters, and the results object is assembled as
``MixedLM.fit`` assembles it at its own optimum (fixed effects and scale from
statsmodels' formulas, Hessian-based ``cov_params``), without a statsmodels refit.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from lme2sm.errors import NotExpressibleError

if TYPE_CHECKING:
    from lme2sm.faces.translation_data import TranslationData
    from lme2sm.frame.model_frame import ModelFrame
    from lme2sm.results.lmer import LmerEstimates

__all__ = ["results_at", "statsmodels_params", "theta_from_statsmodels"]


def _term_index(frame: ModelFrame, translation: TranslationData) -> dict[int, int]:
    """Placement index → index of the same lme4 term in ``frame.terms`` (a ``diag()``
    term's columns, placed one by one, all map to it)."""
    out: dict[int, int] = {}
    used: set[int] = set()
    for p_index, p in enumerate(translation.placements):
        for j, t in enumerate(frame.terms):
            if j not in used and t.term == p.term:
                out[p_index] = j
                used.add(j)
                break
            if t.structure == "diag" and (t.term.span, t.group) == (p.term.span, p.term.group):
                out[p_index] = j
                break
        else:  # pragma: no cover - the translation is made from the same parse
            raise NotExpressibleError(p.term.text, "the translation split this term", "")
    return out


def statsmodels_params(m: LmerEstimates, translation: TranslationData) -> np.ndarray:
    """The fit's parameters packed as statsmodels packs them (``use_sqrt=False``)."""
    frame = m.frame
    if frame.dropped_fixed:
        raise NotExpressibleError(
            "fixed effects",
            "the fixed-effects matrix is rank deficient; lme4 (and lme2sm) drop "
            f"{', '.join(frame.dropped_fixed)}, MixedLM cannot",
            "the formula without the aliased columns",
        )
    if frame.weights is not None:
        raise NotExpressibleError(
            "weights", "MixedLM has no prior weights", "the model without weights="
        )
    scale = m.sigma**2
    index = _term_index(frame, translation)
    covs = m.engine_fit.covariances()
    fixef = m.fixef()
    values = []
    for lab in translation.params:
        if lab.kind == "fixed":
            values.append(float(fixef[lab.var1]))
        elif lab.kind == "pinned":
            values.append(0.0)
        else:
            j = index[lab.term_index]
            names = frame.terms[j].names
            a = names.index(lab.var1)
            b = names.index(lab.var2) if lab.var2 is not None else a
            values.append(float(covs[j][a, b]) / scale)
    return np.array(values)


def results_at(m: LmerEstimates):
    """``MixedLMResults`` at the engine's optimum (raises NotExpressibleError)."""
    from statsmodels.regression.mixed_linear_model import (
        MixedLMParams,
        MixedLMResults,
        MixedLMResultsWrapper,
    )

    translation = m.translation
    packed = statsmodels_params(m, translation)
    model = translation.model()
    # what MixedLM.fit sets on the model before optimising
    model.reml = m.REML
    model.cov_pen = None
    model.fe_pen = None
    model._cov_sing = 0
    model._freepat = translation.free()
    names = list(model.data.param_names)
    order = [lab.statsmodels for lab in translation.params]
    packed = packed[[order.index(n) for n in names]]
    params = MixedLMParams.from_packed(packed, model.k_fe, model.k_re, use_sqrt=False, has_fe=True)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        fe_params, _sing = model.get_fe_params(params.cov_re, params.vcomp)
        params.fe_params = fe_params
        scale = model.get_scale(fe_params, params.cov_re, params.vcomp)
        try:
            hess, _ = model.hessian(params)
            pcov = np.linalg.pinv(-hess)
        except (np.linalg.LinAlgError, ValueError):
            pcov = np.full((len(packed), len(packed)), np.nan)
    results = MixedLMResults(model, params.get_packed(use_sqrt=False, has_fe=True), pcov / scale)
    results.params_object = params
    results.fe_params = fe_params
    results.cov_re = scale * params.cov_re
    results.vcomp = scale * params.vcomp
    results.scale = scale
    results.cov_re_unscaled = params.cov_re
    results.method = "REML" if m.REML else "ML"
    results.converged = m.converged
    results.hist = None
    results.reml = m.REML
    results.cov_pen = getattr(model, "cov_pen", None)
    results.k_fe = model.k_fe
    results.k_re = model.k_re
    results.k_re2 = model.k_re2
    results.k_vc = model.k_vc
    results.use_sqrt = model.use_sqrt
    results.freepat = getattr(model, "_freepat", None)
    return MixedLMResultsWrapper(results)


def theta_from_statsmodels(frame: ModelFrame, translation: TranslationData, result) -> np.ndarray:
    """lme4's theta from a statsmodels fit of ``translation`` (lme4's term order)."""
    from lme2sm.engine.frame_input import term_specs
    from lme2sm.engine.theta import pack_theta
    from lme2sm.inference._design import semidefinite_cholesky

    scale = float(result.scale)
    values = dict(zip(result.model.data.param_names, np.asarray(result.params)))
    index = _term_index(frame, translation)
    covs = [np.zeros((t.k, t.k)) for t in frame.terms]
    for lab in translation.params:
        if lab.kind not in ("var", "cov"):
            continue
        j = index[lab.term_index]
        names = frame.terms[j].names
        a = names.index(lab.var1)
        b = names.index(lab.var2) if lab.var2 is not None else a
        covs[j][a, b] = covs[j][b, a] = float(values[lab.statsmodels]) * scale
    sigma2 = scale
    factors = [semidefinite_cholesky(c / sigma2) for c in covs]
    return pack_theta(factors, term_specs(frame)) if factors else np.zeros(0)
