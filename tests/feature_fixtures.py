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


def sweep(kind: str) -> dict[str, dict]:
    """The models of a sweep fixture (``tests/fixtures/<kind>/lme4.json``, written by
    tools/make_<kind>.R), without its ``_session`` entry."""
    every = json.loads((FIXTURES / kind / "lme4.json").read_text())
    return {k: v for k, v in every.items() if not k.startswith("_")}


def sweep_data(kind: str, fx: dict) -> pd.DataFrame:
    """A sweep model's CSV with its factors in R's level order (``fx["levels"]``)."""
    frame = pd.read_csv(FIXTURES / kind / fx["data"], keep_default_na=False, na_values=["NA"])
    for column, levels in (fx["levels"] or {}).items():
        levels = levels if isinstance(levels, list) else [levels]
        frame[column] = pd.Categorical(
            frame[column].astype(str), categories=list(map(str, levels))
        )
    return frame
