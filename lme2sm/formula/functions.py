"""The functions lme2sm accepts in formulas, and how each one maps onto patsy.

One table, one row per function: adding a function is adding a row. Anything not in
the table is refused by the parser with a :class:`~lme2sm.FormulaError`, so formula
text never reaches patsy's ``eval`` unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lme2sm.formula.model import (
    Call,
    Expr,
    Keyword,
    Name,
    Number,
    Paren,
    String,
    UnaryOp,
    number_value,
    python_number,
)


@dataclass(frozen=True)
class FunctionRule:
    """How one formula function is checked and written for patsy.

    ``arity`` is the allowed number of positional arguments ``(min, max)``;
    ``data_args`` how many leading arguments read data (the rest are options such
    as a contrast); ``render`` builds patsy text from the already-rendered data
    arguments and the raw call; ``keywords`` are the named arguments allowed, each
    with the kind of literal it takes (``"number"`` or ``"logical"``).
    """

    arity: tuple[int, int]
    data_args: int
    render: Callable[[list[str], Call], str]
    doc: str
    keywords: tuple[tuple[str, str], ...] = ()
    options: tuple[str, ...] = ()
    """The kind of literal each positional argument after the data ones must be."""


def _numpy(name: str, numpy_name: str | None = None) -> FunctionRule:
    numpy_name = numpy_name or name
    return FunctionRule((1, 1), 1, lambda a, c: f"np.{numpy_name}({a[0]})", f"R's {name}(x)")


def _numpy_passthrough(name: str) -> FunctionRule:
    return FunctionRule((1, 1), 1, lambda a, c: f"np.{name}({a[0]})", f"numpy's np.{name}(x)")


def _c_render(args: list[str], call: Call) -> str:
    extra = [option_to_patsy(a) for a in call.args[1:]]
    return "C(" + ", ".join([args[0], *extra]) + ")"


def _q_render(args: list[str], call: Call) -> str:
    arg = call.args[0]
    assert isinstance(arg, String)
    return f"Q({arg.label})"


def option(call: Call, name: str, position: int, default: float) -> float:
    """The value of a literal option given by ``name=`` or at ``position``."""
    for i, arg in enumerate(call.args):
        if isinstance(arg, Keyword) and arg.name == name:
            return number_value(_literal(arg.value).text)
        if not isinstance(arg, Keyword) and i == position:
            return number_value(_literal(arg).text)
    return default


def _literal(expr: Expr) -> Number:
    """The number ``expr`` spells (``2``, ``(2)``, ``-1``, ``TRUE``); ValueError if none."""
    if isinstance(expr, Paren):
        return _literal(expr.inner)
    if isinstance(expr, UnaryOp) and expr.op == "-":
        return Number(repr(-number_value(_literal(expr.operand).text)))
    if not isinstance(expr, Number):
        raise ValueError(f"{expr.label} is not a literal")
    return expr


def _log_render(args: list[str], call: Call) -> str:
    if len(call.args) == 1:
        return f"np.log({args[0]})"
    base = python_number(_literal(_option_args(call)[0]).text)
    return f"I(np.log({args[0]}) / np.log({base}))"


def _option_args(call: Call) -> list[Expr]:
    return [a.value if isinstance(a, Keyword) else a for a in call.args[1:]]


def _scale_render(args: list[str], call: Call) -> str:
    """R's scale(x): centre by the mean, divide by the n-1 sd, both of the whole column.

    With data bound (:func:`lme2sm.frame.data_prep.bind_transforms`) the two numbers are
    written into the text, as R's ``makepredictcall`` does for predictions.
    """
    if call.baked:
        centre, spread = call.baked
        text = args[0]
        if centre != 0.0:
            sign = "-" if centre > 0 else "+"
            text = f"({text} {sign} {abs(centre)!r})"
        return f"I({text} / {spread!r})" if spread != 1.0 else f"I({text})"
    center = option(call, "center", 1, 1.0) != 0.0
    scale = option(call, "scale", 2, 1.0) != 0.0
    if center and scale:
        return f"standardize({args[0]}, ddof=1)"
    if center:
        return f"center({args[0]})"
    return f"I({args[0]} / np.sqrt(np.sum(np.square({args[0]})) / (len({args[0]}) - 1)))"


def _poly_render(args: list[str], call: Call) -> str:
    """R's poly(x, k): orthogonal polynomials (coefficients from the whole column) or
    ``raw = TRUE`` powers; helpers ``r_poly``/``r_poly_raw`` (:mod:`lme2sm.frame.rfunctions`)."""
    degree = int(option(call, "degree", 1, 1.0))
    if option(call, "raw", 2, 0.0) != 0.0:
        return f"r_poly_raw({args[0]}, {degree})"
    if call.baked:
        alpha, norm2 = call.baked[:degree], call.baked[degree:]
        return f"r_poly({args[0]}, {list(alpha)!r}, {list(norm2)!r})"
    return f"r_poly({args[0]}, {degree})"


FUNCTIONS: dict[str, FunctionRule] = {
    # R spellings
    "factor": FunctionRule((1, 1), 1, lambda a, c: f"C({a[0]})", "R's factor(x): categorical"),
    "as.factor": FunctionRule((1, 1), 1, lambda a, c: f"C({a[0]})", "R's as.factor(x)"),
    "as.numeric": FunctionRule(
        (1, 1), 1, lambda a, c: f"np.asarray({a[0]}, dtype=float)", "R's as.numeric(x)"
    ),
    "I": FunctionRule((1, 1), 1, lambda a, c: f"I({a[0]})", "arithmetic as written; ^ is a power"),
    "scale": FunctionRule(
        (1, 3),
        1,
        _scale_render,
        "R's scale(x): centre, divide by the n-1 sd (of the whole column, as R)",
        keywords=(("center", "logical"), ("scale", "logical")),
        options=("logical", "logical"),
    ),
    "poly": FunctionRule(
        (1, 3),
        1,
        _poly_render,
        "R's poly(x, k): orthogonal polynomials; poly(x, k, raw = TRUE) for powers",
        keywords=(("degree", "count"), ("raw", "logical")),
        options=("count", "logical"),
    ),
    "log": FunctionRule(
        (1, 2),
        1,
        _log_render,
        "R's log(x) or log(x, base)",
        keywords=(("base", "number"),),
        options=("number",),
    ),
    "offset": FunctionRule((1, 1), 1, lambda a, c: a[0], "a known term with coefficient 1"),
    "cbind": FunctionRule(
        (2, 2),
        2,
        lambda a, c: f"cbind({a[0]}, {a[1]})",
        "cbind(successes, failures): a binomial response (glmer only)",
    ),
    **{
        n: _numpy(n)
        for n in ("exp", "sqrt", "abs", "log10", "log2", "log1p", "expm1", "sin", "cos", "tan")
    },
    # patsy spellings (so formulas written for smf.mixedlm keep working)
    "C": FunctionRule((1, 2), 1, _c_render, "patsy's C(x[, contrast])"),
    "Q": FunctionRule((1, 1), 0, _q_render, 'patsy\'s Q("name") for awkward column names'),
    "center": FunctionRule((1, 1), 1, lambda a, c: f"center({a[0]})", "patsy's center(x)"),
    "standardize": FunctionRule(
        (1, 1), 1, lambda a, c: f"standardize({a[0]})", "patsy's standardize(x) (n sd)"
    ),
    **{
        f"np.{n}": _numpy_passthrough(n)
        for n in (
            "log",
            "exp",
            "sqrt",
            "abs",
            "log10",
            "log2",
            "log1p",
            "expm1",
            "square",
            "sin",
            "cos",
            "tan",
        )  # fmt: skip
    },
}
"""Every function a formula may call."""

WHOLE_COLUMN = ("scale", "poly")
"""Functions R evaluates on the whole column before rows with missing values elsewhere
are dropped; their numbers are bound to the data by ``data_prep.bind_transforms``."""

CONTRASTS = {"Treatment", "Sum", "Helmert", "Poly", "Diff"}
"""patsy contrast names allowed as ``C()``'s second argument."""


def data_argument_count(func: str) -> int | None:
    """How many leading arguments of ``func`` read data (None for an unknown function)."""
    rule = FUNCTIONS.get(func)
    return rule.data_args if rule else None


def option_to_patsy(expr: Expr) -> str:
    """A non-data argument (a contrast such as ``Treatment("b")``) as patsy text."""
    if isinstance(expr, Name):
        return expr.name
    if isinstance(expr, Call):
        return f"{expr.func}(" + ", ".join(option_to_patsy(a) for a in expr.args) + ")"
    if isinstance(expr, Keyword):
        return f"{expr.name}={option_to_patsy(expr.value)}"
    if isinstance(expr, Number):
        return python_number(expr.text)
    if isinstance(expr, String):
        return expr.label
    if isinstance(expr, UnaryOp):
        return f"{expr.op}{option_to_patsy(expr.operand)}"
    if isinstance(expr, Paren):
        return f"({option_to_patsy(expr.inner)})"
    raise TypeError(f"not an option: {expr!r}")


def check_call(call: Call) -> str | None:
    """Why ``call`` is not acceptable, or None when it is (used by the parser)."""
    rule = FUNCTIONS.get(call.func)
    if rule is None:
        return f"unknown function {call.func}()"
    positional = [a for a in call.args if not isinstance(a, Keyword)]
    named = [a for a in call.args if isinstance(a, Keyword)]
    allowed = dict(rule.keywords)
    low, high = rule.arity
    for kw in named:
        if kw.name not in allowed:
            if not allowed:
                return f"{call.func}() takes no named arguments here"
            names = ", ".join(f"{k} =" for k in allowed)
            return f"{call.func}() has no argument {kw.name}; it takes {names}"
    if named and any(not isinstance(a, Keyword) for a in call.args[call.args.index(named[0]) :]):
        return f"{call.func}(): write positional arguments before named ones"
    if not low <= len(call.args) <= high or len(positional) < low:
        n = f"{low}" if low == high else f"{low} to {high}"
        got = len(call.args)
        return f"{call.func}() takes {n} argument{'s' if high > 1 else ''}, got {got}"
    kinds = [*rule.options]
    for i, arg in enumerate(call.args[rule.data_args :]):
        kind = (
            allowed[arg.name] if isinstance(arg, Keyword) else kinds[i] if i < len(kinds) else None
        )
        if kind is None:
            continue
        value = arg.value if isinstance(arg, Keyword) else arg
        problem = _check_literal(call.func, value, kind)
        if problem:
            return problem
    if call.func == "Q" and not isinstance(call.args[0], String):
        return 'Q() takes a quoted column name: Q("my column")'
    if call.func == "C" and len(call.args) == 2 and not _is_contrast(call.args[1]):
        names = ", ".join(sorted(CONTRASTS))
        return (
            f"C()'s second argument must be a contrast ({names}), optionally called with literals"
        )
    return None


def _check_literal(func: str, expr: Expr, kind: str) -> str | None:
    try:
        value = number_value(_literal(expr).text)
    except ValueError:
        return f"{func}()'s {expr.label} must be a literal {'TRUE or FALSE' if kind == 'logical' else 'number'}"
    if kind == "logical" and value not in (0.0, 1.0):
        return f"{func}()'s {expr.label} must be TRUE or FALSE"
    if kind == "count" and not (value.is_integer() and 1 <= value <= 50):
        return f"{func}()'s degree {expr.label} must be a whole number from 1 to 50"
    if kind == "number" and not (value > 0 and value != 1):
        return f"{func}()'s base {expr.label} must be a positive number other than 1"
    return None


def _is_contrast(expr: Expr) -> bool:
    if isinstance(expr, Name):
        return expr.name in CONTRASTS
    if isinstance(expr, Call) and expr.func in CONTRASTS:
        return all(
            isinstance(a.value if isinstance(a, Keyword) else a, Number | String)
            for a in expr.args
        )
    return False


def known_functions_text() -> str:
    """A one-line list of the accepted functions, for error messages."""
    return ", ".join(f"{name}()" for name in FUNCTIONS if name not in ("offset", "cbind"))
