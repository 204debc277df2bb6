"""Splitting formula text into tokens, each with its half-open source span, as R's lexer.

Names, numbers and quoted text follow R's rules in a UTF-8 locale (see
:mod:`~lme2sm.formula.rchars` and :mod:`~lme2sm.formula.literals`): ``x٢`` is a name,
``1٢`` and ``x²`` are errors, ``#`` starts a comment, and a line break ends the formula
where R's would end it (after a complete expression outside parentheses). Every
character R refuses is a FormulaError with a caret under it and what to write instead.

>>> [t.text for t in tokenize("y ~ x + (1 | Sepal.Length)")]
['y', '~', 'x', '+', '(', '1', '|', 'Sepal.Length', ')', '']
>>> tokenize("`my var` ~ 1")[0]
Token(kind='name', text='`my var`', span=(0, 8), value='my var')
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lme2sm.errors import FormulaError
from lme2sm.formula.literals import scan_number, scan_quoted
from lme2sm.formula.lookalikes import advice
from lme2sm.formula.model import Span, number_value
from lme2sm.formula.rchars import (
    char_label,
    is_blank,
    is_digit,
    is_name_char,
    is_name_start,
    non_ascii_digits,
)

OPERATOR_SYMBOLS = (
    "%in%", "||", "**", ">=", "<=", "==", "!=", "~", "+", "-", "*", "/", ":", "^", "|",
    "(", ")", ",", "=", ">", "<", "&", "!",
)  # fmt: skip
"""Operator and punctuation tokens, longest first (``**`` is R's spelling of ``^``);
R's comparisons and ``&``/``!`` are for logical expressions inside ``I()``."""

_REFUSED_SYMBOLS = {
    "<-": "<- is R's assignment, not a comparison: write x < -2 (with a space) to compare",
    "->": "-> is R's assignment: write x > 2 to compare, or x - -2 for arithmetic",
    "&&": "&& compares single values in R, not columns: write & for the rows' logical and",
    "=>": "=> is not an R operator: write >= for greater than or equal",
    "=<": "=< is not an R operator: write <= for less than or equal",
}
"""Spellings R reads as something a formula cannot hold, refused rather than split."""

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

    def is_op(self, *symbols: str) -> bool:
        """True for an operator or punctuation token among ``symbols`` (a backticked
        name such as `)` has the same value, but is a name)."""
        return self.kind == "op" and self.value in symbols


def tokenize(formula: str) -> list[Token]:
    """The tokens of ``formula``, ending with one ``end`` token.

    >>> [t.value for t in tokenize("I(x**2) # squared")]
    ['I', '(', 'x', '^', '2', ')', '']
    """
    _check_characters(formula)
    tokens: list[Token] = []
    pos = 0
    depth = 0
    ended: tuple[str, int] | None = None  # R's expression ended here (line break or ;)
    n = len(formula)
    while pos < n:
        char = formula[pos]
        if is_blank(char):
            pos += 1
            continue
        if char == "#":
            newline = formula.find("\n", pos)
            pos = n if newline < 0 else newline
            continue
        if char in "\n;":
            if char == "\n" and ended:
                pass
            elif depth == 0 and tokens and _completes(tokens[-1]) and not ended:
                ended = (char, pos)
            elif char == ";":
                raise FormulaError(
                    "unexpected ;: a formula is one expression; join terms with +",
                    formula,
                    (pos, pos + 1),
                )
            pos += 1
            continue
        token = _next_token(formula, pos)
        if ended is not None:
            raise _second_expression(formula, ended, tokens[-1], token)
        tokens.append(token)
        pos = token.span[1]
        if token.value == "(" and token.kind == "op":
            depth += 1
            if depth > MAX_NESTING:
                raise FormulaError(
                    f"the formula is too deeply nested: more than {MAX_NESTING} levels of "
                    "parentheses; remove the redundant ones",
                    formula,
                    token.span,
                )
        elif token.value == ")" and token.kind == "op":
            depth = max(0, depth - 1)
    tokens.append(Token("end", "", (n, n + 1), ""))
    return tokens


def _completes(token: Token) -> bool:
    """True when R's expression may end after ``token`` (not after an operator)."""
    return token.kind != "op" or token.value == ")"


def _second_expression(
    formula: str, ended: tuple[str, int], last: Token, token: Token
) -> FormulaError:
    mark, at = ended
    where = "the line break" if mark == "\n" else "the ;"
    return FormulaError(
        f"the formula ends at {where} after {last.text}: R reads {token.text} and what "
        "follows as a second expression; break the line after an operator "
        "(y ~ x +, then z) or inside parentheses",
        formula,
        token.span,
    )


def _check_characters(formula: str) -> None:
    """Refuse what no R text can hold, wherever it is: NUL and lone surrogates."""
    for pos, char in enumerate(formula):
        if char == "\x00" or 0xD800 <= ord(char) <= 0xDFFF:
            raise FormulaError(advice(char), formula, (pos, pos + 1))


def _next_token(formula: str, pos: int) -> Token:
    char = formula[pos]
    next_char = formula[pos + 1] if pos + 1 < len(formula) else ""
    if is_digit(char) or (char == "." and is_digit(next_char)):
        return _number(formula, pos)
    if is_name_start(char):
        end = pos + 1
        while end < len(formula) and is_name_char(formula[end]):
            end += 1
        text = formula[pos:end]
        return Token("name", text, (pos, end), text)
    if char in "`\"'":
        end, value = scan_quoted(formula, pos)
        if char == "`" and not value:
            raise FormulaError(
                "empty backticked name: write the column name between the backticks",
                formula,
                (pos, end),
            )
        return Token("name" if char == "`" else "string", formula[pos:end], (pos, end), value)
    for symbol, why in _REFUSED_SYMBOLS.items():
        if formula.startswith(symbol, pos):
            raise FormulaError(why, formula, (pos, pos + 2))
    for symbol in OPERATOR_SYMBOLS:
        if formula.startswith(symbol, pos):
            value = "^" if symbol == "**" else symbol
            return Token("op", symbol, (pos, pos + len(symbol)), value)
    raise _unexpected_character(formula, pos)


def _number(formula: str, pos: int) -> Token:
    end = scan_number(formula, pos)
    text = formula[pos:end]
    starts_number = formula.startswith(".", end) and is_digit(formula[end + 1 : end + 2])
    if end < len(formula) and is_name_char(formula[end]) and not starts_number:
        stop = end + 1
        while stop < len(formula) and is_name_char(formula[stop]):
            stop += 1
        digits = non_ascii_digits(formula[end:stop])
        why = (
            f"{char_label(digits[0])} is not a digit to R, which reads numbers from 0-9 only"
            if digits
            else "a name cannot start with a digit"
        )
        raise FormulaError(
            f"{formula[pos:stop]!r} is not a number or a name: {why}; write a number "
            "with the digits 0-9, or a name in backticks, e.g. `2x`",
            formula,
            (pos, stop),
        )
    if text.endswith("i"):
        raise FormulaError(
            f"{text} is a complex number: a model formula cannot use one "
            "(R's model.frame refuses it)",
            formula,
            (pos, end),
        )
    if math.isinf(number_value(text)):
        raise FormulaError(
            f"the number {text} is too large: R reads it as Inf (the largest number is "
            "about 1.8e308)",
            formula,
            (pos, end),
        )
    return Token("number", text, (pos, end), text)


def _unexpected_character(formula: str, pos: int) -> FormulaError:
    char = formula[pos]
    span = (pos, pos + 1)
    if char == "%":
        close = formula.find("%", pos + 1)
        return FormulaError(
            "unknown %-operator: only %in% is allowed in a formula; write a %in% b or a:b",
            formula,
            (pos, close + 1 if close > 0 else pos + 1),
        )
    if char == "_":
        end = pos + 1
        while end < len(formula) and is_name_char(formula[end]):
            end += 1
        return FormulaError(
            f"{formula[pos:end]} is not a name R reads: a name cannot start with _; "
            f"write it in backticks, e.g. `{formula[pos:end]}`",
            formula,
            (pos, end),
        )
    if char.isascii() and char.isprintable():
        return FormulaError(
            f"unexpected character {char!r}: a formula uses names, numbers and "
            "~ + - * / : ^ | ( ), and comparisons inside I()",
            formula,
            span,
        )
    return FormulaError(f"unexpected character: {advice(char)}", formula, span)
