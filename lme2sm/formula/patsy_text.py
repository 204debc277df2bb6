"""Writing parsed expressions as patsy formula text (never evaluating anything).

patsy evaluates formula text in one namespace where the data's columns come first, so
a column named ``np``, ``C`` or ``len`` would hide the module or function the text
calls by that name. The text written for statsmodels therefore names a column by
:func:`statsmodels_column`: the column's own name, unless that name is one the
namespace uses (:data:`NAMESPACE_NAMES`), that starts with ``_`` or that patsy would
read as a number (``Inf``, ``nan``, ``Infinity``: :func:`reads_as_number`); such a
column is renamed to its :func:`safe_name` (``np`` → ``_c_np``) in the frame
statsmodels gets.
Names patsy cannot take bare (dots, spaces, Python keywords) are written as
``Q("name")``. R's ``^`` becomes ``**`` inside ``I()``.
"""

from __future__ import annotations

import builtins
import re
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
    is_logical,
    is_python_name,
    python_number,
    quote_string,
)

_PATSY_BUILTINS = ("I", "Q", "ContrastMatrix", "Treatment", "Poly", "Sum", "Helmert", "Diff")
_PATSY_BUILTINS += ("C", "center", "standardize", "scale", "bs", "cr", "cc", "te")

NAMESPACE_NAMES = frozenset(
    {"np", "r_poly", "r_poly_raw", "poly_coefficients", *_PATSY_BUILTINS, *dir(builtins)}
)
"""Every name the formula text's namespace defines besides the data: numpy as ``np``,
lme2sm's R helpers, patsy's built-ins (``patsy.builtins.__all__``) and Python's. A
column with one of these names would hide it, so statsmodels sees such a column renamed."""

_PLAIN = re.compile(r"[A-Za-z0-9_]+\Z")


def safe_name(column: str) -> str:
    """An identifier for ``column`` that no function, module or Python keyword spells:
    ``_c_`` + an ASCII word, else ``_x_`` + the UTF-8 bytes in hex. Injective (the two
    forms differ in their prefix). lme2sm's own designs name every column so; the
    statsmodels text only the columns :func:`statsmodels_column` renames."""
    if _PLAIN.match(column):
        return "_c_" + column
    return "_x_" + column.encode("utf-8").hex()


def reads_as_number(name: str) -> bool:
    """Whether patsy reads ``name``, written bare, as a number literal: it tries
    ``float()`` on each atom, so ``Inf``, ``nan`` and ``Infinity`` (any case) are numbers
    there ("numbers besides '0' and '1' are only allowed with \\*\\*"), not columns."""
    try:
        float(name)
    except (ValueError, OverflowError):
        return False
    return True


def statsmodels_column(column: str) -> str:
    """The name ``column`` has in the frame statsmodels sees: its own, or its
    :func:`safe_name` when the formula namespace uses that name (``np``, ``C``, ``len``),
    it starts with ``_`` (where the internal names live) or patsy would read it as a
    number (``Inf`` → ``_c_Inf``). Injective: kept names never start with ``_``, renamed
    ones always do.

    >>> statsmodels_column("np"), statsmodels_column("Inf"), statsmodels_column("x")
    ('_c_np', '_c_Inf', 'x')
    """
    if column in NAMESPACE_NAMES or column.startswith("_") or reads_as_number(column):
        return safe_name(column)
    return column


_PY_OPS = {"^": "**", "+": "+", "-": "-", "*": "*", "/": "/", "**": "**", ":": "*"}
_PY_OPS.update({op: op for op in (">", "<", ">=", "<=", "==", "!=")})


def name_to_patsy(name: str) -> str:
    """How the statsmodels text names column ``name``: ``x`` stays ``x``,
    ``Sepal.Length`` becomes ``Q("Sepal.Length")``, ``np`` becomes ``_c_np``
    (:func:`statsmodels_column`).

    ``Intercept`` is quoted too: bare, patsy's column would clash with its own intercept.
    So is a name Python would read as another (identifiers are NFKC-normalised: bare,
    the full-width ``ｘ`` would be the column ``x``).
    """
    name = statsmodels_column(name)
    bare = is_python_name(name) and name != "Intercept"
    if bare and unicodedata.normalize("NFKC", name) == name:  # Python reads ｘ as x
        return name
    return f"Q({quote_string(name)})"


Names = Callable[[str], str]
"""How a column name is written in the text: :func:`name_to_patsy` for the text users
see (and statsmodels evaluates), or the model frame's internal names
(:func:`lme2sm.frame.safe_names.safe_name`)."""


def to_patsy(expr: Expr, names: Names = name_to_patsy) -> str:
    """patsy/Python text for one expression, each column written by ``names``."""
    if isinstance(expr, Call) and expr.func == "Q":
        return names(expr.data_arguments()[0].name)  # the column itself, as names writes it
    if isinstance(expr, Name):
        return names(expr.name)
    if isinstance(expr, Number):
        return python_number(expr.text)
    if isinstance(expr, String):
        return expr.label
    if isinstance(expr, Paren):
        return f"({to_patsy(expr.inner, names)})"
    if isinstance(expr, UnaryOp):
        if expr.op == "!":
            return f"np.logical_not({to_patsy(expr.operand, names)})"
        return f"{expr.op}{_number_text(expr.operand, names)}"
    if isinstance(expr, BinOp):
        left, right = _number_text(expr.left, names), _number_text(expr.right, names)
        if expr.op == "&":
            left, right = to_patsy(expr.left, names), to_patsy(expr.right, names)
            return f"np.logical_and({left}, {right})"
        return f"{left} {_PY_OPS[expr.op]} {right}"
    if isinstance(expr, Call):
        rule = FUNCTIONS[expr.func]
        args = [to_patsy(a, names) for a in expr.data_arguments()] if expr.func != "Q" else []
        return rule.render(args, expr)
    if isinstance(expr, Keyword):
        return f"{expr.name}={to_patsy(expr.value, names)}"
    raise TypeError(f"not an expression: {expr!r}")


def _number_text(expr: Expr, names: Names) -> str:
    """An operand of arithmetic or a comparison: a logical one as 0/1 numbers, as R
    computes ``(x > 2) + (z > 1)`` (numpy's bool + bool would be a logical or)."""
    text = to_patsy(expr, names)
    inner = expr.args[0] if isinstance(expr, Call) and expr.func == "I" and expr.args else expr
    return f"np.asarray({text}, dtype=float)" if is_logical(inner) else text


def factor_to_patsy(factor: Expr, names: Names = name_to_patsy) -> str:
    """One factor of a term; a comparison written as a term (``week > 2``) goes inside
    ``I()``, where patsy reads it as one Python expression."""
    text = to_patsy(factor, names)
    return f"I({text})" if is_logical(factor) else text


def term_to_patsy(term: Term, names: Names = name_to_patsy) -> str:
    """``recipe:temp`` → ``recipe:temp``; ``factor(g):x`` → ``C(g):x``."""
    return ":".join(factor_to_patsy(f, names) for f in term.factors)


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
