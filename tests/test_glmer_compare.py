"""lme2sm.translate(..., family=) and lme2sm.anova() for glmer fits."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from glmer_fixtures import data, fitted, load

import lme2sm
from lme2sm import ArgumentError, DataError
from lme2sm.faces.glmer_translate import GlmerTranslation, translate_glmer

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    fx = load("cbpp_binomial")
    return data(fx["data_path"], tuple(fx["factors"]))


@pytest.mark.parametrize(
    ("formula", "family", "model"),
    [
        (CBPP, "binomial", "BinomialBayesMixedGLM"),
        ("incidence ~ period + (1 | herd)", "poisson", "PoissonBayesMixedGLM"),
    ],
)
def test_translate_with_family_is_glmers_translation(cbpp, formula, family, model):
    t = lme2sm.translate(formula, cbpp, family=family)
    assert isinstance(t, GlmerTranslation)
    assert t.code() == translate_glmer(formula, family).code()
    assert t.explain() == translate_glmer(formula, family).explain()
    assert f"{model}.from_formula(" in t.code()
    assert "'herd': '0 + C(herd)'" in t.code()
    assert "no maximum-likelihood GLMM" in t.explain()


def test_translate_with_family_matches_the_fits_translation(cbpp):
    m = fitted("cbpp_binomial")
    assert lme2sm.translate(CBPP, cbpp, family="binomial").code() == m.translation().code()


def test_translate_gaussian_is_lmers(cbpp):
    plain = lme2sm.translate("incidence ~ period + (1 | herd)", cbpp)
    for fam in ("gaussian", "gaussian(link='identity')"):
        t = lme2sm.translate("incidence ~ period + (1 | herd)", cbpp, family=fam)
        assert type(t) is type(plain) and t.code() == plain.code()


def test_translate_family_errors(cbpp):
    with pytest.raises(DataError, match="did you mean 'herd'"):
        lme2sm.translate("incidence ~ period + (1 | hed)", cbpp, family="poisson")
    with pytest.raises(ArgumentError, match="not supported"):
        lme2sm.translate("incidence ~ period + (1 | herd)", cbpp, family="gamma")


def test_nb_fit_translates_to_poisson_and_says_why():
    from lme2sm.glmm.nb import negative_binomial

    t = translate_glmer("y ~ x + (1 | g)", negative_binomial(2.5))
    assert "PoissonBayesMixedGLM" in t.code()
    assert "Negative Binomial(2.5): statsmodels has no negative binomial" in t.explain()


def test_anova_of_glmer_fits(cbpp):
    big = fitted("cbpp_binomial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small = lme2sm.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp)
    tab = lme2sm.anova(big, small)
    assert list(tab.index) == ["m2", "m1"]
    assert list(tab.npar) == [2, 5]
    fx = load("cbpp_binomial")
    assert tab["logLik"].iloc[1] == pytest.approx(fx["logLik"], abs=5e-4)
    assert tab["AIC"].iloc[1] == pytest.approx(-2 * big.logLik() + 10)
    assert tab["Chisq"].iloc[1] == pytest.approx(2 * (big.logLik() - small.logLik()))
    assert tab["Df"].iloc[1] == 3
    assert 0 < tab["Pr(>Chisq)"].iloc[1] < 1e-3
    assert tab.equals(big.anova(small))


def test_anova_refuses_lmer_with_glmer(cbpp):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular fit; the refusal is the point
        lm = lme2sm.lmer("incidence ~ period + (1 | herd)", cbpp, REML=False)
    with pytest.raises(ArgumentError, match="cannot compare lmer and glmer fits"):
        lme2sm.anova(lm, fitted("cbpp_binomial"))
    with pytest.raises(ArgumentError, match="one glmer fit"):
        lme2sm.anova(fitted("cbpp_binomial"))
