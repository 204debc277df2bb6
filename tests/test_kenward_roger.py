"""Kenward–Roger (pbkrtest's vcovAdj, Lb_ddf, KRmodcomp through lmerTest).

Two kinds of checks:

* the q x q (Woodbury) computation against a line-by-line transcription of pbkrtest's
  n x n ``vcovAdj_internal`` (below, :func:`pbkrtest_vcov_adj`), at the same fit;
* the numbers against R (pbkrtest 0.5.2 through lmerTest 3.1-3), from the committed
  fixtures ``tests/fixtures/kr/*.json`` (``tools/make_kr_fixtures.R``) and
  ``tests/fixtures/kr_reference.json`` (``tools/make_kr_reference.R``): at
  lme4's own theta (the algorithm, to near machine precision) and at lme2sm's optimum
  (the whole pipeline) where the REML optimum is well determined.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from kr_reference import (
    DATASETS,
    KR_NAMES,
    WELL_DETERMINED,
    kr_fixture,
    kr_model,
    r_model,
    r_table,
    reference,
    rel,
)

from lme2sm.datasets import load
from lme2sm.engine.frame_input import frame_Zt, profiled_of
from lme2sm.errors import ArgumentError
from lme2sm.frame.model_frame import build_model_frame
from lme2sm.inference import kenward_roger as krm
from lme2sm.inference.kenward_roger import kenward_roger

SLEEP_DROPPED = [0, 4, 19, 32, 33, 79, 99, 100, 149]


def sleep_unbalanced():
    return load("sleepstudy").drop(index=SLEEP_DROPPED)


def frame_and_fit(formula, data, reml=True, weights=None):
    frame = build_model_frame(formula, data, weights=weights)
    fit = profiled_of(frame).fit(reml=reml)
    return frame, fit


# ------------------------------------------------------- pbkrtest, n x n, as in R


def pbkrtest_vcov_adj(frame, fit):
    """pbkrtest's ``.get_SigmaG`` + ``vcovAdj_internal``, transcribed with dense n x n
    matrices (the reference the q x q computation must reproduce)."""
    Zt = frame_Zt(frame).toarray()
    X = frame.X
    n = X.shape[0]
    G, ggamma = [], []
    start = 0
    for t, C in zip(frame.terms, fit.covariances()):
        Zj = Zt[start : start + t.n_levels * t.k]
        start += t.n_levels * t.k
        for c in range(t.k):
            for r in range(c, t.k):
                E = np.zeros((t.k, t.k))
                E[r, c] = E[c, r] = 1
                G.append(Zj.T @ np.kron(np.eye(t.n_levels), E) @ Zj)
                ggamma.append(C[r, c])
    G.append(np.eye(n))
    ggamma.append(fit.sigma**2)
    Sigma = sum(g * Gi for g, Gi in zip(ggamma, G))
    SigmaInv = np.linalg.inv(Sigma)
    Phi = fit.cov_beta
    TT = SigmaInv @ X
    HH = [Gi @ SigmaInv for Gi in G]
    OO = [H @ X for H in HH]
    m = len(G)
    PP = [-(Or.T @ TT) for Or in OO]
    QQ = {(r, s): OO[r].T @ SigmaInv @ OO[s] for r in range(m) for s in range(r, m)}
    K = np.array([[np.sum(HH[r].T * HH[s]) for s in range(m)] for r in range(m)])
    IE2 = np.array(
        [
            [
                K[i, j]
                - 2 * np.sum(Phi * QQ[min(i, j), max(i, j)])
                + np.sum((Phi @ PP[i]) * (PP[j] @ Phi))
                for j in range(m)
            ]
            for i in range(m)
        ]
    )
    W = 2 * np.linalg.inv(IE2)
    UU = np.zeros_like(Phi)
    for i in range(m - 1):
        for j in range(i + 1, m):
            UU += W[i, j] * (QQ[i, j] - PP[i] @ Phi @ PP[j])
    UU = UU + UU.T
    for i in range(m):
        UU += W[i, i] * (QQ[i, i] - PP[i] @ Phi @ PP[i])
    return Phi + 2 * Phi @ UU @ Phi


BRUTE_MODELS = {
    "oats": ("yield ~ nitro * Variety + (1 | Block/Variety)", lambda: load("Oats")),
    "sleep_unbalanced": ("Reaction ~ Days + (Days | Subject)", sleep_unbalanced),
    "machines_3x3": ("score ~ Machine + (Machine | Worker)", lambda: load("Machines")),
    "penicillin_crossed": (
        "diameter ~ 1 + (1 | plate) + (1 | sample)",
        lambda: load("Penicillin"),
    ),
}


@pytest.mark.parametrize("name", sorted(BRUTE_MODELS))
def test_woodbury_matches_pbkrtest_n_by_n(name):
    formula, data = BRUTE_MODELS[name]
    frame, fit = frame_and_fit(formula, data())
    kr = kenward_roger(frame, fit)
    ref = pbkrtest_vcov_adj(frame, fit)
    np.testing.assert_allclose(kr.vcov_adj, ref, rtol=1e-8, atol=1e-10 * np.abs(ref).max())


def test_balanced_split_plot_df_are_the_classical_ones():
    # Oats: nitro is a within-plot factor: KR df = 51 (the split-plot error df)
    frame, fit = frame_and_fit("yield ~ nitro * Variety + (1 | Block/Variety)", load("Oats"))
    kr = kenward_roger(frame, fit)
    names = list(frame.fixed_names)
    L = np.eye(len(names))
    assert kr.ddf(L[names.index("nitro")]) == pytest.approx(51, rel=1e-8)
    rows = [names.index("VarietyMarvellous"), names.index("VarietyVictory")]
    assert kr.contest_md(L[rows])["NumDF"] == 2


def test_ml_fit_is_refused():
    frame, fit = frame_and_fit("Reaction ~ Days + (Days | Subject)", load("sleepstudy"), False)
    with pytest.raises(ArgumentError, match="REML"):
        kenward_roger(frame, fit)


def test_weights_are_refused():
    data = load("sleepstudy").assign(w=lambda d: 1.0 + d["Days"] % 2)
    frame, fit = frame_and_fit("Reaction ~ Days + (1 | Subject)", data, weights="w")
    with pytest.raises(ArgumentError, match="weights"):
        kenward_roger(frame, fit)


def test_size_limit_is_a_clear_refusal(monkeypatch):
    # crossed terms: one dense block of q = 24 + 6 random effects
    frame, fit = frame_and_fit("diameter ~ 1 + (1 | plate) + (1 | sample)", load("Penicillin"))
    monkeypatch.setattr(krm, "MAX_Q", 20)
    monkeypatch.setattr(krm, "MAX_BLOCK", 10)
    with pytest.raises(ArgumentError, match="30 random effects"):
        kenward_roger(frame, fit)


@pytest.mark.parametrize("name", ["oats", "sleep_unbalanced", "machines_3x3"])
def test_block_diagonal_path_equals_dense_path(name, monkeypatch):
    """Nested models split into independent blocks (O(q) work); the dense path agrees."""
    formula, data = BRUTE_MODELS[name]
    frame, fit = frame_and_fit(formula, data())
    assert (
        krm._independent_blocks(
            (krm._lambda(frame, fit.factors).T @ (frame_Zt(frame) @ frame_Zt(frame).T)).tocsr()
        )
        is not None
    )
    sparse = kenward_roger(frame, fit)
    monkeypatch.setattr(krm, "MAX_BLOCK", 0)
    dense = kenward_roger(frame, fit)
    np.testing.assert_allclose(sparse.vcov_adj, dense.vcov_adj, rtol=1e-10)
    np.testing.assert_allclose(sparse.W, dense.W, rtol=1e-8, atol=1e-10 * np.abs(dense.W).max())


def test_nothing_n_by_n_is_formed(monkeypatch):
    """Z enters only through Z'Z and Z'X: q x q work even when n is large."""
    frame, fit = frame_and_fit("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
    seen = []
    original = sp.csr_matrix.toarray

    def spy(self, *args, **kwargs):
        seen.append(self.shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", spy)
    kenward_roger(frame, fit)
    assert all(max(shape) <= 36 for shape in seen)


# ------------------------------------------------------------------ against R

CASES = [(name, "lme4") for name in DATASETS] + [(name, "own") for name in WELL_DETERMINED]


@pytest.mark.parametrize(("name", "at"), CASES)
def test_coef_table_matches_lmertest(name, at):
    ref = r_table(reference()[name]["coef_kr"])
    table = r_model(name, at).coef_table(ddf="Kenward-Roger")
    assert list(table.index) == list(ref.index)
    assert list(table.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    df_tol, se_tol = (1e-8, 1e-8) if at == "lme4" else (1e-3, 1e-4)
    assert rel(table["df"], ref["df"]) < df_tol
    assert rel(table["Std. Error"], ref["Std. Error"]) < se_tol
    assert rel(table["t value"], ref["t value"]) < se_tol
    np.testing.assert_allclose(table["Pr(>|t|)"], ref["Pr(>|t|)"], rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize(("name", "at"), CASES)
def test_vcov_adj_matches_pbkrtest(name, at):
    ref = np.asarray(reference()[name]["vcov_adj"], dtype=float)
    got = r_model(name, at).vcovAdj().to_numpy()
    tol = 1e-8 if at == "lme4" else 2e-4
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize(("name", "at"), CASES)
def test_anova_matches_lmertest(name, at):
    ref = r_table(reference()[name]["anova_kr"])
    table = r_model(name, at).anova(ddf="Kenward-Roger")
    assert list(table.index) == list(ref.index)
    assert list(table["NumDF"]) == list(ref["NumDF"])
    df_tol, f_tol = (1e-8, 1e-8) if at == "lme4" else (1e-3, 1e-4)
    assert rel(table["DenDF"], ref["DenDF"]) < df_tol
    assert rel(table["F value"], ref["F value"]) < f_tol
    assert rel(table["Mean Sq"], ref["Mean Sq"]) < f_tol
    np.testing.assert_allclose(table["Pr(>F)"], ref["Pr(>F)"], rtol=1e-3, atol=1e-9)


@pytest.mark.parametrize("name", WELL_DETERMINED)
def test_satterthwaite_table_through_coef_table(name):
    ref = r_table(reference()[name]["coef_satt"])
    table = r_model(name, "own").coef_table()
    assert rel(table["df"], ref["df"]) < 1e-3
    assert rel(table["Std. Error"], ref["Std. Error"]) < 1e-4


def test_lme4_table_has_no_df():
    table = r_model("sleep", "own").coef_table(ddf="lme4")
    assert list(table.columns) == ["Estimate", "Std. Error", "t value"]
    with pytest.raises(ArgumentError):
        r_model("sleep", "own").coef_table(ddf="Kenward")


def test_summary_prints_kenward_roger_table():
    m = r_model("sleep", "own")
    text = m.summary(ddf="Kenward-Roger")
    assert "t-tests use Kenward-Roger's method ['lmerModLmerTest']" in text
    # lmerTest: (Intercept) 251.709 7.090 16.959 35.502; Days 10.281 1.601 16.981 6.423
    assert "(Intercept)  251.709      7.090 16.959  35.502  < 2e-16 ***" in text
    assert "Days          10.281      1.601 16.981   6.423 6.35e-06 ***" in text


# ------------------------------------ tests/fixtures/kr (tools/make_kr_fixtures.R)

KR_CASES = [(n, "lme4") for n in KR_NAMES] + [(n, "own") for n in KR_NAMES if n != "orthodont"]
"""Orthodont's (age | Subject) REML criterion is flat at the optimum: lme2sm's is 6e-6
lower than lme4's and the SEs move by 3e-4 with it, so it is compared at lme4's theta."""


def tolerances(at: str) -> tuple[float, float]:
    """(df, SE/F) relative tolerances: the issue's at lme2sm's optimum, near machine
    precision at lme4's own theta (where only the algorithm can differ)."""
    return (1e-8, 1e-8) if at == "lme4" else (1e-3, 1e-4)


@pytest.mark.parametrize(("name", "at"), KR_CASES)
def test_kr_fixture_coef_table(name, at):
    fx = kr_fixture(name)
    ref = pd.DataFrame(fx["coef_kr"]).T
    table = kr_model(name, at).coef_table(ddf="Kenward-Roger")
    assert list(table.index) == list(ref.index)
    df_tol, se_tol = tolerances(at)
    assert rel(table["df"], ref["df"]) < df_tol
    assert rel(table["Std. Error"], ref["se"]) < se_tol
    np.testing.assert_allclose(table["t value"], ref["t"], rtol=se_tol, atol=se_tol)
    np.testing.assert_allclose(table["Pr(>|t|)"], ref["p"], rtol=1e-3, atol=1e-8)


@pytest.mark.parametrize(("name", "at"), KR_CASES)
def test_kr_fixture_vcov_adj(name, at):
    fx = kr_fixture(name)
    got = kr_model(name, at).vcovAdj()
    assert list(got.index) == fx["vcov_names"]
    ref = np.asarray(fx["vcov_adj"], dtype=float)
    tol = tolerances(at)[1] * 2  # variances: twice the SE tolerance
    np.testing.assert_allclose(got.to_numpy(), ref, rtol=tol, atol=tol * np.abs(ref).max())


@pytest.mark.parametrize(("name", "at"), KR_CASES)
def test_kr_fixture_anova(name, at):
    fx = kr_fixture(name)
    ref = pd.DataFrame(fx["anova_kr"]).set_index("term")
    table = kr_model(name, at).anova(ddf="Kenward-Roger")
    assert list(table.index) == list(ref.index)
    assert list(table["NumDF"]) == list(ref["NumDF"])
    df_tol, f_tol = tolerances(at)
    assert rel(table["DenDF"], ref["DenDF"]) < df_tol
    assert rel(table["F value"], ref["F"]) < f_tol
    assert rel(table["Sum Sq"], ref["SumSq"]) < f_tol
    np.testing.assert_allclose(table["Pr(>F)"], ref["p"], rtol=1e-3, atol=1e-10)


@pytest.mark.parametrize("name", [n for n in KR_NAMES if n != "orthodont"])
def test_kr_fixture_satterthwaite(name):
    fx = kr_fixture(name)
    ref = pd.DataFrame(fx["coef_satterthwaite"]).T
    table = kr_model(name, "own").coef_table(ddf="Satterthwaite")
    assert rel(table["df"], ref["df"]) < 1e-3
    assert rel(table["Std. Error"], ref["se"]) < 1e-4


def test_result_methods_refuse_what_lmertest_refuses():
    import warnings

    import lme2sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = lme2sm.lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"), REML=False)
    with pytest.raises(ArgumentError, match="REML"):
        ml.coef_table(ddf="Kenward-Roger")
    with pytest.raises(ArgumentError, match="REML"):
        ml.anova(ddf="Kenward-Roger")
    with pytest.raises(ArgumentError):
        r_model("sleep", "own").anova(ddf="lme4")
