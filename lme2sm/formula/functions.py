"""The functions lme2sm accepts in formulas, and how each one maps onto patsy.

One table, one row per function: adding a function is adding a row. Anything not in
the table is refused by the parser with a :class:`~lme2sm.FormulaError`, so formula
text never reaches patsy's ``eval`` unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import Call, Expr, Keyword, Name, Number, String


@dataclass(frozen=True)
class FunctionRule:
    """How one formula function is checked and written for patsy.

    ``arity`` is the allowed number of positional arguments ``(min, max)``;
    ``data_args`` how many leading arguments read data (the rest are options such
    as a contrast); ``render`` builds patsy text from the already-rendered data
    arguments and the raw call.
    """

    arity: tuple[int, int]
    data_args: int
    render: Callable[[list[str], Call], str]
    doc: str


def _numpy(name: str) -> FunctionRule:
    return FunctionRule((1, 1), 1, lambda a, c: f"np.{name}({a[0]})", f"R's {name}(x)")


def _numpy_passthrough(name: str) -> FunctionRule:
    return FunctionRule((1, 1), 1, lambda a, c: f"np.{name}({a[0]})", f"numpy's np.{name}(x)")


def _c_render(args: list[str], call: Call) -> str:
    from .patsy_text import option_to_patsy

    extra = [option_to_patsy(a) for a in call.args[1:]]
    return "C(" + ", ".join([args[0], *extra]) + ")"


def _q_render(args: list[str], call: Call) -> str:
    arg = call.args[0]
    assert isinstance(arg, String)
    return f"Q({arg.label})"


FUNCTIONS: dict[str, FunctionRule] = {
    # R spellings
    "factor": FunctionRule((1, 1), 1, lambda a, c: f"C({a[0]})", "R's factor(x): categorical"),
    "as.factor": FunctionRule((1, 1), 1, lambda a, c: f"C({a[0]})", "R's as.factor(x)"),
    "I": FunctionRule((1, 1), 1, lambda a, c: f"I({a[0]})", "arithmetic as written; ^ is a power"),
    "scale": FunctionRule(
        (1, 1),
        1,
        lambda a, c: f"standardize({a[0]}, ddof=1)",
        "R's scale(x): centre, divide by the n-1 sd",
    ),
    "offset": FunctionRule((1, 1), 1, lambda a, c: a[0], "a known term with coefficient 1"),
    "cbind": FunctionRule(
        (2, 2),
        2,
        lambda a, c: f"cbind({a[0]}, {a[1]})",
        "cbind(successes, failures): a binomial response (glmer only)",
    ),
    **{n: _numpy(n) for n in ("log", "exp", "sqrt", "abs", "log10", "log2", "log1p", "expm1")},
    # patsy spellings (so formulas written for smf.mixedlm keep working)
    "C": FunctionRule((1, 2), 1, _c_render, "patsy's C(x[, contrast])"),
    "Q": FunctionRule((1, 1), 0, _q_render, 'patsy\'s Q("name") for awkward column names'),
    "center": FunctionRule((1, 1), 1, lambda a, c: f"center({a[0]})", "patsy's center(x)"),
    "standardize": FunctionRule(
        (1, 1), 1, lambda a, c: f"standardize({a[0]})", "patsy's standardize(x) (n sd)"
    ),
    **{
        f"np.{n}": _numpy_passthrough(n)
        for n in ("log", "exp", "sqrt", "abs", "log10", "log2", "log1p", "expm1", "square")
    },
}
"""Every function a formula may call."""

CONTRASTS = {"Treatment", "Sum", "Helmert", "Poly", "Diff"}
"""patsy contrast names allowed as ``C()``'s second argument."""


def data_arguments(call: Call) -> tuple[Expr, ...]:
    """The arguments of ``call`` that read data columns (``Q("x")`` reads ``x``)."""
    if call.func == "Q" and call.args and isinstance(call.args[0], String):
        return (Name(call.args[0].value),)
    rule = FUNCTIONS.get(call.func)
    n = rule.data_args if rule else len(call.args)
    return tuple(a for a in call.args[:n] if not isinstance(a, Keyword))


def check_call(call: Call) -> str | None:
    """Why ``call`` is not acceptable, or None when it is (used by the parser)."""
    rule = FUNCTIONS.get(call.func)
    if rule is None:
        return f"unknown function {call.func}()"
    positional = [a for a in call.args if not isinstance(a, Keyword)]
    low, high = rule.arity
    if len(call.args) != len(positional):
        return f"{call.func}() takes no named arguments here"
    if not low <= len(positional) <= high:
        n = f"{low}" if low == high else f"{low} to {high}"
        return f"{call.func}() takes {n} argument{'s' if high > 1 else ''}, got {len(positional)}"
    if call.func == "Q" and not isinstance(call.args[0], String):
        return 'Q() takes a quoted column name: Q("my column")'
    if call.func == "C" and len(call.args) == 2 and not _is_contrast(call.args[1]):
        names = ", ".join(sorted(CONTRASTS))
        return (
            f"C()'s second argument must be a contrast ({names}), optionally called with literals"
        )
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
