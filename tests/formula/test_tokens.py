"""Tokenizer: kinds, values and spans."""

from __future__ import annotations

import pytest

from lme2sm import FormulaError
from lme2sm.formula.tokens import tokenize

TEXT_TO_TOKENS = {
    "y ~ x": [("name", "y"), ("op", "~"), ("name", "x")],
    "Sepal.Length ~ np.log(x)": [
        ("name", "Sepal.Length"),
        ("op", "~"),
        ("name", "np.log"),
        ("op", "("),
        ("name", "x"),
        ("op", ")"),
    ],
    "`my var`+.5e-3": [("name", "my var"), ("op", "+"), ("number", ".5e-3")],
    "(x||g)": [("op", "("), ("name", "x"), ("op", "||"), ("name", "g"), ("op", ")")],
    "a %in% b": [("name", "a"), ("op", "%in%"), ("name", "b")],
    "I(x**2L)": [
        ("name", "I"),
        ("op", "("),
        ("name", "x"),
        ("op", "^"),
        ("number", "2L"),
        ("op", ")"),
    ],
    "Q('yield')": [("name", "Q"), ("op", "("), ("string", "yield"), ("op", ")")],
    'C(x, Treatment(reference="b"))': [
        ("name", "C"),
        ("op", "("),
        ("name", "x"),
        ("op", ","),
        ("name", "Treatment"),
        ("op", "("),
        ("name", "reference"),
        ("op", "="),
        ("string", "b"),
        ("op", ")"),
        ("op", ")"),
    ],
    "`a\\`b`": [("name", "a`b")],
}


@pytest.mark.parametrize("text", TEXT_TO_TOKENS)
def test_tokens(text):
    tokens = tokenize(text)
    assert tokens[-1].kind == "end"
    assert [(t.kind, t.value) for t in tokens[:-1]] == TEXT_TO_TOKENS[text]


@pytest.mark.parametrize("text", TEXT_TO_TOKENS)
def test_spans_cover_the_token_text(text):
    for token in tokenize(text)[:-1]:
        start, end = token.span
        assert text[start:end] == token.text


@pytest.mark.parametrize(
    "text, span",
    [
        ("y ~ x $ z", (6, 7)),
        ("y ~ `x", (4, 6)),
        ("y ~ 'x", (4, 6)),
        ("y ~ 2x", (4, 6)),
        ("y ~ a %o% b", (6, 9)),
    ],
)
def test_bad_characters(text, span):
    with pytest.raises(FormulaError) as info:
        tokenize(text)
    assert info.value.span == span
