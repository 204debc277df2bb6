"""The nearest statsmodels model to a glmer formula, shown and explained term by term.

statsmodels has no maximum-likelihood GLMM. Its ``BinomialBayesMixedGLM`` and
``PoissonBayesMixedGLM`` fit the same linear predictor by Bayesian approximations
(``fit_vb``: variational Bayes; ``fit_map``: the posterior mode) with normal priors on
the fixed effects and on the log standard deviations, every random effect an independent
variance component. So their numbers differ from glmer's, and the explanation says why.

glmmTMB's covariance structures are placed as lmer's translation places them
(``faces/translation_structures.py``): ``us(x | g)`` is ``(x | g)``, ``diag(x | g)`` is
exactly one variance component per column (a factor inside it is refused when the data
are known: its columns would need one entry each), ``cs()`` and ``ar1()`` are refused with
a :class:`~lme2sm.NotExpressibleError` naming the nearest model the Bayesian GLMMs fit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lme2sm.errors import ArgumentError, NotExpressibleError
from lme2sm.faces.translation_structures import is_categorical
from lme2sm.formula import ParsedFormula, parse
from lme2sm.formula.patsy_text import (
    name_to_patsy,
    part_to_patsy,
    statsmodels_column,
    term_to_patsy,
    to_patsy,
)
from lme2sm.frame import data_prep
from lme2sm.glmm.family import get_family

__all__ = ["GlmerTranslation", "translate_family", "translate_glmer"]


@dataclass(frozen=True)
class GlmerTranslation:
    formula: str
    family: str
    link: str
    fixed_formula: str
    vc_formulas: dict[str, str]
    notes: tuple[str, ...]
    cbind: tuple[str, str] | None = None
    columns: tuple[str, ...] = ()
    """The data columns the model uses."""

    @property
    def renamed(self) -> dict[str, str]:
        """Columns whose names the formula namespace uses (``np``, ``C``), and the names
        the statsmodels text gives them."""
        return {c: statsmodels_column(c) for c in self.columns if statsmodels_column(c) != c}

    @property
    def model_class(self) -> str:
        return "BinomialBayesMixedGLM" if self.family == "binomial" else "PoissonBayesMixedGLM"

    def code(self, data_name: str = "data") -> str:
        """The statsmodels call, as text to paste."""
        lines = [
            f"from statsmodels.genmod.bayes_mixed_glm import {self.model_class}",
            "",
        ]
        if self.columns:
            lines += [
                "# only the model's columns: patsy looks names up in the data first, so a",
                "# column named like a function or module the formula calls (np, C) would hide it",
                f"df = {data_name}[{list(self.columns)!r}]",
            ]
            if self.renamed:
                lines.append(f"df = df.rename(columns={self.renamed!r})")
            lines.append("")
            data_name = "df"
        if self.cbind:
            s, f = self.cbind
            lines += [
                "# one 0/1 row per trial: the Bayesian GLMMs take no successes/failures",
                "import numpy as np",
                "import pandas as pd",
                f"_s = {data_name}.eval({s!r}).astype(int).to_numpy()",
                f"_f = {data_name}.eval({f!r}).astype(int).to_numpy()",
                f"{data_name} = pd.concat([",
                f"    {data_name}.loc[{data_name}.index.repeat(_s)].assign(_y=1),",
                f"    {data_name}.loc[{data_name}.index.repeat(_f)].assign(_y=0),",
                "], ignore_index=True)",
                "",
            ]
        vc = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in self.vc_formulas.items()) + "}"
        lines += [
            f"model = {self.model_class}.from_formula(",
            f"    {self.fixed_formula!r}, {vc}, {data_name}",
            ")",
            "result = model.fit_vb()  # or model.fit_map()",
            "print(result.summary())",
        ]
        return "\n".join(lines)

    def explain(self) -> str:
        return "\n".join(f"- {n}" for n in self.notes)

    def __str__(self) -> str:
        return self.code() + "\n\n" + self.explain()


def _is_gaussian(family) -> bool:
    if isinstance(family, str):
        text = family.strip().replace(" ", "").lower()
        return re.fullmatch(r"gaussian(\((link=)?[\"']?identity[\"']?\))?", text) is not None
    return type(family).__name__ == "Gaussian" and type(family.link).__name__ == "Identity"


def translate_family(formula: str | ParsedFormula, data, family) -> GlmerTranslation | None:
    """``lme2sm.translate(formula, data, family=...)`` for a glmer family: the formula's
    columns checked in ``data``, then :func:`translate_glmer`. None for the Gaussian
    family (identity link), which is lmer's translation."""
    if _is_gaussian(family):
        return None
    fam = get_family(family)
    parsed = formula if isinstance(formula, ParsedFormula) else parse(formula)
    data_prep.require_random_terms(parsed)
    data_prep.check_columns(data, parsed.variables(), parsed.formula)
    return translate_glmer(parsed, fam, data)


def translate_glmer(
    formula: str | ParsedFormula, family="binomial", data=None
) -> GlmerTranslation:
    """The statsmodels Bayesian mixed GLM nearest to ``glmer(formula, family=family)``
    (for a ``glmer_nb`` fit's family: the Poisson one, and why). ``data`` (optional)
    tells a factor effect from a numeric one, for the structures' placement."""
    parsed = formula if isinstance(formula, ParsedFormula) else parse(formula)
    fam = get_family(family)
    nb_note = None
    if hasattr(fam, "theta"):  # glmer_nb's negative binomial: the nearest is Poisson
        nb_note = (
            f"{fam.label}: statsmodels has no negative binomial mixed model. The nearest is "
            "PoissonBayesMixedGLM, which has no NB theta: the counts' extra variance "
            "(mu^2 / theta) is not modelled, unless an observation-level random intercept "
            "(1 | obs), a column numbering the rows, is added to stand in for it."
        )
        fam = get_family("poisson")
    if fam.name not in ("binomial", "poisson"):
        raise ArgumentError(
            f"the {fam.name} family is not supported by statsmodels' mixed GLMs (it has "
            "BinomialBayesMixedGLM and PoissonBayesMixedGLM only): lme2sm.glmer fits it, "
            "but there is no statsmodels translation"
        )
    notes = [
        f"statsmodels has no maximum-likelihood GLMM; {'Binomial' if fam.name == 'binomial' else 'Poisson'}"
        "BayesMixedGLM fits the same linear predictor by variational Bayes (fit_vb) or the "
        "posterior mode (fit_map), with normal priors on the fixed effects (sd fe_p = 2) and "
        "on the log standard deviations (vcp_p = 1). Its estimates and standard errors are "
        "posterior summaries, not glmer's maximum-likelihood values, so they differ (on lme4's "
        "cbpp: an intercept SE of 0.11 by fit_vb against glmer's 0.23; fit_map can put a "
        "variance at zero).",
        "It reports no log-likelihood, AIC or deviance comparable with glmer's (Laplace "
        "approximation, all constants included).",
    ]
    if nb_note:
        notes.insert(0, nb_note)
    if fam.link_name not in ("logit", "log"):
        notes.append(
            f"the {fam.link_name} link is not available: the Bayesian GLMMs use logit "
            "(binomial) and log (Poisson) only; the code below uses those."
        )
    response = parsed.response_expr
    cbind = None
    if getattr(response, "func", None) == "cbind":
        cbind = (to_patsy(response.args[0]), to_patsy(response.args[1]))
        y = "_y"
        notes.append(
            f"{response.label}: the Bayesian GLMMs take a 0/1 response, so the data are "
            "expanded to one row per trial (same likelihood, more rows)."
        )
    else:
        y = to_patsy(response)
    fixed = part_to_patsy(parsed.fixed_part)
    if parsed.fixed_part.offsets:
        notes.append("offset(): the Bayesian GLMMs take no offset; it is left out of the code.")
    model = "BinomialBayesMixedGLM" if fam.name == "binomial" else "PoissonBayesMixedGLM"
    vc = _variance_components(parsed, notes, data, model)
    return GlmerTranslation(
        parsed.formula,
        fam.name,
        fam.link_name,
        f"{y} ~ {fixed}",
        vc,
        tuple(notes),
        cbind,
        tuple(parsed.variables()),
    )


def _variance_components(
    parsed: ParsedFormula, notes: list[str], data, model: str
) -> dict[str, str]:
    """One ``vc_formulas`` entry per random-effect column (the Bayesian GLMMs have no
    correlations), with a note per term on what it became."""
    vc: dict[str, str] = {}
    for term in parsed.random_terms:
        _check_structure(term, data, model)
        group = term.group
        gtext = ":".join(f"C({name_to_patsy(g)})" for g in term.group_factors)
        effects = (["(Intercept)"] if term.intercept else []) + list(term.effects)
        texts = dict(zip(term.effects, (term_to_patsy(t) for t in term.effects_part.terms)))
        if term.covariance == "diag":
            notes.append(
                f"{term.term_text}: independent variances, exactly one variance component "
                "per column."
            )
        elif len(effects) > 1:
            notes.append(
                f"({term.text}): correlated random effects cannot be expressed; each column "
                "becomes an independent variance component (as (... || g) in lme4)."
            )
        for e in effects:
            key = group if e == "(Intercept)" else f"{group}:{e}"
            vc[key] = f"0 + {gtext}" if e == "(Intercept)" else f"0 + {gtext}:{texts[e]}"
        notes.append(
            f"{term.term_text} -> "
            + ", ".join(f"{k!r}: {vc[k]!r}" for k in vc if k.split(":")[0] == group)
            + " (one variance per entry of vc_formulas)"
        )
    return vc


_WHY = {
    "cs": "compound symmetry (one SD per column, one correlation shared by every pair)",
    "ar1": "AR(1) correlations over its columns (one SD, corr(i, j) = rho^|i - j|)",
}


def _check_structure(term, data, model: str) -> None:
    """Refuse what the Bayesian GLMMs cannot hold of a structured term: ``cs()``/``ar1()``
    (with the nearest model) and, when ``data`` says so, a factor inside ``diag()``."""
    factors = []
    if data is not None:
        factors = [t.label for t in term.effects_part.terms if is_categorical(t, data)]
    if term.covariance == "diag" and factors:
        raise NotExpressibleError(
            term.term_text,
            f"its effect {factors[0]} is a factor: diag() gives each of its columns its own "
            "variance, and a vc_formulas entry for a factor has one",
            f"one numeric indicator column per level of {factors[0]}, each in its own "
            f"(0 + indicator | {term.group}) term",
            model,
        )
    if term.covariance not in ("cs", "ar1"):
        return
    single = term.effects_part.terms
    if not term.intercept and len(single) == 1 and (data is None or factors):
        f = single[0].label
        nearest = (
            f"(1 | {term.group}) + (1 | {term.group}:{f}), two variance components: every "
            f"level of {f} one variance and every pair of levels one correlation"
        )
    else:
        nearest = (
            f"diag({term.text}), independent variances (the Bayesian GLMMs have no "
            f"correlations: ({term.text}) is translated so too)"
        )
    raise NotExpressibleError(
        term.term_text,
        "the Bayesian mixed GLMs have independent variance components only, not "
        f"{_WHY[term.covariance]}",
        f"{nearest}; lme2sm.glmer fits the formula as written",
        model,
    )
