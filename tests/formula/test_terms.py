"""R's terms() algebra on one right-hand side (expected values checked in R)."""

from __future__ import annotations

import pytest

from lme2sm.formula.syntax import parse_syntax
from lme2sm.formula.terms import linear_part

# right-hand side -> (term labels, intercept)
RHS_TO_TERMS = {
    "x": (["x"], True),
    "1": ([], True),
    "0": ([], False),
    "0 + x": (["x"], False),
    "x - 1": (["x"], False),
    "-1 + x": (["x"], False),
    "x + 0 + 1": (["x"], True),
    "x - 0": (["x"], True),
    "a*b": (["a", "b", "a:b"], True),
    "a*b*c": (["a", "b", "c", "a:b", "a:c", "b:c", "a:b:c"], True),
    "(a + b + c)^2": (["a", "b", "c", "a:b", "a:c", "b:c"], True),
    "(a+b)^2 - a:b": (["a", "b"], True),
    "x^2": (["x"], True),
    "a/b": (["a", "a:b"], True),
    "a/b/c": (["a", "a:b", "a:b:c"], True),
    "(a + b)/c": (["a", "b", "a:b:c"], True),
    "a/(b + c)": (["a", "a:b", "a:c"], True),
    "a %in% b": (["a:b"], True),
    "b:a + a": (["a", "b:a"], True),
    "a + b:a": (["a", "a:b"], True),
    "x + x + x:z + z:x": (["x", "x:z"], True),
    "a*b - a": (["b", "a:b"], True),
    "(a + b)*(c + d)": (["a", "b", "c", "d", "a:c", "a:d", "b:c", "b:d"], True),
    "log(x) + log( x ) + I(x^2)": (["log(x)", "I(x^2)"], True),
    "factor(f):x": (["factor(f):x"], True),
    "x + offset(o)": (["x"], True),
    "x:offset(o) + z": (["z"], True),
    "-x": ([], True),
    "(x)": (["x"], True),
}


@pytest.mark.parametrize("rhs", RHS_TO_TERMS)
def test_terms(rhs):
    part = linear_part(parse_syntax(rhs))
    assert (list(part.labels), part.intercept) == RHS_TO_TERMS[rhs]


def test_response_comes_first_in_variable_order():
    tree = parse_syntax("y ~ x:y")
    assert linear_part(tree.right, tree.left).labels == ("y:x",)


def test_offsets_in_variable_order():
    part = linear_part(parse_syntax("offset(log(w)) + x + offset(o)"))
    assert [o.label for o in part.offsets] == ["log(w)", "o"]
    assert part.text == "x + offset(log(w)) + offset(o)"


def test_no_rhs_means_intercept_only():
    assert linear_part(None).text == "1"
