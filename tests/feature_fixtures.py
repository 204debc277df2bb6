"""Loading issue 22's reference fixtures (tools/make_reporting_fixtures.R,
tools/make_glmer_gamma_fixtures.R) and fitting their models with lme2sm."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def names(kind: str) -> list[str]:
    return sorted(p.stem for p in (FIXTURES / kind).glob("*.json") if not p.stem.startswith("_"))


@cache
def load(kind: str, name: str) -> dict:
    return json.loads((FIXTURES / kind / f"{name}.json").read_text())


@cache
def data(path: str, factors: tuple[str, ...]) -> pd.DataFrame:
    """The CSV as R read it: the fixture's factor columns as text."""
    return pd.read_csv(ROOT / path, dtype={f: str for f in factors}, keep_default_na=True)


def family_text(fx: dict) -> str:
    default = {
        "binomial": "logit",
        "poisson": "log",
        "Gamma": "inverse",
        "inverse.gaussian": "1/mu^2",
    }
    if fx["link"] == default.get(fx["family"]):
        return fx["family"]
    return f"{fx['family']}(link='{fx['link']}')"


@cache
def fitted(kind: str, name: str):
    """lme2sm's fit of the fixture's model (lmer or glmer)."""
    from lme2sm import glmer, lmer

    fx = load(kind, name)
    df = data(fx["data_path"], tuple(fx["factors"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fx.get("kind", "lmer") == "lmer" and fx.get("family", "gaussian") == "gaussian":
            return lmer(fx["formula"], df, REML=fx["REML"])
        return glmer(fx["formula"], df, family_text(fx))


def rel(a, b) -> float:
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))
