"""Hypothesis, with a fixed small budget: whatever formula text and data frame a user
passes, only lme2sm's errors escape parse() and translate(), the caller's frame is never
modified, and formula text is never executed."""

from __future__ import annotations

import builtins
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lme2sm
from lme2sm import Lme2smError

BUDGET = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)

COLUMNS = ["y", "x", "z", "g", "h", "größe", "Sepal.Length", "yield", "Intercept"]
ATOMS = [
    *COLUMNS, "`my var`", "`Sepal.Length`", "`yield`", "1", "0", "2", ".5", "1e-3", "5L",
    "0x10", "1e400", "02", "pi", "TRUE", "NA", "-1", "1e12",
]  # fmt: skip
FUNCTIONS = [
    "log", "exp", "sqrt", "sin", "cos", "tan", "abs", "log10", "log2", "log1p", "I",
    "factor", "as.numeric", "scale", "poly", "offset", "C", "np.log", "Q", "sentinel",
    "__import__", "eval", "np.sentinel", "os.system", "center", "standardize",
]  # fmt: skip
OPERATORS = ["+", "-", "*", "/", ":", "^", "%in%", "|", "||", "**", "~", ",", "="]


def _expressions() -> st.SearchStrategy[str]:
    atom = st.sampled_from(ATOMS)
    return st.recursive(
        atom,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(OPERATORS), inner).map(" ".join),
            inner.map(lambda e: f"({e})"),
            st.tuples(st.sampled_from(FUNCTIONS), st.lists(inner, min_size=0, max_size=3)).map(
                lambda fa: f"{fa[0]}({', '.join(fa[1])})"
            ),
            st.tuples(inner, st.sampled_from(["|", "||"]), st.sampled_from(COLUMNS)).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
        ),
        max_leaves=8,
    )


formulas = st.one_of(
    st.tuples(st.sampled_from(COLUMNS), _expressions()).map(lambda t: f"{t[0]} ~ {t[1]}"),
    st.tuples(st.sampled_from(COLUMNS), _expressions(), _expressions()).map(
        lambda t: f"{t[0]} ~ {t[1]} + (1 | g) + {t[2]}"
    ),
    st.text(alphabet="yxg~+-*/:^|(),.`'\"0123456789e größeLI_ \n%", max_size=30),
)


@pytest.fixture
def sentinel(monkeypatch):
    """A name reachable from any Python eval: calling it records the call."""
    calls: list[object] = []
    monkeypatch.setattr(builtins, "sentinel", lambda *a: calls.append(a) or 1, raising=False)
    return calls


@BUDGET
@given(formula=formulas)
def test_parse_raises_only_formula_errors(formula, sentinel):
    try:
        lme2sm.parse(formula)
    except lme2sm.FormulaError as error:
        assert str(error)
    assert sentinel == []


def _column(kind: str, n: int, draw) -> pd.Series:
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    values = {
        "float": lambda: rng.normal(size=n),
        "int": lambda: rng.integers(0, 4, size=n),
        "bigfloat": lambda: rng.choice([2.0**64, 2.0**64 + 4096, 3e20, 1.5], size=n),
        "bool": lambda: rng.random(n) > 0.5,
        "text": lambda: rng.choice(["a", "b", "c"], size=n),
        "constant": lambda: np.ones(n),
        "inf": lambda: np.where(rng.random(n) > 0.8, np.inf, rng.normal(size=n)),
    }[kind]()
    series = pd.Series(values)
    nullable = draw(st.sampled_from([None, "Int64", "boolean", "string", "Float64", "category"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if nullable == "category":
                series = series.astype("category")
            elif nullable is not None:
                series = series.astype(nullable)
        except (TypeError, ValueError, OverflowError):
            pass
    if draw(st.booleans()) and n:
        series = series.astype(object)
        series.iloc[draw(st.integers(0, n - 1))] = None
    return series


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.integers(0, 40))
    kinds = ["float", "int", "bigfloat", "bool", "text", "constant", "inf"]
    frame = pd.DataFrame(
        {name: _column(draw(st.sampled_from(kinds)), n, draw) for name in COLUMNS}
    )
    if draw(st.booleans()):
        frame = pd.concat([frame, frame[["x"]]], axis=1)  # a duplicated column name
    if draw(st.booleans()):
        frame["when"] = pd.date_range("2020-01-01", periods=n, tz="UTC")
    return frame


lme4_formulas = st.one_of(
    formulas,
    st.tuples(
        st.sampled_from(["y", "x", "log(y)", "größe"]),
        st.lists(
            st.sampled_from(
                ["x", "z", "x:z", "factor(h)", "scale(x)", "poly(z, 2)", "sin(x)", "I(x^02)",
                 "`Sepal.Length`", "`yield`", "Intercept", "offset(z)", "when", "log(x, 2)"]
            ),
            max_size=3,
        ),
        st.lists(
            st.sampled_from(
                ["(1 | g)", "(x | g)", "(1 | g/h)", "(x || h)", "(1 | h)", "(0 + z | g)",
                 "(1 | g:h)", "(1 | when)", "(1 | größe)"]
            ),
            min_size=1,
            max_size=3,
        ),
    ).map(lambda t: f"{t[0]} ~ {' + '.join([*t[1], *t[2]])}"),
)  # fmt: skip


@BUDGET
@given(formula=lme4_formulas, data=frames(), approximate=st.booleans())
def test_translate_raises_only_lme2sm_errors_and_never_touches_the_frame(
    formula, data, approximate, sentinel
):
    before = data.copy(deep=True)
    dtypes = data.dtypes.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            t = lme2sm.translate(formula, data, approximate=approximate)
        except Lme2smError as error:
            assert str(error)
        else:
            assert t.data is not data
            compile(t.code(), "<code>", "exec")
            assert t.explain()
    pd.testing.assert_frame_equal(data, before)
    assert data.dtypes.equals(dtypes)
    assert sentinel == []


@BUDGET
@given(formula=lme4_formulas, data=frames())
def test_drop_in_with_lme4_terms_raises_only_lme2sm_errors(formula, data, sentinel):
    if "|" not in formula:
        return  # no lme4 term: statsmodels' own behaviour, by design
    before = data.copy(deep=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model = lme2sm.mixedlm(formula, data)
        except Lme2smError as error:
            assert str(error)
        else:
            assert model.nobs > 0
    pd.testing.assert_frame_equal(data, before)
    assert sentinel == []
