"""Fourteen lmer models on R's data beyond tests/fixtures/models (nlme's Oxboys, Rail,
ergoStool, Alfalfa, BodyWeight, MathAchieve, Assay; datasets' ChickWeight, Orange, CO2;
mlmRev's Gcsemv, ScotsSec, bdf), against lme4 1.1-31's default fits
(tools/make_lmer_sweep.R). Where lme4 fits cleanly lme2sm agrees to 1e-6 in logLik and
1e-5 in fixed effects and sigma; where lme4 warns that it did not converge, or the fit
is singular, lme2sm's logLik is at or above lme4's (by up to 8.8e-4: co2_uncorr)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from feature_fixtures import sweep, sweep_data

import lme2sm

LME4 = sweep("lmer_sweep")


def _data(fx: dict) -> pd.DataFrame:
    return sweep_data("lmer_sweep", fx)


@pytest.mark.parametrize("name", sorted(LME4))
def test_lmer_as_lme4(name):
    fx = LME4[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer(fx["formula"], _data(fx), REML=fx["REML"])
    gain = float(m.logLik()) - fx["logLik"]
    assert gain >= -1e-8
    fixef, lme4 = m.fixef(), pd.Series(fx["fixef"])
    assert list(fixef.index) == list(lme4.index)
    if fx["messages"] or fx["singular"]:  # lme4 stopped short
        assert gain < 1e-3
        return
    assert gain < 1e-6
    rel = np.abs(fixef.to_numpy() - lme4.to_numpy()) / np.maximum(1.0, np.abs(lme4.to_numpy()))
    assert rel.max() < 1e-5
    assert float(m.sigma) == pytest.approx(fx["sigma"], rel=1e-5)
