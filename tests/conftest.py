"""Shared test helpers: lme4's answers (committed fixtures) and one fit per fixture model."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import lme2sm
from lme2sm.datasets import load

FIXTURES = Path(__file__).parent / "fixtures" / "models"
MODEL_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json") if not p.stem.startswith("_"))


@cache
def lme4_answer(name: str) -> dict:
    """lme4's answers for one fixture model (written by tools/make_fixtures.R)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


@cache
def fitted_model(name: str) -> lme2sm.LmerResult:
    """lme2sm's fit of a fixture model, made once per test session."""
    fx = lme4_answer(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lme2sm.lmer(fx["formula"], load(fx["dataset"]), REML=fx["REML"])
