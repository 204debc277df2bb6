"""emmeans(): reference grid, marginal means and pairwise contrasts against R's emmeans
1.8.4 (``tests/fixtures/kr/*.json`` from ``tools/make_kr_fixtures.R``, and
``tests/fixtures/kr_reference.json`` from ``tools/make_kr_reference.R``), plus the
properties that define them (equal-weight averaging, the adjustments)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kr_reference import (
    KR_NAMES,
    WELL_DETERMINED,
    kr_data,
    kr_fixture,
    kr_model,
    r_model,
    reference,
)
from scipy import stats

from lme2sm.engine.frame_input import profiled_of
from lme2sm.errors import ArgumentError
from lme2sm.inference.emmeans import emmeans

EMM_COLUMNS = ["emmean", "SE", "df", "lower.CL", "upper.CL"]
PAIR_COLUMNS = ["estimate", "SE", "df", "t.ratio"]

# fixture entry: (specs, by, ddf); R kept the first rows only of the larger grids
CASES = {
    "oats": ("Variety", None, "Kenward-Roger"),
    "machines": ("Machine", None, "Kenward-Roger"),
    "machines2": ("Machine", None, "Kenward-Roger"),
    "cake": ("recipe", None, "Kenward-Roger"),
    "orth": ("Sex", None, "Kenward-Roger"),
    "cake_by": ("~ recipe | tf", None, "Kenward-Roger"),
    "cake_two": (["recipe", "tf"], None, "Kenward-Roger"),
    "cake_satt": ("recipe", None, "Satterthwaite"),
}
MODEL_OF = {"cake_by": "cake_by", "cake_two": "cake_by", "cake_satt": "cake_by"}


def close(got, want, scale=None, tol=1e-5):
    """Relative agreement; near-zero values relative to ``scale`` (their SE)."""
    got, want = np.asarray(got, dtype=float), np.asarray(want, dtype=float)
    den = np.abs(want) if scale is None else np.maximum(np.abs(want), np.asarray(scale))
    return float(np.max(np.abs(got - want) / den)) < tol


def fitted(name, at):
    return r_model(MODEL_OF.get(name, name), at)


AT = [(name, "lme4") for name in CASES] + [
    (name, "own")
    for name in CASES
    if MODEL_OF.get(name, name) in [*WELL_DETERMINED, "cake_by"] and name != "cake_two"
]
"""At lme4's theta everywhere; at lme2sm's own optimum where it is well determined
(cake_two's 153 Tukey p-values take 4 s: scipy's studentized range integrates
numerically, ~25 ms each)."""


@pytest.mark.parametrize(("name", "at"), AT)
def test_table_matches_emmeans(name, at):
    specs, by, ddf = CASES[name]
    ref = pd.DataFrame(reference()[name]["emm"])
    got = emmeans(fitted(name, at), specs, by=by, ddf=ddf).table.iloc[: len(ref)]
    factors = [c for c in ref.columns if c not in [*EMM_COLUMNS, "_row"]]
    assert list(got.columns) == [*factors, *EMM_COLUMNS]
    for f in factors:
        assert [str(v) for v in got[f]] == [str(v) for v in ref[f]]
    for c in EMM_COLUMNS:
        assert close(got[c], ref[c]), c


PAIRS = [
    (name, at, adjust)
    for name, at in AT
    for adjust in ("tukey", "bonferroni", "holm", "none")
    if f"pairs_{adjust}" in reference()[name]
]


@pytest.mark.parametrize(("name", "at", "adjust"), PAIRS)
def test_pairs_match_emmeans(name, at, adjust):
    key = f"pairs_{adjust}"
    specs, by, ddf = CASES[name]
    ref = pd.DataFrame(reference()[name][key])
    got = emmeans(fitted(name, at), specs, by=by, ddf=ddf).pairs(adjust=adjust).iloc[: len(ref)]
    assert list(got["contrast"]) == list(ref["contrast"])
    for c in PAIR_COLUMNS:
        scale = {"estimate": ref["SE"], "t.ratio": 1.0}.get(c)  # near zero: absolute
        assert close(got[c], ref[c], scale=scale), c
    np.testing.assert_allclose(got["p.value"], ref["p.value"], rtol=1e-4, atol=1e-6)


def test_equal_weights_over_other_factors():
    """A marginal mean is the plain average of the grid's predictions."""
    m = r_model("cake_by")
    cells = emmeans(m, ["recipe", "tf"]).table
    means = emmeans(m, "recipe").table
    by_hand = cells.groupby("recipe", observed=True)["emmean"].mean()
    np.testing.assert_allclose(means["emmean"], by_hand.loc[list(means["recipe"])], rtol=1e-12)


def test_covariate_at_its_mean():
    m = r_model("oats")
    e = emmeans(m, "Variety")
    beta = m.fixef()
    nitro = m.frame.data["nitro"].mean()
    golden = beta["(Intercept)"] + beta["nitro"] * nitro
    assert e.table["emmean"].iloc[0] == pytest.approx(golden, rel=1e-12)


def test_adjustments_relations():
    e = emmeans(r_model("oats"), "Variety")
    none = e.pairs(adjust="none")["p.value"].to_numpy()
    assert np.allclose(e.pairs(adjust="bonferroni")["p.value"], np.minimum(1, 3 * none))
    order = np.argsort(none)
    holm = e.pairs(adjust="holm")["p.value"].to_numpy()
    assert holm[order[0]] == pytest.approx(min(1, 3 * none[order[0]]))
    tukey = e.pairs(adjust="tukey")
    t, df = tukey["t.ratio"].to_numpy(), tukey["df"].to_numpy()
    expected = stats.studentized_range.sf(np.sqrt(2) * np.abs(t), 3, df)
    np.testing.assert_allclose(tukey["p.value"], expected, rtol=1e-12)


def test_two_means_tukey_is_the_t_test():
    e = emmeans(r_model("orth"), "Sex")
    np.testing.assert_allclose(
        e.pairs(adjust="tukey")["p.value"], e.pairs(adjust="none")["p.value"], rtol=1e-6
    )


def test_by_groups_are_separate_families():
    e = emmeans(r_model("cake_by"), "recipe", by="tf")
    pairs = e.pairs()
    assert list(pairs.columns) == ["contrast", "tf", "estimate", "SE", "df", "t.ratio", "p.value"]
    assert len(pairs) == 6 * 3  # 3 pairs of recipes in each of 6 temperatures


def test_asymptotic_df_are_infinite():
    e = emmeans(r_model("oats"), "Variety", ddf="asymptotic")
    assert np.all(np.isinf(e.table["df"]))
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(e.table["upper.CL"], e.table["emmean"] + z * e.table["SE"])


@pytest.mark.parametrize(
    ("specs", "kwargs"),
    [
        ("Block", {}),
        ("Variety", {"ddf": "KR2"}),
        ("Variety", {"level": 1.5}),
        ("Variety", {"by": "Variety"}),
    ],
)
def test_bad_arguments(specs, kwargs):
    with pytest.raises(ArgumentError):
        emmeans(r_model("oats"), specs, **kwargs)


def test_bad_adjust():
    with pytest.raises(ArgumentError):
        emmeans(r_model("oats"), "Variety").pairs(adjust="scheffe")


def test_method_on_the_result():
    m = r_model("oats")
    assert m.emmeans("~ Variety").table.equals(emmeans(m, "Variety").table)


# ------------------------------------ tests/fixtures/kr (tools/make_kr_fixtures.R)

EMM_CALLS = [
    (name, i, at)
    for name in KR_NAMES
    for i in range(len(kr_fixture(name)["emmeans"]))
    for at in (("lme4", "own") if name != "orthodont" else ("lme4",))
]
"""Every emmeans call of every fixture, at lme4's theta and (where the REML optimum is
well determined: not Orthodont) at lme2sm's own optimum."""


def call_id(case) -> str:
    name, i, at = case
    return f"{name}-{kr_fixture(name)['emmeans'][i]['label']}-{at}"


def run_call(name: str, i: int, at: str):
    call = kr_fixture(name)["emmeans"][i]
    ddf = {"kenward-roger": "Kenward-Roger", "satterthwaite": "Satterthwaite"}[call["lmer_df"]]
    return call, emmeans(kr_model(name, at), call["specs"], ddf=ddf, at=call["at"])


def same_column(got: pd.Series, want: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(want):
        return np.allclose(got.astype(float), want.astype(float))
    return [str(v) for v in got] == [str(v) for v in want]


@pytest.mark.parametrize("case", EMM_CALLS, ids=call_id)
def test_fixture_emmeans_table(case):
    call, e = run_call(*case)
    ref = pd.DataFrame(call["table"])
    got = e.table
    factors = [c for c in ref.columns if c not in EMM_COLUMNS]
    assert list(got.columns) == [*factors, *EMM_COLUMNS]
    assert len(got) == len(ref)
    for f in factors:
        assert same_column(got[f], ref[f]), f
    for c in EMM_COLUMNS:
        tol = 1e-3 if c == "df" else 1e-5  # the KR df and emmeans tolerances
        assert close(got[c], ref[c], scale=ref["SE"] if c == "emmean" else None, tol=tol), c


@pytest.mark.parametrize("case", EMM_CALLS, ids=call_id)
@pytest.mark.parametrize("adjust", ["tukey", "bonferroni", "holm", "none"])
def test_fixture_emmeans_pairs(case, adjust):
    call, e = run_call(*case)
    ref = pd.DataFrame(call["pairs"][adjust])
    got = e.pairs(adjust=adjust)
    assert list(got["contrast"]) == list(ref["contrast"])
    assert len(got) == len(ref)
    for b in call["by"] or []:
        assert same_column(got[b], ref[b]), b
    for c in PAIR_COLUMNS:
        scale = {"estimate": ref["SE"], "t.ratio": 1.0}.get(c)
        assert close(got[c], ref[c], scale=scale, tol=1e-3 if c == "df" else 1e-5), c
    np.testing.assert_allclose(got["p.value"], ref["p.value"], rtol=1e-4, atol=1e-6)


def test_non_estimable_means_and_contrasts():
    """A missing Variety x nitro cell: lme4 drops a column, emmeans reports nonEst.

    R (emmeans 1.8.4) on the same data: Golden Rain 104.5 (SE 7.42, df 8.33), Marvellous
    109.8, Victory nonEst; Golden Rain - Marvellous -5.29 (SE 6.45, df 9.29), Tukey p
    0.7004 (a family of 3 estimates), Bonferroni p 1; the two contrasts with Victory
    nonEst. By nitro, only Victory at 0.6 is nonEst. Compared at lme4's theta (the
    criterion is flat here: lme2sm's optimum is 1.5e-9 lower, theta 1e-4 away)."""
    import warnings

    from lme2sm.frame.model_frame import build_model_frame
    from lme2sm.models.lmer_result import LmerResult

    data = kr_data("oats")
    data = data[~((data["Variety"] == "Victory") & (data["nitro"] == "0.6"))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = build_model_frame("yield ~ Variety * nitro + (1 | Block/Variety)", data)
    profiled = profiled_of(frame)
    record = profiled.record_at(np.array([0.666368771845, 1.068137949526]), True)
    m = LmerResult(frame, record, profiled, True)
    e = emmeans(m, "Variety")
    assert e.table["emmean"].isna().tolist() == [False, False, True]
    assert e.table["emmean"].iloc[0] == pytest.approx(104.5)
    assert e.table["SE"].iloc[0] == pytest.approx(7.42, abs=0.005)
    assert e.table["df"].iloc[0] == pytest.approx(8.33, abs=0.005)
    pairs = e.pairs()
    assert pairs["estimate"].isna().tolist() == [False, True, True]
    assert pairs["SE"].iloc[0] == pytest.approx(6.449519, abs=1e-6)
    assert pairs["p.value"].iloc[0] == pytest.approx(0.7004, abs=5e-5)
    assert e.pairs(adjust="none")["p.value"].iloc[0] == pytest.approx(0.4324985085, rel=1e-6)
    none = e.pairs(adjust="none")["p.value"].iloc[0]
    assert e.pairs(adjust="bonferroni")["p.value"].iloc[0] == pytest.approx(min(1, 3 * none))
    by = emmeans(m, "~ Variety | nitro").table
    assert by["emmean"].isna().tolist() == [False] * 11 + [True]


def test_factor_of_a_number_and_an_offset():
    """R: emmeans(lmer(angle ~ recipe + factor(temp) + ...), ~ temp) labels contrasts
    temp175 - temp185 (-1.977778, SE 0.953978, df 220, Tukey p 0.3052 for 6 means);
    with offset(log(temp)) the means include the offset's average (A: 33.12222)."""
    import warnings

    import lme2sm
    from lme2sm.datasets import load

    cake = load("cake")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("angle ~ recipe + factor(temp) + (1 | recipe:replicate)", cake)
        m2 = lme2sm.lmer(
            "angle ~ recipe + temp + offset(log(temp)) + (1 | recipe:replicate)", cake
        )
    e = emmeans(m, "temp")
    assert list(e.table["temp"]) == [175, 185, 195, 205, 215, 225]
    first = e.pairs().iloc[0]
    assert first["contrast"] == "temp175 - temp185"
    assert first["estimate"] == pytest.approx(-1.977778, abs=1e-6)
    assert first["p.value"] == pytest.approx(0.3052, abs=1e-4)
    means = emmeans(m2, "recipe").table["emmean"]
    np.testing.assert_allclose(means, [33.12222, 31.64444, 31.60000], atol=1e-5)
