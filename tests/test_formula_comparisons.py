"""R's comparisons (``> < >= <= == !=``), ``&`` and ``!`` in formulas: parsed with R's
precedence, evaluated on the rows as R's logicals (a factor with levels FALSE/TRUE in
the model matrix, named as R names it), fitted against lme4 (tests/fixtures/comparisons.json,
from tools/make_comparison_fixtures.R)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lme2sm
from lme2sm import FormulaError
from lme2sm.errors import ConvergenceWarning, DroppedRowsWarning
from lme2sm.formula import parse
from lme2sm.formula.patsy_text import part_to_patsy
from lme2sm.frame.model_frame import build_model_frame

FIXTURES = Path(__file__).parent / "fixtures"
LME4 = json.loads((FIXTURES / "comparisons.json").read_text())
SLEEP = pd.read_csv(Path(lme2sm.__file__).parent / "datasets" / "sleepstudy.csv")

# formula -> the fixed part's term labels (R's attr(terms(f), "term.labels"))
LABELS = {
    "y ~ trt + I(week > 2)": ("trt", "I(week > 2)"),
    "y ~ (week > 2)": ("week > 2",),
    "y ~ week > 2": ("week > 2",),
    "y ~ (week>=2) + (week<=2) + (week==2) + (week!=2)": (
        "week >= 2", "week <= 2", "week == 2", "week != 2",
    ),
    "y ~ I(x + 1 > 2 * z)": ("I(x + 1 > 2 * z)",),
    "y ~ I(-x^2 < z / 2)": ("I(-x^2 < z/2)",),
    "y ~ I(x > 1 & z < 2)": ("I(x > 1 & z < 2)",),
    "y ~ I(!(x > 1))": ("I(!(x > 1))",),
    "y ~ a + !(x > 1)": ("a", "!(x > 1)"),
    "y ~ (x > 2):a": ("x > 2:a",),
    "y ~ I((x > 2) + (z > 1))": ("I((x > 2) + (z > 1))",),
    "y ~ (x > 2) + (1 | g)": ("x > 2",),
}  # fmt: skip


@pytest.mark.parametrize("formula", LABELS)
def test_term_labels_as_r(formula):
    assert parse(formula).fixed_part.labels == LABELS[formula]


# formula -> the patsy text lme2sm writes (no formula text is ever evaluated as written)
PATSY = {
    "y ~ I(x + 1 > 2 * z)": "1 + I(x + 1 > 2 * z)",
    "y ~ (week > 2)": "1 + I(week > 2)",
    "y ~ I(x > 1 & !(z == 2))": "1 + I(np.logical_and(x > 1, np.logical_not((z == 2))))",
    "y ~ I((x > 2) + (z > 1))": (
        "1 + I(np.asarray((x > 2), dtype=float) + np.asarray((z > 1), dtype=float))"
    ),
}


@pytest.mark.parametrize("formula", PATSY)
def test_patsy_text(formula):
    assert part_to_patsy(parse(formula).fixed_part) == PATSY[formula]


def test_precedence_as_r():
    """Comparison binds looser than arithmetic, ``&`` looser than comparison, prefix ``!``
    between them; ``!`` reaches over ``+`` (R: ``!a + b`` is ``!(a + b)``)."""
    (term,) = parse("y ~ I(x + 1 > 2 * z & w)").fixed_part.terms
    both = term.factors[0].args[0]
    assert (both.op, both.left.op, both.left.left.op, both.left.right.op) == ("&", ">", "+", "*")
    (term,) = parse("y ~ I(!x + 1 > 2)").fixed_part.terms
    assert term.factors[0].args[0].op == "!"
    assert term.factors[0].args[0].operand.op == ">"


# marked formula («» around the span the caret must cover) -> words of the message
ERRORS = {
    "y ~ I(a < b «<» c)": ["do not chain", "(a < b) & (b < ...)"],
    "y ~ I(x«<-»2)": ["assignment", "x < -2"],
    "y ~ I(x«->»2)": ["assignment"],
    "y ~ I(x > 1 «&&» z)": ["&& compares single values", "write &"],
    "y ~ I(x > 1 «|» z)": ["cannot be inside I()", "!(!a & !b)"],
    "y ~ a + x «>» 2": ["one variable", "a + (x > 2)"],
    "y ~ a«:»b > 2": [": is a formula operator"],
    "y ~ I(x «!» z)": ["logical not"],
    "y ~ I(x >«)»": ["a value is missing after >"],
    "y ~ log(x *«)»": ["a value is missing after *"],
    "y ~ I(x «=>» 2)": ["write >="],
}


def _unmark(marked: str) -> tuple[str, tuple[int, int]]:
    start = marked.index("«")
    end = marked.index("»") - 1
    return marked.replace("«", "").replace("»", ""), (start, end)


@pytest.mark.parametrize("marked", ERRORS)
def test_errors_point_at_the_problem(marked):
    formula, span = _unmark(marked)
    with pytest.raises(FormulaError) as info:
        parse(formula)
    message = info.value.message
    assert info.value.span == span, message
    for words in ERRORS[marked]:
        assert words in message
    assert "^" in str(info.value)


def test_column_names_as_r_model_matrix():
    bacteria = _bacteria()
    for formula, key in (("y ~ I(week > 2)", "I"), ("y ~ (week > 2)", "bare")):
        frame = build_model_frame(formula + " + (1 | ID)", bacteria, glm=True)
        assert list(frame.fixed_names) == LME4["names"][key]
    mixed = "Reaction ~ I(Days + 1 > 2 * 2) + !(Days > 3) + I(Days > 2 & Days < 7)"
    frame = build_model_frame(mixed.replace("~ ", "~ (1 | Subject) + "), SLEEP)
    assert list(frame.fixed_names) == LME4["names"]["mixed"]
    days = SLEEP["Days"].to_numpy()
    np.testing.assert_array_equal(frame.X[:, 1], days + 1 > 4)
    np.testing.assert_array_equal(frame.X[:, 2], ~((days > 3) + ((days > 2) & (days < 7)) != 0))


def test_arithmetic_on_logicals_gives_numbers_as_r():
    """R: (Days > 2) + (Days > 5) is 0, 1 or 2 (numpy's bool + bool would be an or)."""
    frame = build_model_frame("Reaction ~ I((Days > 2) + (Days > 5)) + (1 | Subject)", SLEEP)
    assert frame.fixed_names == ("(Intercept)", "I((Days > 2) + (Days > 5))")
    days = SLEEP["Days"].to_numpy()
    np.testing.assert_array_equal(frame.X[:, 1], (days > 2).astype(float) + (days > 5))


def test_missing_values_drop_the_row():
    data = SLEEP.copy()
    data.loc[[0, 5, 9], "Days"] = np.nan
    with pytest.warns(DroppedRowsWarning, match="dropped 3 of 180"):
        frame = build_model_frame("Reaction ~ I(Days > 4) + (1 | Subject)", data)
    assert frame.X.shape == (177, 2)
    np.testing.assert_array_equal(frame.X[:, 1], data["Days"].dropna().to_numpy() > 4)


def _bacteria() -> pd.DataFrame:
    data = pd.read_csv(FIXTURES / "bacteria.csv")
    data["trt"] = pd.Categorical(data["trt"], categories=["placebo", "drug", "drug+"])
    return data


def test_glmer_bacteria_against_lme4():
    with warnings.catch_warnings():
        # lme4 gives no convergence warning here, and neither do we (checked where the
        # Newton step lands: at stage 2's stop max|grad| was 0.0027)
        warnings.simplefilter("error", ConvergenceWarning)
        m = lme2sm.glmer("y ~ trt + I(week > 2) + (1 | ID)", _bacteria(), family="binomial")
    loglik = float(m.logLik())
    default, tight = LME4["bacteria"], LME4["bacteria_tight"]
    assert loglik == pytest.approx(default["logLik"], rel=1e-6)
    assert loglik >= default["logLik"]  # lme4's default PIRLS (tolPwrss 1e-7) stops short
    assert loglik == pytest.approx(tight["logLik"], rel=1e-9)
    fixef = m.fixef()
    assert list(fixef.index) == list(tight["fixef"])
    np.testing.assert_allclose(fixef.to_numpy(), list(tight["fixef"].values()), rtol=1e-5)
    np.testing.assert_allclose(fixef.to_numpy(), list(default["fixef"].values()), rtol=1e-4)


def test_lmer_sleepstudy_against_lme4():
    m = lme2sm.lmer("Reaction ~ I(Days > 4) + (1 | Subject)", SLEEP)
    ref = LME4["sleepstudy"]
    assert float(m.logLik()) == pytest.approx(ref["logLik"], rel=1e-9)
    assert list(m.fixef().index) == list(ref["fixef"])
    np.testing.assert_allclose(m.fixef().to_numpy(), list(ref["fixef"].values()), rtol=1e-8)
