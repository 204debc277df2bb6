"""What a fit on data beyond memory offers after the fit: lazy fitted values and
residuals, residual quantiles, inference's design from the sums, LmerResult."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pandas as pd
import pytest

from lme2sm.engine.frame_input import profiled_of
from lme2sm.frame.model_frame import build_model_frame
from lme2sm.inference._design import LmmDesign
from lme2sm.large import RowsNotInMemoryError, example_panel, fit_large
from lme2sm.large.predict import lazy_fitted, residual_quantiles
from lme2sm.large.sources import ParquetSource

pytest.importorskip("pyarrow")

FORMULA = "y ~ x + arm + (x | student) + (1 | teacher)"


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    df = example_panel(8_000, seed=5, n_students=60, n_teachers=8, n_schools=3)
    df["student"] = "s" + df["student"].astype(str)
    df.loc[[4, 99], "x"] = np.nan
    return df


@pytest.fixture(scope="module")
def in_memory(panel):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = build_model_frame(FORMULA, panel)
    fit = profiled_of(frame).fit()
    fitted = frame.X @ fit.beta + frame.offset
    for t, b in zip(frame.terms, fit.b):
        fitted = fitted + np.sum(t.Z * np.asarray(b)[t.codes], axis=1)
    return frame, fit, pd.Series(fitted, index=frame.data.index)


@pytest.fixture(scope="module")
def parquet_file(panel, tmp_path_factory):
    path = tmp_path_factory.mktemp("res") / "panel.parquet"
    panel.to_parquet(path, row_group_size=3_000)
    return path


def large_fit(source):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_large(FORMULA, source, progress=False)


def test_fitted_and_residuals_lazily_on_dask(panel, in_memory):
    dd = pytest.importorskip("dask.dataframe")
    frame, fit, fitted = in_memory
    large = large_fit(dd.from_pandas(panel, npartitions=3))
    out = lazy_fitted(large.frame, large.engine_fit, "fitted")
    assert isinstance(out, dd.Series)
    values = out.compute()
    assert len(values) == frame.n
    np.testing.assert_allclose(values.to_numpy(), fitted.loc[values.index].to_numpy(), atol=1e-5)
    resid = lazy_fitted(large.frame, large.engine_fit, "residuals").compute()
    np.testing.assert_allclose(resid.to_numpy() + values.to_numpy(), frame.y, atol=1e-9)
    population = lazy_fitted(large.frame, large.engine_fit, "population").compute()
    np.testing.assert_allclose(population.to_numpy(), frame.X @ fit.beta, atol=1e-5)


def test_fitted_lazily_on_polars_and_parquet(panel, parquet_file, in_memory):
    pl = pytest.importorskip("polars")
    _frame, _fit, fitted = in_memory
    large = large_fit(pl.from_pandas(panel).lazy())
    out = lazy_fitted(large.frame, large.engine_fit)
    assert isinstance(out, pl.LazyFrame)
    np.testing.assert_allclose(out.collect()["fitted"].to_numpy(), fitted.to_numpy(), atol=1e-5)
    large = large_fit(ParquetSource(parquet_file, batch_rows=3_000))
    parts = list(lazy_fitted(large.frame, large.engine_fit))
    assert len(parts) == 3 and all(isinstance(p, pd.Series) for p in parts)
    values = pd.concat(parts)
    np.testing.assert_allclose(values.to_numpy(), fitted.loc[values.index].to_numpy(), atol=1e-5)


def test_residual_quantiles(parquet_file, in_memory):
    frame, _fit, fitted = in_memory
    large = large_fit(parquet_file)
    expected = np.quantile(frame.y - fitted.to_numpy(), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(
        residual_quantiles(large.frame, large.engine_fit), expected, atol=1e-5
    )
    sampled = residual_quantiles(large.frame, large.engine_fit, sample=2_000)
    assert sampled[0] == pytest.approx(expected[0], abs=1e-5)
    assert sampled[-1] == pytest.approx(expected[-1], abs=1e-5)
    assert sampled[2] == pytest.approx(expected[2], abs=0.1)


def test_inference_design_from_the_sums(parquet_file, in_memory):

    frame, fit, _ = in_memory
    large = large_fit(parquet_file)
    mem = LmmDesign.from_frame(frame)
    lazy = LmmDesign.from_lazy_frame(large.frame)
    np.testing.assert_allclose(lazy.ZtZ, mem.ZtZ, atol=1e-8)
    np.testing.assert_allclose(lazy.ZtXy, mem.ZtXy, atol=1e-8)
    np.testing.assert_allclose(lazy.XytXy, mem.XytXy, rtol=1e-10)
    with pytest.raises(RowsNotInMemoryError, match="bootstrap"):
        lazy.with_response(np.zeros(3))
    with pytest.raises(RowsNotInMemoryError, match="X has one row per data row"):
        lazy.X @ fit.beta


def _lmer_result_takes_a_frame() -> bool:
    from lme2sm.models.lmer_result import LmerResult

    return "frame" in inspect.signature(LmerResult.__init__).parameters


@pytest.mark.skipif(
    not _lmer_result_takes_a_frame(), reason="LmerResult still takes a translation"
)
def test_lmer_large_gives_the_in_memory_result_class(parquet_file, panel):
    import lme2sm
    from lme2sm.models.lmer import lmer_large
    from lme2sm.models.lmer_result import LmerResult

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lmer_large(FORMULA, parquet_file, progress=False)
        ref = lme2sm.lmer(FORMULA, panel)
    assert type(m) is LmerResult
    assert m.logLik() == pytest.approx(ref.logLik(), abs=1e-6)
    pd.testing.assert_series_equal(m.fixef(), ref.fixef(), rtol=1e-6)
    pd.testing.assert_frame_equal(m.VarCorr(), ref.VarCorr(), atol=1e-5)
    assert m.AIC() == pytest.approx(ref.AIC(), abs=1e-5)
    assert m.nobs == ref.nobs
    ranef, ref_ranef = m.ranef()["student"], ref.ranef()["student"]
    pd.testing.assert_frame_equal(ranef.loc[ref_ranef.index], ref_ranef, atol=1e-5)
    np.testing.assert_allclose(
        m.predict(panel.iloc[10:15]), ref.predict(panel.iloc[10:15]), atol=1e-5
    )
