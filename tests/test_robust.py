"""Cluster-robust CR0/CR1/CR2 covariances and Satterthwaite df against clubSandwich 0.5.8
(tests/fixtures/robust, tools/make_reporting_fixtures.R)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from feature_fixtures import data, fitted, load, names, rel

from lme2sm import lmer
from lme2sm.errors import ArgumentError
from lme2sm.inference.robust import coef_test, robust_vcov, vcov_cr

ROBUST = names("robust")
TOL = 1e-4


def test_suite_covers_nested_and_slope_models():
    formulas = [load("robust", n)["formula"] for n in ROBUST]
    assert len(ROBUST) >= 10
    assert any("/" in f for f in formulas) and any("(Days | Subject)" in f for f in formulas)


@pytest.mark.parametrize("name", ROBUST)
@pytest.mark.parametrize("type", ["CR0", "CR1", "CR2"])
def test_vcov_matches_clubsandwich(name, type):
    fx = load("robust", name)
    m = fitted("robust", name)
    r = robust_vcov(m, type)
    assert r.cluster == fx["cluster"] and r.n_clusters == fx["n_clusters"]
    assert list(r.vcov.index) == fx["vcov_names"]
    ref = np.array(fx[type]["vcov"], dtype=float)
    scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
    assert np.max(np.abs(r.vcov.to_numpy() - ref) / scale) < TOL


@pytest.mark.parametrize("name", ROBUST)
@pytest.mark.parametrize("type", ["CR0", "CR2"])
def test_coef_test_matches_clubsandwich(name, type):
    fx = load("robust", name)
    ref = pd.DataFrame(fx[type]["coef_test"]).set_index("coef")
    got = coef_test(fitted("robust", name), type)
    assert list(got.index) == list(ref.index)
    assert rel(got["Std. Error"], ref["SE"]) < TOL
    assert rel(got["df"], ref["df"]) < TOL, (got["df"].to_numpy(), ref["df"].to_numpy())
    assert np.max(np.abs(got["t value"] - ref["tstat"])) < TOL * np.max(np.abs(ref["tstat"]))
    assert np.allclose(got["Pr(>|t|)"], ref["p"], rtol=1e-3, atol=1e-12)


def test_cr2_differs_from_cr0_and_cr1_is_scaled_cr0():
    m = fitted("robust", "sleepstudy_corr")
    v0, v1, v2 = (vcov_cr(m, t).to_numpy() for t in ("CR0", "CR1", "CR2"))
    assert np.allclose(v1, v0 * 18 / 17, rtol=1e-12)
    assert not np.allclose(v2, v0, rtol=1e-3)


def test_crossed_effects_are_refused():
    fx = load("r2", "penicillin")
    m = lmer(fx["formula"], data(fx["data_path"], tuple(fx["factors"])))
    with pytest.raises(ArgumentError, match="not nested"):
        vcov_cr(m)


def test_bad_type_and_cluster():
    m = fitted("robust", "pastes_nested")
    with pytest.raises(ArgumentError, match="CR0, CR1, CR2"):
        vcov_cr(m, "HC3")
    with pytest.raises(ArgumentError, match="not a grouping factor"):
        vcov_cr(m, cluster="plate")
    # clustering on the inner factor: the outer one's effects are not within it
    with pytest.raises(ArgumentError, match="not nested"):
        vcov_cr(m, cluster="cask:batch")
