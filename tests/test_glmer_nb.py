"""glmer_nb against lme4's glmer.nb (tools/make_glmer_nb_fixtures.R).

lme4's default fit stops its search over the NB theta at 5e-5 on log(theta) and PIRLS at
tolPwrss = 1e-7 (its logLik is up to 2e-4 short); the numbers are compared with the
fixtures' tight refit (``*_tight``), which lme2sm's fit should reach, and the logLik also
with lme4's default (lme2sm's must not be lower).
"""

from __future__ import annotations

import json
import re
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lme2sm
from lme2sm import ArgumentError, DataError, glmer_nb

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "glmer_nb"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))


@cache
def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@cache
def data(name: str) -> pd.DataFrame:
    fx = load(name)
    return pd.read_csv(ROOT / fx["data_path"], dtype={f: str for f in fx["factors"]})


@cache
def fitted(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return glmer_nb(load(name)["formula"], data(name), data_name="d")


def test_three_fixtures():
    assert NAMES == ["epil_nb", "grouseticks_nb", "nb_slope"]


@pytest.mark.parametrize("name", NAMES)
def test_loglik_and_nb_theta(name):
    fx, m = load(name), fitted(name)
    assert m.logLik() == pytest.approx(fx["logLik_tight"], abs=1e-4)
    assert m.logLik() >= fx["logLik"] - 1e-6  # lme4's default stops short, never beyond
    assert m.nb_theta == pytest.approx(fx["nb_theta_tight"], rel=1e-3)
    assert m.getME("glmer.nb.theta") == m.nb_theta
    assert m.df() == fx["df"]  # lme4 counts the NB theta
    assert m.nobs() == fx["nobs"]
    assert m.AIC() == pytest.approx(-2 * fx["logLik_tight"] + 2 * fx["df"], abs=2e-4)
    assert m.BIC() == pytest.approx(fx["BIC"] + 2 * (fx["logLik"] - fx["logLik_tight"]), abs=2e-4)


@pytest.mark.parametrize("name", NAMES)
def test_fixef_se_and_variances(name):
    fx, m = load(name), fitted(name)
    fe = m.fixef()
    assert list(fe.index) == list(fx["fixef_tight"])
    want = np.array(list(fx["fixef_tight"].values()))
    np.testing.assert_allclose(fe.to_numpy(), want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        m.se().to_numpy(), np.array(list(fx["se_tight"].values())), rtol=1e-3
    )
    np.testing.assert_allclose(m.theta, np.array(list(fx["theta_tight"].values())), atol=1e-3)
    vc = m.VarCorr()
    assert len(vc) == len(fx["varcorr_tight"])
    for (_, row), ref in zip(vc.iterrows(), fx["varcorr_tight"]):
        assert row["grp"] == ref["grp"] and row["var1"] == ref["var1"]
        assert row["vcov"] == pytest.approx(ref["vcov"], abs=1e-3)
        assert row["sdcor"] == pytest.approx(ref["sdcor"], abs=1e-3)


def test_summary_reads_like_lme4():
    fx, m = load("epil_nb"), fitted("epil_nb")
    text, want = m.summary(), fx["summary"]
    assert re.search(r"^ Family: Negative Binomial\(7\.416\d\)  \( log \)$", text, re.M)
    assert fx["family"].startswith("Negative Binomial(7.416")
    # every line but those carrying the last digit of a number lme4 stops short on
    same = [a for a, b in zip(want.splitlines(), text.splitlines()) if a == b]
    assert len(same) >= len(want.splitlines()) - 5
    for line in (
        "     AIC      BIC   logLik deviance df.resid ",
        "  1265.8   1293.5   -624.9   1249.8      228 ",
        " subject (Intercept) 0.2151   0.4638  ",
        "            (Intr) lbase  trtprg lage   V4    ",
        "lbs:trtprgb  0.002 -0.654 -0.090  0.253  0.003",
    ):
        assert line in want.splitlines()
        assert line in text.splitlines()
    assert "Negative Binomial(7.416" in repr(m)


def test_theta_start_and_top_level_export():
    fx = load("epil_nb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.glmer_nb(fx["formula"], data("epil_nb"), theta=5.0)
    assert m.nb_theta == pytest.approx(fx["nb_theta_tight"], rel=1e-3)


def test_fixed_theta_family_through_glmer():
    """glmer with MASS's negative.binomial(theta) at lme4's theta: the same fit."""
    from lme2sm.glmm.nb import negative_binomial

    fx = load("epil_nb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.glmer(fx["formula"], data("epil_nb"), negative_binomial(fx["nb_theta_tight"]))
    assert m.logLik() == pytest.approx(fx["logLik_tight"], abs=1e-4)


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ([-1, 2, 3, 0, 4, 5, 1, 2], "negative counts in the negative binomial response"),
        ([1.5, 2, 3, 0, 4, 5, 1, 2], "non-integer counts in the negative binomial response"),
    ],
)
def test_bad_counts_are_data_errors(values, match):
    d = pd.DataFrame({"y": values, "g": list("aabbccdd")})
    with pytest.raises(DataError, match=match):
        glmer_nb("y ~ 1 + (1 | g)", d)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"nAGQ": 5}, "nAGQ=1"), ({"theta": -2.0}, "positive number"), ({"theta": "x"}, "positive")],
)
def test_bad_arguments(kwargs, match):
    d = pd.DataFrame({"y": [1, 2, 3, 0, 4, 5, 1, 2], "g": list("aabbccdd")})
    with pytest.raises(ArgumentError, match=match):
        glmer_nb("y ~ 1 + (1 | g)", d, **kwargs)


def test_getme_unknown_name():
    with pytest.raises(ArgumentError, match="glmer.nb.theta"):
        fitted("epil_nb").getME("Zt")


def test_cli_family_negative_binomial(capsys):
    from lme2sm.cli import main

    fx = load("epil_nb")
    path = str(ROOT / fx["data_path"])
    assert main(["fit", path, fx["formula"], "--family", "nb", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["family"] == "negative_binomial"
    assert out["nb_theta"] == pytest.approx(fx["nb_theta_tight"], rel=1e-3)
    assert out["logLik"] == pytest.approx(fx["logLik_tight"], abs=1e-4)
    assert main(["fit", path, fx["formula"], "--family", "negative_binomial"]) == 0
    assert " Family: Negative Binomial(7.416" in capsys.readouterr().out


def test_poisson_counts_stop_at_the_upper_end_with_a_warning():
    d = pd.read_csv(ROOT / "tests/fixtures/glmer/data/poisson_exposure.csv", dtype={"g": str})
    with pytest.warns(lme2sm.ConvergenceWarning, match="little overdispersion"):
        m = glmer_nb("y ~ x + offset(log(exposure)) + (1 | g)", d)
    assert m.nb_theta > 1e4
    # the limit is the Poisson fit (tests/fixtures/glmer/poisson_offset.json: -699.4316)
    assert m.logLik() == pytest.approx(-699.4316, abs=0.01)
