"""The variance-component engine against plain statsmodels MixedLM and against lme4.

Plain MixedLM is fitted on the equivalent ``vc_formula`` model (one dummy group for
crossed factors, the top factor for nested ones). The lme4 numbers come only from the
committed fixtures ``tests/fixtures/models/*.json`` (written by
``tools/make_fixtures.R`` with lme4 1.1-31); those tests skip if a fixture or dataset
is missing, so no test needs R.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.mixed_linear_model import MixedLM, MixedLMResults

from lme2sm.engines import (
    ProfiledDeviance,
    ScalarTerm,
    VarianceComponentsMixedLM,
    fit_profiled,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
DATASETS = ROOT / "lme2sm" / "datasets"


# ---------------------------------------------------------------- helpers
def _term(df: pd.DataFrame, factor: str, cov: str | None = None, name: str | None = None):
    cols = factor.split(":")
    lab = df[cols[0]].astype(str)
    for c in cols[1:]:
        lab = lab + ":" + df[c].astype(str)
    codes, levels = pd.factorize(lab, sort=True)
    return ScalarTerm(
        name or factor,
        codes.astype(np.int64),
        tuple(levels),
        None if cov is None else df[cov].to_numpy(float),
        factor=factor,
        covariate_name=cov,
    )


def _crossed_data(seed: int = 11, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 15, n)
    b = rng.integers(0, 8, n)
    school = rng.integers(0, 5, n)
    cls = rng.integers(0, 3, n)
    x = rng.normal(size=n)
    y = (
        2.0
        + 0.5 * x
        + 0.7 * rng.normal(size=15)[a]
        + 0.5 * rng.normal(size=8)[b]
        + 0.4 * rng.normal(size=15)[a] * x
        + 0.6 * rng.normal(size=5)[school]
        + 0.5 * rng.normal(size=15)[school * 3 + cls]
        + rng.normal(size=n)
    )
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "a": [f"a{i:02d}" for i in a],
            "b": [f"b{i}" for i in b],
            "school": [f"s{i}" for i in school],
            "cls": [f"s{s}c{c}" for s, c in zip(school, cls)],
            "one": 1,
        }
    )


# name -> (groups column, terms as (name, factor, covariate), vc_formula)
CASES = {
    "crossed": ("one", [("a", "a", None), ("b", "b", None)], None),
    "crossed_slope": (
        "one",
        [("a", "a", None), ("b", "b", None), ("ax", "a", "x")],
        None,
    ),
    "nested": ("school", [("school", "school", None), ("cls", "cls", None)], None),
    "nested_crossed": (
        "one",
        [("school", "school", None), ("cls", "cls", None), ("b", "b", None)],
        None,
    ),
}


def _vc_formula(spec):
    return {
        name: f"0 + C({factor})" if cov is None else f"0 + C({factor}):{cov}"
        for name, factor, cov in spec
    }


def _plain_fit(df, groups, spec, reml, start=None):
    model = MixedLM.from_formula(
        "y ~ x",
        df,
        groups=groups,
        re_formula="0",
        vc_formula=_vc_formula(spec),
        use_sparse=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if start is None:
            return model, model.fit(reml=reml, method=["lbfgs"])
        return model, model.fit(reml=reml, start_params=start, method=["lbfgs"])


def _engine_model(df, groups, spec):
    terms = [_term(df, factor, cov, name) for name, factor, cov in spec]
    X = np.column_stack([np.ones(len(df)), df["x"].to_numpy(float)])
    return (
        VarianceComponentsMixedLM.from_terms(
            df["y"].to_numpy(float), X, ["Intercept", "x"], df[groups].to_numpy(), terms
        ),
        terms,
        X,
    )


# ------------------------------------------------------- deviance itself
@pytest.mark.parametrize("reml", [True, False])
def test_deviance_equals_statsmodels_loglike(reml):
    df = _crossed_data()
    groups, spec, _ = CASES["crossed_slope"]
    model, terms, X = _engine_model(df, groups, spec)
    terms = sorted(terms, key=lambda t: t.name)  # statsmodels' vcomp order
    dev = ProfiledDeviance(df["y"].to_numpy(float), X, terms, reml=reml)
    model.reml = reml
    model.cov_pen = None
    model.fe_pen = None
    model._cov_sing = 0
    for theta in ([0.7, 0.3, 0.5], [1.3, 1e-3, 0.2], [0.05, 2.0, 1.0]):
        theta = np.array(theta)
        packed = np.sqrt(theta**2)  # statsmodels packs sqrt(vcomp / scale) = theta
        assert dev.deviance(theta) == pytest.approx(-2 * model.loglike(packed), rel=1e-11)


@pytest.mark.parametrize("reml", [True, False])
def test_analytic_gradient_matches_finite_differences(reml):
    df = _crossed_data(seed=3)
    _, spec, _ = CASES["nested_crossed"]
    terms = [_term(df, f, c, n) for n, f, c in spec]
    X = np.column_stack([np.ones(len(df)), df["x"].to_numpy(float)])
    dev = ProfiledDeviance(df["y"].to_numpy(float), X, terms, reml=reml)
    theta = np.array([0.6, 0.4, 0.8])
    _, grad = dev.deviance_and_gradient(theta)
    h = 1e-6
    num = [
        (dev.deviance(theta + h * e) - dev.deviance(theta - h * e)) / (2 * h) for e in np.eye(3)
    ]
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-6)
    # the deviance is even in each theta_j: zero gradient at the boundary
    _, g0 = dev.deviance_and_gradient(np.array([0.0, 0.4, 0.8]))
    assert g0[0] == 0.0


# --------------------------------------------- against plain statsmodels
@pytest.mark.parametrize(
    "case, reml",
    [(c, True) for c in sorted(CASES)] + [("crossed_slope", False), ("nested", False)],
)
def test_matches_plain_mixedlm(case, reml):
    df = _crossed_data()
    groups, spec, _ = CASES[case]
    model, terms, X = _engine_model(df, groups, spec)
    res = model.fit(reml=reml)
    assert isinstance(res._results, MixedLMResults)

    plain_model, plain = _plain_fit(df, groups, spec, reml)
    # the engine reaches at least plain statsmodels' optimum (often better)
    assert res.llf >= plain.llf - 1e-6
    # plain statsmodels started at the engine's optimum stays there
    plain_model, plain = _plain_fit(df, groups, spec, reml, start=res.params_object)
    assert res.llf == pytest.approx(plain.llf, abs=1e-6)
    assert res.llf == pytest.approx(plain_model.loglike(res.params_object, profile_fe=False))

    assert list(res.params.index) == list(plain.params.index)
    assert model.exog_vc.names == plain_model.exog_vc.names
    assert model.exog_vc.colnames == plain_model.exog_vc.colnames
    assert res.method == plain.method and res.k_re == 0 and res.k_vc == len(spec)
    np.testing.assert_allclose(res.fe_params, plain.fe_params, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res.params, plain.params, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.vcomp, plain.vcomp, rtol=1e-4, atol=1e-7)
    assert res.scale == pytest.approx(plain.scale, rel=1e-6)
    assert res.cov_re.shape == (0, 0)
    np.testing.assert_allclose(res.bse_fe, plain.bse_fe, rtol=1e-4)
    ok = np.isfinite(plain.bse.values) & (np.asarray(res.vcomp).min() > 1e-3)
    np.testing.assert_allclose(res.bse.values[ok], plain.bse.values[ok], rtol=2e-3)
    np.testing.assert_allclose(
        np.asarray(res.cov_params())[:2, :2], np.asarray(plain.cov_params())[:2, :2], rtol=1e-3
    )

    assert list(res.random_effects) == list(plain.random_effects)
    for g, ser in plain.random_effects.items():
        mine = res.random_effects[g]
        assert list(mine.index) == list(ser.index)
        np.testing.assert_allclose(mine.values, ser.values, atol=1e-5)

    # fitted values: X beta + sum_j Z_j b_j, from plain's own pieces
    fitted = X @ plain.fe_params.values
    for gi, g in enumerate(plain_model.group_labels):
        rows = plain_model.row_indices[g]
        for j, name in enumerate(plain_model.exog_vc.names):
            re = plain.random_effects[g]
            vals = re[[c for c in re.index if c.startswith(name + "[")]].values
            fitted[rows] += plain_model.exog_vc.mats[j][gi] @ vals
    np.testing.assert_allclose(np.asarray(res.fittedvalues), fitted, atol=1e-5)


def test_results_summary_and_cov_options():
    df = _crossed_data(seed=5)
    groups, spec, _ = CASES["crossed"]
    model, _, _ = _engine_model(df, groups, spec)
    res = model.fit(fe_cov="vcov", threads=None)
    pf = res.profiled_fit
    np.testing.assert_allclose(res.bse_fe, np.sqrt(np.diag(pf.cov_beta)))
    text = str(res.summary())
    assert "a Var" in text and "REML" in text
    res3 = model.fit(start_params=res.params_object)
    assert res3.llf == pytest.approx(res.llf, abs=1e-8)
    res2 = model.fit(variance_cov=False)
    assert np.all(np.isnan(res2.bse.values[2:]))
    np.testing.assert_allclose(res2.bse_fe, np.sqrt(np.diag(pf.cov_beta)), rtol=1e-6)


def test_terms_must_nest_in_groups():
    df = _crossed_data()
    terms = [_term(df, "a"), _term(df, "b")]
    X = np.ones((len(df), 1))
    with pytest.raises(ValueError, match="more than one group"):
        VarianceComponentsMixedLM.from_terms(
            df["y"].to_numpy(), X, ["Intercept"], df["school"].to_numpy(), terms
        )


def test_start_and_boundary():
    rng = np.random.default_rng(7)
    n = 200
    g = rng.integers(0, 10, n)
    h = rng.integers(0, 6, n)
    y = rng.normal(size=n) + 0.8 * rng.normal(size=10)[g]  # no h effect at all
    terms = [
        ScalarTerm("g", g.astype(np.int64), tuple(map(str, range(10)))),
        ScalarTerm("h", h.astype(np.int64), tuple(map(str, range(6)))),
    ]
    X = np.ones((n, 1))
    a = fit_profiled(y, X, terms)
    b = fit_profiled(y, X, terms, start=[0.0, 0.0])  # starts on the boundary
    assert a.converged
    assert b.llf == pytest.approx(a.llf, abs=1e-6)
    np.testing.assert_allclose(b.theta, a.theta, atol=1e-4)
    assert a.theta[0] > 0.3


# ------------------------------------------------------ against lme4
# fixture name -> (dataset file, response, fixed columns, terms (name, factor, covariate))
LME4_MODELS = {
    "penicillin": ("Penicillin", "diameter", [], [("plate",) * 2, ("sample",) * 2]),
    "penicillin_ml": ("Penicillin", "diameter", [], [("plate",) * 2, ("sample",) * 2]),
    "pastes_nested": ("Pastes", "strength", [], [("batch",) * 2, ("cask:batch",) * 2]),
    "dyestuff2_singular": ("Dyestuff2", "Yield", [], [("Batch",) * 2]),
    "insteval_small": ("insteval_small", "y", ["service"], [("s",) * 2, ("d",) * 2]),
    "insteval_small_dept": (
        "insteval_small",
        "y",
        ["service"],
        [("s",) * 2, ("d",) * 2, ("dept:service",) * 2],
    ),
    "sleepstudy_slope_only": (
        "sleepstudy",
        "Reaction",
        ["Days"],
        [("Subject", "Subject", "Days")],
    ),
    "sleepstudy_uncorr": (
        "sleepstudy",
        "Reaction",
        ["Days"],
        [("Subject",) * 2, ("Subject.1", "Subject", "Days")],
    ),
}


@pytest.mark.parametrize("name", sorted(LME4_MODELS))
def test_matches_lme4_fixture(name):
    fixture = FIXTURES / f"{name}.json"
    dataset, response, fixed, spec = LME4_MODELS[name]
    csv = DATASETS / f"{dataset}.csv"
    if not (fixture.exists() and csv.exists()):
        pytest.skip(f"fixture {fixture.name} or dataset {csv.name} not present")
    ref = json.loads(fixture.read_text())
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    y = df[response].astype(float).to_numpy()
    cols = [np.ones(len(df))]
    for f in fixed:
        if f == "service":  # a factor in lme4: treatment contrast "service1"
            cols.append((df[f] == "1").astype(float).to_numpy())
        else:
            df[f] = df[f].astype(float)
            cols.append(df[f].to_numpy())
    X = np.column_stack(cols)
    terms = [_term(df, s[1], s[2] if len(s) > 2 else None, s[0]) for s in spec]
    fit = fit_profiled(y, X, terms, reml=ref["REML"])

    # lme4's logLik (REML or ML) - the engine must reach it
    assert fit.llf >= ref["logLik"] - 1e-6
    assert fit.llf == pytest.approx(ref["logLik"], abs=1e-4)
    np.testing.assert_allclose(fit.beta, list(ref["fixef"].values()), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov_beta)), list(ref["se"].values()), rtol=1e-3)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    vc = {row["grp"]: row["vcov"] for row in ref["varcorr"]}
    np.testing.assert_allclose(fit.variances, [vc[s[0]] for s in spec], rtol=2e-3, atol=1e-6)

    # conditional modes, lme4's ranef()
    for t, b in zip(terms, fit.modes):
        group = t.factor
        entry = ref["ranef"][group]
        col = entry["columns"].index("(Intercept)" if t.covariate is None else t.covariate_name)
        lme4_vals = dict(zip(entry["levels"], np.asarray(entry["values"])[:, col]))
        mine = np.array([lme4_vals[lev] for lev in t.levels])
        scale = max(1.0, np.abs(mine).max())
        np.testing.assert_allclose(b, mine, atol=2e-3 * scale)
