"""lme4's findbars/expandDoubleVerts/slash expansion, as RandomTerm objects."""

from __future__ import annotations

import pytest

from lme2sm.formula import parse
from lme2sm.formula.expand import expand_slash, nobars
from lme2sm.formula.syntax import parse_syntax

# formula -> [(group, group_factors, intercept, effects)] in lme4's order
RANDOM = {
    "y ~ (x | g)": [("g", ("g",), True, ("x",))],
    "y ~ (0 + x | g)": [("g", ("g",), False, ("x",))],
    "y ~ (x - 1 | g)": [("g", ("g",), False, ("x",))],
    "y ~ (x*z | g)": [("g", ("g",), True, ("x", "z", "x:z"))],
    "y ~ (x || g)": [("g", ("g",), True, ()), ("g", ("g",), False, ("x",))],
    "y ~ (f || g)": [("g", ("g",), True, ()), ("g", ("g",), False, ("f",))],
    "y ~ (1 | a/b)": [("b:a", ("b", "a"), True, ()), ("a", ("a",), True, ())],
    "y ~ (1 | a/b/c)": [
        ("c:(b:a)", ("c", "b", "a"), True, ()),
        ("b:a", ("b", "a"), True, ()),
        ("a", ("a",), True, ()),
    ],
    "y ~ (1 | a:b)": [("a:b", ("a", "b"), True, ())],
    "y ~ ((1 | g))": [("g", ("g",), True, ())],
    "y ~ (1 | g) + (1 | g)": [("g", ("g",), True, ()), ("g", ("g",), True, ())],
    "y ~ (1 | `my group`)": [("my group", ("my group",), True, ())],
    "y ~ (1 | block/plot)": [
        ("plot:block", ("plot", "block"), True, ()),
        ("block", ("block",), True, ()),
    ],
}


@pytest.mark.parametrize("formula", RANDOM)
def test_random_terms(formula):
    got = [(t.group, t.group_factors, t.intercept, t.effects) for t in parse(formula).random_terms]
    assert got == RANDOM[formula]


def test_double_vert_with_nesting_gives_four_terms():
    terms = parse("y ~ (x || a/b)").random_terms
    assert [t.text for t in terms] == ["1 | b:a", "1 | a", "0 + x | b:a", "0 + x | a"]


def test_terms_remember_their_source():
    formula = "y ~ x + (x || g)"
    for term in parse(formula).random_terms:
        assert term.source == "(x || g)"
        assert formula[slice(*term.span)] == term.source


def test_backticked_group_text():
    term = parse("y ~ (1 | `my group`)").random_terms[0]
    assert term.group == "my group"
    assert term.text == "1 | `my group`"


def test_expand_slash_deeper():
    groups = [g for g, _ in expand_slash(parse_syntax("a/b/c/d"))]
    assert groups == ["d:(c:(b:a))", "c:(b:a)", "b:a", "a"]


@pytest.mark.parametrize(
    "rhs, left",
    [("x + (1 | g)", "x"), ("(1 | g) + x", "x"), ("(1 | g)", None), ("(x + (1 | g))", "(x)")],
)
def test_nobars(rhs, left):
    result = nobars(parse_syntax(rhs))
    assert (result.label if result is not None else None) == left
