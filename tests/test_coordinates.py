"""The optimiser's coordinates (lme2sm.engine.coordinates): a change of basis of each
vector term's covariance that keeps the model, its optimum and its singularity."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lme2sm
from lme2sm.datasets import load
from lme2sm.engine.coordinates import ThetaCoordinates
from lme2sm.engine.frame_input import profiled_of
from lme2sm.engine.lmm import ProfiledLMM, TermSpec, unpack_theta
from lme2sm.frame.model_frame import build_model_frame


def random_blocks(rng, q, k):
    """Per-level Z_l'Z_l of an intercept and k - 1 uncentred covariates."""
    blocks = []
    for _ in range(q):
        Z = np.column_stack([np.ones(6), rng.normal(5.0, 2.0, size=(6, k - 1))])
        blocks.append(Z.T @ Z)
    return np.array(blocks)


@st.composite
def cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    k = draw(st.integers(2, 4))
    specs = [TermSpec(7, k), TermSpec(3, 1), TermSpec(4, 2, diagonal=True)]
    blocks = [random_blocks(rng, 7, k), np.ones((3, 1, 1)), random_blocks(rng, 4, 2)]
    coords = ThetaCoordinates.from_blocks(specs, blocks, n=42.0)
    phi = []
    for s in specs:
        T = np.tril(rng.normal(size=(s.k, s.k)))
        np.fill_diagonal(T, np.abs(np.diag(T)))
        if s.diagonal:
            phi.extend(np.diag(T))
        else:
            phi.extend(np.concatenate([T[c:, c] for c in range(s.k)]))
    phi = np.array(phi)
    if draw(st.booleans()):  # a singular term: one column of T' at zero
        col = draw(st.integers(0, k - 1))
        start = sum(k - c for c in range(col))
        phi[start : start + k - col] = 0.0
    return specs, coords, phi


@settings(max_examples=60, deadline=None)
@given(cases())
def test_the_map_is_the_covariance_in_the_other_basis_and_keeps_rank(case):
    specs, coords, phi = case
    theta = coords.to_theta(phi)
    for B, Tp, T in zip(coords.basis, unpack_theta(phi, specs), unpack_theta(theta, specs)):
        if B is None:  # scalar and diagonal terms keep lme4's coordinates
            np.testing.assert_array_equal(T, Tp)
            continue
        np.testing.assert_allclose(T @ T.T, B @ Tp @ Tp.T @ B.T, rtol=1e-10, atol=1e-12)
        assert np.all(np.diag(T) >= 0) and np.allclose(T, np.tril(T))
        rank = np.linalg.matrix_rank
        assert rank(T, tol=1e-9) == rank(Tp, tol=1e-9)
    # back again: the same covariance (a singular one has more than one lower factor)
    for Tp, Tb in zip(unpack_theta(phi, specs), unpack_theta(coords.from_theta(theta), specs)):
        np.testing.assert_allclose(Tb @ Tb.T, Tp @ Tp.T, rtol=1e-9, atol=1e-9)


def test_columns_become_orthonormal_and_an_intercept_keeps_its_scale():
    rng = np.random.default_rng(3)
    blocks = random_blocks(rng, 10, 2)
    coords = ThetaCoordinates.from_blocks([TermSpec(10, 2)], [blocks], n=60.0)
    (B,) = coords.basis
    pooled = blocks.sum(axis=0) / 60.0
    np.testing.assert_allclose(B.T @ pooled @ B, np.eye(2), atol=1e-12)
    assert B[0, 0] == pytest.approx(1.0)


def test_collinear_columns_keep_lme4s_coordinates():
    blocks = np.array([[[1.0, 2.0], [2.0, 4.0]]] * 5)
    coords = ThetaCoordinates.from_blocks([TermSpec(5, 2)], [blocks], n=5.0)
    assert coords.is_identity


@pytest.mark.parametrize(
    ("dataset", "formula"),
    [
        ("Orthodont", "distance ~ age + (age | Subject)"),
        ("Machines", "score ~ Machine + (Machine | Worker)"),
        ("schools", "test_score ~ age + sex + (age | school:classroom) + (age | school)"),
    ],
)
def test_both_coordinates_reach_the_same_optimum_the_new_one_in_fewer_steps(
    dataset, formula, monkeypatch
):
    from lme2sm.engine import optimize

    frame = build_model_frame(formula, load(dataset))
    fits = {}
    for flag in (False, True):
        monkeypatch.setattr(ProfiledLMM, "ORTHONORMAL", flag)
        fits[flag] = profiled_of(frame).fit()
    # the optimum itself: lme4's coordinates and start with far tighter tolerances
    monkeypatch.setattr(ProfiledLMM, "ORTHONORMAL", False)
    monkeypatch.setattr(ProfiledLMM, "MOMENT_START", False)
    monkeypatch.setattr(optimize, "FTOL_ABS", 1e-13)
    monkeypatch.setattr(optimize, "XTOL_ABS", 1e-11)
    best = profiled_of(frame).fit()
    assert fits[True].deviance == pytest.approx(best.deviance, abs=1e-7)
    np.testing.assert_allclose(fits[True].beta, best.beta, rtol=1e-5)
    # at lme4's tolerances its own coordinates may stop short (the schools model does)
    assert fits[True].deviance <= fits[False].deviance + 1e-9
    assert fits[True].n_evals < fits[False].n_evals


def test_a_start_value_is_taken_in_lme4s_theta():
    data = load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("Reaction ~ Days + (Days | Subject)", data)
    frame = build_model_frame("Reaction ~ Days + (Days | Subject)", data)
    engine = profiled_of(frame)
    again = engine.fit(start=m.theta)
    assert again.deviance == pytest.approx(-2 * m.logLik(), abs=1e-8)
    np.testing.assert_allclose(again.theta, m.theta, atol=1e-6)
    assert again.n_evals < engine.fit().n_evals


@pytest.mark.parametrize(
    ("dataset", "formula", "family"),
    [
        ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 + size | herd)", "binomial"),
        ("grouseticks", "TICKS ~ YEAR + cHEIGHT + (1 + cHEIGHT | LOCATION)", "poisson"),
    ],
)
def test_glmer_stages_in_the_shared_coordinates_take_fewer_steps(
    dataset, formula, family, monkeypatch
):
    import warnings

    import lme2sm
    from lme2sm.glmm import fit as glmm_fit

    fits = {}
    for flag in (False, True):
        monkeypatch.setattr(glmm_fit, "ORTHONORMAL", flag)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[flag] = lme2sm.glmer(formula, load(dataset), family)
    new, old = fits[True], fits[False]
    # the same optimum (the Laplace deviance is flat there: 1e-4 in logLik) ...
    assert new.logLik() == pytest.approx(old.logLik(), abs=1e-4)
    se = np.sqrt(np.diag(np.asarray(old.vcov())))
    assert np.max(np.abs(new.fixef() - old.fixef()) / se) < 0.01
    # ... in under two thirds of the evaluations; per stage within a tenth of lme4's
    # coordinates' (grouseticks' stage 1 took 78 against 76 with numpy 2.4.6's BLAS,
    # fewer with earlier wheels; its total 191 against 534)
    s_new, s_old = new.engine_fit.stage_evals, old.engine_fit.stage_evals
    assert sum(s_new) < 0.67 * sum(s_old)
    assert s_new[0] < 1.1 * s_old[0] and s_new[1] < 1.1 * s_old[1]
