"""R's ``terms()`` algebra for one right-hand side: expressions → :class:`LinearPart`.

A port of R's ``model.c`` (``ExtractVars``/``EncodeVars``): every term is a set of
variables (a column, a call, or a comparison such as ``week > 2``, which R's terms()
keeps whole); ``+ - * / : ^ %in%`` combine sets; ``0``, ``1`` and ``- 1`` set the
intercept; duplicates go, terms sort by degree then first appearance, and a
term's factors follow the order the variables first appear in.

>>> from .syntax import parse_syntax
>>> linear_part(parse_syntax("(a + b + c)^2 - b:a")).labels
('a', 'b', 'c', 'a:c', 'b:c')
>>> linear_part(parse_syntax("b:a + a/c - 1")).text
'0 + a + b:a + a:c'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lme2sm.errors import FormulaError
from lme2sm.formula.model import (
    BinOp,
    Call,
    Expr,
    LinearPart,
    Name,
    Number,
    Paren,
    String,
    Term,
    UnaryOp,
    is_logical,
    number_value,
)

Bits = frozenset[int]

MAX_TERMS = 10_000
"""The most terms one right-hand side may expand to. R builds any number (``a*b*...*p``
is 65,535 terms); no data can fit such a model, and building it would take minutes, so
lme2sm refuses it at once."""
MAX_PRODUCTS = 1_000_000
"""The most term pairs one ``:``, ``*`` or ``^`` may combine before duplicates go."""


def linear_part(rhs: Expr | None, response: Expr | None = None, formula: str = "") -> LinearPart:
    """The terms of ``rhs`` as R's ``terms()`` computes them (``None`` means ``1``).

    ``response`` only matters for variable order (R installs it first).
    """
    state = _Encoder(formula)
    if response is not None:
        state.install(response)
    if rhs is not None:
        state.extract(rhs)
        terms = state.encode(rhs)
    else:
        terms = []
    offsets = [i for i, v in enumerate(state.variables) if _is_offset(v) and v is not response]
    offset_bits = frozenset(offsets)
    kept = [t for t in terms if not t & offset_bits]
    kept.sort(key=len)  # stable: by degree, then appearance
    return LinearPart(
        intercept=state.intercept,
        terms=tuple(Term(tuple(state.variables[i] for i in sorted(t))) for t in kept),
        offsets=tuple(state.variables[i].args[0] for i in offsets),  # type: ignore[union-attr]
    )


def _is_offset(expr: Expr) -> bool:
    return isinstance(expr, Call) and expr.func == "offset" and len(expr.args) == 1


def _zero_one(expr: Expr) -> int | None:
    if isinstance(expr, Number) and number_value(expr.text) in (0.0, 1.0):
        return int(number_value(expr.text))
    return None


def _trim(terms: list[Bits]) -> list[Bits]:
    """R's TrimRepeats: drop empty terms and later duplicates."""
    return [term for term in dict.fromkeys(terms) if term]


@dataclass
class _Encoder:
    """The mutable state of one ``terms()`` call: variables, intercept, parity."""

    formula: str
    variables: list[Expr] = field(default_factory=list)
    intercept: bool = True
    parity: bool = True
    index: dict[Expr, int] = field(default_factory=dict)

    def fail(self, message: str, expr: Expr) -> FormulaError:
        return FormulaError(message, self.formula or None, expr.span if self.formula else None)

    def install(self, expr: Expr) -> int:
        if expr not in self.index:
            self.index[expr] = len(self.variables)
            self.variables.append(expr)
        return self.index[expr]

    def product(self, left: list[Bits], right: list[Bits], expr: Expr) -> list[Bits]:
        """Every union of a term of ``left`` with one of ``right``, duplicates dropped;
        refused beyond :data:`MAX_PRODUCTS` pairs or :data:`MAX_TERMS` terms."""
        if len(left) * len(right) > MAX_PRODUCTS:
            raise self.too_many(expr, len(left) * len(right))
        return self.checked(_trim([a | b for a in left for b in right]), expr)

    def checked(self, terms: list[Bits], expr: Expr) -> list[Bits]:
        if len(terms) > MAX_TERMS:
            raise self.too_many(expr, len(terms))
        return terms

    def too_many(self, expr: Expr, count: int) -> FormulaError:
        text = expr.label if len(expr.label) <= 60 else expr.label[:57] + "..."
        return self.fail(
            f"{text} expands to {count:,} or more terms, more than lme2sm builds "
            f"({MAX_TERMS:,}; R would build them all, but no data can fit such a model): "
            "write fewer interactions, e.g. (a + b + c)^2 for the pairs only",
            expr,
        )

    def extract(self, expr: Expr) -> None:
        """R's ExtractVars: install variables in order of first appearance."""
        if _zero_one(expr) is not None:
            return
        if is_logical(expr) and not isinstance(expr, Paren):
            self.install(expr)  # R: a comparison is one variable, ``week > 2``
        elif isinstance(expr, BinOp):
            self.extract(expr.left)
            if expr.op != "^":
                self.extract(expr.right)
        elif isinstance(expr, UnaryOp | Paren):
            self.extract(expr.operand if isinstance(expr, UnaryOp) else expr.inner)
        elif isinstance(expr, Name | Call):
            self.install(expr)
        elif isinstance(expr, Number):
            raise self.fail(
                f"the number {expr.label} cannot be a model term (only 0 and 1 can): "
                "write I(...) for arithmetic, e.g. I(2 * x)",
                expr,
            )
        else:
            what = "a string" if isinstance(expr, String) else expr.label
            raise self.fail(f"{what} cannot be a model term: write a column name", expr)

    def encode(self, expr: Expr) -> list[Bits]:
        """R's EncodeVars: the list of terms ``expr`` stands for."""
        zero_one = _zero_one(expr)
        if zero_one is not None:
            self.intercept = bool(zero_one) == self.parity
            return []
        if isinstance(expr, Name | Call) or is_logical(expr) and not isinstance(expr, Paren):
            return [frozenset({self.install(expr)})]
        if isinstance(expr, Paren):
            return self.encode(expr.inner)
        if isinstance(expr, UnaryOp):
            if expr.op == "-":
                return self.delete([], expr.operand)
            return self.encode(expr.operand)
        assert isinstance(expr, BinOp), expr
        if expr.op == "+":
            left = self.encode(expr.left)
            return _trim(left + self.encode(expr.right))
        if expr.op == "-":
            return self.delete(self.encode(expr.left), expr.right)
        if expr.op == "^":
            return self.power(expr)
        left, right = self.encode(expr.left), self.encode(expr.right)
        if expr.op == ":":
            return self.product(left, right, expr)
        if expr.op == "*":
            return self.checked(_trim(left + right + self.product(left, right, expr)), expr)
        if expr.op == "/":
            whole = frozenset().union(*left)
            return _trim(left + [whole | b for b in right])
        if expr.op == "%in%":
            whole = frozenset().union(*right)
            return _trim([whole | a for a in left])
        raise self.fail(f"{expr.op} cannot be used here", expr)

    def delete(self, left: list[Bits], removed: Expr) -> list[Bits]:
        self.parity = not self.parity
        right = self.encode(removed)
        self.parity = not self.parity
        gone = set(right)
        return [t for t in left if t not in gone]

    def power(self, expr: BinOp) -> list[Bits]:
        power = expr.right.inner if isinstance(expr.right, Paren) else expr.right
        value = number_value(power.text) if isinstance(power, Number) else 0.0
        if not 2 <= value < 2**31:  # R: asInteger(power), "invalid power in formula"
            raise self.fail(
                f"invalid power in {expr.label} (R refuses it too): the power must be a "
                "number from 2 to 2147483647; write e.g. (a + b)^2, or I(x^2) for a squared "
                "variable",
                expr.right,
            )
        left = self.encode(expr.left)
        right = left
        # R multiplies int(value) - 1 times; once no term grows the result is fixed,
        # which happens after at most as many steps as there are variables
        for _ in range(int(value) - 1):
            grown = self.product(left, right, expr)
            if grown == right:
                break
            right = grown
        return right
