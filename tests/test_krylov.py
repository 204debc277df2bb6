"""The approximate Krylov fit (``lmer(..., factor="krylov")``, lme2sm.engine.krylov, #21)
against the exact engine and lme4, and its pieces against dense linear algebra."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import fixture_data, lme4_answer

import lme2sm
from lme2sm.engine import lmm
from lme2sm.engine.frame_input import frame_crossprods, profiled_of, term_specs
from lme2sm.engine.krylov import KrylovLMM, deflated_logdet, pcg, slq_quadrature
from lme2sm.errors import ArgumentError, FitError
from lme2sm.frame.model_frame import build_model_frame


def crossed_data(n=20000, q1=2000, q2=500, slope=False, seed=3) -> pd.DataFrame:
    """InstEval/MovieLens-like: Zipf-ish level frequencies, two crossed factors."""
    rng = np.random.default_rng(seed)
    p1 = 1.0 / (np.arange(q1) + 5.0)
    p2 = 1.0 / (np.arange(q2) + 5.0)
    g1 = np.concatenate([np.arange(q1), rng.choice(q1, n - q1, p=p1 / p1.sum())])
    g2 = np.concatenate([np.arange(q2), rng.choice(q2, n - q2, p=p2 / p2.sum())])
    rng.shuffle(g2)
    x = rng.standard_normal(n)
    y = 1 + 0.5 * x + 0.8 * rng.standard_normal(q1)[g1] + 0.5 * rng.standard_normal(q2)[g2]
    if slope:
        y = y + 0.3 * rng.standard_normal(q2)[g2] * x
    y = y + rng.standard_normal(n)
    return pd.DataFrame({"y": y, "x": x, "g1": g1.astype(str), "g2": g2.astype(str)})


def fit_both(formula, df, reml):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = lme2sm.lmer(formula, df, REML=reml, progress=False)
        krylov = lme2sm.lmer(formula, df, REML=reml, progress=False, factor="krylov")
    return exact, krylov


LOGLIK_BOUND = 0.01
"""|logLik(krylov) - logLik(exact)| on these models (measured: at most 2.6e-3, and
within three of the fit's own stated standard errors)."""


@pytest.mark.parametrize(
    ("formula", "reml", "slope"),
    [
        ("y ~ 1 + x + (1|g1) + (1|g2)", False, False),
        ("y ~ 1 + x + (1|g1) + (1|g2)", True, False),
        ("y ~ 1 + x + (1|g1) + (x|g2)", False, True),
    ],
)
def test_krylov_agrees_with_exact(formula, reml, slope):
    exact, krylov = fit_both(formula, crossed_data(slope=slope), reml)
    assert krylov.approximate and not exact.approximate
    np.testing.assert_allclose(krylov.fixef(), exact.fixef(), rtol=1e-6)
    np.testing.assert_allclose(krylov.theta, exact.theta, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(krylov.sigma, exact.sigma, rtol=1e-5)
    gap = abs(krylov.logLik() - exact.logLik())
    assert gap < LOGLIK_BOUND
    assert gap < 3 * 0.5 * krylov.engine_fit.logdet_se + 1e-4


@pytest.mark.parametrize(
    ("name", "fixef_atol"), [("insteval_small", 1e-5), ("insteval_small_dept", 3e-4)]
)
def test_krylov_against_lme4_fixture(name, fixef_atol):
    """InstEval's crossed students x lecturers (348 x 276); with a third crossed term of
    8 levels, whose flat SD lets the probes' error move the optimum: the service effect
    is 1.3e-4 from lme4's there (measured), against 1e-6 without that term."""
    fx = lme4_answer(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer(
            fx["formula"], fixture_data(fx), REML=fx["REML"], factor="krylov", progress=False
        )
    np.testing.assert_allclose(m.fixef(), list(fx["fixef"].values()), rtol=1e-4, atol=fixef_atol)
    np.testing.assert_allclose(m.sigma, fx["sigma"], rtol=1e-4)
    assert abs(m.logLik() - fx["logLik"]) < LOGLIK_BOUND


def model(df, formula, **kw):
    frame = build_model_frame(formula, df)
    return frame, KrylovLMM(frame_crossprods(frame), term_specs(frame), **kw)


def test_deviance_pieces_match_the_exact_factor():
    """Solves exact to rounding (r^2, beta, log|R_X|), log|L|^2 to its stated error."""
    df = crossed_data(n=8000, q1=800, q2=300)
    frame, k = model(df, "y ~ 1 + x + (1|g1) + (1|g2)", probes=64)
    ex = profiled_of(frame)
    for theta in ([0.8, 0.5], [1.5, 0.2], [0.3, 1.1]):
        a, e = k.evaluate(np.array(theta)), ex.evaluate(np.array(theta))
        assert a.r2 == pytest.approx(e.r2, rel=1e-12)
        np.testing.assert_allclose(a.beta, e.beta, rtol=1e-11)
        assert a.ldRX2 == pytest.approx(e.ldRX2, abs=1e-9)
        assert abs(a.ldL2 - e.ldL2) < 4 * k.last_logdet_se
        assert k.last_logdet_se < 0.02


def test_deviance_is_a_smooth_function_of_theta():
    """Fixed probes: the error is nearly the same at nearby theta, so the approximate
    deviance's differences follow the exact one's."""
    df = crossed_data(n=8000, q1=800, q2=300)
    frame, k = model(df, "y ~ 1 + x + (1|g1) + (1|g2)")
    ex = profiled_of(frame)
    th = np.array([0.8, 0.5])
    h = np.array([1e-4, 0.0])
    assert k.deviance(th, False) == k.deviance(th.copy(), False)  # deterministic
    second = [
        (f(th + h, False) - 2 * f(th, False) + f(th - h, False)) / 1e-8
        for f in (k.deviance, ex.deviance)
    ]
    assert second[0] == pytest.approx(second[1], rel=1e-2)


def test_pcg_solves_to_its_tolerance():
    rng = np.random.default_rng(0)
    G = rng.standard_normal((200, 200))
    A = G @ G.T / 200 + np.eye(200)
    B = rng.standard_normal((200, 3))
    B[:, 2] = 0.0  # a zero right-hand side stays zero
    X, it = pcg(lambda V: A @ V, np.diag(A).copy(), B, rtol=1e-10)
    np.testing.assert_allclose(A @ X, B, atol=1e-8)
    assert 0 < it < 200


def test_slq_and_deflation_on_a_dense_matrix():
    """Lanczos quadrature is exact on an eigenvector; the deflated estimate of log|M|
    with one outlying eigenvalue (a crossed design's) is within its standard error."""
    rng = np.random.default_rng(1)
    q = 300
    U = np.linalg.qr(rng.standard_normal((q, q)))[0]
    ev = np.concatenate([[0.05], rng.uniform(0.8, 1.2, q - 1)])
    M = (U * ev) @ U.T
    D = np.sqrt(np.diag(M))
    M = M / np.outer(D, D)  # unit diagonal, as the engine scales S
    exact = float(np.linalg.slogdet(M)[1])
    quad, first = slq_quadrature(lambda V: M @ V, U[:, :1] / 1.0, 20)
    assert quad[0] == pytest.approx(np.log(U[:, 0] @ M @ U[:, 0] / 1.0), abs=0.2)
    V = rng.choice([-1.0, 1.0], size=(q, 32)) / np.sqrt(q)
    plain_trace, plain = deflated_logdet(lambda W: M @ W, V, None, 20, 0)
    trace, est = deflated_logdet(lambda W: M @ W, V, rng.standard_normal((q, 4)), 20, 3)
    se = np.std(est, ddof=1) / np.sqrt(len(est))
    assert abs(trace + est.mean() - exact) < 4 * se
    assert se < 0.1 * np.std(plain, ddof=1) / np.sqrt(len(plain))


def test_summary_and_flag_say_approximate():
    df = crossed_data(n=3000, q1=300, q2=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("y ~ x + (1|g1) + (1|g2)", df, REML=False, factor="krylov")
    text = m.summary()
    assert "NOTE: approximate fit (factor='krylov'): logLik +/-" in text
    assert m.engine_fit.approximation.startswith("approximate fit")
    assert m.approximate


def test_arguments():
    df = crossed_data(n=3000, q1=300, q2=100)
    with pytest.raises(ArgumentError, match="factor must be one of"):
        lme2sm.lmer("y ~ x + (1|g1) + (1|g2)", df, factor="sparse")
    with pytest.raises(ArgumentError, match="factor='krylov' is lme2sm's own engine"):
        lme2sm.lmer("y ~ x + (1|g1) + (1|g2)", df, factor="krylov", engine="statsmodels")
    with pytest.raises(ArgumentError, match="factor must be one of"):
        lme2sm.lmer("y ~ x + (1|g1) + (1|g2)", "/nonexistent/*.parquet", factor="sparse")


def test_too_large_dense_block_points_to_krylov(monkeypatch):
    df = crossed_data(n=3000, q1=300, q2=100)
    monkeypatch.setattr(lmm, "MAX_DENSE", 50)
    with pytest.raises(FitError, match=r"allows 50\. lmer\(\.\.\., factor='krylov'\)"):
        lme2sm.lmer("y ~ x + (1|g1) + (1|g2)", df, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("y ~ x + (1|g1) + (1|g2)", df, factor="krylov", progress=False)
    assert m.approximate
