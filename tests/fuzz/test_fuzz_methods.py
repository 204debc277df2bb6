"""Fuzzing the result methods on fits of hostile frames.

Each example fits lmer (or glmer) on a hostile frame (fuzz_strategies.frames); when the
fit succeeds, every result method a user reaches for next runs on it: summary, fixef,
ranef, coef, VarCorr, vcov, fitted, residuals, predict (on the frame, a few of its rows,
rows with a column's values replaced by hostile ones, a missing column, no rows, with
``se_fit``, without the random part), simulate, Wald intervals, anova, tidy, glance,
r2, the statsmodels view and the translation (its printed code compiled). Each call
returns or raises an lme2sm error, never a raw numpy, scipy, pandas, patsy or
statsmodels exception; none modifies the frame fitted or the new data; none executes
formula text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fuzz_strategies import (
    FORMULAS,
    budget,
    column,
    formula_for,
    frames,
    only_lme2sm_errors,
)
from hypothesis import assume, given
from hypothesis import strategies as st

import lme2sm

GAUSSIAN = ["float", "int", "bool", "object numbers", "object mix", "nan some", "Float64 NA",
            "text", "category", "huge", "zero"]  # fmt: skip
BINARY = ["binary", "proportion", "bool", "boolean NA", "count", "category"]
NEW_KINDS = ["object mix", "text", "float", "all nan", "bool", "category", "datetime",
             "complex", "string", "Int64 NA", "unique text", "one level"]  # fmt: skip
MIXES = [[1, "a", 2, b"b"], [b"a", None, b"b", 3], ["a", b"a", None, 1.5], [1, None, 2, 3]]


def _new_data(draw, frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Rows to predict on: the frame's own, a few, or with a hostile change."""
    kind = draw(st.sampled_from(["same", "head", "hostile column", "mix", "missing", "empty"]))
    new = frame.copy()
    if kind == "head":
        new = new.head(draw(st.integers(1, 4)))
    elif kind == "hostile column" and len(new.columns):
        i = draw(st.integers(0, len(names) - 1))
        col = column(draw(st.sampled_from(NEW_KINDS)), len(new), np.random.default_rng(i))
        new[names[i]] = np.asarray(col, dtype=object) if len(new) else []
    elif kind == "mix" and len(new.columns):
        i = draw(st.integers(0, len(names) - 1))
        mix = draw(st.sampled_from(MIXES))
        new[names[i]] = pd.Series([mix[j % 4] for j in range(len(new))], dtype=object).values
    elif kind == "missing":
        new = new.drop(columns=names[draw(st.integers(1, len(names) - 1))])
    elif kind == "empty":
        new = new.iloc[:0]
    return new


def _translation(m):
    """lmer's ``translation`` is a property, glmer's a method."""
    return m.translation if isinstance(m, lme2sm.LmerResult) else m.translation()


def _methods(m, new: pd.DataFrame) -> dict:
    calls = {
        "summary": lambda: str(m.summary()),
        "fixef": m.fixef,
        "ranef": lambda: {k: v.to_numpy() for k, v in m.ranef().items()},
        "coef": m.coef,
        "VarCorr": lambda: str(m.VarCorr()),
        "vcov": m.vcov,
        "fitted": m.fitted,
        "residuals": m.residuals,
        "predict": lambda: m.predict(new),
        "predict re_form=~0": lambda: m.predict(new, re_form="~0"),
        "predict se_fit": lambda: m.predict(new, se_fit=True),
        "simulate": lambda: m.simulate(2, seed=1),
        "confint Wald": lambda: m.confint(method="Wald"),
        "tidy": m.tidy,
        "glance": m.glance,
        "r2": m.r2_nakagawa,
        "translation": lambda: compile(_translation(m).code(), "<code>", "exec"),
    }
    if isinstance(m, lme2sm.LmerResult):
        calls["anova"] = m.anova
        calls["statsmodels"] = lambda: m.statsmodels.params
    return calls


def _fuzz(m, frame: pd.DataFrame, new: pd.DataFrame) -> None:
    for name, call in _methods(m, new).items():
        before_new = new.copy(deep=True)
        only_lme2sm_errors(call, frame)
        pd.testing.assert_frame_equal(new, before_new, check_exact=True)
        assert name


@budget(40)
@given(case=frames(GAUSSIAN), template=st.sampled_from(FORMULAS[:13]), data=st.data())
def test_lmer_result_methods(case, template, data):
    frame, names = case
    formula = formula_for(template, names)
    m = only_lme2sm_errors(lambda: lme2sm.lmer(formula, frame), frame)
    assume(not isinstance(m, Exception))
    _fuzz(m, frame, _new_data(data.draw, frame, names))


@budget(20)
@given(case=frames(BINARY), template=st.sampled_from(FORMULAS[:9]), data=st.data())
def test_glmer_result_methods(case, template, data):
    frame, names = case
    formula = formula_for(template, names)
    m = only_lme2sm_errors(lambda: lme2sm.glmer(formula, frame, family="binomial"), frame)
    assume(not isinstance(m, Exception))
    _fuzz(m, frame, _new_data(data.draw, frame, names))
