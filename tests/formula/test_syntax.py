"""Syntax tree: R's operator precedence, deparsing and spans."""

from __future__ import annotations

import pytest

from lme2sm.formula.model import BinOp, Call, Expr, Keyword, Paren, UnaryOp
from lme2sm.formula.syntax import OPERATORS, operator_span, parse_syntax


def shape(expr: Expr) -> str:
    """The tree with every operator application bracketed: ``[a + [b * c]]``."""
    if isinstance(expr, BinOp):
        return f"[{shape(expr.left)} {expr.op} {shape(expr.right)}]"
    if isinstance(expr, UnaryOp):
        return f"[{expr.op}{shape(expr.operand)}]"
    if isinstance(expr, Paren):
        return f"({shape(expr.inner)})"
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(shape(a) for a in expr.args)})"
    if isinstance(expr, Keyword):
        return f"{expr.name}={shape(expr.value)}"
    return expr.label


PRECEDENCE = {
    "y ~ a + b | g": "[y ~ [[a + b] | g]]",
    "y ~ a + b * c": "[y ~ [a + [b * c]]]",
    "y ~ a * b:c": "[y ~ [a * [b : c]]]",
    "y ~ a / b %in% c": "[y ~ [a / [b %in% c]]]",
    "y ~ a:b^2": "[y ~ [a : [b ^ 2]]]",
    "y ~ a^b^c": "[y ~ [a ^ [b ^ c]]]",
    "y ~ a - b - c": "[y ~ [[a - b] - c]]",
    "y ~ a/b/c": "[y ~ [[a / b] / c]]",
    "y ~ -1 + x": "[y ~ [[-1] + x]]",
    "y ~ -x^2": "[y ~ [-[x ^ 2]]]",
    "y ~ -a:b": "[y ~ [[-a] : b]]",
    "y ~ x || g": "[y ~ [x || g]]",
    "~ x": "[~x]",
    "y ~ I(x^-1)": "[y ~ I([x ^ [-1]])]",
    "y ~ C(f, Treatment(reference = 'b'))": '[y ~ C(f, Treatment(reference="b"))]',
}


@pytest.mark.parametrize("text", PRECEDENCE)
def test_precedence(text):
    assert shape(parse_syntax(text)) == PRECEDENCE[text]


def test_operator_table_is_loosest_first():
    bindings = [op.binding for op in OPERATORS]
    assert bindings == sorted(bindings)
    assert OPERATORS[0].symbol == "~"


DEPARSE = {
    "y~x+(1|g)": "y ~ x + (1 | g)",
    "y ~ a/b + I(x/2) + I(x*2)": "y ~ a/b + I(x/2) + I(x * 2)",
    "y ~ I(x**2) + I(1e5 * x) + I(0.0001 + x)": "y ~ I(x^2) + I(1e+05 * x) + I(1e-04 + x)",
    "y ~ `my var` + yield": "y ~ `my var` + yield",
    "y ~ a %in% b": "y ~ a %in% b",
}


@pytest.mark.parametrize("text", DEPARSE)
def test_label_is_r_deparse(text):
    assert parse_syntax(text).label == DEPARSE[text]


def test_operator_span():
    text = "y  ~  x ** 2"
    tree = parse_syntax(text)
    assert operator_span(tree, text) == (3, 4)
    assert text[slice(*operator_span(tree.right, text))] == "**"
