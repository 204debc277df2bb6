"""Hostile characters in formula text, read as R's lexer reads them.

``tests/fixtures/r_tokens.json`` (made by ``tools/make_token_fixtures.R``) holds R's own
verdict on 699 formulas: look-alike and non-ASCII characters (Arabic-Indic, Devanagari
and full-width digits, superscripts, Unicode minus and dashes, no-break and zero-width
spaces, typographic quotes, combining marks, line separators, ...) in names, numbers,
I(), backticks, strings, grouping terms and between tokens; R's number formats; escapes;
comments, line breaks and semicolons. Where R reads a formula, lme2sm reads the same
tokens at the same places (or refuses one of the few things R reads that no model
formula can use); where R refuses one, lme2sm raises a FormulaError at or before the
character R stops at, with the caret under it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lme2sm
from lme2sm import DataError, FormulaError
from lme2sm.formula import parse
from lme2sm.formula.model import r_name
from lme2sm.formula.tokens import tokenize

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "r_tokens.json").read_text("utf-8"))
CASES = FIXTURE["cases"]
KIND = {
    "SYMBOL": "name",
    "SYMBOL_FUNCTION_CALL": "name",
    "SYMBOL_SUB": "name",
    "STR_CONST": "string",
    "NUM_CONST": "number",
}
R_ONLY = ("?", "!", "i")
"""What R reads and lme2sm refuses: R's help and negation operators, complex numbers."""


def _r_column(formula: str, index: int) -> int:
    """R's 1-based column of ``formula[index]`` (R advances a tab to the next multiple of 8)."""
    column = 0
    for char in formula[:index]:
        column = (column + 8) & ~7 if char == "\t" else column + 1
    return column + 1


def _refused_on_purpose(formula: str, error: FormulaError) -> bool:
    start = error.span[0]
    text = formula[start : error.span[1]]
    return formula[start] in "?!" or (text.endswith("i") and "complex number" in error.message)


@pytest.mark.parametrize("case", CASES, ids=[repr(c["formula"]) for c in CASES])
def test_tokens_as_r_reads_them(case):
    formula = case["formula"]
    if not case["ok"]:
        with pytest.raises(FormulaError) as info:
            parse(formula)
        error = info.value
        assert error.formula == formula and error.span is not None
        if "column" in case and case["line"] == 1:
            assert _r_column(formula, error.span[0]) <= case["column"], error.message
        return
    try:
        tokens = tokenize(formula)[:-1]
    except FormulaError as error:
        assert _refused_on_purpose(formula, error), error.message
        return
    expected = [(KIND.get(t["token"], "op"), t["value"]) for t in case["tokens"]]
    expected = [t for t in expected if t != ("op", ";")]  # a final ; ends the text, as in R
    assert [(t.kind, t.text if t.kind == "op" else t.value) for t in tokens] == expected
    for token, r_token in zip(tokens, case["tokens"], strict=False):
        start, end = token.span
        if "\n" in formula[:end]:
            break  # R numbers columns per line
        assert _r_column(formula, start) == r_token["col1"]
        assert _r_column(formula, end - 1) == r_token["col2"]


def test_fixture_covers_both_verdicts():
    assert sum(c["ok"] for c in CASES) > 250 and sum(not c["ok"] for c in CASES) > 350


def _caret_under(error: FormulaError, char: str) -> None:
    """The caret line of ``error`` starts under the (shown) offending character."""
    shown, caret = (line[4:] for line in str(error).split("\n")[-2:])
    start = error.span[0]
    assert error.formula[:start].isascii()  # one column per character before it
    assert caret.index("^") == start
    assert shown[start:].startswith((char, f"<U+{ord(char):04X}>"))


# (formula, the offending character, words of the message)
REFUSED = [
    ("y ~ x + 1\u0662", "\u0662", "ARABIC-INDIC DIGIT TWO"),  # a number with a foreign digit
    ("y ~ I(x^2\u0968) + (1 | g)", "\u0968", "DEVANAGARI DIGIT TWO"),
    ("y ~ x + (1 | g) + 1\uff12", "\uff12", "FULLWIDTH DIGIT TWO"),
    ("y ~ x\u00b2", "\u00b2", "write ^2"),
    ("y ~ I(x\u00b2) + (1 | g)", "\u00b2", "superscript"),
    ("y ~ x + (1 | g\u00b2)", "\u00b2", "superscript"),
    ("y ~ x \u2212 1", "\u2212", "write -"),
    ("y ~ x + (0 \u2013 1 | g)", "\u2013", "write -"),
    ("y ~ x\u00a0+ z", "\u00a0", "no-break space"),
    ("y ~ x\u202f+ (1 | g)", "\u202f", "no-break space"),
    ("y ~ x\u200b + (1 | g)", "\u200b", "invisible"),
    ("y ~ x + (1 |\u200dg)", "\u200d", "invisible"),
    ("\ufeffy ~ x", "\ufeff", "invisible"),
    ("y ~ \u201cx\u201d", "\u201c", 'write "'),
    ("y ~ Q(\u2018x\u2019)", "\u2018", "write '"),
    ("y ~ e\u0301 + (1 | g)", "\u0301", "combining mark"),
    ("y ~ x + (1 | g\u0301)", "\u0301", "combining mark"),
    ("y ~ x\uff0bz", "\uff0b", "write +"),
    ("y \uff5e x", "\uff5e", "write ~"),
    ("y ~ x\u2028+ z", "\u2028", "line break"),
    ("y ~ x\r\n+ z", "\r", "line break"),
    ("y ~ x\v+ z", "\v", "line break"),
    ("y ~ \u2460", "\u2460", "looks like '1'"),
    ("y ~ \u00bd", "\u00bd", "0-9"),
]


@pytest.mark.parametrize("formula, char, words", REFUSED, ids=[repr(r[0]) for r in REFUSED])
def test_refused_with_a_caret_under_the_character(formula, char, words):
    with pytest.raises(FormulaError) as info:
        parse(formula)
    error = info.value
    assert formula[error.span[0]] == char or char in formula[error.span[0] : error.span[1]]
    assert words in error.message
    if formula[error.span[0]] == char and error.span[1] == error.span[0] + 1:
        _caret_under(error, char)


# R (UTF-8 locale, Linux) reads these characters as letters: names, never numbers
NAMES = [
    ("y ~ x\u0662 + (1 | g)", "x\u0662"),
    ("y ~ I(x^\u0662) + (1 | g)", "\u0662"),
    ("y ~ x + (1 | g) + \u0661", "\u0661"),
    ("y ~ \u0968x + (1 | g)", "\u0968x"),
    ("y ~ x\uff12 + (1 | g)", "x\uff12"),
    ("y ~ \u0915\u093f + (1 | g)", "\u0915\u093f"),  # Devanagari with a vowel sign
    ("y ~ \u216b + (1 | g)", "\u216b"),  # ROMAN NUMERAL TWELVE is a letter
    ("y ~ \U0001d465 + (1 | g)", "\U0001d465"),  # MATHEMATICAL ITALIC SMALL X
    ("y ~ .x2 + (1 | g)", ".x2"),
    ("y ~ ..2 + (1 | g)", "..2"),
]


@pytest.mark.parametrize("formula, name", NAMES, ids=[repr(n[0]) for n in NAMES])
def test_non_ascii_digits_and_letters_are_names(formula, name):
    parsed = parse(formula)
    assert name in parsed.fixed_part.variables()
    assert r_name(name) == name  # R deparses them bare too


def test_non_ascii_digit_is_a_column_in_a_fit():
    rng = np.random.default_rng(5)
    data = pd.DataFrame(
        {"y": rng.normal(size=40), "x": rng.normal(size=40), "g": np.repeat(list("abcd"), 10)}
    )
    data["\u0662"] = rng.normal(size=40)
    model = lme2sm.lmer("y ~ x + \u0662 + (1 | g)", data)
    assert list(model.fixef().index) == ["(Intercept)", "x", "\u0662"]
    with pytest.raises(DataError, match="U\\+0661 ARABIC-INDIC DIGIT ONE.*is a letter to R"):
        lme2sm.lmer("y ~ I(x^\u0661) + (1 | g)", data)


BACKTICKED = [
    "x\u00b2",
    "x \u2212 1",
    "a\u00a0b",
    "z\u200bw",
    "\u201cq\u201d",
    "e\u0301",
    "1\u0662",
    "2x",
    "_x",
    "x\tz",
    "a#b",
    "a;b",
]


@pytest.mark.parametrize("name", BACKTICKED)
def test_anything_goes_in_backticks(name):
    parsed = parse(f"y ~ `{name}` + (1 | `g {name}`)")
    assert parsed.fixed_part.variables() == (name,)
    assert parsed.random_terms[0].group == f"g {name}"


@pytest.mark.parametrize(
    "formula, value",
    [
        ("y ~ `a\\`b`", "a`b"),
        ("y ~ `a\\x41b`", "aAb"),
        ("y ~ `a\\101b`", "aAb"),
        ("y ~ `a\\tb`", "a\tb"),
        ("y ~ `a\\\\b`", "a\\b"),
    ],
)
def test_escapes_in_backticks_as_r(formula, value):
    assert parse(formula).fixed_part.variables() == (value,)


@pytest.mark.parametrize(
    "formula, words",
    [
        ("y ~ `a\\qb`", "unrecognized escape"),
        ("y ~ `a\\u00e9`", "not allowed inside backticks"),
        ("y ~ `a\\0b`", "NUL"),
        ("y ~ `a\\xe9`", "outside ASCII"),
        ("y ~ `a\ud800b`", "UTF-16"),
        ("y ~ x + \x00", "NUL"),
    ],
)
def test_bad_escapes_and_characters(formula, words):
    with pytest.raises(FormulaError, match=words):
        parse(formula)


@pytest.mark.parametrize(
    "formula, value",
    [
        ("y ~ I(x * 1e3)", "1000"),
        ("y ~ I(x * .5)", "0.5"),
        ("y ~ I(x * 1.)", "1"),
        ("y ~ I(x * 0x1.8p1)", "3"),
        ("y ~ I(x * 0x.8p1)", "1"),
        ("y ~ I(x * 1e5L)", "1e+05"),
    ],
)
def test_r_number_formats(formula, value):
    assert parse(formula).fixed_part.labels == (f"I(x * {value})",)


@pytest.mark.parametrize(
    "formula, span",
    [
        ("y ~ 1e", (4, 6)),
        ("y ~ 1e+", (4, 7)),
        ("y ~ 0x", (4, 6)),
        ("y ~ 0x1p", (4, 8)),
        ("y ~ 0x1.8", (4, 9)),
        ("y ~ x + 2i", (8, 10)),
        ("y ~ .2x", (4, 7)),
        ("y ~ 1..2", (6, 8)),
    ],
)
def test_malformed_numbers(formula, span):
    with pytest.raises(FormulaError) as info:
        parse(formula)
    assert info.value.span == span


def test_comments_and_line_breaks_as_r():
    assert parse("y ~ x + # slope\n  (1 | g) # groups").fixed == "y ~ x"
    assert [t.group for t in parse("y ~ x +\n (1 |\n g)\n").random_terms] == ["g"]
    with pytest.raises(FormulaError, match="second expression") as info:
        parse("y ~ x\n + (1 | g)")
    assert info.value.span == (7, 8)
    assert "y ~ x\\n + (1 | g)" in str(info.value)  # the line break is shown, not broken


def test_unicode_blanks_are_spaces():
    assert parse("y ~ x\u2009+\u3000z\t+ (1 |\u2003g)").fixed == "y ~ x + z"
