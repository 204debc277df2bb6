"""The engine's start from the moments (lme2sm/engine/moment_start.py): close to the
REML optimum, in every structure's parameters, and lme4's identity when the moments
say nothing."""

from __future__ import annotations

import numpy as np
import pytest

from lme2sm.engine.crossprod import TermRows, cross_products
from lme2sm.engine.driver import FitDriver
from lme2sm.engine.lmm import ProfiledLMM
from lme2sm.engine.moment_start import FLOOR, moment_theta
from lme2sm.engine.theta import TermSpec, term_correlations, unpack_theta


def _crossed(seed: int = 0):
    """Students x teachers crossed, scalar intercepts: SDs 0.6, 0.9; residual 1.2."""
    rng = np.random.default_rng(seed)
    n, qa, qb = 40_000, 800, 300
    a, b = rng.integers(0, qa, n), rng.integers(0, qb, n)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(0, 0.6, qa)[a] + rng.normal(0, 0.9, qb)[b]
    y += rng.normal(0, 1.2, n)
    ones = np.ones((n, 1))
    terms = [TermRows(a, qa, ones), TermRows(b, qb, ones)]
    X = np.column_stack([np.ones(n), x])
    return cross_products(terms, X, y), [TermSpec(qa, 1), TermSpec(qb, 1)]


def _slopes(seed: int = 1, structure: str = "us"):
    """(1 + x | g) with SDs 0.8, 0.4 and correlation 0.5, residual 0.5; 600 levels."""
    rng = np.random.default_rng(seed)
    q, per = 600, 15
    g = np.repeat(np.arange(q), per)
    x = rng.normal(size=q * per)
    cov = np.array([[0.64, 0.16], [0.16, 0.16]])
    b = rng.multivariate_normal([0, 0], cov, size=q)
    y = 2 + x + b[g, 0] + b[g, 1] * x + rng.normal(0, 0.5, q * per)
    Z = np.column_stack([np.ones_like(x), x])
    X = np.column_stack([np.ones_like(x), x])
    return cross_products([TermRows(g, q, Z)], X, y), [TermSpec(q, 2, structure=structure)]


def _optimum(cp, specs) -> np.ndarray:
    return ProfiledLMM(cp, specs).fit(reml=True).theta


def test_crossed_start_is_within_five_percent_of_the_optimum():
    cp, specs = _crossed()
    start = moment_theta(cp, specs)
    best = _optimum(cp, specs)
    assert best == pytest.approx([0.5, 0.75], rel=0.1)  # the simulation's relative SDs
    assert start == pytest.approx(best, rel=0.05)


def test_vector_term_start_has_the_optimum_correlation():
    cp, specs = _slopes()
    start, best = moment_theta(cp, specs), _optimum(cp, specs)
    S_start = unpack_theta(start, specs)[0] @ unpack_theta(start, specs)[0].T
    S_best = unpack_theta(best, specs)[0] @ unpack_theta(best, specs)[0].T
    assert np.sqrt(np.diag(S_start)) == pytest.approx(np.sqrt(np.diag(S_best)), rel=0.1)
    r_start = S_start[0, 1] / np.sqrt(S_start[0, 0] * S_start[1, 1])
    r_best = S_best[0, 1] / np.sqrt(S_best[0, 0] * S_best[1, 1])
    assert r_best == pytest.approx(0.5, abs=0.15)
    assert r_start == pytest.approx(r_best, abs=0.1)


@pytest.mark.parametrize("structure", ["diag", "cs"])
def test_structured_terms_get_their_own_parameters(structure):
    cp, specs = _slopes(structure=structure)
    start = moment_theta(cp, specs)
    assert len(start) == specs[0].n_theta
    # relative SDs of 0.8 / 0.5 and 0.4 / 0.5 (the simulation's) in the first two slots
    assert start[:2] == pytest.approx([1.6, 0.8], rel=0.15)
    if structure == "cs":
        assert term_correlations(start, specs)[0] == pytest.approx(0.5, abs=0.15)


def test_a_term_without_variance_starts_at_the_floor():
    rng = np.random.default_rng(3)
    n, q = 3_000, 100
    g = rng.integers(0, q, n)
    y = rng.normal(size=n)  # no group effect: the moments' variance is about 0 or below
    cp = cross_products([TermRows(g, q, np.ones((n, 1)))], np.ones((n, 1)), y)
    start = moment_theta(cp, [TermSpec(q, 1)])
    assert FLOOR <= start[0] < 0.1


def test_no_residual_variance_falls_back_to_lme4s_start():
    rng = np.random.default_rng(4)
    n, q = 500, 20
    g = rng.integers(0, q, n)
    x = rng.normal(size=n)
    y = 1.0 + 2.0 * x  # fitted exactly by X: no residual, no moments
    cp = cross_products([TermRows(g, q, np.ones((n, 1)))], np.column_stack([np.ones(n), x]), y)
    specs = [TermSpec(q, 1)]
    assert moment_theta(cp, specs) is None
    phi, step = ProfiledLMM(cp, specs)._start(_identity(specs))
    assert phi.tolist() == [1.0] and step is None


def _identity(specs):
    from lme2sm.engine.coordinates import ThetaCoordinates

    return ThetaCoordinates.identity(specs)


def test_moment_start_reaches_the_same_optimum_in_fewer_evaluations():
    cp, specs = _crossed(seed=5)
    fits = {}
    for flag in (False, True):
        model = ProfiledLMM(cp, specs)
        model.MOMENT_START = flag
        fits[flag] = model.fit(reml=True)
    assert fits[True].deviance == pytest.approx(fits[False].deviance, abs=1e-7)
    assert fits[True].n_evals < fits[False].n_evals
    assert FitDriver.MOMENT_START
