"""Prediction SEs and intervals against R's vcov-based computation
(tests/fixtures/predict_se, tools/make_reporting_fixtures.R): X vcov X' for the fixed
part, lme4's condVar for seen levels and the terms' covariances for new ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from feature_fixtures import data, fitted, load, names

from lme2sm.errors import ArgumentError
from lme2sm.results.prediction import conditional_variances, predict_with_se, prediction_parts

PRED = names("predict_se")
TOL = 1e-4


def newdata(name: str) -> pd.DataFrame:
    fx = load("predict_se", name)
    return data(fx["newdata_path"], tuple(fx["newdata_factors"]))


def rel_close(a, b, tol=TOL) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return bool(np.all(np.abs(a - b) <= tol * np.maximum(np.abs(b), 1e-8)))


def test_suite_has_seen_new_and_mixed_levels():
    for name in PRED:
        flags = load("predict_se", name)["new_level"]
        assert any(flags) and not all(flags)
    assert {load("predict_se", n)["kind"] for n in PRED} == {"lmer", "glmer"}


# the fixed part's SE at lme4's own vcov is test_se_fit_at_lme4s_vcov's (to 1e-10);
# lme2sm's own (glmer: its Hessian's) agree with lme4's at tolPwrss = 1e-12 to 1e-4.


@pytest.mark.parametrize("name", PRED)
def test_se_fit_at_lme4s_vcov(name, monkeypatch):
    fx = load("predict_se", name)
    m = fitted("predict_se", name)
    names_ = list(fx["fixef"])
    V = pd.DataFrame(np.array(fx["vcov"], dtype=float), index=names_, columns=names_)
    monkeypatch.setattr(m, "vcov", lambda: V)
    p = prediction_parts(m, newdata(name), allow_new_levels=True)
    assert rel_close(p.se_fit, fx["se_fixed"], 1e-10)


@pytest.mark.parametrize("name", PRED)
def test_parts_match_r(name):
    fx = load("predict_se", name)
    p = prediction_parts(fitted("predict_se", name), newdata(name), allow_new_levels=True)
    tol = TOL
    assert list(p.new_level) == fx["new_level"]
    assert rel_close(p.fit, fx["fit"], 1e-4)
    assert rel_close(p.se_fit, fx["se_fixed"], tol), (p.se_fit, fx["se_fixed"])
    assert rel_close(p.var_re, fx["var_re_conditional"]), (p.var_re, fx["var_re_conditional"])
    pop = prediction_parts(fitted("predict_se", name), newdata(name), re_form="~0")
    assert rel_close(pop.fit, fx["fit_fixed"], 1e-4)
    assert rel_close(pop.var_re, fx["var_re_marginal"])
    if fx["sigma2"] is not None:
        assert p.sigma2 == pytest.approx(fx["sigma2"], rel=TOL)


@pytest.mark.parametrize("name", PRED)
def test_intervals_match_r(name):
    fx = load("predict_se", name)
    m = fitted("predict_se", name)
    ci = predict_with_se(m, newdata(name), re_form="~0", interval="confidence")
    tol = TOL
    assert rel_close(ci["lwr"], fx["ci_lower"], tol) and rel_close(ci["upr"], fx["ci_upper"], tol)
    if fx["kind"] == "lmer":
        pi = predict_with_se(m, newdata(name), allow_new_levels=True, interval="prediction")
        assert rel_close(pi["lwr"], fx["pi_lower"]) and rel_close(pi["upr"], fx["pi_upper"])
        assert np.all(pi["upr"] - pi["lwr"] > 2 * 1.959 * np.sqrt(fx["sigma2"]))


def test_condvar_of_a_seen_level_is_below_the_prior_variance():
    m = fitted("predict_se", "sleepstudy_corr")
    cv = conditional_variances(m, {0: {0, 5}})
    prior = m.term_covariances[0].cov
    for block in cv.values():
        assert np.all(np.linalg.eigvalsh(prior - block) > 0)


def test_glmer_response_scale_and_refusals():
    m = fitted("predict_se", "cbpp_binomial")
    nd = newdata("cbpp_binomial")
    link = predict_with_se(m, nd, allow_new_levels=True, interval="confidence")
    resp = predict_with_se(m, nd, allow_new_levels=True, interval="confidence", type="response")
    assert np.allclose(resp["fit"], 1 / (1 + np.exp(-link["fit"])))
    assert np.all((resp["lwr"] < resp["fit"]) & (resp["fit"] < resp["upr"]))
    with pytest.raises(ArgumentError, match="prediction intervals are for lmer"):
        predict_with_se(m, nd, allow_new_levels=True, interval="prediction")
    with pytest.raises(ArgumentError, match="interval="):
        predict_with_se(m, nd, interval="tolerance")


def test_new_levels_need_allow_new_levels():
    from lme2sm.errors import DataError

    m = fitted("predict_se", "sleepstudy_int")
    with pytest.raises(DataError, match="allow_new_levels"):
        predict_with_se(m, newdata("sleepstudy_int"))
