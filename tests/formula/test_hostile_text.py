"""Formula text as a hostile or unusual user writes it: each case ends as R's answer
(checked with R 4.x, `terms()` and `model.matrix()`) or as a FormulaError with a span."""

from __future__ import annotations

import time

import pytest

from lme2sm import FormulaError
from lme2sm.formula import parse
from lme2sm.formula.model import number_value, python_number, r_name

# formula -> R's term.labels of the fixed part (from attr(terms(f), "term.labels"))
R_LABELS = {
    "größe ~ x + (1 | g)": ("x",),
    "y ~ größe + Straße:x + (1 | Gruppe)": ("größe", "Straße:x"),
    "y ~ I(x^02)": ("I(x^2)",),
    "y ~ I(x + 5L) + I(x * 0x10) + I(x * 1e5) + I(x * .5) + I(x * 1e-3)": (
        "I(x + 5)",
        "I(x * 16)",
        "I(x * 1e+05)",
        "I(x * 0.5)",
        "I(x * 0.001)",
    ),
    "y ~ I(x * 0x1p4) + I(x * 0xFFL)": ("I(x * 16)", "I(x * 255)"),
    "y ~ (a + b)^2.5": ("a", "b", "a:b"),  # R truncates the power to an integer
    "y ~ (a + b + c)^1e9": ("a", "b", "c", "a:b", "a:c", "b:c", "a:b:c"),
    "y ~ (a + b + c)^2147483647": ("a", "b", "c", "a:b", "a:c", "b:c", "a:b:c"),
}


@pytest.mark.parametrize("formula", R_LABELS)
def test_labels_as_r(formula):
    assert parse(formula).fixed_part.labels == R_LABELS[formula]


def test_unicode_names_are_r_syntactic():
    assert r_name("größe") == "größe"
    assert r_name(".x") == ".x"
    assert r_name(".2x") == "`.2x`"
    assert r_name("a b") == "`a b`"
    p = parse("größe ~ x + (1 | Gruppe)")
    assert p.response == "größe" and p.random_terms[0].group == "Gruppe"


@pytest.mark.parametrize(
    "text, value, python",
    [
        ("02", 2.0, "2"),
        ("5L", 5.0, "5"),
        ("0x10", 16.0, "16"),
        ("0xFFL", 255.0, "255"),
        ("0x1p4", 16.0, "16"),
        (".5", 0.5, "0.5"),
        ("1e-3", 0.001, "0.001"),
        ("1e300", 1e300, "1e+300"),
    ],
)
def test_numbers_as_r_reads_them(text, value, python):
    assert number_value(text) == value
    assert python_number(text) == python
    assert eval(python) == value  # the patsy text is a valid Python number


@pytest.mark.parametrize(
    "marked",
    [
        "y ~ <1e400>",
        "y ~ <0x1p4801>",
        "y ~ I(x * <0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF>) + (1 | g)",
        "y ~ I(x * <1e999>) + (1 | g)",
        "y ~ (a + b)^<1e12>",
        "y ~ (a + b)^<1>",
        "y ~ (a + b)^<0.5>",
        "y ~ (a + b)^<-1>",
    ],
)
def test_refused_with_span(marked):
    start = marked.index("<")
    end = marked.index(">") - 1
    formula = marked.replace("<", "").replace(">", "")
    with pytest.raises(FormulaError) as info:
        parse(formula)
    assert info.value.span == (start, end)
    assert "^" in str(info.value)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ " + "(" * 1000 + "x" + ")" * 1000,
        "y ~ " + "-" * 2000 + "x",
        "y ~ x" + "^x" * 2000,
        "y ~ I(" + "-" * 2000 + "x)",
        "y ~ " + "log(" * 500 + "x" + ")" * 500,
        "y ~ " + " + ".join(f"x{i}" for i in range(3000)),
        "y ~ " + "(" * 1000,
    ],
)
def test_deep_or_long_formulas_are_formula_errors_not_recursion(formula):
    start = time.perf_counter()
    with pytest.raises(FormulaError, match="too deeply nested|too long"):
        parse(formula)
    assert time.perf_counter() - start < 1


def test_a_few_hundred_terms_still_parse():
    formula = "y ~ " + " + ".join(f"x{i}" for i in range(350)) + " + (1 | g)"
    assert len(parse(formula).fixed_part.terms) == 350


def test_huge_power_is_fast():
    start = time.perf_counter()
    p = parse("y ~ (a + b + c + d + e)^2000000000 + (1 | g)")
    assert len(p.fixed_part.terms) == 31
    assert time.perf_counter() - start < 1
