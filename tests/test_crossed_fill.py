"""The fill one prefix term leaves in the crossed block (lme2sm.engine.fill): its pair
products equal ``A blockdiag(M) A'``; heavy levels as dense rank updates give the same
deviance and modes as pairs, and as the whole dense system (no blocks at all)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from lme2sm.engine import fill
from lme2sm.engine.crossprod import TermRows, cross_products
from lme2sm.engine.lmm import ProfiledLMM, TermSpec


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(1, 12),
    q=st.integers(1, 8),
    k=st.integers(1, 3),
    density=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**31 - 1),
    table=st.booleans(),
)
def test_pair_products_are_the_lower_triangle_of_A_M_At(m, q, k, density, seed, table):
    rng = np.random.default_rng(seed)
    A = sp.random(m, q * k, density=density, random_state=rng, format="csc")
    G = rng.normal(size=(q, k, k))
    M = G @ np.transpose(G, (0, 2, 1))  # symmetric blocks, as the engine's G G'
    if not table:  # the np.unique branch of the pair ranking
        old = fill._rank_pairs

        def by_unique(key, n_keys):
            return old(key, max(n_keys, 10**9))

        fill._rank_pairs = by_unique
    try:
        K, rows, cols = fill.pair_products(A, m, k)
    finally:
        if not table:
            fill._rank_pairs = old
    dense = A.toarray()
    full = dense @ sp.block_diag(list(M)).toarray() @ dense.T if q else np.zeros((m, m))
    assert np.all(rows >= cols)
    np.testing.assert_allclose(K @ M.ravel(), full[rows, cols], rtol=1e-12, atol=1e-12)
    # every nonzero entry of the lower triangle is among the pairs
    lower = np.tril(np.abs(dense) @ sp.block_diag(list(np.abs(M) + 1)).toarray() @ np.abs(dense).T)
    assert set(zip(*np.nonzero(lower))) == set(zip(rows.tolist(), cols.tolist()))


def test_heavy_levels_take_the_costly_ones_and_keep_the_pairs_within_budget():
    counts = np.array([1, 2, 800, 3, 50, 1000, 40])
    m = 5000
    # by cost alone (100 flops a pair): c (c + 1) / 2 * 100 > m^2 for c > 707
    np.testing.assert_array_equal(fill.heavy_levels(counts, m, 1), [2, 5])
    # a budget of 2,000 pairs also sends the next heaviest (50: 1,275 pairs) over
    light = lambda h: sum(c * (c + 1) // 2 for i, c in enumerate(counts) if i not in h)  # noqa: E731
    h = fill.heavy_levels(counts, m, 1, max_nnz=2_000)
    assert light(h) <= 2_000 and list(h) == [2, 4, 5]
    assert light([2, 5]) > 2_000


def crossed_design(seed: int = 0, slopes: bool = False):
    """Users x items with a few users who rated most items (MovieLens' shape)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 300, 60
    per_user = np.where(np.arange(n_users) < 6, 55, rng.integers(1, 6, n_users))
    user = np.repeat(np.arange(n_users), per_user)
    item = np.concatenate([rng.choice(n_items, c, replace=False) for c in per_user])
    n = len(user)
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    y = X @ [1.0, 0.5] + rng.normal(0, 0.8, n_users)[user] + rng.normal(0, 0.5, n_items)[item]
    y += rng.normal(size=n)
    zu = np.column_stack([np.ones(n), x]) if slopes else np.ones((n, 1))
    zi = np.column_stack([np.ones(n), x]) if slopes else np.ones((n, 1))
    terms = [TermRows(user, n_users, zu), TermRows(item, n_items, zi)]
    k = 2 if slopes else 1
    specs = [TermSpec(n_users, k), TermSpec(n_items, k)]
    return cross_products(terms, X, y), specs


def engines(monkeypatch, slopes: bool):
    """The same model three ways: pairs only, the six heavy users dense, the whole
    dense system."""
    cp, specs = crossed_design(slopes=slopes)
    monkeypatch.setattr(fill, "FLOPS_PER_PAIR", 0.0)
    pairs = ProfiledLMM(cp, specs, dense=False)
    monkeypatch.setattr(fill, "FLOPS_PER_PAIR", 1e6)
    heavy = ProfiledLMM(cp, specs, dense=False)
    monkeypatch.undo()
    whole = ProfiledLMM(cp, specs, dense=True)
    return pairs, heavy, whole


@pytest.mark.parametrize("slopes", [False, True])
def test_heavy_levels_change_the_path_not_the_deviance_or_modes(monkeypatch, slopes):
    pairs, heavy, whole = engines(monkeypatch, slopes)
    assert pairs.prefix == [0] and pairs.kfill is not None and len(pairs.kfill.heavy) == 0
    assert pairs._sparse_rest is None and heavy._sparse_rest is None
    assert set(heavy.kfill.heavy.tolist()) >= set(range(6))
    rng = np.random.default_rng(3)
    for _ in range(4):
        theta = np.abs(rng.normal(size=pairs.n_theta)) + 0.1
        if slopes:
            theta[[1, 4]] = rng.normal(size=2)  # off-diagonal entries: any sign
        for reml in (True, False):
            ref = whole.deviance(theta, reml)
            assert pairs.deviance(theta, reml) == pytest.approx(ref, rel=1e-12)
            assert heavy.deviance(theta, reml) == pytest.approx(ref, rel=1e-12)
        ev_h, ev_w = heavy.evaluate(theta, modes=True), whole.evaluate(theta, modes=True)
        np.testing.assert_allclose(ev_h.beta, ev_w.beta, rtol=1e-10)
        for uh, uw in zip(ev_h.u, ev_w.u, strict=True):
            np.testing.assert_allclose(uh, uw, rtol=1e-9, atol=1e-11)


def test_reloaded_blocks_keep_the_heavy_split(monkeypatch):
    """glmer's PIRLS loads reweighted blocks into the same structure
    (:meth:`ProfiledLMM.with_loaded`): the heavy levels stay, their columns are read anew."""
    _, heavy, _ = engines(monkeypatch, slopes=False)
    blocks = heavy.loaded_blocks()
    blocks["A_rp"] = {0: heavy.A_rp[0] * 2.0}  # every user's entries doubled
    reloaded = heavy.with_loaded(blocks, heavy.n)
    np.testing.assert_array_equal(reloaded.kfill.heavy, heavy.kfill.heavy)
    np.testing.assert_array_equal(reloaded.kfill.heavy_block, 2.0 * heavy.kfill.heavy_block)
    theta = np.array([0.7, 0.4])
    assert reloaded.deviance(theta, True) != pytest.approx(heavy.deviance(theta, True))
    pairs = heavy.with_loaded(blocks, heavy.n)  # the same blocks, every level as pairs
    pairs._set_fill(fill.crossed_fill(blocks["A_rp"][0], heavy.m_rest, 1, np.zeros(0, int)))
    assert reloaded.deviance(theta, True) == pytest.approx(pairs.deviance(theta, True), rel=1e-12)
