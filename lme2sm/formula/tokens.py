"""Splitting formula text into tokens, each with its half-open source span.

>>> [t.text for t in tokenize("y ~ x + (1 | Sepal.Length)")]
['y', '~', 'x', '+', '(', '1', '|', 'Sepal.Length', ')', '']
>>> tokenize("`my var` ~ 1")[0]
Token(kind='name', text='`my var`', span=(0, 8), value='my var')
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import FormulaError
from .model import Span

OPERATOR_SYMBOLS = ("%in%", "||", "**", "~", "+", "-", "*", "/", ":", "^", "|", "(", ")", ",", "=")
"""Operator and punctuation tokens, longest first (``**`` is R's spelling of ``^``)."""

_NUMBER = re.compile(r"(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?L?")
_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9._]*")
_SPACE = re.compile(r"\s+")


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
    while pos < len(formula):
        space = _SPACE.match(formula, pos)
        if space:
            pos = space.end()
            continue
        token = _next_token(formula, pos)
        tokens.append(token)
        pos = token.span[1]
    tokens.append(Token("end", "", (len(formula), len(formula) + 1), ""))
    return tokens


def _next_token(formula: str, pos: int) -> Token:
    char = formula[pos]
    number = _NUMBER.match(formula, pos)
    if number and (char.isdigit() or char == "."):
        end = number.end()
        if end < len(formula) and (formula[end].isalpha() or formula[end] in "_."):
            raise FormulaError(
                f"{formula[pos : end + 1]!r} is not a number or a name: a name cannot start "
                "with a digit; write it in backticks, e.g. `2x`",
                formula,
                (pos, end + 1),
            )
        return Token("number", number.group(), (pos, end), number.group())
    if char.isalpha() or char in "_.":
        name = _NAME.match(formula, pos)
        assert name is not None
        return Token("name", name.group(), name.span(), name.group())
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
