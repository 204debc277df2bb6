"""lme4's check.conv.hess: "Model is nearly unidentifiable" exactly where lme4 warns it.

lme4 (``checkConv`` -> ``checkHess``, ``tol = 1e-6``): "very large eigenvalue" when the
largest eigenvalue of the Hessian of the deviance times 1e-6 exceeds 1, "large eigenvalue
ratio" when the smallest over the largest is under 1e-6; neither on a singular fit.
Fixtures: tools/make_unidentifiable_fixtures.R (mlmRev's Contraception, sleepstudy with
Days rescaled) and the glmer fixtures (tools/make_glmer_fixtures.R).
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from glmer_fixtures import data as glmer_data
from glmer_fixtures import load as glmer_fixture

import lme2sm
from lme2sm.datasets import load
from lme2sm.engine.hessian_check import LARGE_RATIO, VERY_LARGE, unidentifiable_messages

ROOT = Path(__file__).resolve().parent.parent
CASES = json.loads((ROOT / "tests/fixtures/unidentifiable/cases.json").read_text())


def unidentifiable(messages) -> list[str]:
    return [m for m in messages if m.startswith("Model is nearly unidentifiable")]


@cache
def fitted(name: str):
    """lme2sm's fit of one case and the ConvergenceWarning texts it raised."""
    fx = CASES[name]
    if fx["dataset"] == "sleepstudy":
        d = load("sleepstudy")
        d["Days2"], d["Days3"] = d["Days"] * 1000, d["Days"] * 10000
    else:
        d = pd.read_csv(ROOT / fx["dataset"], dtype={f: str for f in fx["factors"]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if fx["family"] is None:
            m = lme2sm.lmer(fx["formula"], d, REML=fx["REML"])
        else:
            m = lme2sm.glmer(fx["formula"], d, fx["family"])
    texts = [str(w.message) for w in caught if issubclass(w.category, lme2sm.ConvergenceWarning)]
    return m, texts


@pytest.mark.parametrize("name", sorted(CASES))
def test_warned_exactly_where_lme4_warns(name):
    m, texts = fitted(name)
    expected = unidentifiable(CASES[name]["lme4_messages"])
    assert unidentifiable(texts) == expected
    assert unidentifiable(m.messages if hasattr(m, "messages") else texts) == expected
    assert m.isSingular() == CASES[name]["isSingular"]


def test_the_cases_cover_both_messages_and_none():
    seen = {tuple(unidentifiable(fx["lme4_messages"])) for fx in CASES.values()}
    assert seen == {(), (VERY_LARGE,), (VERY_LARGE, LARGE_RATIO)}


def test_contraception_hessian_is_lme4s():
    """The glmer Hessian is over (theta, beta), as lme4's: its largest eigenvalue (the
    age^2 coefficient's curvature, 6.7e6) within 1% of lme4's."""
    m, _ = fitted("contraception")
    ev = np.sort(np.linalg.eigvalsh(m.engine_fit.hessian))[::-1]
    r_ev = np.array(CASES["contraception"]["hessian_eigenvalues"])
    assert len(ev) == len(r_ev) == 8
    assert ev[0] == pytest.approx(r_ev[0], rel=1e-2)
    assert ev[0] * 1e-6 > 1 and ev[-1] / ev[0] > 1e-6


def test_lmer_hessian_is_over_theta():
    m, _ = fitted("sleepstudy_days2_reml")
    idx, _, hess, _ = m.engine_fit.derivatives
    assert list(idx) == [0, 1, 2]
    ev = np.linalg.eigvalsh(hess)
    assert ev.max() * 1e-6 > 1 and ev.min() / ev.max() < 1e-6


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("grouseticks_poisson_raw", (VERY_LARGE, LARGE_RATIO)),
        ("grouseticks_poisson", ()),
        ("cbpp_binomial", ()),
    ],
)
def test_glmer_fixtures_as_lme4(name, expected):
    fx = glmer_fixture(name)
    assert tuple(unidentifiable(";".join(fx["warnings"]).split(";"))) == expected
    d = glmer_data(fx["data_path"], tuple(fx.get("factors") or ()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lme2sm.glmer(fx["formula"], d, fx["family"], weights=fx["weights"], nAGQ=fx["nAGQ"])
    texts = [str(w.message) for w in caught if issubclass(w.category, lme2sm.ConvergenceWarning)]
    assert tuple(unidentifiable(texts)) == expected


def test_rule_at_its_edges():
    assert unidentifiable_messages(np.diag([1.0, 1e6])) == ()  # 1e6 * 1e-6 is not > 1
    assert unidentifiable_messages(np.diag([1.0, 1.01e6])) == (VERY_LARGE, LARGE_RATIO)
    assert unidentifiable_messages(np.diag([2.0, 1.5e6])) == (VERY_LARGE,)
    assert unidentifiable_messages(np.diag([1.5e-6, 2.0])) == (LARGE_RATIO,)
    # lme4's degenerate (a negative eigenvalue) and singular (|ev| < 1e-6) cases: not these
    assert unidentifiable_messages(np.diag([-1.0, 1e7])) == ()
    assert unidentifiable_messages(np.diag([1e-7, 1e7])) == ()
    assert unidentifiable_messages(np.full((2, 2), np.nan)) == ()
    assert unidentifiable_messages(np.zeros((0, 0))) == ()


def test_no_check_on_terms_lme4_does_not_have():
    """An ``ar1`` term's correlation parameter is lme2sm's own, flat far out (the
    Hessian's eigenvalue ratio here is under 1e-6): lme4 has no such term and glmmTMB,
    the fixture's reference, no such check, so no message."""
    fx = json.loads((ROOT / "tests/fixtures/covstruct/cw_ar1_ml.json").read_text())
    d = pd.read_csv(ROOT / fx["data_path"], dtype={f: str for f in fx["factors"]})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = lme2sm.lmer(fx["formula"], d, REML=fx["REML"])
    texts = [str(w.message) for w in caught if issubclass(w.category, lme2sm.ConvergenceWarning)]
    assert unidentifiable(texts) == [] and fx["warnings"] == []
    _, _, hess, _ = m.engine_fit.derivatives
    assert unidentifiable_messages(hess) == (LARGE_RATIO,)
