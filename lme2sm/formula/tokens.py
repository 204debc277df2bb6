"""Splitting formula text into tokens, each with its half-open source span.

>>> [t.text for t in tokenize("y ~ x + (1 | Sepal.Length)")]
['y', '~', 'x', '+', '(', '1', '|', 'Sepal.Length', ')', '']
>>> tokenize("`my var` ~ 1")[0]
Token(kind='name', text='`my var`', span=(0, 8), value='my var')
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from lme2sm.errors import FormulaError
from lme2sm.formula.model import Span, number_value

OPERATOR_SYMBOLS = ("%in%", "||", "**", "~", "+", "-", "*", "/", ":", "^", "|", "(", ")", ",", "=")
"""Operator and punctuation tokens, longest first (``**`` is R's spelling of ``^``)."""

_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+(?:\.[0-9a-fA-F]*)?(?:[pP][+-]?\d+)?L?"  # R's hex: 0x10, 0x1p4, 0xFFL
    r"|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?"
)
_SPACE = re.compile(r"\s+")
MAX_NESTING = 100
"""Parentheses nested deeper than this are refused (R users never need so many)."""


@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is ``name``, ``number``, ``string``, ``op`` or ``end``.

    ``value`` is the name without backticks, the string without quotes, or the
    operator (``**`` is stored as ``^``).
    """

    kind: str
    text: str
    span: Span
    value: str


def tokenize(formula: str) -> list[Token]:
    """The tokens of ``formula``, ending with one ``end`` token.

    >>> [t.value for t in tokenize("I(x**2)")]
    ['I', '(', 'x', '^', '2', ')', '']
    """
    tokens: list[Token] = []
    pos = 0
    depth = 0
    while pos < len(formula):
        space = _SPACE.match(formula, pos)
        if space:
            pos = space.end()
            continue
        token = _next_token(formula, pos)
        tokens.append(token)
        pos = token.span[1]
        if token.value == "(":
            depth += 1
            if depth > MAX_NESTING:
                raise FormulaError(
                    f"the formula is too deeply nested: more than {MAX_NESTING} levels of "
                    "parentheses; remove the redundant ones",
                    formula,
                    token.span,
                )
        elif token.value == ")":
            depth = max(0, depth - 1)
    tokens.append(Token("end", "", (len(formula), len(formula) + 1), ""))
    return tokens


def _next_token(formula: str, pos: int) -> Token:
    char = formula[pos]
    number = _NUMBER.match(formula, pos)
    if number and (char.isdigit() or char == "."):
        end = number.end()
        if end < len(formula) and _name_char(formula[end]):
            raise FormulaError(
                f"{formula[pos : end + 1]!r} is not a number or a name: a name cannot start "
                "with a digit; write it in backticks, e.g. `2x`",
                formula,
                (pos, end + 1),
            )
        text = number.group()
        if math.isinf(number_value(text)):
            raise FormulaError(
                f"the number {text} is too large: R reads it as Inf (the largest number is "
                "about 1.8e308)",
                formula,
                (pos, end),
            )
        return Token("number", text, (pos, end), text)
    if char.isalpha() or char in "_.":
        end = pos + 1
        while end < len(formula) and _name_char(formula[end]):
            end += 1
        text = formula[pos:end]
        return Token("name", text, (pos, end), text)
    if char == "`":
        return _quoted(formula, pos, "`", "name")
    if char in "\"'":
        return _quoted(formula, pos, char, "string")
    for symbol in OPERATOR_SYMBOLS:
        if formula.startswith(symbol, pos):
            value = "^" if symbol == "**" else symbol
            return Token("op", symbol, (pos, pos + len(symbol)), value)
    if char == "%":
        raise FormulaError(
            "unknown %-operator: only %in% is allowed in a formula; write a %in% b or a:b",
            formula,
            (pos, formula.find("%", pos + 1) + 1 or pos + 1),
        )
    raise FormulaError(
        f"unexpected character {char!r}: a formula uses names, numbers and ~ + - * / : ^ | ( )",
        formula,
        (pos, pos + 1),
    )


def _name_char(char: str) -> bool:
    """Letters (any script, as R in a UTF-8 locale), digits, ``.`` and ``_``."""
    return char.isalnum() or char in "._" or unicodedata.category(char).startswith("M")


def _quoted(formula: str, pos: int, quote: str, kind: str) -> Token:
    """A backticked name or a quoted string, with backslash escapes."""
    chars: list[str] = []
    i = pos + 1
    while i < len(formula):
        char = formula[i]
        if char == "\\" and i + 1 < len(formula):
            chars.append(formula[i + 1])
            i += 2
            continue
        if char == quote:
            if kind == "name" and not chars:
                raise FormulaError(
                    "empty backticked name: write the column name between the backticks",
                    formula,
                    (pos, i + 1),
                )
            return Token(kind, formula[pos : i + 1], (pos, i + 1), "".join(chars))
        chars.append(char)
        i += 1
    what = "backticked name" if kind == "name" else "string"
    raise FormulaError(f"unterminated {what}: close it with {quote}", formula, (pos, len(formula)))
