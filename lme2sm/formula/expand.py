"""lme4's expansions of random-effects terms: ``findbars``, ``nobars``, ``||`` and ``/``.

Copies lme4 (``findbars(expandDoubleVerts(f))``) term for term, in lme4's order:

>>> from .syntax import parse_syntax
>>> rhs = parse_syntax("y ~ x + (x + z || g) + (1 | a/b)").right
>>> [t.text for t in random_terms(rhs)]
['1 | g', '0 + x | g', '0 + z | g', '1 | b:a', '1 | a']
>>> nobars(rhs).label
'x'

Bars must stand in parentheses as summands of the right-hand side; anything else
(``y ~ x | g``, ``x * (1 | g)``) is refused with a :class:`~lme2sm.FormulaError`.
"""

from __future__ import annotations

from collections.abc import Iterator

from lme2sm.errors import FormulaError
from lme2sm.formula.model import BinOp, Call, Expr, LinearPart, Name, Paren, RandomTerm, UnaryOp
from lme2sm.formula.syntax import operator_span
from lme2sm.formula.terms import linear_part

BARS = ("|", "||")


def is_bar(expr: Expr) -> bool:
    return isinstance(expr, BinOp) and expr.op in BARS


def has_bar(expr: Expr) -> bool:
    """True when ``expr`` contains ``|`` or ``||`` anywhere (lme4's ``anyBars``)."""
    return any(is_bar(node) for node in walk(expr))


def walk(expr: Expr) -> Iterator[Expr]:
    """Every node of ``expr``, parents first, left to right (without recursing, so a
    long formula costs time in proportion to its nodes, not their depth)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, BinOp):
            stack += (node.right, node.left)
        elif isinstance(node, UnaryOp):
            stack.append(node.operand)
        elif isinstance(node, Paren):
            stack.append(node.inner)
        elif isinstance(node, Call):
            stack += reversed(node.args)


def find_bars(rhs: Expr, formula: str = "") -> list[tuple[Paren, BinOp]]:
    """The bar terms of ``rhs`` in lme4's order, each with the parentheses around it."""
    found: list[tuple[Paren, BinOp]] = []
    _find(rhs, formula, found)
    return found


def _find(expr: Expr, formula: str, found: list[tuple[Paren, BinOp]]) -> None:
    if isinstance(expr, BinOp) and expr.op in "+-" or isinstance(expr, UnaryOp) and expr.op == "+":
        parts = (expr.left, expr.right) if isinstance(expr, BinOp) else (expr.operand,)
        if isinstance(expr, BinOp) and expr.op == "-" and has_bar(expr.right):
            bar = next(n for n in walk(expr.right) if is_bar(n))
            raise _error(
                "a random-effects term cannot be subtracted: remove it, or write "
                "... + (...) to add one",
                formula,
                _bar_span(bar, formula, expr),
            )
        for part in parts:
            _find(part, formula, found)
    elif isinstance(expr, Paren) and is_bar(expr.inner):
        bar = expr.inner
        assert isinstance(bar, BinOp)
        for side in (bar.left, bar.right):
            inner = next((n for n in walk(side) if is_bar(n)), None)
            if inner is not None:
                raise _error(
                    "a random-effects term cannot contain another | or ||: "
                    "write separate terms joined with +, e.g. (1 | g) + (1 | h)",
                    formula,
                    _bar_span(inner, formula),
                )
        found.append((expr, bar))
    elif isinstance(expr, Paren):
        _find(expr.inner, formula, found)
    elif is_bar(expr):
        assert isinstance(expr, BinOp)
        text = formula[expr.span[0] : expr.span[1]] if formula else expr.label
        raise _error(
            f"{expr.op} must be inside parentheses: write ({text}) for a random-effects term",
            formula,
            operator_span(expr, formula) if formula else None,
        )
    elif has_bar(expr):
        bar = next(n for n in walk(expr) if is_bar(n))
        text = formula[bar.span[0] : bar.span[1]] if formula else bar.label
        raise _error(
            "a random-effects term must be added to the model with +: "
            f"write ... + ({text}) instead",
            formula,
            _bar_span(bar, formula, expr),
        )


def _bar_span(bar: Expr, formula: str, within: Expr | None = None) -> tuple[int, int] | None:
    """The span of ``bar`` widened to the parentheses right around it, if any."""
    if not formula:
        return None
    start, end = bar.span
    for node in walk(within) if within is not None else ():
        if isinstance(node, Paren) and node.inner is bar:
            return node.span
    return (start, end)


def _error(message: str, formula: str, span: tuple[int, int] | None) -> FormulaError:
    return FormulaError(message, formula or None, span if formula else None)


def nobars(rhs: Expr) -> Expr | None:
    """``rhs`` without its bar terms, as lme4's ``nobars`` (None when nothing is left).

    >>> from .syntax import parse_syntax
    >>> nobars(parse_syntax("x * z + (1 | g) + z")).label
    'x * z + z'
    """
    return _nobars(rhs)[0]


def _nobars(rhs: Expr) -> tuple[Expr | None, bool]:
    """:func:`nobars` and whether a bar was removed (one pass over the sums: bars
    anywhere else were refused by :func:`find_bars` already)."""
    if is_bar(rhs):
        return None, True
    if isinstance(rhs, Paren):
        inner, removed = _nobars(rhs.inner)
        if not removed:
            return rhs, False
        return (None if inner is None else Paren(inner, rhs.span)), True
    if isinstance(rhs, UnaryOp) and rhs.op == "+":
        operand, removed = _nobars(rhs.operand)
        if not removed:
            return rhs, False
        return (None if operand is None else UnaryOp("+", operand, rhs.span)), True
    if isinstance(rhs, BinOp) and rhs.op in "+-":
        (left, removed_left), (right, removed_right) = _nobars(rhs.left), _nobars(rhs.right)
        if not (removed_left or removed_right):
            return rhs, False
        # as lme4: "(1 | g) - 1" leaves "1", so its intercept stays
        if left is None or right is None:
            return (left if right is None else right), True
        return BinOp(rhs.op, left, right, rhs.span), True
    return rhs, False


def random_terms(
    rhs: Expr, formula: str = "", structures: dict[tuple[int, int], str] | None = None
) -> tuple[RandomTerm, ...]:
    """``findbars(expandDoubleVerts(rhs))`` as :class:`RandomTerm` objects; a bar whose
    parentheses' span is in ``structures`` (glmmTMB's ``diag(x | a/b)``) gives each of
    its terms that covariance structure."""
    out: list[RandomTerm] = []
    structures = structures or {}
    for paren, bar in find_bars(rhs, formula):
        source = formula[paren.span[0] : paren.span[1]] if formula else paren.label
        structure = structures.get(paren.span)
        for lhs_part, lhs_label in expand_double_vert(bar, formula):
            for group, factors in expand_slash(bar.right, formula):
                out.append(
                    RandomTerm(lhs_part, group, factors, paren.span, source, lhs_label, structure)
                )
    return tuple(out)


def expand_double_vert(bar: BinOp, formula: str = "") -> list[tuple[LinearPart, str]]:
    """The left-hand sides a bar stands for: one for ``|``; for ``||`` the intercept
    and each term alone, as lme4's ``expandDoubleVerts`` (factors are not split).

    >>> from .syntax import parse_syntax
    >>> [t for _, t in expand_double_vert(parse_syntax("x * z || g"))]
    ['1', '0 + x', '0 + z', '0 + x:z']
    """
    part = linear_part(bar.left, None, formula)
    if part.offsets:
        offset = next(n for n in walk(bar.left) if isinstance(n, Call) and n.func == "offset")
        raise _error(
            "offset() inside a random-effects term has no effect (lme4 drops it without a "
            f"word): write it in the fixed part, e.g. y ~ x + {offset.label} + (...)",
            formula,
            offset.span,
        )
    if not part.intercept and not part.terms:
        lhs = formula[bar.left.span[0] : bar.left.span[1]] if formula else bar.left.label
        group = formula[bar.right.span[0] : bar.right.span[1]] if formula else bar.right.label
        raise _error(
            f"the random-effects term ({lhs} {bar.op} {group}) has no effects: "
            f"write (1 | {group}) for a random intercept",
            formula,
            bar.left.span,
        )
    if bar.op == "|":
        return [(part, bar.left.label)]
    out = [(LinearPart(True), "1")] if part.intercept else []
    out += [(LinearPart(False, (term,)), f"0 + {term.label}") for term in part.terms]
    return out


def expand_slash(group: Expr, formula: str = "") -> list[tuple[str, tuple[str, ...]]]:
    """lme4's names and factors for a grouping factor; ``a/b/c`` → ``c:(b:a)``, ``b:a``, ``a``.

    >>> from .syntax import parse_syntax
    >>> expand_slash(parse_syntax("a/b/c"))
    [('c:(b:a)', ('c', 'b', 'a')), ('b:a', ('b', 'a')), ('a', ('a',))]
    """
    if not any(isinstance(n, BinOp) and n.op == "/" for n in walk(group)):
        _check_group(group, formula)
        name = group.name if isinstance(group, Name) else group.label  # lme4's barnames()
        return [(name, _factors(group))]
    if not (isinstance(group, BinOp) and group.op == "/"):
        raise _error(
            f"lme4 cannot read the grouping factor {group.label}: write the nesting "
            "without parentheses, e.g. (1 | a/b/c)",
            formula,
            group.span,
        )
    operands: list[Expr] = []
    node: Expr = group
    while isinstance(node, BinOp) and node.op == "/":
        operands.insert(0, node.right)
        node = node.left
    if not isinstance(node, Name):
        _check_group(node, formula)
        outer = node.label
        inner = operands[0].label
        raise _error(
            f"lme4 can only nest under a single variable, not {outer}: write "
            f"(1 | {outer}) + (1 | {inner}:{outer}) instead",
            formula,
            node.span,
        )
    for operand in operands:
        _check_group(operand, formula)
    names: list[Expr] = [node]
    for operand in operands:
        inner = names[0]
        names.insert(
            0,
            BinOp(
                ":",
                operand,
                Paren(inner, inner.span) if isinstance(inner, BinOp) else inner,
                group.span,
            ),
        )
    return [(n.name if isinstance(n, Name) else n.label, _factors(n)) for n in names]


def _factors(group: Expr) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n.name for n in walk(group) if isinstance(n, Name)))


def _check_group(group: Expr, formula: str) -> None:
    """A grouping factor is a variable, an interaction ``a:b`` of them, or one in ()."""
    if isinstance(group, Name):
        return
    if isinstance(group, Paren):
        return _check_group(group.inner, formula)
    if isinstance(group, BinOp) and group.op == ":":
        _check_group(group.left, formula)
        return _check_group(group.right, formula)
    text = formula[group.span[0] : group.span[1]] if formula else group.label
    if isinstance(group, BinOp) and group.op in ("+", "*"):
        a, b = group.left.label, group.right.label
        hint = (
            f"write (1 | {a}:{b}) for their combinations, or (1 | {a}) + (1 | {b}) for two factors"
        )
    elif isinstance(group, Call) and group.args:
        hint = f"write the column itself, e.g. (1 | {group.args[0].label}): it is always a factor"
    else:
        hint = "write a column name, e.g. (1 | g), or a:b for the combinations of two"
    raise _error(f"lme4 cannot use {text} as a grouping factor: {hint}", formula, group.span)
