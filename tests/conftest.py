"""Shared test helpers: lme4's answers (committed fixtures) and one fit per fixture model."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import pandas as pd

import lme2sm
from lme2sm.datasets import load

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "models"
EXTRA = Path(__file__).parent / "fixtures" / "lmer_extra"
MODEL_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json") if not p.stem.startswith("_"))
EXTRA_NAMES = sorted(p.stem for p in EXTRA.glob("*.json") if not p.stem.startswith("_"))
ALL_NAMES = MODEL_NAMES + EXTRA_NAMES


@cache
def lme4_answer(name: str) -> dict:
    """lme4's answers for one fixture model (written by tools/make_fixtures.R)."""
    path = FIXTURES / f"{name}.json"
    if not path.exists():
        path = EXTRA / f"{name}.json"
    return json.loads(path.read_text())


def fixture_data(fx: dict) -> pd.DataFrame:
    """The data a fixture was fitted on, read as lme2sm.datasets reads bundled data."""
    path = fx.get("data_path")
    if path and (ROOT / path).exists():
        factors = fx.get("factors") or []
        return pd.read_csv(ROOT / path, dtype={f: str for f in factors}, keep_default_na=True)
    return load(fx["dataset"])


@cache
def fitted_model(name: str) -> lme2sm.LmerResult:
    """lme2sm's fit of a fixture model, made once per test session."""
    fx = lme4_answer(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lme2sm.lmer(
            fx["formula"], fixture_data(fx), REML=fx["REML"], weights=fx.get("weights")
        )
