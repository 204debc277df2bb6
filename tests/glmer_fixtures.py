"""Loading the glmer fixtures (tools/make_glmer_fixtures.R) and fitting them with lme2sm."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "glmer"


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json") if not p.stem.startswith("_"))


@cache
def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@cache
def data(path: str, factors: tuple[str, ...]) -> pd.DataFrame:
    """The CSV as R read it: the fixture's factor columns as text."""
    return pd.read_csv(ROOT / path, dtype={f: str for f in factors})


@cache
def fitted(name: str):
    import warnings

    from lme2sm import glmer

    fx = load(name)
    family = fx["family"] if fx["link"] in ("logit", "log") else f"{fx['family']}({fx['link']})"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return glmer(
            fx["formula"],
            data(fx["data_path"], tuple(fx.get("factors") or ())),
            family,
            weights=fx["weights"],
            nAGQ=fx["nAGQ"],
        )
