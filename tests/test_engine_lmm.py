"""The general engine (lme2sm.engine.lmm) against a dense brute-force deviance, and its
structure: nested terms stay block diagonal, cross-products add up over row partitions."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lme2sm
from lme2sm.datasets import load
from lme2sm.engine.crossprod import TermRows, cross_products
from lme2sm.engine.frame_input import frame_Zt
from lme2sm.engine.lmm import ProfiledLMM, TermSpec, theta_lower, unpack_theta
from lme2sm.frame.model_frame import kept_columns


def dense_deviance(terms, specs, X, y, theta, reml, weights=None):
    """lme4's profiled deviance computed the slow way: dense Z, Lambda and V."""
    n = len(y)
    blocks = []
    for t in terms:
        Z = np.zeros((n, t.n_levels * t.k))
        for e in range(t.k):
            Z[np.arange(n), t.codes * t.k + e] = t.Z[:, e]
        blocks.append(Z)
    Z = np.hstack(blocks)
    lams = [np.kron(np.eye(s.n_levels), T) for s, T in zip(specs, unpack_theta(theta, specs))]
    q = Z.shape[1]
    Lam = np.zeros((q, q))
    o = 0
    for L in lams:
        Lam[o : o + L.shape[0], o : o + L.shape[0]] = L
        o += L.shape[0]
    w = np.ones(n) if weights is None else weights
    V = Z @ Lam @ Lam.T @ Z.T + np.diag(1 / w)
    Vi = np.linalg.inv(V)
    p = X.shape[1]
    XtViX = X.T @ Vi @ X
    beta = np.linalg.solve(XtViX, X.T @ Vi @ y)
    r = y - X @ beta
    rss = float(r @ Vi @ r)
    _, logdetV = np.linalg.slogdet(V)
    if reml:
        df = n - p
        s2 = rss / df
        _, ld = np.linalg.slogdet(XtViX)
        return logdetV + ld + df * (1 + math.log(2 * math.pi * s2))
    s2 = rss / n
    return logdetV + n * (1 + math.log(2 * math.pi * s2))


@st.composite
def designs(draw):
    """Random designs: 1-3 terms, nested or crossed factors, 1-3 columns each."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    n = draw(st.integers(30, 70))
    n_terms = draw(st.integers(1, 3))
    base = rng.integers(0, draw(st.integers(2, 6)), n)
    terms, specs = [], []
    for _ in range(n_terms):
        kind = draw(st.sampled_from(["nested", "crossed", "same"]))
        if kind == "nested":  # finer factor inside the base one
            codes = base * 3 + rng.integers(0, 3, n)
        elif kind == "crossed":
            codes = rng.integers(0, draw(st.integers(2, 5)), n)
        else:
            codes = base.copy()
        _, codes = np.unique(codes, return_inverse=True)
        k = draw(st.integers(1, 3))
        Z = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])[:, :k]
        q = int(codes.max()) + 1
        terms.append(TermRows(codes.astype(np.int64), q, Z))
        specs.append(TermSpec(q, k))
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n) + base * 0.5
    theta = []
    for s in specs:
        for c in range(s.k):
            for r in range(c, s.k):
                theta.append(abs(rng.normal()) + 0.1 if r == c else rng.normal() * 0.5)
    weights = rng.uniform(0.5, 2.0, n) if draw(st.booleans()) else None
    return terms, specs, X, y, np.array(theta), weights


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(designs(), st.booleans())
def test_blocked_deviance_equals_dense_deviance(design, reml):
    terms, specs, X, y, theta, weights = design
    cp = cross_products(terms, X, y, weights)
    model = ProfiledLMM(cp, specs, dense=False)
    ours = model.deviance(theta, reml)
    # with prior weights: the Gaussian deviance of y with residual variances sigma^2 / w
    ref = dense_deviance(terms, specs, X, y, theta, reml, weights)
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-7)
    # Omega factored whole (small models) gives the same deviance, beta and modes
    whole = ProfiledLMM(cp, specs, dense=True)
    assert whole.deviance(theta, reml) == pytest.approx(ours, rel=1e-11)
    a, b = whole.evaluate(theta, modes=True), model.evaluate(theta, modes=True)
    assert a.deviance(reml) == pytest.approx(ours, rel=1e-11)
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(a.RX, b.RX, rtol=1e-9, atol=1e-11)
    for u_a, u_b in zip(a.u, b.u):
        np.testing.assert_allclose(u_a, u_b, rtol=1e-8, atol=1e-10)
    # the general path (taken for the modes) and the one-term path agree
    full = model.evaluate(theta, modes=True)
    assert full.deviance(reml) == pytest.approx(ours, rel=1e-12)
    # sums of a shifted response give the same deviance, and beta shifted back
    shift = np.array([y.mean() + 3.0, -0.7])
    shifted = ProfiledLMM(
        cross_products(terms, X, y, weights, beta_shift=shift), specs, dense=False
    )
    moved = shifted.evaluate(theta, modes=True)
    assert moved.deviance(reml) == pytest.approx(ours, rel=1e-10)
    np.testing.assert_allclose(moved.beta, full.beta, rtol=1e-8, atol=1e-10)
    for u_a, u_b in zip(moved.u, full.u):
        np.testing.assert_allclose(u_a, u_b, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(shifted.cp.unshifted().xy, cp.xy, rtol=1e-10, atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(designs())
def test_cross_products_add_over_row_partitions(design):
    terms, specs, X, y, theta, weights = design
    n = len(y)
    cut = n // 3
    parts = []
    for rows in (slice(0, cut), slice(cut, n)):
        sub = [TermRows(t.codes[rows], t.n_levels, t.Z[rows]) for t in terms]
        w = None if weights is None else weights[rows]
        parts.append(cross_products(sub, X[rows], y[rows], w))
    whole = cross_products(terms, X, y, weights)
    summed = parts[0].add(parts[1])
    a = ProfiledLMM(whole, specs).deviance(theta, True)
    b = ProfiledLMM(summed, specs).deviance(theta, True)
    assert a == pytest.approx(b, rel=1e-12)


def test_nested_terms_stay_block_diagonal():
    """classroom in school in province: all three terms eliminated level by level."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("test_score ~ age + (age | province/school/classroom)", load("schools"))
    assert len(m.profiled.prefix) == 3
    assert m.profiled.m_rest == 0


def test_crossed_term_goes_to_the_dense_block():
    m = lme2sm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", load("Penicillin"))
    assert [m.frame.terms[j].group for j in m.profiled.rest] == ["sample"]
    assert m.profiled.m_rest == 6


def test_modes_solve_the_penalised_least_squares_system():
    """u and beta from the back-substitution satisfy the normal equations."""
    m = lme2sm.lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    f = m.frame
    Z = frame_Zt(f).T.toarray()
    T = m.engine_fit.factors[0]
    Lam = np.kron(np.eye(f.terms[0].n_levels), T)
    u = np.linalg.solve(Lam, np.concatenate([b for b in m.engine_fit.b]).ravel())
    ZL = Z @ Lam
    lhs = np.block([[ZL.T @ ZL + np.eye(ZL.shape[1]), ZL.T @ f.X], [f.X.T @ ZL, f.X.T @ f.X]])
    rhs = np.concatenate([ZL.T @ f.y, f.X.T @ f.y])
    sol = np.linalg.solve(lhs, rhs)
    np.testing.assert_allclose(sol[-2:], m.engine_fit.beta, rtol=1e-10)
    np.testing.assert_allclose(sol[:-2], u, rtol=1e-8, atol=1e-8)


def test_offset_is_taken_off_the_response():
    d = load("sleepstudy").copy()
    d["half"] = d["Days"] / 2
    d["shifted"] = d["Reaction"] - d["half"]
    a = lme2sm.lmer("Reaction ~ Days + offset(half) + (1 | Subject)", d)
    b = lme2sm.lmer("shifted ~ Days + (1 | Subject)", d)
    assert a.logLik() == pytest.approx(b.logLik(), abs=1e-9)
    np.testing.assert_allclose(a.fixef(), b.fixef(), rtol=1e-10)
    np.testing.assert_allclose(a.fitted(), b.fitted() + d["half"], rtol=1e-10)


def test_rank_deficient_columns_are_dropped_with_one_warning():
    d = load("sleepstudy").copy()
    d["Days2"] = 2 * d["Days"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = lme2sm.lmer("Reaction ~ Days + Days2 + (1 | Subject)", d)
    texts = [str(w.message) for w in caught if w.category is lme2sm.errors.RankDeficiencyWarning]
    assert texts == [
        "fixed-effect model matrix is rank deficient so dropping 1 column / coefficient (Days2)"
    ]
    ref = lme2sm.lmer("Reaction ~ Days + (1 | Subject)", d)
    assert list(m.fixef().index) == ["(Intercept)", "Days"]
    assert m.logLik() == pytest.approx(ref.logLik(), abs=1e-9)


def test_kept_columns_follow_r_qr_order():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=50), rng.normal(size=50)
    X = np.column_stack([np.ones(50), a, b, a + b, 2 * a, rng.normal(size=50)])
    assert kept_columns(X) == [0, 1, 2, 5]


def test_rows_with_missing_values_are_dropped_and_counted():
    d = load("sleepstudy").copy()
    d.loc[[3, 7, 11], "Days"] = np.nan
    d.loc[20, "Subject"] = None
    with pytest.warns(lme2sm.errors.DroppedRowsWarning, match="dropped 4 of 180 rows"):
        m = lme2sm.lmer("Reaction ~ Days + (Days | Subject)", d)
    assert m.nobs == 176
    assert d["Days"].isna().sum() == 3  # the caller's frame is untouched


def test_weights_equal_to_one_change_nothing_and_scale_sigma():
    d = load("sleepstudy")
    a = lme2sm.lmer("Reaction ~ Days + (Days | Subject)", d)
    b = lme2sm.lmer("Reaction ~ Days + (Days | Subject)", d, weights=np.ones(len(d)))
    assert a.logLik() == pytest.approx(b.logLik(), abs=1e-9)
    c = lme2sm.lmer("Reaction ~ Days + (Days | Subject)", d, weights=np.full(len(d), 4.0))
    # weights 4 everywhere: the same distribution of y, so the same logLik and fixef;
    # sigma is the sd of a weight-1 row, twice the unweighted one
    assert c.sigma == pytest.approx(2 * a.sigma, rel=1e-5)
    np.testing.assert_allclose(c.fixef(), a.fixef(), rtol=1e-6)
    assert c.logLik() == pytest.approx(a.logLik(), abs=1e-6)


def test_bad_weights_are_refused():
    d = load("sleepstudy")
    with pytest.raises(lme2sm.DataError, match="negative weights"):
        lme2sm.lmer("Reaction ~ Days + (1 | Subject)", d, weights=-np.ones(len(d)))
    with pytest.raises(lme2sm.DataError, match="weights"):
        lme2sm.lmer("Reaction ~ Days + (1 | Subject)", d, weights="nope")


def test_too_few_observations_for_the_random_effects_is_refused():
    d = pd.DataFrame(
        {"y": [1.0, 2.0, 3.5, 2.2, 4.1, 3.3], "x": [0, 1, 2, 0, 1, 2], "g": list("aabbcc")}
    )
    with pytest.raises(lme2sm.DataError, match=r"number of observations \(=6\) <= number"):
        lme2sm.lmer("y ~ x + (x | g)", d)


def test_theta_bounds_and_order_are_lme4s():
    specs = [TermSpec(5, 2), TermSpec(3, 1)]
    lower = theta_lower(specs)
    assert list(lower) == [0.0, -np.inf, 0.0, 0.0]


def test_lmer_fits_parquet_files_through_the_large_path(tmp_path):
    pytest.importorskip("pyarrow")
    d = load("sleepstudy")
    path = tmp_path / "sleep.parquet"
    d.to_parquet(path)
    lazy = lme2sm.lmer("Reaction ~ Days + (Days | Subject)", str(path))
    ref = lme2sm.lmer("Reaction ~ Days + (Days | Subject)", d)
    assert lazy.logLik() == pytest.approx(ref.logLik(), abs=1e-6)
    np.testing.assert_allclose(lazy.fixef(), ref.fixef(), rtol=1e-6)
    assert "Scaled residuals" in lazy.summary()
    assert "rows are not in memory" in lazy.summary()


def test_integer_grouping_levels_sort_as_numbers_as_in_r():
    d = load("sleepstudy").copy()
    d["Subject"] = d["Subject"].astype(int)
    d.loc[d["Subject"] == 308, "Subject"] = 5  # R: factor(c(5, 309, ...)) puts 5 first
    m = lme2sm.lmer("Reaction ~ Days + (1 | Subject)", d)
    assert list(m.ranef()["Subject"].index[:3]) == ["5", "309", "310"]


@pytest.mark.parametrize(
    ("scale", "match"),
    [(1e200, "overflow double precision"), (None, "fit exactly|exactly fitted")],
)
def test_numerical_failures_are_fit_errors(scale, match):
    rng = np.random.default_rng(0)
    d = pd.DataFrame(
        {"x": rng.normal(size=60), "g": np.repeat(list("abcdef"), 10), "h": list("uvwxy") * 12}
    )
    d["y"] = d["x"] * scale if scale else 3 * d["x"] + 1  # huge, or fitted exactly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(lme2sm.FitError, match=match):
            lme2sm.lmer("y ~ x + (1 | g) + (1 | h)", d)


def test_convergence_check_from_the_engines_derivatives_and_afresh():
    import dataclasses

    from lme2sm.models.lmer import convergence_messages

    m = lme2sm.lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    rec = m.engine_fit
    idx, grad, hess, at = rec.derivatives
    assert list(idx) == [0, 1, 2] and np.all(np.linalg.eigvalsh(hess) > 0)
    assert convergence_messages(m.profiled, rec) == ()
    # 5% off the optimum: lme4's check fails, computed afresh (no engine derivatives)
    off = m.profiled.record_at(rec.theta * 1.05)
    assert off.derivatives is None
    (message,) = convergence_messages(m.profiled, off)
    assert message.startswith("Model failed to converge with max|grad|")
    # and from derivatives the engine hands over: the same gradient and Hessian as afresh
    h = 1e-4 * np.maximum(np.abs(off.theta), 1e-2)
    g = np.array(
        [
            (
                m.profiled.deviance(off.theta + h[j] * np.eye(3)[j])
                - m.profiled.deviance(off.theta - h[j] * np.eye(3)[j])
            )
            / (2 * h[j])
            for j in range(3)
        ]
    )
    given = dataclasses.replace(off, derivatives=(np.arange(3), g, hess, off.theta))
    (again,) = convergence_messages(m.profiled, given)
    assert again.startswith("Model failed to converge with max|grad|")
