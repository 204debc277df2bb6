"""Issue 23, round 2: one rule for names on the statsmodels faces too.

patsy evaluates formula text with the data's columns first, so a column named ``np``,
``C``, ``Q`` or ``r_poly`` hid the module or function the statsmodels text calls
(``np.log(wpos)`` read the column's ``.log``). The statsmodels text now renames such
columns (``_c_np``) in the frame statsmodels gets, and the printed code does the same.

Each test fits the same model on two frames that differ only in one column's name: a
hostile one and a plain ``z``. Every face (``mixedlm``, ``translate(...).model()``,
``lme2sm.fit``, the printed code run as printed, ``result.statsmodels``, summary,
predict, emmeans) must give the same numbers on both.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import patsy
import pytest

import lme2sm
from lme2sm.datasets import load
from lme2sm.formula.model import r_name
from lme2sm.formula.patsy_text import NAMESPACE_NAMES, safe_name, statsmodels_column
from lme2sm.frame.design import ENV

SHADOWING = ["np", "C", "I", "Q", "r_poly", "r_poly_raw", "len", "center", "standardize"]
HARMLESS = ["numpy", "math", "log", "exp", "sqrt", "scale", "poly", "pd", "Treatment", "abs"]
KEYWORDS = ["class", "lambda", "if", "None", "True"]
R_RESERVED = ["TRUE", "NULL", "function", "in", "NA"]
AWKWARD = ["my col", "a.b", "é", "Größe", "Intercept", "_c_Days", "_x_44617973", "__x"]
CODE_NAMES = ["df", "data", "smf", "model", "result", "patsy", "free", "method", "group"]
HOSTILE = SHADOWING + HARMLESS + KEYWORDS + R_RESERVED + AWKWARD + CODE_NAMES

RHS = "log(wpos) + poly(Days, 2) + scale(wpos) + factor(k)"


def _frame(name: str, values) -> pd.DataFrame:
    d = load("sleepstudy").copy()
    d["wpos"] = d["Days"] + 1.0
    d["k"] = np.where(np.arange(len(d)) % 3 == 0, "lo", "hi")
    d["sub2"] = d["Subject"].astype(str) + np.where(np.arange(len(d)) % 2 == 0, "a", "b")
    d[name] = values
    return d


def _pair(name: str, values):
    return _frame(name, values), _frame("z", values)


def _covariate() -> np.ndarray:
    return np.random.default_rng(23).normal(size=180).round(3)


def _quiet_fit(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(reml=True, method="lbfgs")


def _run_code(code: str, data: pd.DataFrame):
    """The printed code, run as printed with ``data`` bound."""
    namespace = {"data": data}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "<translation>", "exec"), namespace)  # lme2sm's own output
    return namespace["result"]


def test_the_issue_example():
    d = _frame("z", 0.0).drop(columns="z")
    d["np"] = _covariate()
    d["log"] = "text"
    d["C"] = "also text"
    m = lme2sm.mixedlm("Reaction ~ log(wpos) + np + (1 | Subject)", d)
    assert m.exog_names == ["Intercept", "np.log(wpos)", "_c_np"]
    np.testing.assert_array_equal(m.exog[:, 1], np.log(d["wpos"].to_numpy()))
    np.testing.assert_array_equal(m.exog[:, 2], d["np"].to_numpy())
    ours = lme2sm.lmer("Reaction ~ log(wpos) + np + (1 | Subject)", d)
    fit = _quiet_fit(m)
    assert list(ours.fixef().index) == ["(Intercept)", "log(wpos)", "np"]
    np.testing.assert_allclose(fit.fe_params.to_numpy(), ours.fixef().to_numpy(), rtol=1e-4)


@pytest.mark.parametrize("name", HOSTILE)
def test_mixedlm_covariate_beside_calls(name):
    hostile_data, plain_data = _pair(name, _covariate())
    before = hostile_data.copy()
    formula = f"Reaction ~ {RHS} + {{}} + (1 | Subject)"
    hostile = lme2sm.mixedlm(formula.format(r_name(name)), hostile_data)
    plain = lme2sm.mixedlm(formula.format("z"), plain_data)
    np.testing.assert_array_equal(hostile.exog, plain.exog)
    a, b = _quiet_fit(hostile), _quiet_fit(plain)
    assert a.llf == b.llf
    np.testing.assert_array_equal(a.params.to_numpy(), b.params.to_numpy())
    pd.testing.assert_frame_equal(hostile_data, before)  # the caller's data untouched


@pytest.mark.parametrize(
    "name", ["np", "C", "Q", "r_poly", "len", "class", "my col", "é", "df", "data"]
)
@pytest.mark.parametrize("role", ["partition", "component", "factor"])
def test_every_translate_face_with_a_hostile_grouping_or_factor(name, role):
    if role == "partition":  # the groups factor: re_formula, groups=
        values, formula = None, "Reaction ~ log(wpos) + (Days | {})"
    elif role == "component":  # nested in the partition: a vc_formula entry, C() of it
        values, formula = None, "Reaction ~ poly(Days, 2) + (1 | Subject) + (1 | {})"
    else:  # a factor beside C() and r_poly() calls
        values = np.where(np.arange(180) % 4 == 0, "u", "v")
        formula = "Reaction ~ poly(Days, 2) + factor(k) + {} + (1 | Subject)"
    if values is None:
        values = load("sleepstudy")["Subject"].astype(str).to_numpy()
        if role == "component":
            values = values + np.where(np.arange(180) % 2 == 0, "a", "b")
    hostile_data, plain_data = _pair(name, values)
    th = lme2sm.translate(formula.format(r_name(name)), hostile_data)
    tp = lme2sm.translate(formula.format("z"), plain_data)
    # the model, lme2sm's statsmodels fit, and the printed code run as printed agree
    a, b = _quiet_fit(th.model()), _quiet_fit(tp.model())
    assert a.llf == b.llf
    fa, fb = lme2sm.fit(th).result, lme2sm.fit(tp).result
    np.testing.assert_allclose(fa.llf, fb.llf, rtol=1e-12)
    code_a, code_b = _run_code(th.code(), hostile_data), _run_code(tp.code(), plain_data)
    assert code_a.llf == code_b.llf
    np.testing.assert_array_equal(code_a.params.to_numpy(), code_b.params.to_numpy())
    assert list(code_a.params.index) == list(fa.params.index)
    # the printed loop tries every optimiser; lme2sm.fit stops once lme4's check passes
    np.testing.assert_allclose(code_a.llf, fa.llf, rtol=1e-8)
    # lme4's names are the user's
    assert [r for _, r in th.fixed_names] == [
        r.replace("z", r_name(name)) if r.startswith("z") else r for _, r in tp.fixed_names
    ]
    assert "lme4 formula: " + th.formula in th.explain()


@pytest.mark.parametrize("name", SHADOWING + ["class", "my col", "df", "_c_Days"])
def test_lmer_statsmodels_view_summary_predict_emmeans(name):
    g = np.where(np.arange(180) % 3 == 0, "lo", np.where(np.arange(180) % 3 == 1, "mid", "hi"))
    hostile_data, plain_data = _pair(name, g)
    formula = "Reaction ~ {} * log(wpos) + (1 | Subject) + (1 | sub2)"
    hostile = lme2sm.lmer(formula.format(r_name(name)), hostile_data)
    plain = lme2sm.lmer(formula.format("z"), plain_data)
    sa, sb = hostile.statsmodels, plain.statsmodels
    np.testing.assert_array_equal(sa.params.to_numpy(), sb.params.to_numpy())
    np.testing.assert_equal(sa.llf, sb.llf)  # nan for crossed terms
    label = r_name(name)
    ca, cb = hostile.coef_table(), plain.coef_table()
    assert list(ca.index) == [i.replace("z", label, 1) if "z" in i else i for i in cb.index]
    np.testing.assert_array_equal(ca.to_numpy(), cb.to_numpy())
    text = str(hostile.summary())
    assert f"{label}lo " in text and f"{label}lo:log(wpos)" in text
    if not name.startswith("_"):
        assert "_c_" not in text and "_x_" not in text  # no internal name shows
    new_a, new_b = hostile_data.iloc[::9], plain_data.iloc[::9]
    np.testing.assert_array_equal(hostile.predict(new_a), plain.predict(new_b))
    if name == "df":  # a column of emmeans' own table: refused by name
        with pytest.raises(lme2sm.ArgumentError, match="emmeans' own tables"):
            hostile.emmeans(name)
        return
    em_a, em_b = hostile.emmeans(name).table, plain.emmeans("z").table
    np.testing.assert_allclose(
        em_a.select_dtypes("number"), em_b.select_dtypes("number"), rtol=1e-12
    )
    assert list(em_a[name]) == list(em_b["z"])


@pytest.mark.parametrize("name", ["np", "C", "Q", "my col", "class", "_x"])
def test_glmer_translation_code_runs_with_hostile_names(name):
    d = load("cbpp").copy()
    d[name] = d["herd"]
    d["w"] = np.log(d["size"])
    formula = "cbind(incidence, size - incidence) ~ factor(period) + w + (1 | {}) + (0 + w | {})"
    t = lme2sm.translate(formula.format(r_name(name), r_name(name)), d, family="binomial")
    ref = lme2sm.translate(formula.format("herd", "herd"), d, family="binomial")
    hostile = _run_code(t.code().replace("print(", "str("), d)
    plain = _run_code(ref.code().replace("print(", "str("), d)
    # the same model; vc_formulas' keys differ, so its components' order and the
    # optimiser's path may too
    np.testing.assert_allclose(hostile.fe_mean, plain.fe_mean, rtol=1e-4)
    assert sorted(hostile.vcp_mean.round(4)) == sorted(plain.vcp_mean.round(4))


def test_the_rule_covers_every_name_the_namespace_defines():
    namespace = set().union(*(set(ns) for ns in ENV._namespaces))
    assert namespace <= NAMESPACE_NAMES
    assert set(patsy.builtins.__all__) <= NAMESPACE_NAMES
    for name in ["np", "C", "Q", "I", "len", "r_poly", "print", "_c_np", "_x_ab", "__x"]:
        assert statsmodels_column(name) == safe_name(name) != name
    for name in ["log", "numpy", "pd", "df", "data", "class", "my col", "é", "Intercept"]:
        assert statsmodels_column(name) == name
    names = HOSTILE + [safe_name(n) for n in HOSTILE] + ["z", "wpos"]
    assert len({statsmodels_column(n) for n in names}) == len(set(names))  # injective


def test_both_a_column_and_its_internal_name():
    d = _frame("np", _covariate())
    d["_c_np"] = _covariate()[::-1].copy()
    formula = "Reaction ~ np + `_c_np` + (1 | Subject)"
    t = lme2sm.translate(formula, d)
    assert t.model().exog_names == ["Intercept", "_c_np", "_c__c_np"]
    np.testing.assert_array_equal(t.model().exog[:, 1:], d[["np", "_c_np"]].to_numpy())
    ref = lme2sm.lmer(formula, d)
    assert list(ref.fixef().index) == ["(Intercept)", "np", "`_c_np`"]
    fit = lme2sm.fit(t).result
    np.testing.assert_allclose(fit.fe_params.to_numpy(), ref.fixef().to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(_run_code(t.code(), d).llf, fit.llf, rtol=1e-10)
