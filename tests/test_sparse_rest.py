"""The crossed block's sparse factor (lme2sm.engine.sparse_rest) against the dense one:
the engine picks it from the structure alone, and both give the same deviance and modes."""

from __future__ import annotations

import numpy as np
import pytest

from lme2sm.engine import sparse_rest
from lme2sm.engine.crossprod import TermRows, cross_products
from lme2sm.engine.lmm import ProfiledLMM, TermSpec


def schools_design(n_schools: int, seed: int = 0, within: float = 0.97):
    """Students x teachers, partially crossed: students see one to four teachers, nearly
    all of their own school's (so two teachers rarely share a student across schools)."""
    rng = np.random.default_rng(seed)
    n_s, per_school = 60 * n_schools, 12
    n_t = per_school * n_schools
    school_of_s = rng.integers(0, n_schools, n_s)
    student = np.repeat(np.arange(n_s), rng.choice([1, 2, 3, 4], size=n_s))
    own = school_of_s[student] * per_school + rng.integers(0, per_school, len(student))
    teacher = np.where(rng.random(len(student)) < within, own, rng.integers(0, n_t, len(student)))
    n = len(student)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = (
        X @ [1.0, 0.5]
        + rng.normal(0, 0.8, n_s)[student]
        + rng.normal(0, 0.5, n_t)[teacher]
        + rng.normal(size=n)
    )
    terms = [TermRows(student, n_s, np.ones((n, 1))), TermRows(teacher, n_t, np.ones((n, 1)))]
    specs = [TermSpec(n_s, 1), TermSpec(n_t, 1)]
    return terms, specs, X, y


def models(monkeypatch, n_schools=40, **kwargs):
    terms, specs, X, y = schools_design(n_schools, **kwargs)
    cp = cross_products(terms, X, y)
    sparse = ProfiledLMM(cp, specs)
    monkeypatch.setattr(sparse_rest, "SPARSE_MIN_LEVELS", 10**9)
    dense = ProfiledLMM(cp, specs)
    monkeypatch.undo()
    return sparse, dense


def test_the_engine_chooses_the_sparse_factor_for_a_sparse_crossed_block(monkeypatch):
    sparse, dense = models(monkeypatch)
    assert sparse.m_rest == 480 and sparse._sparse_rest is not None
    assert dense._sparse_rest is None


def test_a_dense_crossed_block_stays_dense(monkeypatch):
    # teachers drawn from everywhere: the fill is dense, the sparse factor would not pay
    sparse, _ = models(monkeypatch, within=0.0)
    assert sparse.m_rest == 480 and sparse._sparse_rest is None


def test_a_pattern_too_full_for_any_ordering_is_not_factored(monkeypatch):
    # half the lower triangle filled: no ordering's factor can be 20x cheaper than dense
    m = 400
    rows, cols = np.tril_indices(m, -1)
    keep = (rows + cols) % 2 == 0
    tried = []
    monkeypatch.setattr(sparse_rest, "_splu", lambda S: tried.append(S) or 1 / 0)
    diag = (np.arange(m), np.arange(m))
    assert sparse_rest.sparse_rest_plan(m, diag, (rows[keep], cols[keep])) is None
    assert tried == []
    # a sparse pattern of the same size is still tried
    band = (np.arange(1, m), np.arange(m - 1))
    with pytest.raises(ZeroDivisionError):
        sparse_rest.sparse_rest_plan(m, diag, band)
    assert len(tried) == 1


@pytest.mark.parametrize("theta", [[0.8, 0.5], [1.0, 1.0], [0.05, 2.0], [3.0, 0.0], [0.0, 0.7]])
@pytest.mark.parametrize("reml", [True, False])
def test_sparse_and_dense_factors_give_the_same_deviance(monkeypatch, theta, reml):
    sparse, dense = models(monkeypatch)
    a, b = sparse.deviance(np.array(theta), reml), dense.deviance(np.array(theta), reml)
    assert a == pytest.approx(b, rel=1e-12, abs=1e-9)


def test_sparse_and_dense_factors_give_the_same_fit_and_modes(monkeypatch):
    sparse, dense = models(monkeypatch)
    fs, fd = sparse.fit(reml=False), dense.fit(reml=False)
    assert fs.deviance == pytest.approx(fd.deviance, abs=1e-8)
    np.testing.assert_allclose(fs.theta, fd.theta, atol=1e-6)
    ev_s = sparse.evaluate(fd.theta, modes=True)
    ev_d = dense.evaluate(fd.theta, modes=True)
    np.testing.assert_allclose(ev_s.beta, ev_d.beta, rtol=1e-10)
    np.testing.assert_allclose(ev_s.RX, ev_d.RX, rtol=1e-10)
    for us, ud in zip(ev_s.u, ev_d.u):
        np.testing.assert_allclose(us, ud, atol=1e-10)


def test_a_singular_crossed_block_is_refused_as_not_positive_definite(monkeypatch):
    sparse, _ = models(monkeypatch)
    assert sparse.deviance(np.array([1.0, np.nan])) == np.inf
