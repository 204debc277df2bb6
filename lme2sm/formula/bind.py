"""Rewriting a parsed formula's calls bottom-up (pure text: the numbers come from outside).

R evaluates ``scale(x)`` and ``poly(x, k)`` on the whole column before rows with
missing values elsewhere are dropped. ``lme2sm.frame.data_prep.bind_transforms`` computes
those numbers from the data and uses :func:`bind_calls` to write them into the
formula, so every later stage (patsy text, names, printed code) sees the same thing.

>>> from lme2sm.formula import parse
>>> p = bind_calls(parse("y ~ scale(x) + (1 | g)"), lambda call: (1.0, 2.0))
>>> p.fixed_part.terms[0].factors[0].baked
(1.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from lme2sm.formula.model import (
    BinOp,
    Call,
    Expr,
    Keyword,
    LinearPart,
    Paren,
    ParsedFormula,
    RandomTerm,
    Term,
    UnaryOp,
)

Binder = Callable[[Call], "tuple[float, ...] | None"]
"""Given a call whose arguments are already bound, its numbers or None to leave it."""


def bind_expr(expr: Expr, binder: Binder) -> Expr:
    """``expr`` with every call the binder answers for carrying its numbers."""
    if isinstance(expr, Call):
        args = tuple(bind_expr(a, binder) for a in expr.args)
        call = replace(expr, args=args)
        baked = binder(call)
        return replace(call, baked=tuple(baked)) if baked is not None else call
    if isinstance(expr, BinOp):
        return replace(
            expr, left=bind_expr(expr.left, binder), right=bind_expr(expr.right, binder)
        )
    if isinstance(expr, UnaryOp):
        return replace(expr, operand=bind_expr(expr.operand, binder))
    if isinstance(expr, Paren):
        return replace(expr, inner=bind_expr(expr.inner, binder))
    if isinstance(expr, Keyword):
        return replace(expr, value=bind_expr(expr.value, binder))
    return expr


def _bind_part(part: LinearPart, binder: Binder) -> LinearPart:
    terms = tuple(Term(tuple(bind_expr(f, binder) for f in t.factors)) for t in part.terms)
    offsets = tuple(bind_expr(o, binder) for o in part.offsets)
    return replace(part, terms=terms, offsets=offsets)


def bind_calls(parsed: ParsedFormula, binder: Binder) -> ParsedFormula:
    """``parsed`` with the binder's numbers on its calls (response, fixed and random parts)."""
    terms = tuple(
        replace(t, effects_part=_bind_part(t.effects_part, binder)) for t in parsed.random_terms
    )
    return replace(
        parsed,
        response_expr=bind_expr(parsed.response_expr, binder),
        fixed_part=_bind_part(parsed.fixed_part, binder),
        random_terms=terms,
    )


def calls(parsed: ParsedFormula) -> list[Call]:
    """Every call in the formula's parts, innermost first (for checks)."""
    out: list[Call] = []

    def visit(expr: Expr) -> None:
        if isinstance(expr, Call):
            for a in expr.args:
                visit(a)
            out.append(expr)
        elif isinstance(expr, BinOp):
            visit(expr.left)
            visit(expr.right)
        elif isinstance(expr, UnaryOp):
            visit(expr.operand)
        elif isinstance(expr, Paren):
            visit(expr.inner)
        elif isinstance(expr, Keyword):
            visit(expr.value)

    visit(parsed.response_expr)
    parts: list[LinearPart] = [parsed.fixed_part, *(t.effects_part for t in parsed.random_terms)]
    for part in parts:
        for t in part.terms:
            for f in t.factors:
                visit(f)
        for o in part.offsets:
            visit(o)
    return out


__all__ = ["Binder", "RandomTerm", "bind_calls", "bind_expr", "calls"]
