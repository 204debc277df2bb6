"""frame/design.py: the numpy path for plain columns equals patsy's own evaluation.

For generated frames (numbers, whole numbers, Categoricals, text, logical values)
and generated formulas over them (main effects, ``factor()`` of numbers, two- and
three-way interactions, with or without the intercept), :func:`design.build` with
the numpy path and with patsy evaluating every factor must give the same columns
(all three names, the same order) and the same numbers, and their designs must
build the same matrix on new rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lme2sm.formula import parse
from lme2sm.frame import design, plain_design
from lme2sm.frame.safe_names import safe_name

KINDS = ("float", "int", "category", "text", "bool")


@st.composite
def frames(draw):
    n = draw(st.integers(4, 30))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    data = {"y": np.arange(n, dtype=float)}
    names = []
    for i, kind in enumerate(kinds):
        name = f"v{i}"
        if kind == "float":
            values = draw(st.lists(st.floats(-50, 50, width=32), min_size=n, max_size=n))
            data[name] = np.asarray(values, dtype=float)
        elif kind == "int":
            data[name] = np.asarray(draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n)))
        elif kind == "bool":
            data[name] = np.asarray(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        else:
            words = draw(
                st.lists(st.sampled_from(["b", "a", "Zed", "c c", "é"]), min_size=n, max_size=n)
            )
            data[name] = (
                pd.Categorical(words) if kind == "category" else np.asarray(words, dtype=object)
            )
        names.append((name, kind))
    return pd.DataFrame(data), names


def _factor(name: str, kind: str, wrap: bool) -> str:
    return f"factor({name})" if wrap and kind in ("int", "float") else name


@st.composite
def formulas(draw, names):
    factors = [_factor(n, k, draw(st.booleans())) for n, k in names]
    terms = []
    for _ in range(draw(st.integers(1, 4))):
        size = draw(st.integers(1, min(3, len(factors))))
        terms.append(":".join(draw(st.permutations(factors))[:size]))
    head = draw(st.sampled_from(["", "0 + ", "1 + "]))
    return "y ~ " + head + " + ".join(terms) + " + (1 | g)"


def _designs(frame: pd.DataFrame, formula: str, plain: bool):
    parsed = parse(formula)
    return design.build(frame, [parsed.fixed_part], parsed.response_expr, plain=plain)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_numpy_path_equals_patsy_path(data):
    frame, names = data.draw(frames())
    formula = data.draw(formulas(names))
    (y_fast, (X_fast,)), (y_ref, (X_ref,)) = (_designs(frame, formula, p) for p in (True, False))
    assert X_fast.columns == X_ref.columns, formula
    np.testing.assert_array_equal(X_fast.values, X_ref.values)
    np.testing.assert_array_equal(y_fast.values, y_ref.values)
    assert X_fast.info.column_names == X_ref.info.column_names
    new = frame.iloc[::-1]
    names_ = X_ref.patsy_names
    np.testing.assert_array_equal(
        design.rows(X_fast.info, new, names_), design.rows(X_ref.info, new, names_)
    )


def test_numpy_path_is_taken_for_plain_columns_only():
    arrays = {
        safe_name("x"): np.array([1.0, 2.0]),
        safe_name("g"): pd.Categorical(["b", "a"]),
        safe_name("t"): np.array(["b", "a"], dtype=object),
    }
    assert plain_design.sniff("_c_x", arrays)[0] == "numerical"
    assert plain_design.sniff("C(_c_x)", arrays)[1] == (1.0, 2.0)
    kind, levels, codes = plain_design.sniff("_c_t", arrays)
    assert (kind, levels, codes.tolist()) == ("categorical", ("a", "b"), [1, 0])
    for code in ("np.log(_c_x)", "I(_c_x ** 2)", "C(_c_g, Sum)", "_c_missing", "C(_c_x"):
        assert plain_design.sniff(code, arrays) is None


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ v0 * v1 + (1 | g)",
        "y ~ 0 + v1:v0 + (1 | g)",
        "y ~ v0:v1 + v1 + (1 | g)",
        "y ~ factor(v2) * v0 + (1 | g)",
    ],
)
def test_contrasts_for_interactions_follow_patsy(formula):
    """patsy's rule (full coding where a margin is absent) on a fixed example."""
    frame = pd.DataFrame(
        {
            "y": np.arange(6.0),
            "v0": pd.Categorical(list("ababab")),
            "v1": [0.5, 1.0, 2.0, 3.5, 1.0, 0.0],
            "v2": [3, 1, 2, 3, 1, 2],
        }
    )
    (_, (fast,)), (_, (ref,)) = (_designs(frame, formula, p) for p in (True, False))
    assert fast.columns == ref.columns
    np.testing.assert_array_equal(fast.values, ref.values)
