"""drop1 against R: lme4's drop1.merMod (AIC, LRT) and lmerTest's F tests.

Reference tables come from tools/make_drop1_fixtures.R (tests/fixtures/drop1/): lme4's
``drop1(m, test = "none" / "Chisq")`` at the tight fit (lme4's best optimum) and at its
default fit, lmerTest's ``drop1(m, ddf = "Satterthwaite" / "Kenward-Roger")``.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import lme2sm
from lme2sm.datasets import load
from lme2sm.errors import ArgumentError, DataError
from lme2sm.formula import parse
from lme2sm.models.drop1 import drop_scope, reduced_formula

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "drop1"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json") if not p.stem.startswith("_"))
AIC_TOL = {"lmer": 1e-8, "glmer": 5e-6}
"""lmer fits reach lme4's tight optimum to ~1e-10 in AIC; glmer's Laplace fits to ~1e-6."""


@cache
def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@cache
def fitted(name: str):
    fx = fixture(name)
    d = pd.read_csv(ROOT / fx["data_path"], dtype={f: str for f in fx["factors"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fx["kind"] == "lmer":
            return lme2sm.lmer(fx["formula"], d, REML=fx["REML"])
        return lme2sm.glmer(fx["formula"], d, fx["family"])


@cache
def table(name: str, test: str, ddf: str = "Satterthwaite") -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lme2sm.drop1(fitted(name), scope=fixture(name)["scope"], test=test, ddf=ddf)


def values(ref: dict, column: str) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in ref[column]], dtype=float)


def test_there_are_fixtures_of_both_kinds():
    kinds = {fixture(n)["kind"] for n in NAMES}
    assert kinds == {"lmer", "glmer"} and len(NAMES) >= 8


@pytest.mark.parametrize("name", NAMES)
def test_aic_and_lrt_as_lme4(name):
    fx = fixture(name)
    for test, key in (("none", "none_tight"), ("Chisq", "chisq_tight")):
        got, ref = table(name, test), fx[key]
        assert list(got.index) == ref["rows"]
        assert list(got.columns) == [c for c in ref if c != "rows"]
        np.testing.assert_array_equal(got["npar"].to_numpy(), values(ref, "npar"))
        tol = AIC_TOL[fx["kind"]]
        np.testing.assert_allclose(got["AIC"].to_numpy(), values(ref, "AIC"), rtol=0, atol=tol)
    if fx["kind"] == "lmer":  # lme4's default lmer fits are at its optimum too
        default = values(fx["chisq"], "AIC")
        np.testing.assert_allclose(got["AIC"].to_numpy(), default, rtol=0, atol=1e-6)
    got = table(name, "Chisq")
    np.testing.assert_allclose(got["LRT"], values(ref, "LRT"), rtol=0, atol=tol)
    np.testing.assert_allclose(got["Pr(Chi)"], values(ref, "Pr(Chi)"), rtol=1e-5, atol=1e-10)
    assert got.attrs["heading"].startswith("Single term deletions")


@pytest.mark.parametrize("name", [n for n in NAMES if "F_satterthwaite" in fixture(n)])
@pytest.mark.parametrize("ddf", ["Satterthwaite", "Kenward-Roger"])
def test_f_tests_as_lmertest(name, ddf):
    key = "F_satterthwaite" if ddf == "Satterthwaite" else "F_kenward_roger"
    ref = fixture(name).get(key)
    if ref is None:  # Kenward-Roger: REML fits only
        with pytest.raises(ArgumentError, match="REML"):
            table(name, "F", ddf)
        return
    got = table(name, "F", ddf)
    assert list(got.index) == ref["rows"]
    np.testing.assert_array_equal(got["NumDF"], values(ref, "NumDF"))
    # Satterthwaite's df come from numerical derivatives (lmerTest's too): 1e-5
    ddf_tol = 1e-5 if ddf == "Satterthwaite" else 1e-8
    np.testing.assert_allclose(got["DenDF"], values(ref, "DenDF"), rtol=ddf_tol)
    for column in ("Sum Sq", "Mean Sq", "F value"):
        np.testing.assert_allclose(got[column], values(ref, column), rtol=1e-6, err_msg=column)
    # Pr(>F) to 1e-6 at lmerTest's F and our DenDF: the p-value moves with DenDF far more
    # than 1e-6 within DenDF's 1e-5 (sleepstudy_corr: a change of theta by 1e-10 moves
    # both packages' numDeriv DenDF of 17 by 3e-6, which moves Pr(>F) by 1.3e-6)
    p_at_ours = stats.f.sf(values(ref, "F value"), values(ref, "NumDF"), got["DenDF"])
    np.testing.assert_allclose(got["Pr(>F)"], p_at_ours, rtol=1e-6, err_msg="Pr(>F)")
    assert ddf.split("-")[0] in got.attrs["heading"]


def test_drop_scope_keeps_marginality():
    assert drop_scope(parse("y ~ a * b + x + (1 | g)")) == ["x", "a:b"]
    assert drop_scope(parse("y ~ a * b * c + (1 | g)")) == ["a:b:c"]
    assert drop_scope(parse("y ~ a + a:b + I(a^2) + (1 | g)")) == ["I(a^2)", "a:b"]
    assert drop_scope(parse("y ~ 1 + (1 | g)")) == []


def test_reduced_formula_keeps_random_terms_offsets_and_no_intercept():
    p = parse("y ~ 0 + a + x + offset(log(o)) + (x || g) + (1 | h/k)")
    assert reduced_formula(p, "x") == "y ~ 0 + a + offset(log(o)) + (x || g) + (1 | h/k)"
    assert reduced_formula(parse("y ~ x + (1 | g)"), "x") == "y ~ 1 + (1 | g)"


def test_scope_as_labels_or_formula_text():
    m = fitted("oats_additive")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = lme2sm.drop1(m, scope="~ Variety")
        b = lme2sm.drop1(m, scope=["Variety"])
        c = lme2sm.drop1(m, scope="Variety")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert list(a.index) == ["<none>", "Variety"]


def test_bad_arguments():
    m = fitted("cake_interaction")
    with pytest.raises(ArgumentError, match="test"):
        lme2sm.drop1(m, test="LRT")
    with pytest.raises(ArgumentError, match="scope is not a subset"):
        lme2sm.drop1(m, scope=["nitro"])
    with pytest.raises(ArgumentError, match="only marginal terms"):
        lme2sm.drop1(m, scope=["recipe"], test="F")
    with pytest.raises(ArgumentError, match="ddf"):
        lme2sm.drop1(m, test="F", ddf="lme4")
    with pytest.raises(ArgumentError, match="lmer fits"):
        lme2sm.drop1(fitted("cbpp_period"), test="F")


def test_non_marginal_scope_is_lme4s_refit():
    m = fitted("cake_interaction")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = lme2sm.drop1(m, scope=["recipe"], test="Chisq")
    # R's update(m, ~ . - recipe): temp + recipe:temp, two columns fewer (lme4: npar 2,
    # AIC 1674.5, LRT 0.18976)
    assert t.loc["recipe", "npar"] == 2
    assert t.loc["recipe", "LRT"] == pytest.approx(0.18976, abs=5e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reduced = lme2sm.lmer(
            "angle ~ temp + recipe:temp + (1 | replicate)", load("cake"), REML=False
        )
    assert t.loc["recipe", "AIC"] == pytest.approx(reduced.AIC(), abs=1e-8)


def test_rows_that_change_are_an_error_and_the_data_is_kept():
    d = load("sleepstudy").copy()
    d["x"] = np.where(np.arange(len(d)) % 10 == 0, np.nan, np.arange(len(d)) % 7)
    before = d.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("Reaction ~ Days + x + (1 | Subject)", d)
        with pytest.raises(DataError, match="rows"):
            lme2sm.drop1(m, scope=["x"])
        t = lme2sm.drop1(m, scope=["Days"])
    pd.testing.assert_frame_equal(d, before)
    assert t.loc["Days", "npar"] == 1 and t.loc["Days", "AIC"] > t.loc["<none>", "AIC"]


def test_refit_warnings_name_the_deletion():
    d = load("Dyestuff2").assign(x=lambda d: np.arange(len(d)) % 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("Yield ~ x + (1 | Batch)", d)
    with pytest.warns(lme2sm.SingularFitWarning, match="drop1, without x: boundary"):
        lme2sm.drop1(m)


def test_weights_go_with_the_refit():
    d = load("sleepstudy").assign(w=lambda d: 1 + (d["Days"] % 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("Reaction ~ Days + (1 | Subject)", d, weights="w")
        t = lme2sm.drop1(m, test="Chisq")
        null = lme2sm.lmer("Reaction ~ 1 + (1 | Subject)", d, REML=False, weights="w")
    assert t.loc["Days", "AIC"] == pytest.approx(null.AIC(), abs=1e-8)


def test_negative_binomial_deletions_refit_theta():
    d = load("grouseticks")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.glmer_nb("TICKS ~ cHEIGHT + (1 | LOCATION)", d)
        t = lme2sm.drop1(m, test="Chisq")
        null = lme2sm.glmer_nb("TICKS ~ 1 + (1 | LOCATION)", d)
    assert t.loc["<none>", "AIC"] == pytest.approx(m.AIC(), abs=1e-10)
    assert t.loc["cHEIGHT", "npar"] == 1
    assert t.loc["cHEIGHT", "AIC"] == pytest.approx(null.AIC(), abs=1e-8)
