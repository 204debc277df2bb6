"""Satterthwaite tests, type III anova and profile/bootstrap intervals against lmerTest/lme4.

Reference numbers come from the committed fixtures (tools/make_fixtures.R: lmerTest's
``summary(m)`` and ``anova(m, type = 3)``, lme4's ``confint(m, method = "profile")``).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import EXTRA_NAMES, fitted_model, fixture_data, lme4_answer

import lme2sm
from lme2sm.errors import ArgumentError
from lme2sm.frame.model_frame import build_model_frame
from lme2sm.inference import (
    anova,
    confint,
    profile_confint,
    satterthwaite_table,
)
from lme2sm.inference._design import LmmDesign
from lme2sm.inference.satterthwaite import build_satterthwaite, coefficient_table
from lme2sm.models.anova import anova as compare_anova

FIXTURES = Path(__file__).parent / "fixtures" / "models"
ALL = sorted(p.stem for p in FIXTURES.glob("*.json") if not p.stem.startswith("_"))
# models statsmodels fits in about a second or less: the whole pipeline is checked on these
FAST = [
    "cake",
    "dyestuff",
    "dyestuff2_singular",
    "dyestuff_ml",
    "iris_dots",
    "machines_factor_slope",
    "machines_uncorr_factor",
    "oats",
    "orthodont",
    "sleepstudy_corr",
    "sleepstudy_int",
    "sleepstudy_quad",
    "sleepstudy_slope_only",
    "sleepstudy_uncorr",
]
# lme4's profile was clean (no warnings) and profiling here takes a second or two
PROFILE = ["dyestuff", "dyestuff2_singular", "sleepstudy_corr", "sleepstudy_int", "iris_dots"]

DF_REL = 1e-2
P_ABS = 1e-3


def fixture(name: str) -> dict:
    return lme4_answer(name)


def fitted(name: str) -> tuple[dict, lme2sm.LmerResult]:
    return lme4_answer(name), fitted_model(name)


def lme4_theta(D: LmmDesign, fx: dict) -> np.ndarray:
    """The fixture's theta (named ``group.col`` / ``group.row.col``) in D's order."""
    out = []
    for t in D.terms:
        for c in range(t.k):
            for r in range(c, t.k):
                key = (
                    f"{t.group}.{t.names[c]}" if r == c else f"{t.group}.{t.names[r]}.{t.names[c]}"
                )
                out.append(fx["thetas"][key])
    return np.array(out)


def check_t_table(table: pd.DataFrame, ref: dict) -> tuple[float, float]:
    assert list(table.index) == list(ref)
    rel_df = max(abs(table.loc[k, "df"] / ref[k]["df"] - 1) for k in ref)
    dp = max(abs(table.loc[k, "p"] - ref[k]["p"]) for k in ref)
    assert rel_df < DF_REL, table
    assert dp < P_ABS, table
    for k in ref:
        assert table.loc[k, "t value"] == pytest.approx(ref[k]["t"], rel=1e-2, abs=1e-3)
    return rel_df, dp


# ---------------------------------------------------------------- Satterthwaite


@pytest.mark.parametrize("name", ALL + EXTRA_NAMES)
def test_satterthwaite_at_lme4_estimates(name):
    """df and p for every fixture, at lme4's own theta and sigma (no statsmodels fit)."""
    fx = fixture(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = build_model_frame(fx["formula"], fixture_data(fx), weights=fx.get("weights"))
        D = LmmDesign.from_frame(frame)
    model = build_satterthwaite(D, lme4_theta(D, fx), fx["sigma"], fx["REML"])
    rel_df, dp = check_t_table(coefficient_table(model), fx["satterthwaite"])
    assert rel_df < 1e-4 and dp < 1e-6  # same point, same derivatives: near-exact


# the dense design's numerical derivatives take 10-20 s on these (q near 900)
SLOW_DF = {"insteval_small_slopes"}


@pytest.mark.parametrize("name", [n for n in ALL + EXTRA_NAMES if n not in SLOW_DF])
def test_satterthwaite_pipeline(name):
    fx, m = fitted(name)
    if m.logLik() - fx["logLik"] > 1e-7:
        pytest.skip("lme4's default fit stopped short: its df are for another point")
    table = satterthwaite_table(m)
    assert list(table.columns[:5]) == ["Estimate", "Std. Error", "df", "t value", "p"]
    check_t_table(table, fx["satterthwaite"])


def test_singular_fit_still_reports_df():
    fx, m = fitted("dyestuff2_singular")
    assert m.isSingular()
    table = satterthwaite_table(m)
    assert table.loc["(Intercept)", "df"] == pytest.approx(29.0, rel=1e-4)


# ------------------------------------------------------------------ anova III


@pytest.mark.parametrize("name", FAST)
def test_anova_type3(name):
    fx, m = fitted(name)
    table = anova(m)
    assert list(table.columns) == ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
    assert list(table.index) == [r["term"] for r in fx["anova_III"]]
    for row in fx["anova_III"]:
        ours = table.loc[row["term"]]
        assert ours["NumDF"] == row["NumDF"]
        assert ours["DenDF"] == pytest.approx(row["DenDF"], rel=DF_REL)
        assert ours["F value"] == pytest.approx(row["F"], rel=1e-2)
        assert ours["Sum Sq"] == pytest.approx(row["SumSq"], rel=2e-2)
        assert abs(ours["Pr(>F)"] - row["p"]) < P_ABS


def test_anova_single_model_dispatch_and_method():
    _, m = fitted("oats")
    a, b, c = compare_anova(m), m.anova(), anova(m)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)
    assert list(a.index) == ["nitro", "Variety"]
    assert list(a["NumDF"]) == [1, 2]


def test_summary_with_satterthwaite_columns():
    _, m = fitted("sleepstudy_corr")
    plain = m.summary(ddf=None)
    assert "Pr(>|t|)" not in plain and "['lmerMod']" in plain
    text = m.summary(ddf="Satterthwaite")
    assert "Satterthwaite" in text
    assert m.summary() == text  # lmerTest's layout is the default, as issue 7 asks
    header = text.split("Fixed effects:\n", 1)[1].splitlines()[0].split()
    assert header == ["Estimate", "Std.", "Error", "df", "t", "value", "Pr(>|t|)"]


# ------------------------------------------------------------------- profile


@pytest.mark.parametrize("name", PROFILE)
def test_profile_intervals_match_lme4(name):
    fx, m = fitted(name)
    assert not fx["confint_profile_warnings"]
    ci = m.confint(method="profile")
    ref = fx["confint_profile"]
    assert list(ci.index) == list(ref)
    assert list(ci.columns) == ["2.5 %", "97.5 %"]
    for row, (lo, hi) in ref.items():
        ours_lo, ours_hi = ci.loc[row]
        width = hi - lo
        assert ours_lo == pytest.approx(lo, rel=1e-2, abs=1e-3 * width), row
        assert ours_hi == pytest.approx(hi, rel=1e-2, abs=1e-3 * width), row


def test_profile_of_reml_fit_uses_ml_deviance():
    """lme4 profiles the ML deviance: a REML fit and its ML refit give the same intervals."""
    _, reml = fitted("dyestuff")
    _, ml = fitted("dyestuff_ml")
    a = profile_confint(reml, parm=["sigma"])
    b = profile_confint(ml, parm=["sigma"])
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-4)


def test_profile_level_and_parm():
    _, m = fitted("sleepstudy_int")
    ci90 = confint(m, level=0.9, parm=["Days"])
    ci95 = confint(m, level=0.95, parm=["Days"])
    assert list(ci90.columns) == ["5.0 %", "95.0 %"]
    assert ci95.loc["Days", "2.5 %"] < ci90.loc["Days", "5.0 %"] < m.fixef()["Days"]


# ----------------------------------------------------------------- bootstrap


def test_bootstrap_reproducible_and_brackets_estimates(capsys):
    _, m = fitted("dyestuff")
    a = m.confint(method="boot", nsim=40, seed=42, progress=False)
    assert capsys.readouterr().err == ""
    b = confint(m, method="boot", nsim=40, seed=42, progress=True)
    assert "40/40" in capsys.readouterr().err
    pd.testing.assert_frame_equal(a, b)
    c = confint(m, method="boot", nsim=40, seed=7, progress=False)
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    assert list(a.index) == ["sd_(Intercept)|Batch", "sigma", "(Intercept)"]
    estimates = {
        "sd_(Intercept)|Batch": math.sqrt(m.VarCorr()["vcov"][0]),
        "sigma": m.sigma,
        "(Intercept)": m.fixef()["(Intercept)"],
    }
    for row, value in estimates.items():
        assert a.loc[row, "2.5 %"] < value < a.loc[row, "97.5 %"], row


def test_bootstrap_correlated_model_names():
    _, m = fitted("sleepstudy_corr")
    ci = confint(m, method="boot", nsim=20, seed=1, progress=False)
    assert list(ci.index) == [
        "sd_(Intercept)|Subject",
        "cor_Days.(Intercept)|Subject",
        "sd_Days|Subject",
        "sigma",
        "(Intercept)",
        "Days",
    ]
    assert ((ci["2.5 %"] <= ci["97.5 %"]) | ci.isna().any(axis=1)).all()
    assert -1 <= ci.loc["cor_Days.(Intercept)|Subject", "2.5 %"] <= 1


def test_unknown_method_is_refused():
    _, m = fitted("dyestuff")
    with pytest.raises(ArgumentError):
        m.confint(method="bayes")
    with pytest.raises(ArgumentError):
        confint(m, level=1.5)
