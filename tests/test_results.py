"""LmerResult accessors beyond the fixture sweep: predict, coef, anova, confint, criteria."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import lme2sm
from lme2sm.datasets import load
from lme2sm.errors import DataError, SingularFitWarning

FIXTURES = Path(__file__).parent / "fixtures" / "models"


def lme4(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def sleep():
    return lme2sm.lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))


def test_coef_is_fixef_plus_ranef(sleep):
    coef = sleep.coef()["Subject"]
    ranef = sleep.ranef()["Subject"]
    fe = sleep.fixef()
    np.testing.assert_allclose(coef["Days"], fe["Days"] + ranef["Days"])
    assert list(coef.columns) == ["(Intercept)", "Days"]


def test_predict_newdata_with_and_without_random_effects(sleep):
    new = pd.DataFrame({"Days": [0.0, 5.0], "Subject": ["308", "309"]})
    full = sleep.predict(new)
    coef = sleep.coef()["Subject"]
    expected = [
        coef.loc["308", "(Intercept)"],
        coef.loc["309", "(Intercept)"] + 5 * coef.loc["309", "Days"],
    ]
    np.testing.assert_allclose(full.to_numpy(), expected)
    population = sleep.predict(new, re_form="~0")
    fe = sleep.fixef()
    np.testing.assert_allclose(population.to_numpy(), [fe.iloc[0], fe.iloc[0] + 5 * fe.iloc[1]])


def test_predict_new_levels_refused_unless_allowed(sleep):
    new = pd.DataFrame({"Days": [1.0], "Subject": ["999"]})
    with pytest.raises(DataError, match=r"levels of Subject the model has not seen \(999\)"):
        sleep.predict(new)
    allowed = sleep.predict(new, allow_new_levels=True)
    assert allowed.iloc[0] == pytest.approx(sleep.fixef().sum())


def test_fitted_plus_residuals_is_response(sleep):
    y = load("sleepstudy")["Reaction"]
    np.testing.assert_allclose((sleep.fitted() + sleep.residuals()).to_numpy(), y.to_numpy())
    fx = lme4("sleepstudy_corr")
    np.testing.assert_allclose(
        sleep.residuals().to_numpy()[:20], fx["residuals_head"], rtol=1e-3, atol=1e-2
    )


def test_wald_confint_matches_lme4_fixed_rows(sleep):
    ci = sleep.confint(method="Wald")
    ref = lme4("sleepstudy_corr")["confint_wald"]
    for name in ["(Intercept)", "Days"]:
        np.testing.assert_allclose(ci.loc[name].to_numpy(), ref[name], rtol=1e-3)


@pytest.mark.parametrize("name", ["sleepstudy_ml", "penicillin_ml", "orthodont_ml", "dyestuff_ml"])
def test_ml_deviance_matches_lme4(name):
    fx = lme4(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer(fx["formula"], load(fx["dataset"]), REML=False)
    assert m.deviance() == pytest.approx(fx["deviance"], abs=2e-3)


def test_remlcrit_matches_lme4(sleep):
    assert sleep.REMLcrit() == pytest.approx(lme4("sleepstudy_corr")["REMLcrit"], abs=2e-3)


def test_anova_refits_with_ml_and_tests_the_difference(sleep):
    small = lme2sm.lmer("Reaction ~ Days + (1 | Subject)", load("sleepstudy"))
    table = lme2sm.anova(small, sleep)
    ll_small = lme4("sleepstudy_int_ml")["logLik"]
    ll_big = lme4("sleepstudy_ml")["logLik"]
    assert table["logLik"].tolist() == pytest.approx([ll_small, ll_big], abs=2e-3)
    chisq = 2 * (ll_big - ll_small)
    assert table["Chisq"].iloc[1] == pytest.approx(chisq, abs=5e-3)
    assert table["Df"].iloc[1] == 2
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(stats.chi2.sf(chisq, 2), rel=1e-3)
    assert table["npar"].tolist() == [4, 6]


def test_anova_refuses_different_rows(sleep):
    other = lme2sm.lmer("Yield ~ 1 + (1 | Batch)", load("Dyestuff"))
    with pytest.raises(lme2sm.ArgumentError, match="different numbers of rows"):
        lme2sm.anova(sleep, other)


def test_singular_fit_is_reported_like_lme4():
    with pytest.warns(SingularFitWarning, match=r"boundary \(singular\) fit"):
        m = lme2sm.lmer("Yield ~ 1 + (1 | Batch)", load("Dyestuff2"))
    assert m.isSingular()
    assert "boundary (singular) fit" in m.summary()


def test_summary_reads_like_lme4(sleep):
    text = sleep.summary(ddf=None)
    ref = lme4("sleepstudy_corr")["summary"]
    for line in [
        "Linear mixed model fit by REML ['lmerMod']",
        "REML criterion at convergence: 1743.6",
        " Subject  (Intercept) 612.10   24.741       ",
        "Days          10.467      1.546   6.771",
    ]:
        assert line in ref
        assert line.split()[0] in text
    assert "REML criterion at convergence: 1743.6" in text
    assert "Days          10.467      1.546   6.771" in text


def test_statsmodels_result_is_real(sleep):
    from statsmodels.regression.mixed_linear_model import MixedLMResultsWrapper

    assert isinstance(sleep.statsmodels, MixedLMResultsWrapper)
    assert sleep.statsmodels.model.exog_names == ["Intercept", "Days"]
    assert sleep.statsmodels.llf == pytest.approx(sleep.logLik())


def test_statsmodels_engine_agrees_with_the_default_engine():
    data = load("Penicillin")
    fast = lme2sm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", data)
    assert fast.outcome.engine == "lme4"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = lme2sm.lmer(
            "diameter ~ 1 + (1 | plate) + (1 | sample)", data, engine="statsmodels"
        )
    assert plain.outcome.engine == "statsmodels"
    assert fast.logLik() >= plain.logLik() - 1e-6
    pd.testing.assert_frame_equal(
        fast.VarCorr().drop(columns=["vcov", "sdcor"]),
        plain.VarCorr().drop(columns=["vcov", "sdcor"]),
    )
    np.testing.assert_allclose(fast.VarCorr()["sdcor"], plain.VarCorr()["sdcor"], rtol=1e-2)
    np.testing.assert_allclose(fast.se(), plain.se(), rtol=1e-3)


def test_statsmodels_view_is_built_at_the_engine_optimum():
    m = lme2sm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", load("Penicillin"))
    sm = m.statsmodels
    assert sm.llf == pytest.approx(m.logLik(), abs=1e-6)
    assert float(sm.scale) == pytest.approx(m.sigma**2, rel=1e-8)
    vc = m.VarCorr().set_index("grp")["vcov"]
    assert sorted(np.asarray(sm.vcomp)) == pytest.approx(sorted([vc["plate"], vc["sample"]]))
    assert float(sm.fe_params.iloc[0]) == pytest.approx(float(m.fixef().iloc[0]), rel=1e-10)


def test_duplicated_term_is_kept_as_lme4_keeps_it():
    """(1|Subject) + (1|Subject): lme4 fits it (the split is not identifiable)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("Reaction ~ Days + (1 | Subject) + (1 | Subject)", load("sleepstudy"))
    assert m.logLik() == pytest.approx(lme4("sleepstudy_int")["logLik"], abs=1e-3)
    vc = m.VarCorr()
    assert list(vc["grp"]) == ["Subject", "Subject.1", "Residual"]
    assert vc["vcov"].iloc[:2].sum() == pytest.approx(
        lme4("sleepstudy_int")["varcorr"][0]["vcov"], rel=1e-2
    )
    ranef = m.ranef()["Subject"]
    assert list(ranef.columns) == ["(Intercept)", "(Intercept)"]
    coef = m.coef()["Subject"]
    np.testing.assert_allclose(
        coef["(Intercept)"], m.fixef()["(Intercept)"] + ranef.sum(axis=1), rtol=1e-10
    )


def test_coef_refuses_a_random_effect_without_fixed_effect_as_lme4():
    m = lme2sm.lmer("Reaction ~ 0 + Days + (1 | Subject)", load("sleepstudy"))
    with pytest.raises(lme2sm.ArgumentError, match="unable to align random and fixed effects"):
        m.coef()


def test_predict_unknown_fixed_factor_level_is_a_clear_error():
    m = lme2sm.lmer("angle ~ recipe * temp + (1 | recipe:replicate)", load("cake"))
    new = pd.DataFrame({"recipe": ["Z"], "temp": [200.0], "replicate": ["1"]})
    with pytest.raises(DataError, match=r"level the model was not fitted with.*'Z'"):
        m.predict(new, allow_new_levels=True)
    ok = pd.DataFrame({"recipe": ["B"], "temp": [200.0], "replicate": ["1"]})
    coef = m.coef()["recipe:replicate"].loc["B:1"]
    assert m.predict(ok).iloc[0] == pytest.approx(
        coef["(Intercept)"] + coef["recipeB"] + 200 * (coef["temp"] + coef["recipeB:temp"])
    )


def test_engine_start_at_a_zero_variance_still_gives_a_finite_fit():
    """The engine's optimum has a variance at zero; statsmodels must not start exactly there."""
    schools = load("schools")
    small = schools[schools.groupby("province")["school"].rank(method="dense") <= 3]
    formula = "test_score ~ age + sex + (1 | classroom) + (1 | school:classroom)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer(formula, small)
        plain = lme2sm.lmer(formula, small, engine="statsmodels")
    assert np.isfinite(m.logLik())
    assert m.logLik() >= plain.logLik() - 1e-6
    np.testing.assert_allclose(m.VarCorr()["vcov"], plain.VarCorr()["vcov"], atol=0.05)
    assert m.isSingular()


def test_confint_defaults_to_profile_as_lme4(sleep):
    ci = sleep.confint()
    ref = lme4("sleepstudy_corr")["confint_profile"]
    assert list(ci.index) == list(ref)
    for name, (lo, hi) in ref.items():
        assert ci.loc[name].to_numpy() == pytest.approx([lo, hi], rel=2e-3, abs=2e-3)


def test_confint_arguments_are_checked(sleep):
    with pytest.raises(lme2sm.ArgumentError, match="level"):
        sleep.confint(level=2)
    with pytest.raises(lme2sm.ArgumentError, match="method"):
        sleep.confint(method="exact")
