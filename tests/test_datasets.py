"""The bundled datasets, the simulators, and the consistency of the lme4 fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lme2sm import datasets
from lme2sm.datasets import load, make_crossed, make_schools, names
from lme2sm.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures" / "models"

# name -> (rows, columns in order)
EXPECTED = {
    "sleepstudy": (180, ["Reaction", "Days", "Subject"]),
    "Dyestuff": (30, ["Batch", "Yield"]),
    "Dyestuff2": (30, ["Batch", "Yield"]),
    "Penicillin": (144, ["diameter", "plate", "sample"]),
    "Pastes": (60, ["strength", "batch", "cask", "sample"]),
    "cake": (270, ["replicate", "recipe", "angle", "temp"]),
    "Oats": (72, ["Block", "Variety", "nitro", "yield"]),
    "Orthodont": (108, ["distance", "age", "Subject", "Sex"]),
    "Machines": (54, ["Worker", "Machine", "score"]),
    "iris": (150, ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width", "Species"]),
    "insteval_small": (2759, ["y", "s", "d", "dept", "service", "studage", "lectage"]),
    "schools": (
        None,
        [
            "student",
            "age",
            "sex",
            "test_score",
            "classroom",
            "school",
            "province",
            "rater",
            "exam",
        ],
    ),
    "IGF": (237, ["Lot", "age", "conc"]),
    "Early": (309, ["id", "cog", "age", "trt"]),
    "Exam": (
        4059,
        ["school", "normexam", "schgend", "schavg", "vr", "intake", "standLRT", "sex", "type"]
        + ["student"],
    ),
    "Hsb82": (7185, ["school", "minrty", "sx", "ses", "mAch", "meanses", "sector", "cses"]),
    "carrots": (
        1236,
        ["Consumer", "Frequency", "Gender", "Age", "Homesize", "Work", "Income", "Preference"]
        + ["Sweetness", "Bitter", "Crisp", "sens1", "sens2", "Product"],
    ),
    "cbpp": (56, ["herd", "incidence", "size", "period"]),
    "grouseticks": (403, ["INDEX", "TICKS", "BROOD", "HEIGHT", "YEAR", "LOCATION", "cHEIGHT"]),
    "VerbAgg": (7584, ["Anger", "Gender", "item", "resp", "id", "btype", "situ", "mode", "r2"]),
}

HAS_MISSING = {"carrots"}  # 3 rows without Preference, and missing covariates (R's NA)


def is_plain_str(s: pd.Series) -> bool:
    """Strings stored as object or pandas' str dtype, never Categorical."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return False
    return (pd.api.types.is_string_dtype(s.dtype) or s.dtype == object) and all(
        isinstance(v, str) for v in s.dropna()
    )


def test_names_cover_all_datasets():
    assert names() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_shapes_and_dtypes(name):
    df = load(name)
    rows, cols = EXPECTED[name]
    assert list(df.columns) == cols
    if rows is not None:
        assert len(df) == rows
    assert df.isna().any().any() == (name in HAS_MISSING)
    factors = set(datasets.FACTORS[name])
    for col in df.columns:
        if col in factors:
            assert is_plain_str(df[col]), (name, col, df[col].dtype)
        else:
            assert pd.api.types.is_numeric_dtype(df[col]), (name, col, df[col].dtype)
            assert df[col].dtype.kind in "if", (name, col, df[col].dtype)


def test_numeric_looking_grouping_factors_are_strings():
    sleep = load("sleepstudy")
    assert sorted(sleep["Subject"].unique())[:2] == ["308", "309"]
    assert sleep["Subject"].nunique() == 18
    assert set(load("Machines")["Worker"]) == {"1", "2", "3", "4", "5", "6"}
    cake = load("cake")
    assert cake["replicate"].nunique() == 15 and "10" in set(cake["replicate"])
    ie = load("insteval_small")
    assert set(ie["service"]) == {"0", "1"}
    assert set(ie["dept"]) == {"1", "5", "7", "15"}
    assert set(ie["studage"]) <= {2, 4, 6, 8}


def test_load_is_case_insensitive_and_returns_fresh_frames():
    a = load("dyestuff")
    b = load("Dyestuff")
    pd.testing.assert_frame_equal(a, b)
    a.loc[0, "Yield"] = -1
    assert load("Dyestuff").loc[0, "Yield"] != -1


def test_unknown_name_raises_data_error_listing_names():
    with pytest.raises(DataError) as info:
        load("no_such_data")
    msg = str(info.value)
    assert "no_such_data" in msg
    for name in ("sleepstudy", "schools", "insteval_small"):
        assert name in msg


def test_insteval_small_is_crossed():
    ie = load("insteval_small")
    assert ie["s"].nunique() == 348 and ie["d"].nunique() == 276
    # students rate several lecturers and lecturers are rated by several students
    assert (ie.groupby("s")["d"].nunique() > 1).mean() > 0.5
    assert (ie.groupby("d")["s"].nunique() > 1).mean() > 0.9
    # each lecturer belongs to one department
    assert ie.groupby("d")["dept"].nunique().max() == 1


# --- schools -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def schools():
    return make_schools()


def test_committed_schools_csv_equals_generator(schools):
    committed = load("schools")
    pd.testing.assert_frame_equal(
        committed.reset_index(drop=True),
        schools.reset_index(drop=True),
        check_dtype=False,
        check_exact=False,
        rtol=1e-12,
        atol=1e-12,
    )
    for col in datasets.FACTORS["schools"]:
        assert (committed[col].to_numpy() == schools[col].to_numpy()).all()


def test_make_schools_is_deterministic_and_seeded(schools):
    pd.testing.assert_frame_equal(make_schools(), schools)
    other = make_schools(seed=1)
    assert not np.allclose(other["test_score"].to_numpy()[:50], schools["test_score"][:50])


def test_schools_design(schools):
    df = schools
    assert 2000 <= len(df) <= 3000
    assert df["student"].is_unique
    assert df["province"].nunique() == 5
    assert df["school"].nunique() == 40
    assert sorted(df["exam"].unique()) == [f"E{i}" for i in range(1, 7)]
    assert set(df["sex"]) == {"female", "male"}
    assert df["age"].between(10, 14).all()
    # schools nested in provinces
    assert df.groupby("school")["province"].nunique().max() == 1
    assert (df.groupby("province")["school"].nunique() == 8).all()


def test_classroom_labels_are_reused_across_schools(schools):
    df = schools
    assert sorted(df["classroom"].unique()) == ["1", "2", "3", "4"]
    # every label occurs in every school: classroom identifies only within a school
    assert (df.groupby("classroom")["school"].nunique() == 40).all()
    assert df.groupby(["school", "classroom"]).ngroups == 160


def test_rater_nested_in_school_crossed_with_classroom(schools):
    df = schools
    # nested in school: every rater belongs to exactly one school, labels say which
    assert df.groupby("rater")["school"].nunique().max() == 1
    assert (df["rater"].str.split("-").str[0] == df["school"]).all()
    assert df.groupby("school")["rater"].nunique().min() >= 2
    # crossed with classroom within school: raters score several classrooms, and
    # classrooms are scored by several raters
    assert (df.groupby("rater")["classroom"].nunique() >= 2).all()
    assert (df.groupby(["school", "classroom"])["rater"].nunique() >= 2).all()


def test_exam_crossed_with_school(schools):
    df = schools
    assert (df.groupby("school")["exam"].nunique() >= 4).all()
    assert (df.groupby("exam")["school"].nunique() >= 30).all()


def test_schools_grouping_columns_are_strings(schools):
    for col in datasets.FACTORS["schools"]:
        assert is_plain_str(schools[col])
    assert schools["age"].dtype == float and schools["test_score"].dtype == float


# --- make_crossed ------------------------------------------------------------------


def test_make_crossed_sizes_and_structure():
    df = make_crossed(5000, 300, 60, seed=3)
    assert list(df.columns) == ["y", "a", "b", "service", "dept"]
    assert len(df) == 5000
    assert df["a"].nunique() == 300
    assert df["b"].nunique() == 60
    assert df["dept"].nunique() == 14
    assert set(df["service"]) == {"0", "1"}
    assert df.groupby("b")["dept"].nunique().max() == 1
    for col in ["a", "b", "service", "dept"]:
        assert is_plain_str(df[col])
    assert df["y"].dtype == float
    # crossed: levels of a meet several levels of b
    assert df.groupby("a")["b"].nunique().mean() > 5
    pd.testing.assert_frame_equal(df, make_crossed(5000, 300, 60, seed=3))


def test_make_crossed_small_and_options():
    df = make_crossed(50, 10, 5, seed=1, n_service=3)
    assert len(df) == 50 and df["a"].nunique() == 10 and df["b"].nunique() == 5
    assert df["dept"].nunique() == 5
    assert set(df["service"]) <= {"0", "1", "2"}
    with pytest.raises(ValueError):
        make_crossed(0, 1, 1)


def test_make_crossed_is_fast_for_a_million_rows():
    import time

    t0 = time.perf_counter()
    df = make_crossed(1_000_000, 50_000, 2_000, seed=0)
    assert time.perf_counter() - t0 < 20
    assert len(df) == 1_000_000 and df["b"].nunique() == 2_000


# --- fixtures agree with the bundled data ------------------------------------------


def fixture_files():
    return sorted(p for p in FIXTURES.glob("*.json") if not p.name.startswith("_"))


def test_fixture_suite_present():
    have = {p.stem for p in fixture_files()}
    required = {
        "sleepstudy_corr",
        "sleepstudy_uncorr",
        "sleepstudy_ml",
        "sleepstudy_int",
        "sleepstudy_quad",
        "dyestuff",
        "dyestuff2_singular",
        "penicillin",
        "penicillin_ml",
        "pastes_nested",
        "pastes_explicit",
        "oats",
        "cake",
        "orthodont",
        "orthodont_ml",
        "machines_factor_slope",
        "machines_uncorr_factor",
        "iris_dots",
        "schools_intercepts",
        "schools_slopes",
        "schools_uncorr",
        "schools_partial",
        "schools_crossed",
        "insteval_small",
        "insteval_small_dept",
    }
    assert required <= have
    session = json.loads((FIXTURES / "_session.json").read_text())
    assert session["packages"]["lme4"].startswith("1.")
    assert set(session["models"]) == have


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.stem)
def test_fixture_matches_bundled_data(path):
    fx = json.loads(path.read_text())
    assert fx["name"] == path.stem
    df = load(fx["dataset"])
    assert fx["nobs"] == len(df)
    assert list(fx["fixef"]) == fx["vcov_names"] == list(fx["se"])
    assert fx["varcorr"][-1]["grp"] == "Residual"
    assert fx["sigma"] == pytest.approx(fx["varcorr"][-1]["sdcor"])
    assert np.isfinite(fx["logLik"])
    assert fx["isSingular"] == (fx["name"] == "dyestuff2_singular")
    for grp, block in fx["ranef"].items():
        assert len(block["values"]) == len(block["levels"]) == fx["ngrps"][grp]
        assert all(len(row) == len(block["columns"]) for row in block["values"])
        if grp in df.columns:  # a plain factor: its levels are the data's, sorted
            assert block["levels"] == sorted(df[grp].unique())
