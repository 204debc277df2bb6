"""Pickled fits of data beyond memory (Dask, polars, Parquet) load in a fresh process.

Before #23's round 2 every such fit raised patsy's raw ``NotImplementedError`` ("pickling
not yet supported") or ``TypeError: cannot pickle 'module' object`` from
``pickle.dumps``: the frame kept patsy's DesignInfos and the sources kept the modules
they read with. Loaded, the result must give the same numbers, to the last bit.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lme2sm

ROOT = Path(__file__).resolve().parents[1]

VALUES = """
def values(fitted):
    # a Dask Series, a polars LazyFrame or (Parquet) batches of pandas Series
    if hasattr(fitted, "__next__"):
        import pandas
        fitted = pandas.concat(list(fitted))
    if hasattr(fitted, "collect"):
        fitted = fitted.collect().to_series()
    if hasattr(fitted, "compute"):
        fitted = fitted.compute()
    return [float(v) for v in fitted.to_numpy().ravel()]
"""
exec(VALUES)

LOAD = (
    VALUES
    + """
import json, pickle, sys, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd
m, newdata = pickle.load(sys.stdin.buffer)
out = {
    "fixef": m.fixef().tolist(), "logLik": float(m.logLik()),
    "vcov": m.VarCorr()["vcov"].tolist(), "summary": str(m.summary()),
    "predict": np.asarray(m.predict(newdata), float).tolist(),
    "ranef": m.ranef()["g"].to_numpy().ravel().tolist(),
    "fitted": values(m.fitted()),
}
print(json.dumps(out))
"""
)


def _data(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(23)
    g = rng.choice([f"s{i}" for i in range(9)], n)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(size=n) + pd.Series(g).str[1:].astype(int).to_numpy() * 0.2
    return pd.DataFrame({"y": y, "x": x, "g": g, "h": rng.choice(["p", "q", "r"], n)})


def _source(kind: str, data: pd.DataFrame, tmp_path: Path):
    if kind == "dask":
        dd = pytest.importorskip("dask.dataframe")
        return dd.from_pandas(data, npartitions=3)
    if kind in ("polars", "polars lazy"):
        pl = pytest.importorskip("polars")
        frame = pl.from_pandas(data)
        return frame.lazy() if kind == "polars lazy" else frame
    pytest.importorskip("pyarrow")
    data.iloc[:150].to_parquet(tmp_path / "a.parquet")
    data.iloc[150:].to_parquet(tmp_path / "b.parquet")
    return str(tmp_path / "*.parquet")


def _describe(m, newdata) -> dict:
    return {
        "fixef": m.fixef().tolist(),
        "logLik": float(m.logLik()),
        "vcov": m.VarCorr()["vcov"].tolist(),
        "summary": str(m.summary()),
        "predict": np.asarray(m.predict(newdata), float).tolist(),
        "ranef": m.ranef()["g"].to_numpy().ravel().tolist(),
        "fitted": values(m.fitted()),  # noqa: F821 (defined by exec(VALUES))
    }


@pytest.mark.parametrize("kind", ["dask", "polars", "polars lazy", "parquet"])
def test_large_fits_pickle_and_load_in_a_fresh_process(kind, tmp_path):
    data = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("y ~ x + h + (x | g)", _source(kind, data, tmp_path), progress=False)
        newdata = data.iloc[:7].assign(g=["s0", "s1", "s2", "s3", "new", "s5", "s6"])
        newdata = newdata.assign(g=newdata["g"].where(newdata["g"] != "new", "s8"))
        here = _describe(m, newdata)
    blob = pickle.dumps((m, newdata))
    done = subprocess.run(
        [sys.executable, "-c", LOAD],
        input=blob,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    there = json.loads(done.stdout)
    assert there["summary"] == here["summary"]
    for key in ("fixef", "logLik", "vcov", "predict", "ranef", "fitted"):
        np.testing.assert_array_equal(np.array(there[key]), np.array(here[key]), err_msg=key)
    # and the same as the in-memory fit of the same rows, to the precision of the engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = lme2sm.lmer("y ~ x + h + (x | g)", data)
    np.testing.assert_allclose(here["fixef"], full.fixef().to_numpy(), rtol=1e-6)
    assert abs(here["logLik"] - float(full.logLik())) < 1e-6
