"""tidy() and glance() against broom.mixed 0.2.9 (tests/fixtures/tidy,
tools/make_reporting_fixtures.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from feature_fixtures import fitted, load, names

from lme2sm.errors import ArgumentError
from lme2sm.faces.tidy import glance, tidy

TIDY = names("tidy")
TOL = 1e-4
# Where lme4's default fit is not its best: on cbpp glmer's SEs come from lme4's Hessian
# at tolPwrss 1e-7, off by 1.3% (tests/fixtures/glmer_tight); on Machines' 3 x 3 term
# the REML surface is flat: lme2sm's logLik is 5.5e-7 higher and the SDs move by 6e-4.
# test_tidy_is_the_fits_own_numbers checks the values against lme2sm's accessors exactly.
FIT_TOL = {"cbpp_binomial": 2e-2, "grouseticks_nested": 3e-3, "machines_factor_slope": 1e-3}


def test_suite_has_correlations_duplicated_groups_and_glmer():
    terms = {r["term"] for n in TIDY for r in load("tidy", n)["tidy"]}
    assert "cor__(Intercept).MachineB" in terms and "cor__MachineB.MachineC" in terms
    groups = {r["group"] for r in load("tidy", "sleepstudy_uncorr")["tidy"]}
    assert "Subject.1" in groups
    assert {load("tidy", n)["kind"] for n in TIDY} == {"lmer", "glmer"}


@pytest.mark.parametrize("name", TIDY)
def test_tidy_matches_broom(name):
    fx = load("tidy", name)
    ref = pd.DataFrame(fx["tidy"])
    got = tidy(fitted("tidy", name), conf_int=True)
    assert list(got.columns) == fx["tidy_columns"]
    assert list(got["effect"]) == list(ref["effect"])
    assert list(got["term"]) == list(ref["term"])
    want = [g if isinstance(g, str) else None for g in ref["group"]]
    assert list(got["group"]) == want
    tol = FIT_TOL.get(name, TOL)
    for col in ("estimate", "std.error", "statistic", "conf.low", "conf.high", "p.value"):
        if col not in ref:
            continue
        a, b = got[col].to_numpy(dtype=float), ref[col].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), col
        ok = ~np.isnan(b)
        if col == "p.value":
            assert np.allclose(a[ok], b[ok], rtol=50 * tol, atol=1e-12), (col, a, b)
        else:
            assert np.allclose(a[ok], b[ok], rtol=tol, atol=tol * 1e-2), (col, a, b)


@pytest.mark.parametrize("name", TIDY)
def test_glance_matches_broom(name):
    fx = load("tidy", name)
    got = glance(fitted("tidy", name))
    assert list(got.columns) == fx["glance_columns"]
    tol = FIT_TOL.get(name, TOL)
    for col, v in fx["glance"].items():
        assert got[col].iloc[0] == pytest.approx(v, rel=tol, abs=1e-6), col


@pytest.mark.parametrize("name", TIDY)
def test_tidy_is_the_fits_own_numbers(name):
    m = fitted("tidy", name)
    got = tidy(m)
    fixed = got[got["effect"] == "fixed"].set_index("term")
    assert np.array_equal(fixed["estimate"], m.fixef()) and np.array_equal(
        fixed["std.error"], m.se()
    )
    vc = m.VarCorr()
    sds = vc[vc["var2"].isna() & (vc["grp"] != "Residual")]
    ran = got[(got["effect"] == "ran_pars") & got["term"].str.startswith("sd__")]
    ran = ran[ran["group"] != "Residual"]
    assert sorted(ran["estimate"]) == sorted(sds["sdcor"])


def test_tidy_without_conf_int_and_bad_level():
    m = fitted("tidy", "sleepstudy_corr")
    assert list(tidy(m).columns) == [
        "effect",
        "group",
        "term",
        "estimate",
        "std.error",
        "statistic",
    ]
    with pytest.raises(ArgumentError, match="level"):
        tidy(m, conf_int=True, level=95)
