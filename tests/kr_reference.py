"""lmerTest / pbkrtest / emmeans reference numbers (``tools/make_kr_reference.R``) and
the fixture models, fitted once per test session."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

import lme2sm
from lme2sm.datasets import load
from lme2sm.engine.frame_input import profiled_of
from lme2sm.frame.model_frame import build_model_frame
from lme2sm.models.lmer_result import LmerResult

REFERENCE = Path(__file__).parent / "fixtures" / "kr_reference.json"
DATASETS = {
    "oats": "Oats",
    "machines": "Machines",
    "machines2": "Machines",
    "sleep": "sleepstudy",
    "cake": "cake",
    "orth": "Orthodont",
}
WELL_DETERMINED = ["oats", "machines2", "sleep", "cake"]
"""Models whose REML optimum lme4 and lme2sm reach to ~1e-7 in theta. For Machines'
(Machine | Worker) and Orthodont's (age | Subject) the criterion is flat: lme2sm's
optimum is lower than lme4's (by 1e-6 and 6e-6) and the standard errors move by
1e-4 to 3e-4 with it; they are compared at lme4's theta."""


@cache
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


def r_data(name: str) -> pd.DataFrame:
    ref = reference()[name]
    data = load(DATASETS.get(name, "cake"))
    if name.startswith("cake"):
        data = data.assign(tf=data["temp"].astype(str))
    drop = ref.get("drop")
    if drop:
        data = data.drop(index=np.asarray(drop) - 1)
    return data


@cache
def r_model(name: str, at: str = "lme4") -> LmerResult:
    """The fixture model, at lme2sm's optimum (``"own"``) or at lme4's theta (``"lme4"``)."""
    ref = reference()[name]
    formula = ref["formula"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if at == "own":
            return lme2sm.lmer(formula, r_data(name))
        frame = build_model_frame(formula, r_data(name))
        profiled = profiled_of(frame)
        record = profiled.record_at(np.atleast_1d(np.asarray(ref["theta"], dtype=float)), True)
        return LmerResult(frame, record, profiled, True)


def r_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).set_index("_row")


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.abs(b)))


# --------------------------------------------- tests/fixtures/kr (make_kr_fixtures.R)

KR_FIXTURES = Path(__file__).parent / "fixtures" / "kr"
KR_NAMES = sorted(p.stem for p in KR_FIXTURES.glob("*.json") if not p.stem.startswith("_"))
ROOT = Path(__file__).resolve().parents[1]


@cache
def kr_fixture(name: str) -> dict:
    return json.loads((KR_FIXTURES / f"{name}.json").read_text())


@cache
def kr_data(name: str) -> pd.DataFrame:
    """The fixture's data as R read it: its factor columns as strings."""
    fx = kr_fixture(name)
    return pd.read_csv(ROOT / fx["data_path"], dtype={f: str for f in fx["factors"]})


@cache
def kr_model(name: str, at: str = "lme4") -> LmerResult:
    """A tests/fixtures/kr model at lme4's theta (``"lme4"``) or lme2sm's optimum."""
    fx = kr_fixture(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if at == "own":
            return lme2sm.lmer(fx["formula"], kr_data(name))
        frame = build_model_frame(fx["formula"], kr_data(name))
        profiled = profiled_of(frame)
        theta = np.asarray(list(fx["theta"].values()), dtype=float)
        return LmerResult(frame, profiled.record_at(theta, True), profiled, True)
