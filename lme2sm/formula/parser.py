"""The entry point: formula text → :class:`~lme2sm.formula.model.ParsedFormula`.

>>> p = parse("Reaction ~ Days + (Days || Subject)")
>>> p.fixed, [t.text for t in p.random_terms]
('Reaction ~ Days', ['1 | Subject', '0 + Days | Subject'])

Nothing is evaluated: names, numbers, strings and the functions in
:mod:`lme2sm.formula.functions` are all a formula may contain.
"""

from __future__ import annotations

from functools import lru_cache

from lme2sm.errors import FormulaError
from lme2sm.formula.expand import BARS, nobars, random_terms, walk
from lme2sm.formula.functions import check_call, known_functions_text
from lme2sm.formula.literals import scan_quoted
from lme2sm.formula.model import (
    LOGICAL_OPS,
    BinOp,
    Call,
    Expr,
    Keyword,
    Name,
    Paren,
    ParsedFormula,
    UnaryOp,
    is_logical,
)
from lme2sm.formula.structures import is_wrapper_call, refuse_misplaced, unwrap_structures
from lme2sm.formula.syntax import operator_span, parse_syntax
from lme2sm.formula.terms import linear_part

_ARITHMETIC = {"+", "-", "*", "/", "^"}
_EXPRESSION_OPS = _ARITHMETIC | (set(LOGICAL_OPS) - {"|"})
"""What an expression inside a call (or a comparison used as a term) may use: ``|`` is
not one, as lme4's findbars() reads it as a random-effects bar even inside I()."""
_AS_TERM = Call("I", ())
"""The stand-in call when a comparison is a term of its own: its operands are checked as
the argument of I() would be."""


def parse(formula: str) -> ParsedFormula:
    """Parse an lme4 formula, expanding ``||`` and ``/`` as lme4 does; glmmTMB's
    covariance structures (``diag(x | g)``) are random terms with their ``structure``.

    >>> p = parse("y ~ x + (1 | a/b)")
    >>> [(t.group, t.group_factors) for t in p.random_terms]
    [('b:a', ('b', 'a')), ('a', ('a',))]

    Raises
    ------
    lme2sm.FormulaError
        With the formula and a caret under the offending text.
    """
    if not isinstance(formula, str):
        raise FormulaError(f"a formula must be text, not {type(formula).__name__}")
    return _parse(formula)


@lru_cache(maxsize=256)
def _parse(formula: str) -> ParsedFormula:
    """The parse of ``formula``, kept per text: parsing is pure and a ParsedFormula is
    immutable (frozen dataclasses of tuples), so every caller may share one (a refit
    of the same formula skipped 0.3 ms of tokenising). A failure is not kept: it is
    raised again each time."""
    tree = parse_syntax(formula)
    structures: dict = {}
    if isinstance(tree, BinOp) and tree.op == "~":  # glmmTMB's us(), diag(), cs(), ar1()
        rhs, structures = unwrap_structures(tree.right, formula)
        tree = BinOp("~", tree.left, rhs, tree.span)
    _check_calls(tree, formula)
    response, rhs = _split(tree, formula)
    terms = random_terms(rhs, formula, structures)
    fixed_rhs = nobars(rhs)
    fixed = linear_part(fixed_rhs, response, formula)
    fixed_text = f"{response.label} ~ {fixed_rhs.label if fixed_rhs is not None else '1'}"
    return ParsedFormula(formula, response, fixed, terms, fixed_text)


def expanded_text(parsed: ParsedFormula) -> str:
    """The whole formula after lme4's expansions, as lme4 text.

    >>> expanded_text(parse("y ~ x + (z || g)"))
    'y ~ x + (1 | g) + (0 + z | g)'
    """
    bars = " + ".join(t.term_text for t in parsed.random_terms)
    if not bars:
        return parsed.fixed
    if parsed.fixed.endswith(" ~ 1"):
        return f"{parsed.response} ~ {bars}"
    return f"{parsed.fixed} + {bars}"


def _split(tree: Expr, formula: str) -> tuple[Expr, Expr]:
    """The response and right-hand side of ``response ~ rhs``, checked."""
    tildes = [n for n in walk(tree) if isinstance(n, BinOp | UnaryOp) and n.op == "~"]
    if not tildes:
        raise FormulaError(
            "the formula has no ~: write response ~ terms, e.g. y ~ x + (1 | g)",
            formula,
            (0, len(formula)),
        )
    if isinstance(tree, UnaryOp) and tree.op == "~":
        rhs = formula[tree.operand.span[0] : tree.operand.span[1]]
        raise FormulaError(
            f"the formula has no response before ~: write y ~ {rhs} with y the response column",
            formula,
            (tree.span[0], tree.span[0] + 1),
        )
    if len(tildes) > 1:
        spans = sorted(_tilde_span(n, formula) for n in tildes)
        raise FormulaError(
            "a formula has exactly one ~: write response ~ terms, e.g. y ~ x + z",
            formula,
            spans[1],
        )
    if not (isinstance(tree, BinOp) and tree.op == "~"):
        raise FormulaError(
            "~ must be at the top of the formula, not inside parentheses or a term: "
            "write response ~ terms, e.g. y ~ x + z",
            formula,
            _tilde_span(tildes[0], formula),
        )
    response = tree.left
    if isinstance(response, BinOp) and response.op in ("/", "*", "-"):
        return response, tree.right  # arithmetic on columns (glmer's incidence/size)
    if not isinstance(response, Name | Call):
        text = formula[response.span[0] : response.span[1]]
        raise FormulaError(
            f"the response {text} must be one column or a function of one: "
            "write e.g. y ~ ... or log(y) ~ ...",
            formula,
            response.span,
        )
    return response, tree.right


def _tilde_span(node: Expr, formula: str) -> tuple[int, int]:
    if isinstance(node, BinOp):
        return operator_span(node, formula)
    return (node.span[0], node.span[0] + 1)


def _check_calls(expr: Expr, formula: str, bare: bool = True) -> None:
    """Refuse unknown functions and formula operators inside function arguments;
    ``bare`` is False directly inside parentheses."""
    if isinstance(expr, Call):
        _check_call(expr, formula)
        return
    if is_logical(expr) and not isinstance(expr, Paren):
        if bare and isinstance(expr, BinOp) and _sums(expr):
            raise FormulaError(
                f"R reads {expr.label} as one variable, the comparison of a sum: write "
                "parentheses around the comparison to make it a term, e.g. a + (x > 2), or "
                "I(...) around it all for the arithmetic",
                formula,
                operator_span(expr, formula),
            )
        _check_argument(expr, _AS_TERM, formula)  # week > 2 as a term: one expression
        return
    if isinstance(expr, BinOp):
        _check_calls(expr.left, formula)
        _check_calls(expr.right, formula)
    elif isinstance(expr, UnaryOp):
        _check_calls(expr.operand, formula)
    elif isinstance(expr, Paren):
        _check_calls(expr.inner, formula, bare=False)


def _sums(comparison: BinOp) -> bool:
    """True when a side of ``comparison`` is a bare sum or difference (``a + x > 2``)."""
    return any(
        isinstance(s, BinOp) and s.op in ("+", "-") for s in (comparison.left, comparison.right)
    )


def _check_call(call: Call, formula: str, inside: Call | None = None) -> None:
    if is_wrapper_call(call):
        refuse_misplaced(call, formula, inside)
    problem = check_call(call)
    if problem is not None:
        if problem.startswith("unknown function"):
            start = call.span[0]
            quoted = formula.startswith("`", start)
            end = scan_quoted(formula, start)[0] if quoted else start + len(call.func)
            name_span = (start, end)
            raise FormulaError(
                f"{problem}: lme2sm knows {known_functions_text()}; compute other "
                "transformations as a column of the data first, or write I(...) for arithmetic",
                formula,
                name_span,
            )
        raise FormulaError(f"{problem}", formula, call.span)
    for arg in call.data_arguments():
        _check_argument(arg, call, formula)


def _check_argument(expr: Expr, call: Call, formula: str) -> None:
    """Inside a function argument only arithmetic and allowed calls may appear."""
    if isinstance(expr, Call):
        _check_call(expr, formula, call)
        return
    if isinstance(expr, Keyword):
        _check_argument(expr.value, call, formula)
        return
    if isinstance(expr, BinOp):
        if expr.op not in _EXPRESSION_OPS:
            what = _operator_problem(expr, call)
            raise FormulaError(what, formula, operator_span(expr, formula))
        _check_argument(expr.left, call, formula)
        _check_argument(expr.right, call, formula)
    elif isinstance(expr, UnaryOp):
        if expr.op == "~":
            raise FormulaError(
                f"~ cannot be inside {call.func}(): a formula has one ~",
                formula,
                (expr.span[0], expr.span[0] + 1),
            )
        _check_argument(expr.operand, call, formula)
    elif isinstance(expr, Paren):
        _check_argument(expr.inner, call, formula)


def _operator_problem(expr: BinOp, call: Call) -> str:
    """Why ``expr``'s operator cannot be inside ``call`` (or inside a comparison used as
    a term, when ``call`` is :data:`_AS_TERM`)."""
    if call is _AS_TERM:
        return (
            f"{expr.op} is a formula operator, not arithmetic, inside a comparison or after !: put the "
            "comparison in parentheses, e.g. a + (x > 2), or write I(...) for arithmetic"
        )
    if expr.op in BARS:
        what = (
            f"a random-effects term cannot be inside {call.func}(): write it as a term of "
            f"its own, e.g. ... + ({expr.label})"
        )
        if expr.op == "|":  # lme4's findbars() looks inside calls for it
            what += "; for R's logical or inside I(), write !(!a & !b)"
        return what
    if expr.op == "~":
        return f"~ cannot be inside {call.func}(): a formula has one ~"
    return (
        f"{expr.op} is not arithmetic inside {call.func}(): write it outside the call, e.g. "
        f"{call.func}(a):{call.func}(b), or use * for a product inside I()"
    )
