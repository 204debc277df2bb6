"""Issue 23: whatever a column is called, the statsmodels code lme2sm prints runs and
fits the model lme2sm fits.

patsy reads a bare atom as a number when Python's ``float()`` does, so a column named
``Inf``, ``nan`` or ``Infinity`` written bare in the statsmodels text was refused
(``PatsyError: numbers besides '0' and '1' are only allowed with **``) by
``translate(...).model()``, the printed code and ``result.statsmodels``. Such a column
now gets its safe name (``_c_Inf``) as the namespace's names do.

The property (hypothesis over column names): one column of sleepstudy renamed to a
drawn name, used as a covariate or as the grouping factor, gives a translation whose
model, whose printed code run as printed, and whose lmer fit equal those of the same
column called ``z``; the caller's frame is never changed; no raw patsy, numpy or pandas
exception reaches the caller.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lme2sm
from lme2sm.datasets import load
from lme2sm.formula.model import r_name
from lme2sm.formula.patsy_text import reads_as_number, safe_name, statsmodels_column

NUMBERS = ["Inf", "inf", "INF", "nan", "NaN", "nAn", "Infinity", "infinity", "iNfInItY"]
NUMBERS += ["1", "2", "1e3", "1_0"]
SHADOW = ["I", "C", "Q", "np", "len", "center", "r_poly", "print", "sum"]
AWKWARD = ["my col", "a.b", "Sepal.Length", "é", "Größe", "x\u0662", "\uff58", "\U0001d465"]
AWKWARD += ["1x", "2nd", "0x1", "_x", "__init__", "_c_Inf", "Intercept", "class", "lambda", "NA"]
AWKWARD += ["a b.c", " x", "x ", "a\tb", "a\nb", "a'b", 'a"b', "a`b", "a\\b", "y~x", "(x)"]
NAMES = NUMBERS + SHADOW + AWKWARD

ROLES = {
    "covariate": "Reaction ~ Days + {} + (1 | Subject)",
    "slope": "Reaction ~ {} + ({} | Subject)",
    "group": "Reaction ~ Days + (1 | {})",
}


def _frame(name: str, role: str) -> pd.DataFrame:
    d = load("sleepstudy").copy()
    if role == "group":
        d[name] = d["Subject"].astype(str)
        return d.drop(columns="Subject")
    d[name] = np.random.default_rng(23).normal(size=len(d)).round(3)
    return d


def _formula(name: str, role: str) -> str:
    return ROLES[role].format(*[r_name(name)] * ROLES[role].count("{}"))


def _run_code(code: str, data: pd.DataFrame):
    namespace = {"data": data}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "<translation>", "exec"), namespace)  # lme2sm's own output
    return namespace["result"]


def _faces(name: str, role: str) -> dict:
    """What every face gives for the model with the column called ``name``."""
    data = _frame(name, role)
    before = data.copy()
    formula = _formula(name, role)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = lme2sm.translate(formula, data)
        model = t.model()
        m = lme2sm.lmer(formula, data)
        view = m.statsmodels
    code = _run_code(t.code(), data)
    pd.testing.assert_frame_equal(data, before)  # the caller's frame untouched
    return {
        "exog": model.exog,
        "code llf": code.llf,
        "code params": code.params.to_numpy(),
        "fixef": m.fixef().to_numpy(),
        "logLik": float(m.logLik()),
        "view params": view.params.to_numpy(),
    }


@cache
def _plain(role: str) -> dict:
    return _faces("z", role)


def _same_as_plain(name: str, role: str) -> None:
    got, want = _faces(name, role), _plain(role)
    np.testing.assert_array_equal(got["exog"], want["exog"])
    # the printed code tries optimisers in turn; the same data, the same path
    assert got["code llf"] == want["code llf"]
    np.testing.assert_array_equal(got["code params"], want["code params"])
    np.testing.assert_array_equal(got["fixef"], want["fixef"])
    assert got["logLik"] == want["logLik"]
    np.testing.assert_array_equal(got["view params"], want["view params"])


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("role", sorted(ROLES))
def test_names_patsy_reads_as_numbers(name, role):
    _same_as_plain(name, role)


@pytest.mark.parametrize("name", SHADOW[:3] + AWKWARD[:8])
def test_shadowing_and_awkward_names_as_the_grouping_factor(name):
    _same_as_plain(name, "group")


def test_the_rule_renames_what_patsy_reads_as_a_number():
    for name in NUMBERS:
        assert reads_as_number(name) and statsmodels_column(name) == safe_name(name)
    for name in ["Info", "nano", "x", "Inf2", "my col", "NA", "e", "x1"]:
        assert not reads_as_number(name) and statsmodels_column(name) == name
    names = NAMES + [safe_name(n) for n in NAMES] + ["z"]
    assert len({statsmodels_column(n) for n in names}) == len(set(names))  # injective


def test_the_code_renames_inf_before_the_formula_names_it():
    t = lme2sm.translate("Reaction ~ Days + Inf + (1 | Subject)".replace("Inf", "`Inf`"),
                         _frame("Inf", "covariate"))  # fmt: skip
    code = t.code()
    assert "_c_Inf" in code and "Inf" in t.fixed_formula or "_c_Inf" in t.fixed_formula
    assert t.model().exog_names == ["Intercept", "Days", "_c_Inf"]
    assert [r for _, r in t.fixed_names] == ["(Intercept)", "Days", "`Inf`"]


names = st.one_of(
    st.sampled_from(NAMES),
    st.text(
        alphabet=st.characters(
            codec="utf-8", exclude_categories=["Cs", "Cc"], include_characters="\t\n"
        ),
        min_size=1,
        max_size=6,
    ),
)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(name=names, role=st.sampled_from(sorted(ROLES)))
def test_any_column_name_every_face_fits_the_same_model(name, role):
    if name in ("Reaction", "Days", "Subject"):
        return  # the frame's own columns: another model
    try:
        _same_as_plain(name, role)
    except lme2sm.Lme2smError as error:  # a name lme2sm refuses must be refused clearly
        assert str(error)
        pytest.fail(f"{name!r} ({role}): {type(error).__name__}: {error}")
