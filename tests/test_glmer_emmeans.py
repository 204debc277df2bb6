"""emmeans on a glmer: link-scale means with asymptotic (z) intervals, as R's emmeans
gives them for glmer; Kenward-Roger/Satterthwaite asked of a glmer are an error."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import lme2sm
from lme2sm.datasets import load

TIGHT = Path(__file__).parent / "fixtures" / "glmer_tight" / "cbpp_binomial.json"


def _cbpp():
    d = load("cbpp")
    d["period"], d["herd"] = d["period"].astype(str), d["herd"].astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lme2sm.glmer(
            "cbind(incidence, size - incidence) ~ period + (1|herd)", d, "binomial"
        )


def test_glmer_emmeans_are_the_link_scale_means_with_z_intervals():
    m = _cbpp()
    e = m.emmeans("period")
    t = e.table
    beta, V = m.fixef().to_numpy(), np.asarray(m.vcov())
    L = np.eye(4)
    L[:, 0] = 1.0  # period k: intercept + its coefficient
    np.testing.assert_allclose(t["emmean"], L @ beta, rtol=1e-12)
    np.testing.assert_allclose(t["SE"], np.sqrt(np.diag(L @ V @ L.T)), rtol=1e-12)
    assert np.all(np.isinf(t["df"]))
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(t["lower.CL"], t["emmean"] - z * t["SE"], rtol=1e-12)
    # period 1 is the intercept: lme4's tight refit (its default stop is 2.8e-4 short)
    tight = json.loads(TIGHT.read_text())
    assert t["emmean"].iloc[0] == pytest.approx(tight["fixef"]["(Intercept)"], abs=2e-5)
    assert t["SE"].iloc[0] == pytest.approx(tight["se"]["(Intercept)"], rel=1e-3)
    pairs = e.pairs(adjust="none")
    first = pairs.iloc[0]
    assert first["estimate"] == pytest.approx(-beta[1], rel=1e-12)
    assert first["p.value"] == pytest.approx(2 * stats.norm.sf(abs(first["t.ratio"])), rel=1e-9)
    assert math.isinf(first["df"])


def test_glmer_emmeans_with_lmer_degrees_of_freedom_is_an_argument_error():
    m = _cbpp()
    for ddf in ("Kenward-Roger", "Satterthwaite"):
        with pytest.raises(lme2sm.ArgumentError, match="is for lmer fits.*asymptotic"):
            m.emmeans("period", ddf=ddf)


def test_glmer_emmeans_on_the_response_scale_as_emmeans_type_response():
    m = _cbpp()
    link = m.emmeans("period").table
    resp = m.emmeans("period", type="response").table
    p = 1.0 / (1.0 + np.exp(-link["emmean"].to_numpy()))
    np.testing.assert_allclose(resp["prob"], p, rtol=1e-12)
    np.testing.assert_allclose(resp["SE"], p * (1 - p) * link["SE"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        resp["upper.CL"], 1.0 / (1.0 + np.exp(-link["upper.CL"].to_numpy())), rtol=1e-12
    )
    # R's emmeans(m, "period", type = "response") at lme4's default stop, whose SEs are
    # 0.5 % below those at the optimum (tests/fixtures/glmer_tight)
    r_prob = [0.19807921, 0.08391784, 0.07401714, 0.04842565]
    r_se = [0.03672693, 0.02363110, 0.02241761, 0.01959184]
    np.testing.assert_allclose(resp["prob"], r_prob, rtol=2e-3)
    np.testing.assert_allclose(resp["SE"], r_se, rtol=1.5e-2)
    with pytest.raises(lme2sm.ArgumentError, match="link-scale means"):
        m.emmeans("period", type="response").pairs()
    with pytest.raises(lme2sm.ArgumentError, match="type must be one of"):
        m.emmeans("period", type="odds")


def test_poisson_emmeans_on_the_response_scale_are_rates():
    d = load("grouseticks")
    d["YEAR"] = d["YEAR"].astype(str)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.glmer("TICKS ~ YEAR + cHEIGHT + (1 | LOCATION)", d, "poisson")
    link = m.emmeans("YEAR").table
    rate = m.emmeans("YEAR", type="response").table
    np.testing.assert_allclose(rate["rate"], np.exp(link["emmean"]), rtol=1e-12)
    np.testing.assert_allclose(rate["SE"], np.exp(link["emmean"]) * link["SE"], rtol=1e-12)
    assert (rate["lower.CL"] < rate["rate"]).all() and (rate["rate"] < rate["upper.CL"]).all()
