"""parse() against lme4's own findbars/expandDoubleVerts/nobars/terms (committed JSON).

Regenerate the fixture with ``Rscript tools/parse_fixtures.R``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lme2sm.formula import parse

FIXTURE = Path(__file__).parents[1] / "fixtures" / "parse_lme4.json"
CASES = json.loads(FIXTURE.read_text())["cases"]


def test_fixture_covers_enough_formulas():
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c["formula"] for c in CASES])
def test_fixed_part_matches_lme4(case):
    parsed = parse(case["formula"])
    assert parsed.response == case["response"]
    assert parsed.fixed == case["fixed"]
    assert list(parsed.fixed_part.labels) == case["fixed_labels"]
    assert parsed.fixed_part.intercept == case["fixed_intercept"]
    assert [o.label for o in parsed.fixed_part.offsets] == case["offsets"]


@pytest.mark.parametrize("case", CASES, ids=[c["formula"] for c in CASES])
def test_random_terms_match_lme4_term_by_term(case):
    parsed = parse(case["formula"])
    got = [
        {
            "text": t.text,
            "lhs": t.lhs_text,
            "group": t.group,
            "effects": list(t.effects),
            "intercept": t.intercept,
        }
        for t in parsed.random_terms
    ]
    assert got == case["random"]
