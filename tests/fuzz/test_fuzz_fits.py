"""Fuzzing the fits: lmer, glmer and glmer_nb on hostile data frames.

Columns named like Python keywords, R reserved words, modules and functions (np, log,
C, I, Q, scale, ...), with spaces, quotes, backticks and Unicode; dtypes from object
mixes, bools, categoricals and nullable types to all-NaN, inf and complex; prior
weights that are NaN, negative, zero, short or text; odd indexes and duplicated
columns. Each call either fits or raises an lme2sm error (never a raw numpy, scipy,
pandas, patsy or statsmodels exception), never modifies the caller's frame, and never
executes formula text.
"""

from __future__ import annotations

from fuzz_strategies import FORMULAS, budget, formula_for, frames, only_lme2sm_errors, weights
from hypothesis import given
from hypothesis import strategies as st

import lme2sm

GAUSSIAN = ["float", "int", "bool", "object numbers", "object mix", "all nan", "inf",
            "nan some", "Float64 NA", "text", "category", "huge", "complex", "zero"]  # fmt: skip
BINARY = ["binary", "proportion", "bool", "float", "boolean NA", "text", "count", "negative",
          "category", "all nan", "-inf"]  # fmt: skip
COUNTS = ["count", "Int64 NA", "binary", "float", "negative", "inf", "-inf", "object mix",
          "zero", "huge"]  # fmt: skip
FAMILIES = (
    ["binomial"] * 4
    + ["poisson"] * 3
    + ["Gamma", "inverse.gaussian", "gaussian", "bogus", 3, None]
)


@budget(1200)
@given(
    case=frames(GAUSSIAN),
    template=st.sampled_from(FORMULAS),
    REML=st.booleans(),
    data=st.data(),
)
def test_lmer(case, template, REML, data):
    frame, names = case
    formula = formula_for(template, names)
    w = data.draw(weights(frame, names), label="weights")
    only_lme2sm_errors(lambda: lme2sm.lmer(formula, frame, REML=REML, weights=w), frame)


@budget(300)
@given(
    case=frames(BINARY),
    template=st.sampled_from([*FORMULAS[:9], "{y} ~ {x} + offset({h}) + (1 | {g})"]),
    family=st.sampled_from(FAMILIES),
    data=st.data(),
)
def test_glmer(case, template, family, data):
    frame, names = case
    formula = formula_for(template, names)
    w = data.draw(weights(frame, names), label="weights")
    only_lme2sm_errors(lambda: lme2sm.glmer(formula, frame, family=family, weights=w), frame)


@budget(30)
@given(case=frames(COUNTS), template=st.sampled_from(FORMULAS[:3]), data=st.data())
def test_glmer_nb(case, template, data):
    frame, names = case
    formula = formula_for(template, names)
    w = data.draw(weights(frame, names), label="weights")
    only_lme2sm_errors(lambda: lme2sm.glmer_nb(formula, frame, weights=w), frame)
