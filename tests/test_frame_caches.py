"""The model frame's caches (parse per formula text, design structure per formula and
levels) never carry one data set's answer into another's, and the numpy paths leave the
caller's data as it was."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lme2sm.datasets import load
from lme2sm.errors import DroppedRowsWarning
from lme2sm.frame.model_frame import build_model_frame


def _base(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"y": rng.normal(size=n), "g": np.repeat(list("abcdef"), n // 6)})


def test_levels_of_other_types_get_their_own_names():
    base = _base()
    flags = np.tile([True, False], 30)
    names = [
        build_model_frame("y ~ factor(x) + (1 | g)", base.assign(x=x)).fixed_names
        for x in (flags, flags.astype(int), flags, flags.astype(float))
    ]
    assert names == [
        ("(Intercept)", "factor(x)TRUE"),
        ("(Intercept)", "factor(x)1"),
        ("(Intercept)", "factor(x)TRUE"),
        ("(Intercept)", "factor(x)1"),  # R's level of the number 1.0 is "1"
    ]


def test_levels_of_a_float_column_are_named_as_r_prints_numbers():
    data = _base().assign(x=np.tile([0.5, 2.0, 3.0], 20), t=np.tile(["1.0", "2.0"], 30))
    frame = build_model_frame("y ~ factor(x) + t + (1 | g)", data)
    # a float's level as R prints it; a text column's as written
    assert frame.fixed_names == ("(Intercept)", "factor(x)2", "factor(x)3", "t2.0")


def test_same_formula_on_other_levels_is_built_for_those_levels():
    base = _base()
    a = build_model_frame("y ~ f + (1 | g)", base.assign(f=np.tile(["p", "q", "r"], 20)))
    b = build_model_frame("y ~ f + (1 | g)", base.assign(f=np.tile(["p", "s"], 30)))
    assert a.fixed_names == ("(Intercept)", "fq", "fr")
    assert b.fixed_names == ("(Intercept)", "fs")
    assert a.X.shape == (60, 3) and b.X.shape == (60, 2)
    np.testing.assert_array_equal(b.X[:, 1], np.tile([0.0, 1.0], 30))


def test_a_second_build_equals_the_first():
    data = _base().assign(x=np.linspace(0, 1, 60), h=np.tile(list("uvw"), 20))
    formula = "y ~ x + h + (x | g)"
    first, second = build_model_frame(formula, data), build_model_frame(formula, data)
    assert first.fixed_names == second.fixed_names
    np.testing.assert_array_equal(first.X, second.X)
    np.testing.assert_array_equal(first.y, second.y)
    for t1, t2 in zip(first.terms, second.terms, strict=True):
        np.testing.assert_array_equal(t1.codes, t2.codes)
        np.testing.assert_array_equal(t1.Z, t2.Z)
        assert t1.levels == t2.levels


def test_the_callers_data_is_left_as_it_was():
    data = _base().assign(
        x=np.r_[np.nan, np.linspace(0, 1, 59)],
        s=pd.array(["u", None] + ["v"] * 58, dtype="string"),
        c=pd.Categorical(np.tile(list("mn"), 30)),
    )
    before = data.copy(deep=True)
    frame = build_model_frame("y ~ x + s + c + (1 | g)", data)
    pd.testing.assert_frame_equal(data, before)
    assert frame.n == 58 and frame.n_dropped == 2  # the rows with NA in x or s
    frame.data.iloc[0, 0] = 1e6  # the frame's data is its own
    pd.testing.assert_frame_equal(data, before)


def test_missing_weights_drop_their_rows_and_say_so():
    """Weights are checked for missing values beside the formula's columns (not copied
    into the data): the rows go, the warning names them, the caller's data stays."""
    data = load("sleepstudy")
    w = np.linspace(0.5, 2.0, len(data))
    w[[3, 50]] = np.nan
    before = data.copy()
    with pytest.warns(DroppedRowsWarning, match=r"dropped 2 of 180 rows .*\(weights\) \(2\)"):
        frame = build_model_frame("Reaction ~ Days + (Days | Subject)", data, weights=w)
    pd.testing.assert_frame_equal(data, before)
    assert frame.n == 178
    np.testing.assert_array_equal(frame.weights, np.delete(w, [3, 50]))
    # a column that is also a variable of the formula: one mask, named once
    data["wcol"] = w
    with pytest.warns(DroppedRowsWarning, match=r"dropped 2 of 180 rows .*: wcol \(2\)$"):
        frame = build_model_frame("Reaction ~ wcol + (1 | Subject)", data, weights="wcol")
    np.testing.assert_array_equal(frame.weights, np.delete(w, [3, 50]))
    np.testing.assert_array_equal(frame.X[:, 1], np.delete(w, [3, 50]))
