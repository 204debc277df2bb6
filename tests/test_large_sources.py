"""lmer on Parquet, polars and a two-worker Dask cluster equals the in-memory fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from lme2sm.engine.frame_input import profiled_of
from lme2sm.frame.model_frame import build_model_frame
from lme2sm.large import example_panel, fit_large
from lme2sm.large.sources import ParquetSource, PolarsSource

pytest.importorskip("pyarrow")

FORMULA = "y ~ x + arm + (1 | student) + (1 | teacher) + (1 | school/classroom)"
N_ROWS = 60_000


def small_panel() -> pd.DataFrame:
    df = example_panel(
        N_ROWS, seed=3, n_students=300, n_teachers=20, n_schools=8, classes_per_school=4
    )
    df.loc[[5, 17, 400], "x"] = np.nan
    df.loc[[9, 1000], "teacher"] = None
    return df


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return small_panel()


@pytest.fixture(scope="module")
def in_memory(panel):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = build_model_frame(FORMULA, panel)
    return frame, profiled_of(frame).fit(reml=True)


@pytest.fixture(scope="module")
def parquet_dir(panel, tmp_path_factory):
    root = tmp_path_factory.mktemp("panel")
    for i, start in enumerate(range(0, N_ROWS, 20_000)):
        panel.iloc[start : start + 20_000].to_parquet(root / f"part-{i}.parquet")
    return root


def assert_same_fit(large, in_memory):
    frame, fit = in_memory
    got = large.engine_fit
    assert large.frame.n == frame.n
    assert large.frame.n_dropped == frame.n_dropped == 5
    assert large.frame.fixed_names == frame.fixed_names
    assert [t.group for t in large.frame.terms] == [t.group for t in frame.terms]
    for a, b in zip(large.frame.terms, frame.terms):
        assert sorted(a.levels) == sorted(b.levels)
        assert a.names == b.names
    assert got.logLik == pytest.approx(fit.logLik, abs=1e-6)
    np.testing.assert_allclose(got.beta, fit.beta, rtol=1e-6)
    sds = lambda f: np.concatenate([np.sqrt(np.diag(c)) for c in f.covariances()])  # noqa: E731
    # the targets: standard deviations to 1e-5 relative (achieved: 1e-8 to 2e-6)
    np.testing.assert_allclose(sds(got), sds(fit), rtol=1e-5, atol=0)
    assert got.sigma == pytest.approx(fit.sigma, rel=1e-5)
    # the random effects of each level, matched by label
    for t_large, t_mem, b_large, b_mem in zip(large.frame.terms, frame.terms, got.b, fit.b):
        a = pd.DataFrame(np.asarray(b_large), index=list(t_large.levels))
        m = pd.DataFrame(np.asarray(b_mem), index=list(t_mem.levels))
        np.testing.assert_allclose(a.loc[m.index].to_numpy(), m.to_numpy(), atol=1e-5)


def test_parquet_directory(parquet_dir, in_memory):
    with pytest.warns(UserWarning, match="dropped 5 of 60000 rows"):
        large = fit_large(FORMULA, ParquetSource(parquet_dir, batch_rows=15_000), progress=False)
    assert_same_fit(large, in_memory)


def test_parquet_glob_and_single_file(parquet_dir, panel, tmp_path):
    simple = "y ~ x + (1 | teacher)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_glob = fit_large(simple, str(parquet_dir / "part-*.parquet"), progress=False)
        panel.to_parquet(tmp_path / "one.parquet")
        one = fit_large(simple, tmp_path / "one.parquet", progress=False)
    assert by_glob.frame.n == one.frame.n == N_ROWS - 5
    assert by_glob.engine_fit.logLik == pytest.approx(one.engine_fit.logLik, abs=1e-6)


def test_polars_lazyframe(panel, in_memory):
    pl = pytest.importorskip("polars")
    lazy = pl.from_pandas(panel).lazy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        large = fit_large(FORMULA, PolarsSource(lazy, batch_rows=25_000), progress=False)
    assert_same_fit(large, in_memory)


def test_dask_on_a_two_worker_local_cluster(parquet_dir, in_memory):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    # processes=False: two in-process workers (threads); CI start-up stays under a second
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        ddf = dd.read_parquet(str(parquet_dir))
        assert ddf.npartitions >= 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            large = fit_large(FORMULA, ddf, progress=False)
    assert_same_fit(large, in_memory)


def test_progress_goes_to_stderr(parquet_dir, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_large("y ~ x + (1 | teacher)", ParquetSource(parquet_dir, 30_000), progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "lme2sm: cross-products: 3/3 partitions" in captured.err
