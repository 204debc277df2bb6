"""glmer's fast paths equal the general ones (to roundoff).

Each PLS solve of :class:`~lme2sm.glmm.pls.SparsePLS` (scalar term, Schur complement with
a diagonal second block, sparse LU) against the LMM engine's cross-products
(:class:`~lme2sm.glmm.pls.EnginePLS`) at the same weights, theta and response.
"""

from __future__ import annotations

import numpy as np
import pytest
from glmer_fixtures import fitted, fixture_names

from lme2sm.glmm.pls import EnginePLS, SparsePLS, _factor_dense


@pytest.mark.parametrize("name", fixture_names())
@pytest.mark.parametrize("joint", [False, True])
def test_pls_solve_matches_the_engine(name, joint):
    m = fitted(name)
    pr = m.problem
    rng = np.random.default_rng(1)
    theta = m.engine_fit.theta * (1.0 + 0.1 * rng.random(len(m.engine_fit.theta))) + 0.05
    w = m.engine_fit.state.weights * (0.5 + rng.random(pr.n))
    r = rng.normal(size=pr.n)
    X = pr.X if joint else None
    fast = SparsePLS(pr.rows, pr.specs)
    ref = EnginePLS(pr.rows, pr.specs, pr.X)
    out = []
    for pls in (fast, ref):
        pls.set_theta(theta)
        out.append(pls.solve(w, r, X))
    (ld_a, u_a, b_a), (ld_b, u_b, b_b) = out
    assert ld_a == pytest.approx(ld_b, rel=1e-10, abs=1e-9)
    assert np.allclose(u_a, u_b, rtol=1e-9, atol=1e-10)
    assert np.allclose(b_a, b_b, rtol=1e-9, atol=1e-10)


def test_grouseticks_takes_the_diagonal_elimination():
    pr = fitted("grouseticks_poisson").problem
    pls = SparsePLS(pr.rows, pr.specs)
    pls.set_theta(np.array([1.0, 0.5, 0.3]))
    pls.solve(np.ones(pr.n), np.ones(pr.n))
    assert pls._fast["diag2"] == pr.specs[1].n_levels


def test_factor_dense_eliminates_a_diagonal_block():
    rng = np.random.default_rng(2)
    m1, m2 = 7, 5
    S = np.eye(m1 + m2) * 4.0
    S[:m1, m1:] = rng.normal(size=(m1, m2)) * 0.3
    S[m1:, :m1] = S[:m1, m1:].T
    S[m1:, m1:] += 0.1
    b = rng.normal(size=(m1 + m2, 2))
    for k in (0, m1, m1 + m2):
        if k == m1 + m2:
            S2 = np.diag(np.diag(S))
        else:
            S2 = S
        ld, solve = _factor_dense(S2, k)
        assert ld == pytest.approx(np.linalg.slogdet(S2)[1], rel=1e-12)
        assert np.allclose(solve(b), np.linalg.solve(S2, b), rtol=1e-12, atol=1e-13)
        assert np.allclose(solve(b[:, 0]), np.linalg.solve(S2, b[:, 0]), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", ["cbpp_cloglog", "verbagg_binomial", "grouseticks_poisson"])
@pytest.mark.parametrize("compact", [False, True])
def test_hessian_with_predicted_starts_equals_deriv12(name, compact):
    """The Hessian whose PIRLS starts are predicted to first order, with deriv12's four
    points per pair or the two-point (compact) cross differences, equals lme4's
    ``deriv12`` with every PIRLS started from the optimum's modes (a non-canonical link,
    where PIRLS converges linearly, included)."""
    from lme2sm.glmm.fit import deriv12, hessian

    m = fitted(name)
    pr, ef = m.problem, m.engine_fit
    nth = len(ef.theta)
    x = np.concatenate([ef.theta, ef.beta])
    u0 = ef.state.u_flat

    def dev(p, start=None):
        st = pr.pirls(p[:nth], p[nth:], start=(p[nth:], u0 if start is None else start))
        return pr.laplace(st), st.u_flat

    f0, _ = dev(x)
    g, H = hessian(dev, x, f0, u0, compact=compact)
    g2, H2 = deriv12(lambda p: dev(p)[0], x)
    assert np.allclose(H, H2, rtol=1e-5, atol=1e-4 * np.abs(H2).max())
    assert np.allclose(g, g2, atol=1e-6)


def _agq_loop(pr, state, nAGQ):
    """Adaptive Gauss-Hermite node by node (the vectorised form's reference)."""
    from lme2sm.glmm.pirls import gauss_hermite

    t = pr.rows[0]
    theta = float(state.theta[0])
    q = t.n_levels
    zcol = t.Z[:, 0]
    L2 = 1.0 + theta * theta * np.bincount(t.codes, state.weights * zcol * zcol, minlength=q)
    sd = 1.0 / np.sqrt(L2)
    u0 = state.u[0][:, 0]
    fixed_eta = state.eta - theta * zcol * u0[t.codes]
    devc0 = u0 * u0 + np.bincount(t.codes, state.dev_resid, minlength=q)
    mult = np.zeros(q)
    for zk, wk in zip(*gauss_hermite(nAGQ)):
        u = u0 + zk * sd
        eta = fixed_eta + theta * zcol * u[t.codes]
        dr = pr.dev_resid(pr.family.link.inverse(eta))
        devc = u * u + np.bincount(t.codes, dr, minlength=q)
        mult += wk * np.exp(-0.5 * (devc - devc0) + 0.5 * zk * zk)
    return float(devc0.sum() + state.ldL2 - 2.0 * np.sum(np.log(mult)))


@pytest.mark.parametrize("name", ["cbpp_binomial_agq9", "cbpp_cloglog", "poisson_offset"])
@pytest.mark.parametrize("nAGQ", [2, 5, 9, 25])
def test_agq_vectorised_equals_the_loop(name, nAGQ):
    m = fitted(name)
    pr, st = m.problem, m.engine_fit.state
    if len(pr.rows) != 1 or pr.specs[0].k != 1:
        pytest.skip("AGQ needs one scalar term")
    assert pr.agq(st, nAGQ) == pytest.approx(_agq_loop(pr, st, nAGQ), rel=1e-12, abs=1e-10)


@pytest.mark.parametrize(
    "family", ["binomial", "poisson", "binomial(link='probit')", "binomial(link='cloglog')"]
)
def test_working_weights_equal_the_general_formula(family):
    from lme2sm.glmm.family import get_family

    fam = get_family(family)
    eta = np.concatenate([np.linspace(-8, 8, 101), [-40.0, -31.0, 31.0, 40.0]])
    if fam.name == "poisson":
        eta = eta[np.abs(eta) < 35]
    mu = fam.link.inverse(eta)
    me, wf = fam.working(eta, mu)
    me_ref = fam.link.mu_eta(eta)
    assert np.allclose(me, me_ref, rtol=1e-13, atol=0)
    assert np.allclose(wf, me_ref * me_ref / fam.variance(mu), rtol=1e-13, atol=0)
