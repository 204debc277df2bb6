"""lme2sm.lmer against lme4's own answers (fixtures written by tools/make_fixtures.R)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from conftest import fitted_model, lme4_answer

import lme2sm

FIXTURES = Path(__file__).parent / "fixtures" / "models"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json") if not p.stem.startswith("_"))


def fixture(name: str) -> dict:
    return lme4_answer(name)


def fitted(name: str) -> tuple[dict, lme2sm.LmerResult]:
    return lme4_answer(name), fitted_model(name)


def close(a, b, rel=2e-3, abs_=1e-4):
    return np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rel, atol=abs_)


@pytest.mark.parametrize("name", CASES)
def test_loglik_reaches_lme4(name):
    fx, m = fitted(name)
    assert m.logLik() >= fx["logLik"] - 1e-3, (m.logLik(), fx["logLik"])
    assert m.logLik() == pytest.approx(fx["logLik"], abs=0.05)
    assert m.df == fx["df"]
    assert m.AIC() == pytest.approx(fx["AIC"], abs=0.1)
    assert m.BIC() == pytest.approx(fx["BIC"], abs=0.1)
    assert m.nobs == fx["nobs"]


@pytest.mark.parametrize("name", CASES)
def test_fixed_effects_and_se(name):
    fx, m = fitted(name)
    assert list(m.fixef().index) == list(fx["fixef"])
    scale = max(1.0, float(np.max(np.abs(list(fx["fixef"].values())))))
    assert close(m.fixef().to_numpy(), list(fx["fixef"].values()), rel=2e-3, abs_=1e-3 * scale)
    assert close(m.se().to_numpy(), list(fx["se"].values()), rel=1e-2, abs_=1e-4)


@pytest.mark.parametrize("name", CASES)
def test_sigma_and_varcorr(name):
    fx, m = fitted(name)
    assert m.sigma == pytest.approx(fx["sigma"], rel=5e-3)
    vc = m.VarCorr()
    assert list(vc["grp"]) == [r["grp"] for r in fx["varcorr"]]
    assert [v if isinstance(v, str) else None for v in vc["var1"]] == [
        r["var1"] for r in fx["varcorr"]
    ]
    assert [v if isinstance(v, str) else None for v in vc["var2"]] == [
        r["var2"] for r in fx["varcorr"]
    ]
    ref_sd = [r["sdcor"] for r in fx["varcorr"]]
    top = max(abs(x) for x in ref_sd if x is not None)
    assert close(vc["sdcor"].to_numpy(), ref_sd, rel=2e-2, abs_=2e-3 * top + 2e-3), (
        list(vc["sdcor"]),
        ref_sd,
    )


@pytest.mark.parametrize("name", CASES)
def test_ranef_and_ngrps(name):
    fx, m = fitted(name)
    assert dict(m.ngrps()) == fx["ngrps"]
    ranef = m.ranef()
    assert sorted(ranef) == sorted(fx["ranef"])
    for group, ref in fx["ranef"].items():
        ours = ranef[group]
        assert list(ours.columns) == ref["columns"]
        assert [str(x) for x in ours.index] == [str(x) for x in ref["levels"]]
        values = np.asarray(ref["values"], dtype=float)
        spread = max(1e-3, float(np.max(np.abs(values))))
        assert close(ours.to_numpy(), values, rel=2e-2, abs_=2e-2 * spread)


@pytest.mark.parametrize("name", CASES)
def test_singular_and_fitted(name):
    fx, m = fitted(name)
    assert m.isSingular() == fx["isSingular"]
    head = m.fitted().to_numpy()[: len(fx["fitted_head"])]
    assert close(head, fx["fitted_head"], rel=1e-3, abs_=1e-3 * max(1, np.abs(head).max()))


def _numbers(block: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", block)]


@pytest.mark.parametrize("name", CASES)
def test_printed_summary_numbers(name):
    fx, m = fitted(name)
    ours, theirs = m.summary(ddf=None), fx["summary"]
    for head, tail in [("Random effects:", "Number of obs"), ("Fixed effects:", "\n\n")]:
        a = ours.split(head, 1)[1].split(tail, 1)[0]
        b = theirs.split(head, 1)[1].split(tail, 1)[0]
        na, nb = _numbers(a), _numbers(b)
        assert len(na) == len(nb), (a, b)
        assert close(na, nb, rel=2e-2, abs_=1.5e-2), (a, b)

    def obs_line(text: str) -> str:
        return " ".join(text.split("Number of obs", 1)[1].split("\n\n")[0].split())

    assert obs_line(ours) == obs_line(theirs)
