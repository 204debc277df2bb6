"""Fuzzing lmer on data beyond memory: Parquet paths, Dask and polars frames.

* **Parquet paths**: a missing file, an empty directory, a glob that matches nothing, a
  directory whose files' schemas disagree (other columns, other types of a column), a
  file that is not Parquet (CSV text, random bytes, empty) named ``.parquet``, a
  zero-row file, files of hostile frames (the names and dtypes of ``frames()``).
* **Dask and polars frames** made from the hostile frames (where dask and polars can
  hold them: duplicated names, complex numbers and mixed objects are refused by
  polars/pyarrow themselves and skipped).

The property is the in-memory one (``fuzz_strategies.only_lme2sm_errors``): lmer fits
or raises an lme2sm error. Each test is skipped when its package is not installed.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fuzz_strategies import FORMULAS, budget, formula_for, frames, only_lme2sm_errors
from hypothesis import assume, event, given
from hypothesis import strategies as st

import lme2sm

GAUSSIAN = ["float", "int", "bool", "object numbers", "all nan", "inf", "nan some",
            "Float64 NA", "text", "category", "huge", "zero", "string", "Int64 NA"]  # fmt: skip
TEMPLATES = [t for t in FORMULAS if "poly" not in t and "scale" not in t]


def quiet_lmer(formula, source):
    """lmer on a source, its progress lines (stderr) swallowed."""
    with contextlib.redirect_stderr(io.StringIO()):
        return lme2sm.lmer(formula, source)


def _plain(frame: pd.DataFrame) -> pd.DataFrame | None:
    """The frame as pyarrow can store it (None when it cannot: duplicated names, mixed
    objects, complex numbers are refused by pyarrow itself)."""
    if not frame.columns.is_unique:
        return None
    pa = pytest.importorskip("pyarrow")
    try:
        pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        return None
    return frame.reset_index(drop=True)


def _good_frame(n: int = 24) -> pd.DataFrame:
    rng = np.random.default_rng(n)
    return pd.DataFrame(
        {"y": rng.normal(size=n), "x": rng.normal(size=n), "g": [f"g{i % 4}" for i in range(n)]}
    )


def _write_case(root: Path, kind: str, frame: pd.DataFrame | None) -> str:
    """A Parquet path of one hostile kind under ``root``."""
    pq = pytest.importorskip("pyarrow.parquet")
    pa = pytest.importorskip("pyarrow")
    good = _good_frame()
    if kind == "missing":
        return str(root / "nope.parquet")
    if kind == "empty dir":
        (root / "d").mkdir()
        return str(root / "d")
    if kind == "no match":
        return str(root / "*.parquet")
    if kind in ("other columns", "other types"):
        (root / "d").mkdir()
        pq.write_table(pa.Table.from_pandas(good), root / "d" / "a.parquet")
        other = (
            good.rename(columns={"x": "z"})
            if kind == "other columns"
            else good.assign(x=good["x"].astype(str), y=(good["y"] > 0))
        )
        pq.write_table(pa.Table.from_pandas(other), root / "d" / "b.parquet")
        return str(root / "d")
    if kind in ("csv text", "random bytes", "empty file"):
        content = {
            "csv text": good.to_csv(index=False).encode(),
            "random bytes": bytes(np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8)),
            "empty file": b"",
        }[kind]
        (root / "x.parquet").write_bytes(content)
        return str(root / "x.parquet")
    if kind == "junk beside":
        (root / "d").mkdir()
        pq.write_table(pa.Table.from_pandas(good), root / "d" / "a.parquet")
        (root / "d" / "notes.parquet").write_bytes(b"not parquet")
        return str(root / "d")
    if kind == "zero rows":
        pq.write_table(pa.Table.from_pandas(good.iloc[:0]), root / "z.parquet")
        return str(root / "z.parquet")
    assert frame is not None  # "hostile frame": two files of its rows
    (root / "h").mkdir()
    half = len(frame) // 2
    for i, part in enumerate([frame.iloc[:half], frame.iloc[half:]]):
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), root / "h" / f"{i}.parquet"
        )
    return str(root / "h")


PARQUET_KINDS = ["missing", "empty dir", "no match", "other columns", "other types",
                 "csv text", "random bytes", "empty file", "junk beside", "zero rows"]  # fmt: skip


@budget(60)
@given(
    kind=st.sampled_from(PARQUET_KINDS + ["hostile frame"] * 6),
    case=frames(GAUSSIAN),
    template=st.sampled_from(TEMPLATES),
)
def test_parquet_paths(kind, case, template):
    pytest.importorskip("pyarrow")
    frame, names = case
    if kind == "hostile frame":
        frame = _plain(frame)
        assume(frame is not None)
        formula = formula_for(template, names)
    else:
        formula = "y ~ x + (1 | g)"
    event(kind)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write_case(Path(tmp), kind, frame)
        only_lme2sm_errors(lambda: quiet_lmer(formula, path))


@budget(60)
@given(case=frames(GAUSSIAN), template=st.sampled_from(TEMPLATES), lazy=st.booleans())
def test_polars_frames(case, template, lazy):
    pl = pytest.importorskip("polars")
    frame, names = case
    frame = _plain(frame)
    assume(frame is not None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = pl.from_pandas(frame)
    except Exception:  # noqa: BLE001 - what polars itself cannot hold is not lme2sm's
        assume(False)
    source = source.lazy() if lazy else source
    only_lme2sm_errors(lambda: quiet_lmer(formula_for(template, names), source))


@budget(25)
@given(case=frames(GAUSSIAN), template=st.sampled_from(TEMPLATES), parts=st.integers(1, 3))
def test_dask_frames(case, template, parts):
    dd = pytest.importorskip("dask.dataframe")
    frame, names = case
    frame = _plain(frame)
    assume(frame is not None and len(frame) > 0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source = dd.from_pandas(frame, npartitions=parts)
    except Exception:  # noqa: BLE001 - what dask itself cannot hold is not lme2sm's
        assume(False)
    only_lme2sm_errors(lambda: quiet_lmer(formula_for(template, names), source))
