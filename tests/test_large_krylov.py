"""``factor="krylov"`` on data beyond memory (#21): the summed cross-products from Parquet
and Dask give the in-memory Krylov fit's numbers; the exact path's refusal of a too-large
crossed block points to it."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_krylov import crossed_data

import lme2sm
from lme2sm.engine import lmm
from lme2sm.errors import FitError

FORMULA = "y ~ 1 + x + (1|g1) + (1|g2)"
AGREE = 1e-10
"""Relative agreement of the deviance, logLik, fixed effects and sigma (same probes; the
sums differ only in the order of summation)."""
THETA_AGREE = 1e-6
"""theta's: the optimiser's path on a flat optimum follows the rounding of the sums
(measured 8e-8 relative apart)."""


@pytest.fixture(scope="module")
def data():
    return crossed_data(n=4000, q1=400, q2=150)


@pytest.fixture(scope="module")
def in_memory(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lme2sm.lmer(FORMULA, data, REML=False, factor="krylov", progress=False)


def _parquet(df, tmp_path):
    pytest.importorskip("pyarrow")
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(tmp_path / f"part-{i}.parquet")
    return str(tmp_path)


def _same(m, ref):
    assert m.approximate and m.frame.lazy
    for theta in (np.array([0.8, 0.5]), ref.theta):  # a fresh engine each: no warm start
        dev = [
            type(x.profiled)(x.profiled.cp, x.profiled.specs).deviance(theta, False)
            for x in (m, ref)
        ]
        assert dev[0] == pytest.approx(dev[1], rel=AGREE)
    np.testing.assert_allclose(m.theta, ref.theta, rtol=THETA_AGREE)
    np.testing.assert_allclose(m.fixef(), ref.fixef(), rtol=1e-7)
    np.testing.assert_allclose(m.sigma, ref.sigma, rtol=1e-7)
    assert m.logLik() == pytest.approx(ref.logLik(), rel=AGREE)
    assert m.engine_fit.logdet_se == pytest.approx(ref.engine_fit.logdet_se, rel=1e-6)
    assert "NOTE: approximate fit (factor='krylov')" in m.summary()


def test_parquet_krylov_equals_in_memory(data, in_memory, tmp_path):
    m = lme2sm.lmer(FORMULA, _parquet(data, tmp_path), REML=False, factor="krylov", progress=False)
    _same(m, in_memory)


def test_dask_krylov_equals_in_memory(data, in_memory):
    dd = pytest.importorskip("dask.dataframe")
    frame = dd.from_pandas(data, npartitions=3)
    m = lme2sm.lmer(FORMULA, frame, REML=False, factor="krylov", progress=False)
    _same(m, in_memory)


def test_large_exact_refusal_points_to_krylov(data, tmp_path, monkeypatch):
    path = _parquet(data, tmp_path)
    monkeypatch.setattr(lmm, "MAX_DENSE", 50)
    with pytest.raises(FitError, match=r"allows 50\. lmer\(\.\.\., factor='krylov'\)"):
        lme2sm.lmer(FORMULA, path, REML=False, progress=False)
    m = lme2sm.lmer(FORMULA, path, REML=False, factor="krylov", progress=False)
    assert m.approximate
