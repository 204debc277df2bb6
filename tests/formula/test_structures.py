"""glmmTMB's covariance-structure wrappers in the parser (lme2sm/formula/structures.py)."""

from __future__ import annotations

import pytest

from lme2sm import FormulaError
from lme2sm.formula import expanded_text, parse

# formula -> (term text, structure) per random term, in lme4's findbars order
PARSES = {
    "y ~ x + us(1 + x | g)": [("1 + x | g", "us")],
    "y ~ x + diag(x | g)": [("x | g", "diag")],
    "y ~ x + cs(0 + f | g) + (1 | h)": [("0 + f | g", "cs"), ("1 | h", None)],
    "y ~ x + (ar1(0 + t | g))": [("0 + t | g", "ar1")],
    "y ~ x + hetcs(x | g)": [("x | g", "cs")],
    "y ~ diag(x | a/b)": [("x | b:a", "diag"), ("x | a", "diag")],
    "y ~ x + (1 | a) + diag(x | a:b)": [("1 | a", None), ("x | a:b", "diag")],
    "y ~ (x || g)": [("1 | g", None), ("0 + x | g", None)],
}


@pytest.mark.parametrize("formula", PARSES)
def test_structure_recorded_on_each_term(formula):
    terms = parse(formula).random_terms
    assert [(t.text, t.structure) for t in terms] == PARSES[formula]
    assert [t.covariance for t in terms] == [s or "us" for _, s in PARSES[formula]]


def test_expanded_text_writes_the_wrappers():
    assert expanded_text(parse("y ~ x + diag(x | a/b)")) == "y ~ x + diag(x | b:a) + diag(x | a)"
    assert expanded_text(parse("y ~ cs(x | g) + (1 | h)")) == "y ~ cs(x | g) + (1 | h)"
    assert parse("y ~ x + us(x | g)").random_terms[0].term_text == "us(x | g)"


def test_plain_terms_unchanged():
    plain = parse("y ~ x + (x | g)").random_terms[0]
    assert plain.structure is None and plain.term_text == "(x | g)"
    assert plain == parse("y ~ x + (x | g)").random_terms[0]
    assert plain != parse("y ~ x + diag(x | g)").random_terms[0]


# marked formula -> words the message must contain (the span is between « and »)
ERRORS = {
    "y ~ x + ar1(«x»)": ["ar1() wraps a random-effects term", "ar1(x | g)"],
    "y ~ x + «cs()»": ["cs() is empty", "cs(x | g)"],
    "y ~ x + «foo»(x | g)": ["foo() is not a covariance structure", "diag()"],
    "y ~ x + «toep»(x | g)": ["glmmTMB covariance structure lme2sm does not fit"],
    "y ~ x + «homcs»(x | g)": ["does not fit"],
    "y ~ x * «diag(1 | g)»": ["cannot stand there", "y ~ x + diag(1 | g)"],
    "y ~ diag(«x») + (1 | g)": ["diag(x | g)"],
    "y ~ us(x «||» g)": ["|| cannot be inside us()", "diag(x | g)", "(x || g)"],
    "y ~ log(«diag(1 | g)»)": ["cannot stand inside log()"],
    "y ~ I(«cs(x | g)»)": ["cannot stand inside I()"],
    "«diag(1 | g)» ~ x": ["cannot stand there"],
    "y ~ x - «diag(1 | g)»": ["cannot be subtracted"],
    "y ~ («diag(1 | g)» | h)": ["cannot stand there"],
    "y ~ cs(x | g, «2»)": ["no options"],
    "y ~ diag(«k = 1»)": ["not a named argument"],
    "y ~ log(x«|»g)": ["cannot be inside log()"],
}


def unmark(marked: str) -> tuple[str, tuple[int, int]]:
    start = marked.index("«")
    end = marked.index("»") - 1
    return marked.replace("«", "").replace("»", ""), (start, end)


@pytest.mark.parametrize("marked", ERRORS)
def test_malformed_wrapper_caret(marked):
    formula, span = unmark(marked)
    with pytest.raises(FormulaError) as info:
        parse(formula)
    assert info.value.span == span, str(info.value)
    for words in ERRORS[marked]:
        assert words in info.value.message
    assert "^" in str(info.value)
