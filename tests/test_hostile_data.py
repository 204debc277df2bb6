"""Data as a hostile or unusual user passes it: every case ends in lme4's answer (the
numbers below come from R 4.x / lme4 1.1-31 on the same rows) or in a DataError that
names the column."""

from __future__ import annotations

import io
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import lme2sm
from lme2sm import DataError, FormulaError, NotExpressibleError
from lme2sm.frame.data_prep import check_lme4_sizes

CSV = """y,x,z,g
-0.946,-0.641,,a
0.673,2.0,,a
-0.519,0.762,,a
-2.117,,-2.035,a
-1.044,0.075,-0.304,a
-1.33,0.577,-0.9,a
-0.661,-0.189,0.164,a
1.055,0.683,2.245,a
-1.803,-0.067,-0.832,b
-1.564,0.667,-0.624,b
-0.068,1.439,0.205,b
-1.259,-0.676,0.493,b
-1.071,0.203,-0.176,b
-2.439,-0.463,-0.206,b
-1.243,0.127,0.702,b
-1.176,-1.187,0.52,b
-0.376,-0.579,-1.034,c
0.701,-0.196,-0.079,c
-0.194,0.899,0.035,c
0.54,1.145,-1.054,c
-1.247,-1.324,0.26,c
0.625,-0.795,-0.858,c
0.314,0.647,0.972,c
0.532,-1.992,0.193,c
-0.229,-0.463,0.089,d
-0.39,-0.097,-0.591,d
-2.043,1.257,-0.119,d
-0.349,0.689,-1.998,d
-0.367,-0.327,-1.131,d
-0.226,-0.369,0.363,d
-1.809,-0.25,-2.129,d
0.13,1.524,0.847,d
-0.227,-0.428,-1.746,e
0.005,-0.304,0.757,e
2.203,0.353,-0.845,e
0.097,-0.121,0.779,e
0.834,-0.197,0.131,e
1.293,-1.114,-1.537,e
0.376,-0.012,1.249,e
0.632,-0.444,1.442,e
0.706,1.166,-0.066,f
0.404,0.653,-0.274,f
-1.224,-0.024,-0.16,f
0.423,0.668,-0.975,f
1.202,-0.34,1.099,f
-1.008,1.052,-0.543,f
0.87,-0.005,-0.051,f
0.424,0.583,-0.793,f
"""


@pytest.fixture(scope="module")
def scale_data() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(CSV))


def _fit(formula, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = lme2sm.translate(formula, data)
        result = t.model().fit(reml=True)
    return t, dict(zip([r for _, r in t.fixed_names], result.fe_params)), result.llf


def test_scale_uses_the_whole_column_as_r(scale_data):
    # R: lmer(y ~ scale(x) + z + (1|g), d); rows 1-3 lack z, row 4 lacks x.
    # scale(x)'s mean and sd include rows 1-3 (dropped later for z), as model.frame does.
    _, fe, llf = _fit("y ~ scale(x) + z + (1 | g)", scale_data)
    assert fe == pytest.approx(
        {"(Intercept)": -0.21726731074, "scale(x)": 0.08955641497, "z": 0.19966091167}, abs=1e-6
    )
    assert llf == pytest.approx(-58.33502812, abs=1e-5)


def test_poly_orthogonal_and_raw_as_lme4(scale_data):
    data = scale_data[scale_data["x"].notna()]
    _, fe, _ = _fit("y ~ poly(x, 2) + z + (1 | g)", data)
    assert fe == pytest.approx(
        {
            "(Intercept)": -0.2094259195,
            "poly(x, 2)1": 0.7049135844,
            "poly(x, 2)2": 0.5977105241,
            "z": 0.1900773370,
        },
        abs=1e-6,
    )
    _, fe, _ = _fit("y ~ poly(x, 2, raw=TRUE) + sin(x) + log(abs(x)+1, 2) + (1 | g)", data)
    assert fe == pytest.approx(
        {
            "(Intercept)": -0.32293348934,
            "poly(x, 2, raw = TRUE)1": 0.20940741999,
            "poly(x, 2, raw = TRUE)2": 0.19161031288,
            "sin(x)": -0.08179869855,
            "log(abs(x) + 1, 2)": -0.07619218616,
        },
        abs=1e-6,
    )


def test_poly_refuses_missing_values_as_r(scale_data):
    with pytest.raises(DataError, match="missing values are not allowed in 'poly'"):
        lme2sm.translate("y ~ poly(x, 2) + (1 | g)", scale_data)


# R: colnames(model.matrix(f, d)) and rows 1 and 47 of it, d = rows with x, w = |x| + 0.5
FUNCTIONS_FORMULA = (
    "y ~ sin(x) + cos(x) + tan(x) + sqrt(w) + exp(x) + log(w) + log(w, 2) + "
    "log(w, base = 10) + log10(w) + log2(w) + log1p(w) + abs(x) + I(x * pi) + scale(x) + "
    "as.numeric(x) + poly(x, 2) + poly(x, 3, raw = TRUE) + I(x^02) + I(x + 5L) + "
    "scale(x, center = FALSE) + (1 | g)"
)
R_NAMES = [
    "(Intercept)", "sin(x)", "cos(x)", "tan(x)", "sqrt(w)", "exp(x)", "log(w)", "log(w, 2)",
    "log(w, base = 10)", "log10(w)", "log2(w)", "log1p(w)", "abs(x)", "I(x * pi)", "scale(x)",
    "as.numeric(x)", "poly(x, 2)1", "poly(x, 2)2", "poly(x, 3, raw = TRUE)1",
    "poly(x, 3, raw = TRUE)2", "poly(x, 3, raw = TRUE)3", "I(x^2)", "I(x + 5)",
    "scale(x, center = FALSE)",
]  # fmt: skip
R_ROW_1 = [
    1, -0.5979972384, 0.8014981615, -0.7460993264, 1.068176015, 0.5267653952, 0.1319050709,
    0.1902987916, 0.05728564442, 0.05728564442, 0.1902987916, 0.7612730096, 0.641,
    -2.013760891, -0.9154605735, -0.641, -0.1349772977, -0.01364336511, -0.641, 0.410881,
    -0.263374721, 0.410881, 4.359, -0.7891694581,
]  # fmt: skip
R_ROW_47 = [
    1, 0.5505308549, 0.8348148165, 0.6594646429, 1.040672859, 1.791404591, 0.07973496802,
    0.1150332429, 0.03462845663, 0.03462845663, 0.1150332429, 0.7338091623, 0.583,
    1.831548517, 0.602601685, 0.583, 0.08884877122, -0.06568772066, 0.583, 0.339889,
    0.198155287, 0.339889, 5.583, 0.7177625492,
]  # fmt: skip


def test_functions_names_and_values_as_r_model_matrix(scale_data):
    data = scale_data[scale_data["x"].notna()].assign(w=lambda d: d["x"].abs() + 0.5)
    t = lme2sm.translate(FUNCTIONS_FORMULA, data.drop(columns="z"))
    assert [r for _, r in t.fixed_names] == R_NAMES
    X = t.fixed_matrices[1][[sm for sm, _ in t.fixed_names]].to_numpy()
    np.testing.assert_allclose(X[0], R_ROW_1, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(X[46], R_ROW_47, rtol=1e-8, atol=1e-9)


def test_poly_code_runs_without_lme2sm(scale_data):
    data = scale_data[scale_data["x"].notna()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = lme2sm.translate("y ~ poly(x, 2) + (1 | g)", data)
        namespace = {"data": data}
        exec(t.code(), namespace)
        direct = t.model().fit(reml=True)
    assert "lme2sm" not in t.code()
    assert namespace["result"].llf == pytest.approx(direct.llf, abs=1e-6)


def test_code_keeps_a_multi_line_formula_in_comments(scale_data):
    formula = "y ~ x +\n    z +\n    (1 | g)  # comment"  # R skips the comment, as lme2sm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = lme2sm.translate(formula, scale_data)
        code = t.code()
        compile(code, "<code>", "exec")
        assert code.splitlines()[:3] == [
            "# lme4: y ~ x +",
            "#     z +",
            "#     (1 | g)  # comment",
        ]


BASE = pd.DataFrame(
    {
        "y": np.sin(np.arange(60)) + np.repeat(np.arange(6.0), 10),
        "x": np.cos(np.arange(60) * 1.7),
        "g": np.repeat(np.arange(6), 10),
    }
)


def _translate(formula, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lme2sm.translate(formula, data)


@pytest.mark.parametrize(
    "ids",
    [
        [2.0**64, 2.0**64 + 4096, 2.0**70, 3e20, 1.5, -(2.0**64)],
        [2**64, 2**64 + 1, 2**65, 3, 4, 5],  # Python ints beyond int64, object dtype
        [2**63 - 1, 2**63 - 2, 0, 1, 2, 3],
    ],
)
def test_large_grouping_ids_never_merge(ids):
    data = BASE.assign(g=pd.Series(np.repeat(np.array(ids, dtype=object), 10)))
    if isinstance(ids[0], float):
        data["g"] = data["g"].astype(float)
    t = _translate("y ~ x + (1 | g)", data)
    assert t.n_groups == 6
    assert len(t.level_order["g"]) == 6
    if isinstance(ids[0], int):
        assert set(t.level_order["g"]) == {str(i) for i in ids}


@pytest.mark.parametrize(
    "column, dtype, expected",
    [
        ("b", "boolean", "bTRUE"),
        ("b", "bool[pyarrow]", "bTRUE"),
        ("s", "string[pyarrow]", "sv"),
        ("s", "string", "sv"),
        ("n", "Int64", "n"),
        ("n", "Float64", "n"),
        ("n", "int64[pyarrow]", "n"),
    ],
)
def test_nullable_and_pyarrow_columns(column, dtype, expected):
    if "pyarrow" in dtype:
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:  # absent, or built for another numpy
            pytest.skip(f"pyarrow unusable here: {exc}")
    values = {
        "b": np.arange(60) % 3 == 0,
        "s": np.where(np.arange(60) % 3 == 0, "v", "u"),
        "n": np.arange(60) % 7,
    }[column]
    data = BASE.assign(**{column: pd.array(values, dtype=dtype)})
    data.loc[5, column] = None
    data["y"] = pd.array(data["y"], dtype="Float64")
    data["g"] = pd.array(data["g"], dtype="Int64")
    t = _translate(f"y ~ {column} + (1 | g)", data)
    assert [r for _, r in t.fixed_names] == ["(Intercept)", expected]
    assert t.n_dropped == 1 and t.n_groups == 6


@pytest.mark.parametrize("use", ["y ~ t + (1 | g)", "y ~ x + (1 | t)", "t ~ x + (1 | g)"])
def test_datetimes_refused_with_the_column_named(use):
    data = BASE.assign(t=pd.date_range("2020-01-01", periods=60, tz="UTC"))
    with pytest.raises(DataError, match="'t' holds datetime64"):
        _translate(use, data)


def test_duplicated_column_names_are_a_data_error():
    data = pd.concat([BASE, BASE[["x"]]], axis=1)
    with pytest.raises(DataError, match="more than one column named 'x'"):
        _translate("y ~ x + (1 | g)", data)
    assert _translate("y ~ 1 + (1 | g)", data).n_groups == 6  # unused duplicates are fine


def test_a_column_named_intercept():
    data = BASE.assign(Intercept=np.arange(60) % 5)
    t = _translate("y ~ Intercept + (Intercept | g)", data)
    assert [r for _, r in t.fixed_names] == ["(Intercept)", "Intercept"]
    assert [r for _, r in t.placements[0].columns] == ["(Intercept)", "Intercept"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isfinite(t.model().fit(reml=True).llf)


def test_unused_categories_are_dropped_as_lme4_does():
    # R's model.frame(drop.unused.levels = TRUE), which lme4 uses: level "c" of f and
    # the groups 6 and 7 of g have no rows, so they make no columns and no levels
    data = BASE.assign(
        f=pd.Categorical(np.where(np.arange(60) % 2 == 0, "a", "b"), categories=["a", "b", "c"]),
        g=pd.Categorical(BASE["g"], categories=range(8)),
    )
    t = _translate("y ~ f + (1 | g)", data)
    assert [r for _, r in t.fixed_names] == ["(Intercept)", "fb"]
    assert t.level_order["g"] == ("0", "1", "2", "3", "4", "5")
    assert list(data["f"].cat.categories) == ["a", "b", "c"]  # the caller's frame unchanged


def test_constant_response_is_a_data_error():
    with pytest.raises(DataError, match="'y' is constant"):
        _translate("y ~ x + (1 | g)", BASE.assign(y=1.0))


def test_too_few_observations_worded_as_lme4():
    small = BASE.head(6).assign(g=[1, 1, 2, 2, 3, 3], x=np.arange(6.0))
    with pytest.raises(DataError) as info:
        _translate("y ~ 1 + (x | g)", small)
    assert str(info.value) == (
        "number of observations (=6) <= number of random effects (=6) for term (x | g); the "
        "random-effects parameters and the residual variance (or scale parameter) are "
        "probably unidentifiable"
    )


def test_lme4_size_checks():
    check_lme4_sizes(10, [("1 | g", "g", 3, 1), ("x | g", "g", 3, 2)])
    with pytest.raises(DataError, match=r"must have > 1 sampled level \(problems: g\)"):
        check_lme4_sizes(10, [("1 | g", "g", 1, 1)])
    with pytest.raises(DataError, match=r"must be < number of observations \(problems: h\)"):
        check_lme4_sizes(4, [("1 | g", "g", 2, 1), ("1 | h", "h", 4, 1)])


def test_offset_inside_a_random_term_is_refused():
    with pytest.raises(FormulaError) as info:
        lme2sm.parse("y ~ x + (1 + offset(z) | g)")
    assert info.value.span == (13, 22)


def test_non_ascii_column_names_translate_and_fit():
    data = pd.DataFrame(
        {
            "größe": np.sin(np.arange(60)) + np.repeat(np.arange(6.0), 10),
            "Straße": np.cos(np.arange(60) * 1.3),
            "Gruppe": np.repeat(list("abcdef"), 10),
        }
    )
    t = _translate("größe ~ Straße + (Straße | Gruppe)", data)
    assert [r for _, r in t.fixed_names] == ["(Intercept)", "Straße"]
    assert [r for _, r in t.placements[0].columns] == ["(Intercept)", "Straße"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isfinite(t.model().fit(reml=True).llf)


@pytest.mark.parametrize(
    "values, what",
    [
        (pd.Series([[1], [2]] * 30), "list"),
        (pd.Series([{"a": 1}] * 60), "dict"),
        (pd.Series(np.arange(60) + 1j), "complex128"),
        (pd.Series(pd.to_timedelta(np.arange(60), unit="D")), "timedelta64"),
        (pd.Series(pd.period_range("2020-01", periods=60, freq="M")), "period"),
        (pd.Series(pd.interval_range(0, 60)), "interval"),
    ],
)
@pytest.mark.parametrize("formula", ["y ~ v + (1 | g)", "y ~ 1 + (1 | v)", "v ~ 1 + (1 | g)"])
def test_columns_a_formula_cannot_use_are_refused_by_name(values, what, formula):
    with pytest.raises(DataError, match=f"'v' (holds|must be).*{what}"):
        _translate(formula, BASE.assign(v=values))


@pytest.mark.parametrize("approximate", [False, True])
def test_a_multi_column_effect_off_the_partition_is_refused_not_looped(approximate):
    # found by fuzzing: approximate=True split (poly(x, 2) || h) into itself forever
    data = BASE.assign(h=np.tile(list("abcd"), 15), k=np.tile([1, 2, 3], 20))
    start = time.perf_counter()
    with pytest.raises(NotExpressibleError, match="several columns, which \\|\\| does not split"):
        lme2sm.translate(
            "y ~ 1 + (0 + poly(x, 2) || h) + (1 | k) + (1 | g)", data, approximate=approximate
        )
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    "formula",
    ["y ~ scale(C(x)) + (1 | g)", "y ~ x + (scale(C(log(w))) | g)", "y ~ poly(h, 2) + (1 | g)"],
)
def test_functions_of_factors_are_data_errors(formula):
    data = BASE.assign(h=np.tile(list("abcd"), 15), w=np.arange(60) + 1.0)
    with pytest.raises(DataError):
        _translate(formula, data)
