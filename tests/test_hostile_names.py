"""Issue 23, columns named like functions or modules: a column is a column wherever the
formula names it bare, and a call is a call, whatever the columns are called.

Each test fits the same model twice: once with a column carrying a hostile name
(``np``, ``log``, ``C``, a Python keyword, an R reserved word, lme2sm's own internal
prefix ...) and once with that column renamed to a plain ``z``. The numbers must be
identical; only the column's name in the output changes (to the name lme4 prints).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lme2sm
from lme2sm.datasets import load
from lme2sm.errors import DataError
from lme2sm.formula.model import r_name

FUNCTIONS_AND_MODULES = [
    "np", "log", "C", "I", "Q", "exp", "scale", "poly", "center", "standardize", "pd",
    "numpy", "math", "sqrt", "factor", "offset", "cbind", "Intercept", "len", "Treatment",
    "Sum", "r_poly", "r_poly_raw", "print", "eval", "__import__", "__builtins__", "os",
]  # fmt: skip
PYTHON_KEYWORDS = ["if", "for", "lambda", "None", "True", "False", "class", "import", "not"]
R_RESERVED = ["TRUE", "FALSE", "NULL", "Inf", "NaN", "NA", "function", "repeat", "in"]
INTERNAL_LOOKING = ["_c_Days", "_x_44617973", "_patsy_stobj0__center__", 'Q("np")']
HOSTILE = FUNCTIONS_AND_MODULES + PYTHON_KEYWORDS + R_RESERVED + INTERNAL_LOOKING


def _data(name: str, values) -> pd.DataFrame:
    """sleepstudy with ``wpos`` (a positive covariate), ``np`` and ``log`` columns that
    the formula does not use, and the column under test as ``name``."""
    d = load("sleepstudy").copy()
    d["wpos"] = d["Days"] + 1.0
    d["np"] = np.arange(len(d)) % 4 - 1.5
    d["log"] = "text"
    d[name] = values
    return d


def _covariate(n: int) -> np.ndarray:
    return np.random.default_rng(23).normal(size=n).round(3)


def _same_fit(hostile, plain, label: str, plain_label: str = "z") -> None:
    a, b = hostile.fixef(), plain.fixef()
    assert list(a.index) == [label if n == plain_label else n for n in b.index]
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    assert hostile.logLik() == plain.logLik()


@pytest.mark.parametrize("name", HOSTILE)
def test_lmer_hostile_covariate_beside_a_function_call(name):
    z = _covariate(180)
    hostile_data, plain_data = _data(name, z), _data("z", z)
    before = hostile_data.copy()
    hostile = lme2sm.lmer(f"Reaction ~ log(wpos) + {r_name(name)} + (1 | Subject)", hostile_data)
    plain = lme2sm.lmer("Reaction ~ log(wpos) + z + (1 | Subject)", plain_data)
    _same_fit(hostile, plain, r_name(name))
    pd.testing.assert_frame_equal(hostile_data, before)  # the caller's data untouched


@pytest.mark.parametrize("name", ["np", "C", "log", "I", "factor", "if", "TRUE", "_c_Days"])
@pytest.mark.parametrize(
    "rhs", ["log(wpos) + poly(Days, 2) + exp(Days / 10)", "I(Days^2) + scale(wpos) + sqrt(wpos)"]
)
def test_lmer_hostile_factor_beside_transforms(name, rhs):
    g = np.where(np.arange(180) % 3 == 0, "lo", "hi")
    hostile_data, plain_data = _data(name, g), _data("z", g)
    hostile = lme2sm.lmer(
        f"Reaction ~ {rhs} + {r_name(name)} + (1 | Subject)", hostile_data, REML=False
    )
    plain = lme2sm.lmer(f"Reaction ~ {rhs} + z + (1 | Subject)", plain_data, REML=False)
    _same_fit(hostile, plain, r_name(name) + "lo", "zlo")


def test_issue_example_np_and_log_columns_with_log_call():
    d = _data("z", 0.0)
    fit = lme2sm.lmer("Reaction ~ log(wpos) + factor(np) + (1 | Subject)", d)
    clean = d.drop(columns=["log"]).rename(columns={"np": "k"})
    ref = lme2sm.lmer("Reaction ~ log(wpos) + factor(k) + (1 | Subject)", clean)
    assert list(fit.fixef().index)[:2] == ["(Intercept)", "log(wpos)"]
    np.testing.assert_array_equal(fit.fixef().to_numpy(), ref.fixef().to_numpy())


def test_column_named_like_the_internal_prefix_stays_apart():
    d = _data("_c_Days", _covariate(180))
    fit = lme2sm.lmer("Reaction ~ Days + `_c_Days` + (1 | Subject)", d)
    ref = lme2sm.lmer("Reaction ~ Days + z + (1 | Subject)", d.rename(columns={"_c_Days": "z"}))
    assert list(fit.fixef().index) == ["(Intercept)", "Days", "`_c_Days`"]  # as R deparses it
    np.testing.assert_array_equal(fit.fixef().to_numpy(), ref.fixef().to_numpy())


@pytest.mark.parametrize("name", ["np", "exp", "C", "True"])
def test_glmer_hostile_names(name):
    z = _covariate(180)
    hostile_data, plain_data = _data(name, z), _data("z", z)
    for d in (hostile_data, plain_data):
        d["hi"] = (d["Reaction"] > 300).astype(float)
    hostile = lme2sm.glmer(
        f"hi ~ log(wpos) + {r_name(name)} + (1 | Subject)", hostile_data, family="binomial"
    )
    plain = lme2sm.glmer("hi ~ log(wpos) + z + (1 | Subject)", plain_data, family="binomial")
    _same_fit(hostile, plain, r_name(name))


def test_translate_keeps_statsmodels_names_and_numbers():
    d = _data("C", np.where(np.arange(180) % 2 == 0, "u", "v"))
    t = lme2sm.translate("Reaction ~ log(wpos) + C + (Days | Subject)", d)
    assert [r for _, r in t.fixed_names] == ["(Intercept)", "log(wpos)", "Cv"]
    assert [s for s, _ in t.fixed_names] == ["Intercept", "np.log(wpos)", "_c_C[T.v]"]
    X = t.fixed_matrices[1][[s for s, _ in t.fixed_names]].to_numpy()
    np.testing.assert_array_equal(X[:, 1], np.log(d["wpos"].to_numpy()))
    np.testing.assert_array_equal(X[:, 2], (d["C"] == "v").to_numpy(dtype=float))


def test_predict_on_newdata_and_unseen_levels_name_the_users_column():
    g = np.where(np.arange(180) % 3 == 0, "lo", "hi")
    hostile_data, plain_data = _data("np", g), _data("z", g)
    hostile = lme2sm.lmer("Reaction ~ log(wpos) + np + (Days | Subject)", hostile_data)
    plain = lme2sm.lmer("Reaction ~ log(wpos) + z + (Days | Subject)", plain_data)
    new_h, new_p = hostile_data.iloc[::7], plain_data.iloc[::7]
    np.testing.assert_array_equal(
        hostile.predict(new_h).to_numpy(), plain.predict(new_p).to_numpy()
    )
    np.testing.assert_array_equal(
        hostile.predict(new_h, re_form="~0").to_numpy(),
        plain.predict(new_p, re_form="~0").to_numpy(),
    )
    bad = new_h.assign(np="mid")
    with pytest.raises(DataError) as err:
        hostile.predict(bad)
    assert "np" in str(err.value) and "_c_" not in str(err.value)


def test_emmeans_and_type3_anova_with_hostile_factors():
    g = np.where(np.arange(180) % 3 == 0, "lo", np.where(np.arange(180) % 3 == 1, "mid", "hi"))
    hostile_data, plain_data = _data("C", g), _data("z", g)
    hostile = lme2sm.lmer("Reaction ~ C * log(wpos) + (1 | Subject)", hostile_data)
    plain = lme2sm.lmer("Reaction ~ z * log(wpos) + (1 | Subject)", plain_data)
    a, b = hostile.emmeans("C").table, plain.emmeans("z").table
    np.testing.assert_allclose(a.select_dtypes("number"), b.select_dtypes("number"), rtol=1e-12)
    ta, tb = hostile.anova(), plain.anova()
    assert list(ta.index) == ["C", "log(wpos)", "C:log(wpos)"]
    np.testing.assert_allclose(ta.to_numpy(), tb.to_numpy(), rtol=1e-10)


def test_transformation_failure_names_the_users_columns():
    d = _data("np", 0.0)
    with pytest.raises(DataError) as err:
        lme2sm.lmer("Reaction ~ log(np) + (1 | Subject)", d)
    assert "log(np)" in str(err.value) and "_c_" not in str(err.value)


def test_large_path_through_parquet_and_polars(tmp_path):
    pl = pytest.importorskip("polars")
    from lme2sm.large import fit_large

    g = np.where(np.arange(180) % 3 == 0, "lo", "hi")
    d = _data("np", g).assign(C=_covariate(180))
    d["Subject"] = d["Subject"].astype(str)
    formula = "Reaction ~ log(wpos) + np + C + (1 | Subject)"
    path = tmp_path / "hostile.parquet"
    d.to_parquet(path)
    ref = lme2sm.lmer(formula, d, REML=False)
    for source in (path, pl.scan_parquet(str(path))):
        fit = fit_large(formula, source, progress=False, REML=False)
        assert fit.frame.fixed_names == tuple(ref.fixef().index)
        np.testing.assert_allclose(fit.engine_fit.beta, ref.fixef().to_numpy(), rtol=1e-6)
