"""translate(): the groups partition, term placement, refusals, data checks, code()."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lme2sm
from lme2sm.datasets import load
from lme2sm.errors import ApproximationWarning, DataError, DroppedRowsWarning

FIXTURES = Path(__file__).parent / "fixtures" / "models"


def lme4(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.mark.parametrize(
    "formula, dataset, n_groups, groups, re_formula, vc_keys",
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", 18, "Subject", "1 + Days", []),
        ("strength ~ 1 + (1 | batch/cask)", "Pastes", 10, "batch", "1", ["cask:batch"]),
        (
            "diameter ~ 1 + (1 | plate) + (1 | sample)",
            "Penicillin",
            1,
            "group",
            "0",
            ["plate", "sample"],
        ),
        ("test_score ~ age + (1 | school) + (1 | rater)", "schools", 40, "school", "1", ["rater"]),
        (
            "test_score ~ age + (1 | rater) + (1 | school:classroom)",
            "schools",
            40,
            "group",
            "0",
            ["rater", "school:classroom"],
        ),
        (
            "Reaction ~ Days + (Days || Subject)",
            "sleepstudy",
            18,
            "Subject",
            "1",
            ["Subject|Days"],
        ),
    ],
)
def test_groups_partition_and_slots(formula, dataset, n_groups, groups, re_formula, vc_keys):
    t = lme2sm.translate(formula, load(dataset))
    assert t.n_groups == n_groups
    assert t.groups == groups
    assert t.re_formula == re_formula
    assert sorted(t.vc_formula) == sorted(vc_keys)
    assert t.data[t.groups].nunique() == n_groups


def test_partially_crossed_components_partition_rows():
    data = load("schools")
    t = lme2sm.translate("test_score ~ age + (1 | rater) + (1 | school:classroom)", data)
    # every rater and every classroom lies inside one component, and components are schools
    comp = t.data[t.groups]
    assert (t.data.groupby("rater")[t.groups].nunique() == 1).all()
    assert (t.data.groupby("school")[t.groups].nunique() == 1).all()
    assert comp.nunique() == data["school"].nunique()


def test_reused_labels_are_told_apart_by_combination():
    data = load("schools")
    assert data.groupby("classroom")["school"].nunique().max() > 1  # "1" in every school
    t = lme2sm.translate("test_score ~ age + (1 | school/classroom)", data)
    col = t.group_columns["classroom:school"]
    assert t.data[col].nunique() == data.groupby(["school", "classroom"]).ngroups
    assert t.data[col].iloc[0] == f"{data['classroom'].iloc[0]}:{data['school'].iloc[0]}"


def test_numeric_grouping_column_is_categorical():
    data = load("sleepstudy").assign(Subject=lambda d: d["Subject"].astype(int))
    t = lme2sm.translate("Reaction ~ Days + (1 | Subject)", data)
    assert t.data[t.groups].map(type).eq(str).all()
    m = lme2sm.lmer("Reaction ~ Days + (1 | Subject)", data)
    assert m.ngrps()["Subject"] == 18
    assert m.logLik() == pytest.approx(lme4("sleepstudy_int")["logLik"], abs=1e-3)


SEED = "test_score ~ age + (age | classroom) + (age | school) + (age | province)"


def test_seed_scenario_is_refused_with_term_reason_and_suggestion():
    with pytest.raises(lme2sm.NotExpressibleError) as info:
        lme2sm.translate(SEED, load("schools"))
    err = info.value
    assert err.term in ("age | classroom", "age | school", "age | province")
    assert "MixedLM" in err.reason and "groups" in err.reason
    assert err.suggestion == f"({err.term.replace(' | ', ' || ')})"
    assert err.term in str(err) and err.suggestion in str(err)
    assert isinstance(err, ValueError)


def test_correlated_nested_term_suggests_double_bar():
    data = load("schools")
    with pytest.raises(lme2sm.NotExpressibleError) as info:
        lme2sm.translate("test_score ~ age + (1 | school) + (age | school:classroom)", data)
    assert info.value.suggestion == "(age || school:classroom)"
    assert "the groups partition is school (40 levels)" in info.value.reason


def test_approximate_fits_nearest_model_and_names_what_was_dropped():
    data = load("schools")
    formula = "test_score ~ age + (1 | school) + (age | school:classroom)"
    with pytest.warns(ApproximationWarning, match=r"\(age \|\| school:classroom\)") as rec:
        t = lme2sm.translate(formula, data, approximate=True)
    assert "correlations among (Intercept), age" in str(rec[0].message)
    exact = lme2sm.translate("test_score ~ age + (1 | school) + (age || school:classroom)", data)
    assert t.vc_formula == exact.vc_formula and t.re_formula == exact.re_formula
    assert all(p.approximated_from for p in t.placements if p.term.group == "school:classroom")


def test_missing_column_names_it_and_suggests():
    data = load("sleepstudy")
    with pytest.raises(DataError, match=r"'days'.*did you mean 'Days'"):
        lme2sm.translate("Reaction ~ days + (1 | Subject)", data)


def test_non_numeric_response():
    data = load("sleepstudy").assign(Reaction=lambda d: d["Reaction"].astype(str))
    with pytest.raises(DataError, match=r"response column 'Reaction' must be numeric"):
        lme2sm.translate("Reaction ~ Days + (1 | Subject)", data)


def test_one_level_and_one_level_per_row_are_refused():
    data = load("sleepstudy").assign(one="a", row=lambda d: [str(i) for i in range(len(d))])
    with pytest.raises(DataError, match=r"'one' has only 1 level"):
        lme2sm.translate("Reaction ~ Days + (1 | one)", data)
    with pytest.raises(DataError, match=r"'row' has 180 levels for 180 rows"):
        lme2sm.translate("Reaction ~ Days + (1 | row)", data)


def test_dropped_rows_are_counted_and_caller_data_untouched():
    data = load("sleepstudy")
    data.loc[[3, 7], "Reaction"] = np.nan
    data.loc[11, "Days"] = np.nan
    before = data.copy()
    with pytest.warns(
        DroppedRowsWarning, match=r"dropped 3 of 180 rows.*Reaction \(2\), Days \(1\)"
    ):
        t = lme2sm.translate("Reaction ~ Days + (1 | Subject)", data)
    assert t.n_dropped == 3 and len(t.data) == 177
    pd.testing.assert_frame_equal(data, before)


CODE_CASES = [
    ("sleepstudy_corr", None),
    ("sleepstudy_uncorr", None),
    ("pastes_nested", None),
    ("penicillin", None),
    ("oats", None),
    ("iris_dots", None),
    ("schools_partial", None),
    ("machines_factor_slope", None),
    ("dyestuff", None),
]


@pytest.mark.parametrize("name, _", CODE_CASES)
def test_code_runs_and_reaches_lme4(name, _):
    fx = lme4(name)
    data = load(fx["dataset"])
    t = lme2sm.translate(fx["formula"], data, REML=fx["REML"])
    code = t.code()
    assert "lme2sm" not in code
    namespace = {"data": data}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(code, namespace)  # noqa: S102 - our own generated code
    assert namespace["result"].llf >= fx["logLik"] - 1e-3
    explanation = t.explain()
    for p in t.placements:
        assert p.lme4_text in explanation


def test_code_for_components_partition_runs():
    data = load("schools")
    t = lme2sm.translate("test_score ~ age + (1 | rater) + (1 | school:classroom)", data)
    assert t.group_kind == "components"
    namespace = {"data": data}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(t.code(), namespace)  # noqa: S102
    assert namespace["df"][t.groups].nunique() == 40
    m = lme2sm.lmer("test_score ~ age + (1 | rater) + (1 | school:classroom)", data)
    assert namespace["result"].llf == pytest.approx(m.logLik(), abs=1e-3)


def test_explain_reads_term_by_term():
    t = lme2sm.translate("strength ~ 1 + (1 | batch/cask)", load("Pastes"))
    text = t.explain()
    assert "(1 | batch)\n  → re_formula='1'" in text
    assert (
        "(1 | cask:batch)\n  → vc_formula['cask:batch'] = \"0 + C(Q('cask:batch'))\"" in text
        or ("vc_formula['cask:batch']" in text)
    )
    assert "groups='batch'" in text


# ------------------------------------------------------------------ mixedlm drop-in


def test_mixedlm_without_random_terms_passes_through():
    import statsmodels.formula.api as smf

    data = load("sleepstudy")
    ours = lme2sm.mixedlm("Reaction ~ Days", data, groups=data["Subject"], re_formula="~Days")
    theirs = smf.mixedlm("Reaction ~ Days", data, groups=data["Subject"], re_formula="~Days")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ours.fit().llf == pytest.approx(theirs.fit().llf)


def test_mixedlm_with_terms_returns_unfitted_translated_model():
    from statsmodels.regression.mixed_linear_model import MixedLM

    model = lme2sm.mixedlm("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    assert isinstance(model, MixedLM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(reml=True)
    assert result.llf == pytest.approx(lme4("sleepstudy_corr")["logLik"], abs=1e-2)


@pytest.mark.parametrize(
    "kwargs, teaches",
    [
        ({"groups": "student"}, "name every grouping factor in a term"),
        ({"vc_formula": {"classroom": "diag"}}, "'0 + C(classroom)'"),
        ({"re_formula": {"classroom": "1"}}, "not a dict"),
    ],
)
def test_mixedlm_refuses_mixing_lme4_terms_with_statsmodels_arguments(kwargs, teaches):
    data = load("schools")
    with pytest.raises(lme2sm.ArgumentError) as info:
        lme2sm.mixedlm("test_score ~ age + (1 | classroom)", data, **kwargs)
    assert teaches in str(info.value)
    assert "(1 | classroom)" in str(info.value)


def test_transformation_giving_infinite_values_is_refused():
    with pytest.raises(DataError, match=r"log\(Days\) is NaN or infinite in 18 rows"):
        lme2sm.translate("Reaction ~ log(Days) + (1 | Subject)", load("sleepstudy"))


def test_formula_text_is_never_executed(tmp_path):
    marker = tmp_path / "ran"
    formula = f"Reaction ~ __import__('os').system('touch {marker}') + (1 | Subject)"
    with pytest.raises(lme2sm.FormulaError):
        lme2sm.lmer(formula, load("sleepstudy"))
    assert not marker.exists()


def test_mixedlm_drop_in_keeps_separate_blocks_uncorrelated():
    data = load("sleepstudy").assign(
        w=lambda d: (d["Days"] - 4.5) ** 2 / 10, v=lambda d: np.sin(d["Days"])
    )
    formula = "Reaction ~ Days + (1 + Days | Subject) + (0 + w + v | Subject)"
    t = lme2sm.translate(formula, data)
    assert len(t.re_blocks) == 2
    model = lme2sm.mixedlm(formula, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(reml=True, method="lbfgs")
    names = [lab.statsmodels for lab in t.params if lab.kind == "pinned"]
    assert names and all(result.params[n] == 0 for n in names)
    assert result.llf == pytest.approx(lme2sm.lmer(formula, data).logLik(), abs=1e-2)
