"""emmeans() on a one-factor lmer against R's emmeans (tests/fixtures/emm_sweep.json from
tools/make_emm_sweep.R), Kenward-Roger and Satterthwaite df."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import lme2sm
from lme2sm import datasets
from lme2sm.inference.emmeans import emmeans

REF = json.loads((Path(__file__).parent / "fixtures" / "emm_sweep.json").read_text())


@pytest.mark.parametrize(
    ("ddf", "key"),
    [("Kenward-Roger", "dayf_kenward-roger"), ("Satterthwaite", "dayf_satterthwaite")],
)
def test_one_factor_emmeans_match_r(ddf: str, key: str) -> None:
    d = datasets.load("sleepstudy")
    d["Dayf"] = np.where(d["Days"] < 5, "early", "late")
    m = lme2sm.lmer("Reaction ~ Dayf + (1 | Subject)", d)
    table = emmeans(m, "Dayf", ddf=ddf).table
    for i, row in enumerate(REF[key]):
        for col, rtol in [("emmean", 1e-7), ("SE", 1e-6), ("df", 1e-6), ("lower.CL", 1e-7)]:
            assert table[col].iloc[i] == pytest.approx(row[col], rel=rtol)
