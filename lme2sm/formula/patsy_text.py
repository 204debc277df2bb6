"""Writing parsed expressions as patsy formula text (never evaluating anything).

Column names that patsy cannot take bare (dots, spaces, Python keywords) are written
as ``Q("name")``, so the user's names reach the data unchanged. R's ``^`` becomes
``**`` inside ``I()``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from lme2sm.formula.functions import FUNCTIONS
from lme2sm.formula.model import (
    BinOp,
    Call,
    Expr,
    Keyword,
    LinearPart,
    Name,
    Number,
    Paren,
    String,
    Term,
    UnaryOp,
    is_python_name,
    python_number,
    quote_string,
)

_PATSY_RESERVED = {"Intercept", "np", "Q", "I", "C", "r_poly", "r_poly_raw"}
"""Names patsy's text or lme2sm's environment already uses: a column so named is quoted."""

_PY_OPS = {"^": "**", "+": "+", "-": "-", "*": "*", "/": "/", "**": "**", ":": "*"}


def name_to_patsy(name: str) -> str:
    """``x`` stays ``x``; ``Sepal.Length`` becomes ``Q("Sepal.Length")``.

    ``Intercept`` is quoted too: bare, patsy's column would clash with its own intercept.
    So is a name Python would read as another (identifiers are NFKC-normalised: bare,
    the full-width ``ｘ`` would be the column ``x``).
    """
    bare = is_python_name(name) and name not in _PATSY_RESERVED
    if bare and unicodedata.normalize("NFKC", name) == name:  # Python reads ｘ as x
        return name
    return f"Q({quote_string(name)})"


Names = Callable[[str], str]
"""How a column name is written in the text: :func:`name_to_patsy` for the text users
see (and statsmodels evaluates), or the model frame's internal names
(:func:`lme2sm.frame.safe_names.safe_name`)."""


def to_patsy(expr: Expr, names: Names = name_to_patsy) -> str:
    """patsy/Python text for one expression, each column written by ``names``."""
    if isinstance(expr, Call) and expr.func == "Q" and names is not name_to_patsy:
        return names(expr.data_arguments()[0].name)  # the column itself, no Q() lookup
    if isinstance(expr, Name):
        return names(expr.name)
    if isinstance(expr, Number):
        return python_number(expr.text)
    if isinstance(expr, String):
        return expr.label
    if isinstance(expr, Paren):
        return f"({to_patsy(expr.inner, names)})"
    if isinstance(expr, UnaryOp):
        return f"{expr.op}{to_patsy(expr.operand, names)}"
    if isinstance(expr, BinOp):
        return f"{to_patsy(expr.left, names)} {_PY_OPS[expr.op]} {to_patsy(expr.right, names)}"
    if isinstance(expr, Call):
        rule = FUNCTIONS[expr.func]
        args = [to_patsy(a, names) for a in expr.data_arguments()] if expr.func != "Q" else []
        return rule.render(args, expr)
    if isinstance(expr, Keyword):
        return f"{expr.name}={to_patsy(expr.value, names)}"
    raise TypeError(f"not an expression: {expr!r}")


def term_to_patsy(term: Term, names: Names = name_to_patsy) -> str:
    """``recipe:temp`` → ``recipe:temp``; ``factor(g):x`` → ``C(g):x``."""
    return ":".join(to_patsy(f, names) for f in term.factors)


def part_to_patsy(part: LinearPart, names: Names = name_to_patsy) -> str:
    """A right-hand side as patsy text, intercept explicit: ``1 + x`` or ``0 + x``."""
    head = "1" if part.intercept else "0"
    return " + ".join([head, *(term_to_patsy(t, names) for t in part.terms)])


def response_to_patsy(
    response: Expr, offsets: tuple[Expr, ...] = (), names: Names = name_to_patsy
) -> str:
    """The response, with any offsets subtracted (MixedLM has no offset argument)."""
    text = to_patsy(response, names)
    if isinstance(response, BinOp):  # arithmetic, not patsy's / and * operators
        text = f"I({text})"
    if not offsets:
        return text
    inner = text[2:-1] if text.startswith("I(") and text.endswith(")") else text
    return "I(" + inner + "".join(f" - ({to_patsy(o, names)})" for o in offsets) + ")"
