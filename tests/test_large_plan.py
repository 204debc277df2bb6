"""The large-data path's planning: levels, NA rows, aliased columns, refusals, extras."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from lme2sm.engine.frame_input import crossprods_with_response, profiled_of
from lme2sm.errors import DataError, FormulaError, Lme2smError
from lme2sm.frame.model_frame import build_model_frame, kept_columns
from lme2sm.large import LazyModelFrame, RowsNotInMemoryError, fit_large
from lme2sm.large.fit import kept_columns_gram
from lme2sm.large.sources import ParquetSource, as_source

pytest.importorskip("pyarrow")


def small(n=4000, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 40, n)
    h = rng.integers(0, 12, n)
    b = rng.normal(0, 0.7, 40)
    df = pd.DataFrame(
        {
            "y": 2 + 0.3 * (h % 3) + b[g] + rng.normal(0, 1, n),
            "x": rng.normal(size=n),
            "dose": rng.choice([1.0, 2.5, 4.0], n),
            "site": rng.choice(["north", "east", "south"], n),
            "g": g.astype(float),  # whole numbers stored as floats: levels "0", "1", ...
            "h": h,
            "w": rng.uniform(0.5, 2, n),
        }
    )
    return df


def parquet(df: pd.DataFrame, path, parts: int = 4):
    path.mkdir()
    size = -(-len(df) // parts)
    for i in range(parts):
        df.iloc[i * size : (i + 1) * size].to_parquet(path / f"p{i}.parquet")
    return ParquetSource(path, batch_rows=700)


def both(formula, df, source, weights=None, reml=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = build_model_frame(formula, df, weights=weights)
        fit = profiled_of(frame).fit(reml=reml)
        large = fit_large(formula, source, REML=reml, weights=weights, progress=False)
    return frame, fit, large


MODELS = [
    "y ~ x + site + (1 | g)",
    "y ~ x * site + factor(dose) + (x | g) + (1 | h)",
    "y ~ log(dose) + (1 | site:h) + (0 + x | g)",
    "y ~ x + offset(x) + (1 | g/h)",
]


@pytest.mark.parametrize("formula", MODELS)
def test_same_as_in_memory(formula, tmp_path):
    df = small()
    frame, fit, large = both(formula, df, parquet(df, tmp_path / "d"))
    assert large.frame.fixed_names == frame.fixed_names
    assert [t.names for t in large.frame.terms] == [t.names for t in frame.terms]
    assert large.engine_fit.logLik == pytest.approx(fit.logLik, abs=1e-6)
    np.testing.assert_allclose(large.engine_fit.beta, fit.beta, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(large.engine_fit.theta, fit.theta, atol=1e-4)


def test_weights_and_ml(tmp_path):
    df = small()
    frame, fit, large = both("y ~ x + (1 | g)", df, parquet(df, tmp_path / "d"), "w", False)
    assert large.frame.has_weights and large.frame.weights is None
    assert large.engine_fit.logLik == pytest.approx(fit.logLik, abs=1e-6)
    np.testing.assert_allclose(large.engine_fit.beta, fit.beta, rtol=1e-6)


def test_missing_rows_are_dropped_and_counted(tmp_path):
    df = small()
    df.loc[[1, 2, 3], "x"] = np.nan
    df.loc[[3, 50], "site"] = None
    df.loc[7, "unused"] = 1.0  # a column the formula does not use is not read
    with pytest.warns(UserWarning, match=r"dropped 4 of 4000 rows .*x \(3\), site \(2\)"):
        large = fit_large("y ~ x + site + (1 | g)", parquet(df, tmp_path / "d"), progress=False)
    assert large.frame.n == 3996 and large.frame.n_dropped == 4


def test_levels_in_r_order(tmp_path):
    df = small()
    large = fit_large("y ~ x + (1 | g) + (1 | h)", parquet(df, tmp_path / "d"), progress=False)
    by_group = {t.group: t.levels for t in large.frame.terms}
    assert by_group["g"][:3] == ("0", "1", "2")  # numbers sort as numbers, floats as "0"
    assert by_group["h"] == tuple(str(i) for i in range(12))


def test_lazy_frame_has_no_rows(tmp_path):
    df = small()
    large = fit_large("y ~ x + site + (1 | g)", parquet(df, tmp_path / "d"), progress=False)
    f = large.frame
    assert isinstance(f, LazyModelFrame) and f.lazy
    assert f.data is None and f.y is None and f.X is None and f.offset is None
    assert all(t.codes is None and t.Z is None for t in f.terms)
    assert f.p == 4 and f.n == 4000
    with pytest.raises(RowsNotInMemoryError, match="beyond memory"):
        crossprods_with_response(f, np.zeros(3))
    assert issubclass(RowsNotInMemoryError, Lme2smError)


def test_rank_deficient_columns_are_dropped_as_in_memory(tmp_path):
    df = small()
    df["x2"] = 2 * df["x"]
    formula = "y ~ x + x2 + site + (1 | g)"
    with pytest.warns(UserWarning, match=r"dropping 1 column / coefficient \(x2\)"):
        large = fit_large(formula, parquet(df, tmp_path / "d"), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = build_model_frame(formula, df)
    assert large.frame.fixed_names == frame.fixed_names
    assert large.frame.dropped_fixed == ("x2",)


def test_kept_columns_from_the_gram_matrix():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    X = np.column_stack([X[:, 0], X[:, 1], X[:, 0] - X[:, 1], X[:, 2], np.zeros(200), X[:, 3]])
    assert kept_columns_gram(X.T @ X) == kept_columns(X) == [0, 1, 3, 5]


def test_refusals(tmp_path):
    df = small()
    src = parquet(df, tmp_path / "d")
    with pytest.raises(FormulaError, match="learn from all rows"):
        fit_large("y ~ scale(x) + (1 | g)", src, progress=False)
    with pytest.raises(DataError, match="did you mean"):
        fit_large("y ~ xx + (1 | g)", src, progress=False)
    with pytest.raises(DataError, match="name of a column"):
        fit_large("y ~ x + (1 | g)", src, weights=np.ones(4000), progress=False)
    with pytest.raises(DataError, match="only 1 level"):
        fit_large("y ~ x + (1 | one)", parquet(df.assign(one="a"), tmp_path / "e"))
    with pytest.raises(DataError, match="no Parquet files"):
        as_source(tmp_path / "nothing-here")
    with pytest.raises(DataError, match="must be a pandas DataFrame, a Dask DataFrame"):
        as_source([1, 2, 3])
    with pytest.raises(DataError, match=r"use lme2sm.lmer\(formula, data\)"):
        as_source(df)


def test_missing_extra_names_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r'pip install "lme2sm\[parquet\]"') as info:
        as_source(tmp_path)
    assert isinstance(info.value, Lme2smError)
