"""glmmTMB's covariance-structure wrappers of random-effects terms: ``us(x | g)``,
``diag(x | g)``, ``cs(x | g)`` and ``ar1(0 + f | g)``.

A wrapper is a summand of the right-hand side, like a parenthesised bar term, and
stands for that term with its covariance structured; :func:`unwrap_structures`
replaces each by the parenthesised bar and says which structure each bar carries (by
its span), so lme4's expansions (``/``, the term order) apply unchanged:

>>> from .syntax import parse_syntax
>>> rhs, structures = unwrap_structures(parse_syntax("y ~ x + diag(x | g)").right, "")
>>> rhs.label, list(structures.values())
('x + (x | g)', ['diag'])

Anything else made of a wrapper (one without a bar, empty, with ``||``, inside a product
or a function, an unknown structure) is a :class:`~lme2sm.FormulaError` with a caret.
"""

from __future__ import annotations

from lme2sm.errors import FormulaError
from lme2sm.formula.functions import FUNCTIONS
from lme2sm.formula.model import BinOp, Call, Expr, Keyword, Paren, Span, UnaryOp
from lme2sm.formula.syntax import operator_span

STRUCTURES = {
    "us": "unstructured (as a plain lme4 term)",
    "diag": "independent columns, one variance each",
    "cs": "heterogeneous compound symmetry: one variance per column, one common correlation",
    "hetcs": "heterogeneous compound symmetry (later glmmTMB's name for cs)",
    "ar1": "first-order autoregressive over the columns: one variance, corr(i, j) = rho^|i - j|",
}
"""The wrappers lme2sm fits, as glmmTMB 1.1.5 defines them (``hetcs`` is an alias of
``cs``: later glmmTMB versions call the heterogeneous structure so)."""

ALIASES = {"hetcs": "cs"}

OTHER_GLMMTMB = ("homcs", "homdiag", "hetar1", "ou", "exp", "gau", "mat", "toep", "rr", "propto")
"""glmmTMB's other structures: refused by name (not fitted by lme2sm)."""


def structure_name(func: str) -> str:
    """The structure a wrapper stands for (``hetcs`` is ``cs``)."""
    return ALIASES.get(func, func)


def unwrap_structures(rhs: Expr, formula: str) -> tuple[Expr, dict[Span, str]]:
    """``rhs`` with each summand wrapper ``s(x | g)`` replaced by ``(x | g)``, and the
    structure of each such bar, keyed by the span of the parentheses standing for it.
    Wrappers anywhere else are refused."""
    found: dict[Span, str] = {}
    out = _unwrap(rhs, formula, found)
    return out, found


def _unwrap(expr: Expr, formula: str, found: dict[Span, str]) -> Expr:
    if isinstance(expr, BinOp) and expr.op in ("+", "-"):
        left = _unwrap(expr.left, formula, found)
        right = _unwrap(expr.right, formula, found)
        return BinOp(expr.op, left, right, expr.span)
    if isinstance(expr, UnaryOp) and expr.op == "+":
        return UnaryOp("+", _unwrap(expr.operand, formula, found), expr.span)
    if isinstance(expr, Paren):
        return Paren(_unwrap(expr.inner, formula, found), expr.span)
    if isinstance(expr, Call) and is_wrapper_call(expr):
        bar = _wrapped_bar(expr, formula)
        found[expr.span] = structure_name(expr.func)
        return Paren(bar, expr.span)
    return expr  # wrappers elsewhere: refused by the parser's check of calls


def is_wrapper_call(call: Call) -> bool:
    """A call of a structure's name, or of glmmTMB's other structures or an unknown
    function around a bar (a wrapper meant: ``toep(x | g)``); ``log(x | g)`` is a
    misused function instead."""
    if call.func in STRUCTURES:
        return True
    has_bar = any(isinstance(a, BinOp) and a.op in ("|", "||") for a in call.args)
    return has_bar and (call.func in OTHER_GLMMTMB or call.func not in FUNCTIONS)


def _wrapped_bar(call: Call, formula: str) -> BinOp:
    """The bar inside a summand wrapper, checked."""
    name_span = (call.span[0], call.span[0] + len(call.func))
    if call.func not in STRUCTURES:
        if call.func in OTHER_GLMMTMB:
            why = f"{call.func}() is a glmmTMB covariance structure lme2sm does not fit"
        else:
            why = f"{call.func}() is not a covariance structure"
        raise FormulaError(
            f"{why}: lme2sm fits {known_structures_text()}; write e.g. us(x | g), or "
            "(x | g) for lme4's unstructured term",
            formula,
            name_span,
        )
    example = "0 + f | g" if call.func == "ar1" else "x | g"
    if not call.args:
        raise FormulaError(
            f"{call.func}() is empty: it wraps a random-effects term, e.g. {call.func}({example})",
            formula,
            call.span,
        )
    if len(call.args) > 1:
        raise FormulaError(
            f"{call.func}() takes one random-effects term and no options: write "
            f"{call.func}({example})",
            formula,
            (call.args[1].span[0], call.args[-1].span[1]),
        )
    arg = call.args[0]
    if isinstance(arg, Keyword):
        raise FormulaError(
            f"{call.func}() takes a random-effects term, not a named argument: write "
            f"{call.func}({example})",
            formula,
            arg.span,
        )
    if not (isinstance(arg, BinOp) and arg.op in ("|", "||")):
        lhs = _text(arg, formula)
        raise FormulaError(
            f"{call.func}() wraps a random-effects term with a grouping factor: write "
            f"{call.func}({lhs} | g) with g the grouping column",
            formula,
            arg.span,
        )
    if arg.op == "||":
        lhs, group = _text(arg.left, formula), _text(arg.right, formula)
        raise FormulaError(
            f"|| cannot be inside {call.func}() (glmmTMB does not read it there): write "
            f"diag({lhs} | {group}) for independent columns, or ({lhs} || {group})",
            formula,
            operator_span(arg, formula) if formula else None,
        )
    return arg


def refuse_misplaced(call: Call, formula: str, inside: Call | None = None) -> None:
    """A wrapper that is not a summand of the right-hand side (``x * diag(1 | g)``,
    ``log(cs(x | g))``, ``diag(1 | g) ~ x``) is refused, pointing at it."""
    has_bar = any(isinstance(a, BinOp) and a.op in ("|", "||") for a in call.args)
    if call.func not in STRUCTURES or not has_bar or len(call.args) != 1:
        _wrapped_bar(call, formula)  # raises: unknown structure, no bar, empty, options
    text = _text(call, formula)
    where = f"inside {inside.func}()" if inside is not None else "there"
    raise FormulaError(
        f"a covariance structure cannot stand {where}: a random-effects term is added "
        f"to the model's right-hand side with +, e.g. y ~ x + {text}",
        formula,
        call.span,
    )


def _text(expr: Expr, formula: str) -> str:
    return formula[expr.span[0] : expr.span[1]] if formula else expr.label


def known_structures_text() -> str:
    return ", ".join(f"{name}()" for name in STRUCTURES)
