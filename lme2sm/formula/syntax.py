"""Parsing tokens into a syntax tree of :mod:`~lme2sm.formula.model` expressions.

Operators are the rows of :data:`OPERATORS`, with R's precedence (``~`` loosest, then
``|``/``||``, ``&``, prefix ``!``, the comparisons ``> < >= <= == !=``, ``+ -``,
``* /``, ``%in%``, ``:``, unary ``+ -``, ``^``). Formula
operators become :class:`~lme2sm.formula.model.BinOp`/``UnaryOp`` nodes, so every
node's ``label`` is R's deparse of it:

>>> parse_syntax("y ~ x + (1 | g)").label
'y ~ x + (1 | g)'
>>> parse_syntax("y ~ -1 + a:b^2").right.left.label
'-1'
"""

from __future__ import annotations

from dataclasses import dataclass

from lme2sm.errors import FormulaError
from lme2sm.formula.functions import data_argument_count
from lme2sm.formula.model import (
    COMPARISONS,
    CONSTANTS,
    BinOp,
    Call,
    Expr,
    Keyword,
    Name,
    Number,
    Paren,
    String,
    UnaryOp,
)
from lme2sm.formula.tokens import Token, tokenize


@dataclass(frozen=True)
class Operator:
    """One operator row: ``binding`` (higher binds tighter), associativity, unary use.

    ``prefix`` is the binding power of the operator used as a prefix (``-1``, ``~ x``),
    or None when it cannot be one.
    """

    symbol: str
    binding: int
    right_assoc: bool = False
    prefix: int | None = None
    infix: bool = True
    """False for a prefix-only operator (``!``)."""


OPERATORS: tuple[Operator, ...] = (
    Operator("~", 10, prefix=10),
    Operator("|", 20),
    Operator("||", 20),
    Operator("&", 24),
    Operator("!", 26, prefix=26, infix=False),
    *(Operator(symbol, 28) for symbol in COMPARISONS),
    Operator("+", 30, prefix=70),
    Operator("-", 30, prefix=70),
    Operator("*", 40),
    Operator("/", 40),
    Operator("%in%", 50),
    Operator(":", 60),
    Operator("^", 80, right_assoc=True),
)
"""R's formula operators, loosest first (see R's ``?Syntax``)."""

_BY_SYMBOL = {op.symbol: op for op in OPERATORS}

R_RESERVED = {
    "if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE", "FALSE",
    "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "in", "T", "F",
}  # fmt: skip
"""Words that are not column names in R (``T``/``F`` are refused as ambiguous)."""


def parse_syntax(formula: str) -> Expr:
    """The syntax tree of the whole formula text (no lme4 meaning checked yet)."""
    parser = _Parser(formula, tokenize(formula))
    if parser.peek().kind == "end":
        raise FormulaError(
            "the formula is empty: write response ~ terms, e.g. y ~ x + (1 | g)",
            formula,
            (0, max(1, len(formula))),
        )
    tree = parser.expression(0)
    token = parser.peek()
    if token.kind != "end":
        raise parser.unexpected(token)
    _check_depth(tree, formula)
    return tree


MAX_DEPTH = 400
MAX_NESTING = 100
"""Operators nested inside one another (prefix minus, powers, calls) beyond this are refused."""
"""The deepest syntax tree accepted: about this many terms in one formula (every later
stage, patsy's included, walks the tree recursively)."""


def _check_depth(tree: Expr, formula: str) -> None:
    """Refuse trees deeper than :data:`MAX_DEPTH`, without recursing."""
    stack: list[tuple[Expr, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise FormulaError(
                f"the formula is too deeply nested or too long: more than {MAX_DEPTH} "
                "operators or terms in one chain; build the model from fewer terms",
                formula,
                node.span,
            )
        if isinstance(node, BinOp):
            stack += [(node.left, depth + 1), (node.right, depth + 1)]
        elif isinstance(node, UnaryOp):
            stack.append((node.operand, depth + 1))
        elif isinstance(node, Paren):
            stack.append((node.inner, depth + 1))
        elif isinstance(node, Keyword):
            stack.append((node.value, depth + 1))
        elif isinstance(node, Call):
            stack += [(a, depth + 1) for a in node.args]


def operator_span(node: BinOp, formula: str) -> tuple[int, int]:
    """The span of ``node``'s operator symbol in ``formula``.

    >>> operator_span(parse_syntax("y ~ x"), "y ~ x")
    (2, 3)
    """
    start, end = node.left.span[1], node.right.span[0]
    text = formula[start:end]
    offset = text.find("**" if node.op == "^" and "**" in text else node.op)
    if offset < 0:
        return (start, end)
    width = 2 if node.op == "^" and text[offset : offset + 2] == "**" else len(node.op)
    return (start + offset, start + offset + width)


class _Parser:
    """A Pratt parser over the token list; one instance per formula."""

    def __init__(self, formula: str, tokens: list[Token]):
        self.formula = formula
        self.tokens = tokens
        self.pos = 0
        self.depth = 0
        self.in_call = 0

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.pos + ahead, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.pos += 1
        return token

    def error(self, message: str, span: tuple[int, int]) -> FormulaError:
        return FormulaError(message, self.formula, span)

    # ------------------------------------------------------------------ expressions

    def expression(self, min_binding: int) -> Expr:
        self.depth += 1
        try:
            return self._expression(min_binding)
        finally:
            self.depth -= 1

    def _expression(self, min_binding: int) -> Expr:
        if self.depth > MAX_NESTING:
            raise self.error(
                f"the formula is too deeply nested: more than {MAX_NESTING} nested operators",
                self.peek().span,
            )
        left = self.prefix()
        while True:
            token = self.peek()
            op = _BY_SYMBOL.get(token.value) if token.kind == "op" else None
            if op is None or op.binding <= min_binding:
                if op is None and token.kind in ("name", "number", "string"):
                    raise self.error(
                        f"unexpected {token.text}: join terms with an operator, "
                        f"e.g. {self.formula[left.span[0] : left.span[1]]} + {token.text}",
                        token.span,
                    )
                return left
            self.take()
            if not op.infix:
                raise self.error(
                    f"{op.symbol} is R's logical not and goes before a value, e.g. "
                    f"!(x > 2); join terms with +",
                    token.span,
                )
            if op.symbol in COMPARISONS and isinstance(left, BinOp) and left.op in COMPARISONS:
                raise self.error(
                    f"comparisons do not chain in R ({left.label} {op.symbol} ... is a syntax "
                    f"error there): write ({left.label}) & ({left.right.label} {op.symbol} ...)",
                    token.span,
                )
            if op.symbol in ("|", "||") and (self.peek().is_op(")") or self.peek().kind == "end"):
                end = self.peek().span[1] if self.peek().kind != "end" else token.span[1]
                lhs = self.formula[left.span[0] : left.span[1]]
                raise self.error(
                    f"the random-effects term has no grouping factor after {op.symbol}: "
                    f"write ({lhs} {op.symbol} g) with g the grouping column",
                    (token.span[0], end),
                )
            right = self.expression(op.binding - 1 if op.right_assoc else op.binding)
            left = BinOp(op.symbol, left, right, (left.span[0], right.span[1]))

    def prefix(self) -> Expr:
        token = self.take()
        if token.kind == "name":
            return self.name_or_call(token)
        if token.kind == "number":
            return Number(token.value, token.span)
        if token.kind == "string":
            return String(token.value, token.span)
        if token.kind == "end":
            before = self.formula.rstrip()
            raise self.error(
                f"the formula ends after {before[-1:] or 'nothing'}: "
                "a term is missing, e.g. write y ~ x",
                (len(before), len(before) + 1),
            )
        if token.value == "(":
            return self.paren(token)
        op = _BY_SYMBOL.get(token.value)
        if op is not None and op.prefix is not None:
            operand = self.expression(op.prefix)
            return UnaryOp(op.symbol, operand, (token.span[0], operand.span[1]))
        if token.value in ("|", "||"):
            previous = self.tokens[self.pos - 2] if self.pos >= 2 else token
            group = self.peek().text or "g"
            raise self.error(
                f"the random-effects term has nothing before {token.value}: "
                f"write (1 {token.value} {group}) for a random intercept",
                (previous.span[0] if previous.is_op("(") else token.span[0], token.span[1]),
            )
        previous = self.tokens[self.pos - 2] if self.pos >= 2 else None
        closing = token.is_op(")") or (token.is_op(",") and self.in_call)
        if closing and previous is not None and previous.kind == "op":
            if not previous.is_op("(", ",", ")"):
                raise self.error(
                    f"a value is missing after {previous.text}: write one before "
                    f"{token.text}, e.g. x {previous.text} 2",
                    token.span,
                )
        raise self.unexpected(token)

    def unexpected(self, token: Token) -> FormulaError:
        if token.is_op(")"):
            return self.error(
                "unmatched ): there is no ( before it; remove it or add the missing (",
                token.span,
            )
        if token.is_op(","):
            return self.error(
                "unexpected , outside a function call: join terms with +", token.span
            )
        return self.error(f"unexpected {token.text}: a term is missing before it", token.span)

    def paren(self, open_token: Token) -> Expr:
        if self.peek().is_op(")"):
            close = self.take()
            raise self.error(
                "empty parentheses: write a term inside them, e.g. (1 | g)",
                (open_token.span[0], close.span[1]),
            )
        inner = self.expression(0)
        close = self.close(open_token)
        return Paren(inner, (open_token.span[0], close.span[1]))

    def close(self, open_token: Token) -> Token:
        token = self.peek()
        if token.is_op(")"):
            return self.take()
        if token.kind == "end":
            raise self.error("unmatched (: add the missing ) to close it", open_token.span)
        raise self.error(
            f"unexpected {token.text}: expected ) to close the ( at position {open_token.span[0]}",
            token.span,
        )

    # ------------------------------------------------------------------ names and calls

    def name_or_call(self, token: Token) -> Expr:
        backticked = token.text.startswith("`")
        if not backticked and token.value == ".":
            raise self.error(
                "'.' (all other columns) is not supported: list the columns, e.g. y ~ a + b + c",
                token.span,
            )
        if not backticked and self.in_call and token.value in CONSTANTS:
            if not self.peek().is_op("("):
                return Number(token.value, token.span)
        if not backticked and token.value in R_RESERVED:
            raise self.error(
                f"{token.value} is a reserved word in R, not a column: "
                f"write `{token.value}` in backticks if it is a column name",
                token.span,
            )
        if not self.peek().is_op("("):
            return Name(token.value, token.span)
        open_token = self.take()
        args: list[Expr] = []
        self.in_call += 1
        if not self.peek().is_op(")"):
            while True:
                args.append(self.argument())
                if not self.peek().is_op(","):
                    break
                self.take()
        self.in_call -= 1
        close = self.close(open_token)
        return Call(
            token.value,
            tuple(args),
            (token.span[0], close.span[1]),
            n_data=data_argument_count(token.value),
        )

    def argument(self) -> Expr:
        token = self.peek()
        if token.kind == "name" and self.peek(1).is_op("="):
            self.take()
            self.take()
            value = self.expression(0)
            return Keyword(token.value, value, (token.span[0], value.span[1]))
        if token.is_op(",", ")"):
            raise self.error("empty function argument: remove the extra comma", token.span)
        return self.expression(0)
