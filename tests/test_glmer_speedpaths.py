"""glmer's fast paths equal the general ones (to roundoff).

Each PLS step of PIRLS on the engine (:class:`~lme2sm.engine.reweight.WeightedPLS`: the
engine's blocks refilled from the rows) against a dense solve written from the
definition, and against the engine loaded afresh from the cross-products, at the same
weights, theta and response.
"""

from __future__ import annotations

import numpy as np
import pytest
from glmer_fixtures import fitted, fixture_names
from pls_reference import dense_pls

from lme2sm.engine.crossprod import cross_products
from lme2sm.engine.lmm import ProfiledLMM
from lme2sm.engine.reweight import WeightedPLS


def _step(m):
    pr = m.problem
    rng = np.random.default_rng(1)
    theta = m.engine_fit.theta * (1.0 + 0.1 * rng.random(len(m.engine_fit.theta))) + 0.05
    w = m.engine_fit.state.weights * (0.5 + rng.random(pr.n))
    r = rng.normal(size=pr.n)
    return pr, theta, w, r


@pytest.mark.parametrize("name", fixture_names())
@pytest.mark.parametrize("joint", [False, True])
def test_pls_solve_matches_a_dense_solve(name, joint):
    m = fitted(name)
    pr, theta, w, r = _step(m)
    X = pr.X if joint else pr.X[:, :0]
    ev = WeightedPLS(pr.rows, pr.specs, X).evaluate(theta, w, r)
    ld_b, u_b, b_b = dense_pls(pr.rows, pr.specs, theta, w, r, X)
    u_a = np.concatenate([a.ravel() for a in ev.u])
    assert ev.ldL2 == pytest.approx(ld_b, rel=1e-10, abs=1e-9)
    assert np.allclose(u_a, u_b, rtol=1e-9, atol=1e-10)
    assert np.allclose(ev.beta, b_b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", fixture_names())
def test_refilled_engine_equals_a_fresh_load(name):
    """The blocks gathered from the row sums are the blocks ``_load`` makes from the
    cross-products of the same weights and response: the same factor to roundoff."""
    m = fitted(name)
    pr, theta, w, r = _step(m)
    a = WeightedPLS(pr.rows, pr.specs, pr.X).evaluate(theta, w, r)
    b = ProfiledLMM(cross_products(pr.rows, pr.X, r, w), pr.specs).evaluate(theta, modes=True)
    assert a.ldL2 == pytest.approx(b.ldL2, rel=1e-12, abs=1e-10)
    assert a.r2 == pytest.approx(b.r2, rel=1e-10)
    assert np.allclose(a.beta, b.beta, rtol=1e-10, atol=1e-12)
    assert np.allclose(a.RX, b.RX, rtol=1e-10, atol=1e-12)
    for ua, ub in zip(a.u, b.u):
        assert np.allclose(ua, ub, rtol=1e-10, atol=1e-12)


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


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("joint", [False, True])
def test_one_term_step_on_many_levels_matches_a_dense_solve(k, joint):
    """One term of 300 levels (past the small models' dense system): the one-term path
    with modes (k = 1) and the blocks (k = 2) against the dense solve."""
    from lme2sm.engine.crossprod import TermRows
    from lme2sm.engine.theta import TermSpec

    rng = np.random.default_rng(7)
    n, q = 1500, 300
    codes = rng.integers(0, q, n)
    codes[:q] = np.arange(q)
    Z = np.column_stack([np.ones(n), rng.normal(size=n)])[:, :k]
    rows, specs = [TermRows(codes, q, Z)], [TermSpec(q, k)]
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    X = X if joint else X[:, :0]
    theta = np.array([0.8]) if k == 1 else np.array([0.8, 0.2, 0.5])
    w, r = 0.2 + rng.random(n), rng.normal(size=n)
    ev = WeightedPLS(rows, specs, X).evaluate(theta, w, r)
    ld_b, u_b, b_b = dense_pls(rows, specs, theta, w, r, X)
    assert ev.ldL2 == pytest.approx(ld_b, rel=1e-12)
    assert np.allclose(ev.u[0].ravel(), u_b, rtol=1e-10, atol=1e-12)
    assert np.allclose(ev.beta, b_b, rtol=1e-10, atol=1e-12)


def test_weighted_pls_pickles_and_gives_the_same_step():
    import pickle

    m = fitted("verbagg_binomial")
    pr, theta, w, r = _step(m)
    a = WeightedPLS(pr.rows, pr.specs, pr.X)
    b = pickle.loads(pickle.dumps(a))
    ea, eb = a.evaluate(theta, w, r), b.evaluate(theta, w, r)
    assert ea.ldL2 == eb.ldL2
    assert np.array_equal(ea.beta, eb.beta)


def test_a_crossed_block_beyond_the_engine_is_a_fit_error(monkeypatch):
    """As for lmer: the message says how many random effects and the limit."""
    import lme2sm.engine.lmm as lmm
    from lme2sm.errors import FitError

    m = fitted("verbagg_binomial")
    pr = m.problem
    monkeypatch.setattr(lmm, "MAX_DENSE", 10)
    fresh = type(pr)(pr.rows, pr.specs, pr.X, pr.y, pr.trials, pr.wts, pr.offset, pr.family)
    with pytest.raises(FitError, match="random effects together; the engine's dense block"):
        fresh.pirls(m.engine_fit.theta)


@pytest.mark.parametrize("name", fixture_names())
@pytest.mark.parametrize("joint", [False, True])
def test_steps_at_one_theta_equal_the_evaluation_bit_for_bit(name, joint):
    """PIRLS's steps (:meth:`WeightedPLS.at`: theta's part made once) give the numbers of
    :meth:`WeightedPLS.evaluate` exactly, small dense models and blocked ones alike."""
    m = fitted(name)
    pr, theta, w, r = _step(m)
    pls = WeightedPLS(pr.rows, pr.specs, pr.X if joint else pr.X[:, :0])
    ev = pls.evaluate(theta, w, r)
    steps = pls.at(theta)
    for _ in range(2):  # a second step at the same theta: nothing carried over
        ldL2, u, beta = steps(w, r)
        assert ldL2 == ev.ldL2
        assert np.array_equal(u, np.concatenate([a.ravel() for a in ev.u]))
        assert np.array_equal(beta, ev.beta)


@pytest.mark.parametrize("name", fixture_names())
@pytest.mark.parametrize("joint", [False, True])
def test_scalar_row_sums_equal_the_general_sums_bit_for_bit(name, joint):
    """Scalar terms' sums by bincounts of vectors are the general path's sums exactly."""
    from lme2sm.engine.reweight import RowSums

    m = fitted(name)
    pr, theta, w, r = _step(m)
    sums = RowSums(pr.rows, pr.X if joint else pr.X[:, :0])
    if not sums._scalar:
        pytest.skip("a vector term, or X too wide for the scalar path")
    fast = sums.sums(w, r).copy()
    sums._scalar = False
    assert np.array_equal(fast, sums.sums(w, r))


def test_plain_arithmetic_response_equals_patsy():
    """A cbind() column of numeric columns and numbers is computed on numpy with
    patsy's I() floats; anything else (a column divided by a column) is left to patsy."""
    import pandas as pd

    from lme2sm.formula.model import BinOp, Name, Number, Paren
    from lme2sm.frame import design
    from lme2sm.glmm.response import _evaluate, _plain

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"size": rng.integers(1, 50, 40), "inc": rng.integers(0, 3, 40), "x": rng.random(40)}
    )
    exprs = [
        BinOp("-", Name("size"), Name("inc")),
        BinOp("*", Paren(BinOp("+", Name("x"), Number("1.5"))), Name("size")),
        BinOp("/", Name("size"), Number("3")),
    ]
    for expr in exprs:
        assert isinstance(_plain(expr, frame), np.ndarray)
        assert np.array_equal(
            _evaluate(expr, frame, "it"), design.evaluate(expr, frame, "it")[:, 0]
        )
    assert _plain(BinOp("/", Name("size"), Name("x")), frame) is None
