"""Plain data objects for a parsed lme4 formula (pure text: no pandas, no statsmodels).

A formula ``y ~ x + (x | g)`` parses into a :class:`ParsedFormula`: the response
expression, the fixed part as R-style terms (:class:`LinearPart`) and the random terms
(:class:`RandomTerm`), each already expanded as lme4's ``findbars(expandDoubleVerts())``
does. Every expression node knows

* ``label``: how R deparses it, which is how lme4 names coefficients
  (``I(x^2)``, ``factor(cyl)``, ``log(x)``), and
* ``variables()``: the data columns it reads.

Turning expressions into patsy text lives in :mod:`lme2sm.formula.patsy_text`.
"""

from __future__ import annotations

import keyword
import math
from dataclasses import dataclass, field

from lme2sm.formula.rchars import is_syntactic

Span = tuple[int, int]
"""Half-open ``(start, end)`` character positions into the formula text."""

_R_RESERVED = {
    "if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE",
    "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "in",
}  # fmt: skip


_READ_AS_OTHER = {"T", "F", "."}
"""Names R deparses bare that lme2sm reads as something else (``T``/``F`` are refused as
ambiguous, ``.`` means all other columns): written in backticks, so lme2sm's text of a
formula reads back as the same formula."""

_DEPARSE_ESCAPES = {
    "\\": "\\\\", "`": "\\`", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
    "\r": "\\r", "\t": "\\t", "\v": "\\v",
}  # fmt: skip


def r_name(name: str) -> str:
    r"""R's deparse of a variable name: backticks around non-syntactic names, with R's
    escapes inside them (backslash, backtick, control characters), so the text reads
    back as the same name.

    >>> r_name("Days"), r_name("my var"), r_name("a`b"), r_name("a\\b")
    ('Days', '`my var`', '`a\\`b`', '`a\\\\b`')
    """
    if is_syntactic(name) and name not in _R_RESERVED and name not in _READ_AS_OTHER:
        return name
    return "`" + "".join(_deparse_char(c) for c in name) + "`"


def quote_string(text: str) -> str:
    r"""``text`` as a double-quoted literal that R and Python both read back as ``text``
    (R's deparse: ``\\``, ``\"``, ``\n`` and the other escapes; invisible characters
    as ``\u200b``).

    >>> print(quote_string('say "hi"\n'))
    "say \"hi\"\n"
    """
    out = []
    for char in text:
        if char == '"':
            out.append('\\"')
        elif char in _DEPARSE_ESCAPES and char != "`":
            out.append(_DEPARSE_ESCAPES[char])
        elif ord(char) < 0x20 or char == "\x7f":
            out.append(f"\\{ord(char):03o}")
        elif not char.isprintable() and not char == " ":
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _deparse_char(char: str) -> str:
    if char in _DEPARSE_ESCAPES:
        return _DEPARSE_ESCAPES[char]
    if ord(char) < 0x20 or char == "\x7f":
        return f"\\{ord(char):03o}"
    return char


def is_python_name(name: str) -> bool:
    """True when ``name`` can stand bare in patsy formula text."""
    return name.isidentifier() and not keyword.iskeyword(name)


COMPARISONS = (">", "<", ">=", "<=", "==", "!=")
"""R's comparison operators: each gives a logical, a factor with levels FALSE/TRUE."""
LOGICAL_OPS = (*COMPARISONS, "&", "!")
"""The operators whose result is logical (``|`` is lme4's bar, even inside ``I()``)."""


def is_logical(expr: object) -> bool:
    """True when ``expr`` (through parentheses) is a comparison, ``&`` or ``!``: R's
    logical vector, which model.matrix codes as a factor with levels FALSE/TRUE.

    >>> is_logical(Paren(BinOp(">", Name("x"), Number("2"))))
    True
    """
    while isinstance(expr, Paren):
        expr = expr.inner
    return isinstance(expr, BinOp | UnaryOp) and expr.op in LOGICAL_OPS


CONSTANTS = {"pi": math.pi, "TRUE": 1.0, "FALSE": 0.0}
"""R's named constants allowed inside function arguments (a column named ``pi`` is
written in backticks)."""
_PYTHON_CONSTANTS = {"pi": "np.pi", "TRUE": "True", "FALSE": "False"}


def number_value(text: str) -> float:
    """The value of an R numeric literal: ``.5``, ``1e-3``, ``5L``, ``0x10``, ``0x1p4``.

    >>> [number_value(t) for t in (".5", "1e-3", "5L", "0x10", "0xFFL", "0x1p4")]
    [0.5, 0.001, 5.0, 16.0, 255.0, 16.0]
    """
    if text in CONSTANTS:
        return CONSTANTS[text]
    text = text[:-1] if text.endswith("L") else text
    if text[:2] in ("0x", "0X"):
        try:
            if "p" in text or "P" in text or "." in text:
                return float.fromhex(text)
            return float(int(text, 16))
        except OverflowError:
            return math.inf  # as R reads it; the tokenizer refuses it
    return float(text)


def python_number(text: str) -> str:
    """An R numeric literal as Python text with the same value (``02`` → ``2``).

    >>> [python_number(t) for t in ("02", "5L", "0x10", ".5", "1e-3", "1e300")]
    ['2', '5', '16', '0.5', '0.001', '1e+300']
    """
    if text in _PYTHON_CONSTANTS:
        return _PYTHON_CONSTANTS[text]
    value = number_value(text)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def r_number(text: str) -> str:
    """R's deparse of a numeric literal in a term label (15 significant digits, R's
    fixed/sci choice; ``5L`` and ``0x10`` deparse as the doubles 5 and 16 there).

    >>> [r_number(t) for t in ("1", "1.50", "100000", "123456", "0.001", "1e-4", "2L")]
    ['1', '1.5', '1e+05', '123456', '0.001', '1e-04', '2']
    """
    if text in CONSTANTS:
        return text
    value = number_value(text)
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.14e}".split("e")
    digits = mantissa.replace(".", "").rstrip("0")
    sig, exp = len(digits), int(exponent)
    decimals = max(0, sig - exp - 1)
    fixed_width = (exp + 1 if exp >= 0 else 1) + (decimals + 1 if decimals else 0)
    sci_width = sig + (1 if sig > 1 else 0) + 2 + max(2, len(str(abs(exp))))
    if fixed_width <= sci_width:
        return f"{value:.{decimals}f}"
    head = digits[0] + ("." + digits[1:] if sig > 1 else "")
    return f"{head}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


# ---------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class Name:
    """A data column, written bare or in R backticks."""

    name: str
    span: Span = field(default=(0, 0), compare=False)

    @property
    def label(self) -> str:
        return r_name(self.name)

    def variables(self) -> tuple[str, ...]:
        return (self.name,)


@dataclass(frozen=True)
class Number:
    """A numeric literal; ``text`` is as written, ``label`` as R deparses it."""

    text: str
    span: Span = field(default=(0, 0), compare=False)

    @property
    def label(self) -> str:
        return r_number(self.text)

    def variables(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class String:
    """A string literal (``Q("yield")``, ``Treatment("b")``)."""

    value: str
    span: Span = field(default=(0, 0), compare=False)

    @property
    def label(self) -> str:
        return quote_string(self.value)

    def variables(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class Keyword:
    """A named argument inside a call: ``center = FALSE``, ``ddof=1``."""

    name: str
    value: Expr
    span: Span = field(default=(0, 0), compare=False)

    @property
    def label(self) -> str:
        return f"{self.name} = {self.value.label}"

    def variables(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class Call:
    """A function call: ``log(x)``, ``factor(g)``, ``I(x^2)``, ``np.log(x)``, ``C(f)``.

    ``func`` is the name as written. Which functions are allowed, which arguments read
    data and how each maps to patsy is the table in :mod:`lme2sm.formula.functions`.
    """

    func: str
    args: tuple[Expr, ...]
    span: Span = field(default=(0, 0), compare=False)
    baked: tuple[float, ...] = field(default=(), compare=False, repr=False)
    """Numbers computed from the whole data column (``scale``'s mean and sd, ``poly``'s
    coefficients), set by ``data_prep.bind_transforms``; written into the patsy text."""
    n_data: int | None = field(default=None, compare=False, repr=False)
    """How many leading arguments read data (the rest are options such as a contrast),
    set by the parser from the function's rule; None: every argument."""

    @property
    def label(self) -> str:
        return f"{self.func}({', '.join(a.label for a in self.args)})"

    def data_arguments(self) -> tuple[Expr, ...]:
        """The arguments that read data columns (``Q("x")`` reads ``x``)."""
        if self.func == "Q" and self.args and isinstance(self.args[0], String):
            return (Name(self.args[0].value),)
        n = len(self.args) if self.n_data is None else self.n_data
        return tuple(a for a in self.args[:n] if not isinstance(a, Keyword))

    def variables(self) -> tuple[str, ...]:
        out: list[str] = []
        for arg in self.data_arguments():
            for v in arg.variables():
                if v not in out:
                    out.append(v)
        return tuple(out)


@dataclass(frozen=True)
class BinOp:
    """Arithmetic inside ``I()`` or a function argument (``+ - * / ^``), a comparison
    (``> < >= <= == !=``) or ``&``; formula operators between terms."""

    op: str
    left: Expr
    right: Expr
    span: Span = field(default=(0, 0), compare=False)

    @property
    def label(self) -> str:
        if self.op in ("^", ":", "/"):
            return f"{self.left.label}{self.op}{self.right.label}"
        return f"{self.left.label} {self.op} {self.right.label}"

    def variables(self) -> tuple[str, ...]:
        return _merge(self.left.variables(), self.right.variables())


@dataclass(frozen=True)
class UnaryOp:
    """Unary minus or plus (``-x``), or R's logical not (``!x``)."""

    op: str
    operand: Expr
    span: Span = field(default=(0, 0), compare=False)

    @property
    def label(self) -> str:
        return f"{self.op}{self.operand.label}"

    def variables(self) -> tuple[str, ...]:
        return self.operand.variables()


@dataclass(frozen=True)
class Paren:
    """Explicit parentheses inside an arithmetic expression (kept for deparsing)."""

    inner: Expr
    span: Span = field(default=(0, 0), compare=False)

    @property
    def label(self) -> str:
        return f"({self.inner.label})"

    def variables(self) -> tuple[str, ...]:
        return self.inner.variables()


Expr = Name | Number | String | Keyword | Call | BinOp | UnaryOp | Paren


def _merge(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """The names of ``groups`` in order of first appearance, each once."""
    return tuple(dict.fromkeys(v for group in groups for v in group))


# ---------------------------------------------------------------------------- terms


@dataclass(frozen=True)
class Term:
    """One model term: an interaction of factors (a main effect has one factor).

    Factors are in R's order (the order their variables first appear in the
    formula), so ``label`` is R's term label: ``x``, ``recipe:temp``, ``I(x^2)``.
    """

    factors: tuple[Expr, ...]

    @property
    def label(self) -> str:
        return ":".join(f.label for f in self.factors)

    @property
    def degree(self) -> int:
        return len(self.factors)

    def variables(self) -> tuple[str, ...]:
        return _merge(*(f.variables() for f in self.factors))


@dataclass(frozen=True)
class LinearPart:
    """The right-hand side of a model in term form, as R's ``terms()`` sees it.

    ``terms`` are ordered as R orders them (by degree, then first appearance),
    ``intercept`` says whether ``(Intercept)`` is in the model, ``offsets`` holds the
    arguments of ``offset(...)`` calls.
    """

    intercept: bool
    terms: tuple[Term, ...] = ()
    offsets: tuple[Expr, ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(t.label for t in self.terms)

    @property
    def text(self) -> str:
        """R text of the right-hand side: ``1 + x``, ``0 + x``, ``x + offset(o)``, ``1``."""
        parts = [t.label for t in self.terms]
        parts += [f"offset({o.label})" for o in self.offsets]
        if not self.intercept:
            return " + ".join(["0", *parts])
        return " + ".join(parts) if parts else "1"

    def variables(self) -> tuple[str, ...]:
        return _merge(*(t.variables() for t in self.terms), *(o.variables() for o in self.offsets))


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(effects | group)`` after lme4's expansions.

    ``effects_part`` is the bar's left-hand side in term form. ``group`` is lme4's
    name for the grouping factor (``g``, ``b:a``, ``c:(b:a)``; one column's name comes
    without backticks, as lme4's ``barnames()`` gives it); ``group_factors`` are
    the data columns whose level combinations define it, in that label's order
    (``("c", "b", "a")`` for ``c:(b:a)``). ``span`` and ``source`` point at the bar
    term in the original formula that this term came from; ``lhs_label`` is the
    bar's left-hand side as R deparses it (``1 + x``, ``0 + x:z`` after ``||``).
    """

    effects_part: LinearPart
    group: str
    group_factors: tuple[str, ...]
    span: Span = field(default=(0, 0), compare=False)
    source: str = field(default="", compare=False)
    lhs_label: str = field(default="", compare=False)
    structure: str | None = None
    """glmmTMB's covariance structure when the term was written in a wrapper (``us``,
    ``diag``, ``cs``, ``ar1``); None for a plain lme4 term (unstructured)."""

    @property
    def covariance(self) -> str:
        """The covariance structure fitted: ``us`` (lme4's, also for a plain term),
        ``diag``, ``cs`` or ``ar1``."""
        return self.structure or "us"

    @property
    def term_text(self) -> str:
        """The term as written after the expansions: ``(x | g)``, ``diag(x | g)``."""
        return f"{self.structure or ''}({self.text})"

    @property
    def effects(self) -> tuple[str, ...]:
        """Effect labels as lme4 names them (``x``, ``z``, ``x:z``); no intercept."""
        return self.effects_part.labels

    @property
    def intercept(self) -> bool:
        return self.effects_part.intercept

    @property
    def lhs_text(self) -> str:
        """The bar's left-hand side as R deparses findbars' output: ``1``, ``0 + x``, ``x``.

        This is ``lhs_label`` (the text as written, deparsed) when the parser set it,
        otherwise it is built from the effects.
        """
        if self.lhs_label:
            return self.lhs_label
        labels = list(self.effects)
        if self.intercept:
            return " + ".join(labels) if labels else "1"
        return " + ".join(["0", *labels])

    @property
    def text(self) -> str:
        """``0 + x | g``: the term as lme4's ``findbars()`` deparses it."""
        group = self.group
        if self.group_factors == (group,):
            group = r_name(group)
        return f"{self.lhs_text} | {group}"

    def variables(self) -> tuple[str, ...]:
        return _merge(self.effects_part.variables(), self.group_factors)


@dataclass(frozen=True)
class ParsedFormula:
    """A whole lme4 formula, parsed and expanded (see :func:`lme2sm.parse`)."""

    formula: str
    response_expr: Expr
    fixed_part: LinearPart
    random_terms: tuple[RandomTerm, ...]
    fixed_text: str = field(default="", compare=False)

    @property
    def response(self) -> str:
        """The response as R deparses it: ``Reaction``, ``log(y)``."""
        return self.response_expr.label

    @property
    def fixed(self) -> str:
        """The formula without its random terms, in lme4 text (``nobars``): ``y ~ x``.

        This is ``fixed_text`` (R's deparse of the right-hand side without bars, so
        ``y ~ x * z``, ``y ~ x - 1``) when the parser set it, else built from the terms.
        """
        if self.fixed_text:
            return self.fixed_text
        return f"{self.response} ~ {self.fixed_part.text}"

    @property
    def has_random(self) -> bool:
        return bool(self.random_terms)

    def variables(self) -> tuple[str, ...]:
        """Every data column the formula reads, in order of first use."""
        return _merge(
            self.response_expr.variables(),
            self.fixed_part.variables(),
            *(t.variables() for t in self.random_terms),
        )
