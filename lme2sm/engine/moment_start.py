r"""A start for ``theta`` from the method of moments on the cross-products.

lme4 starts every fit at ``T_j = I`` (each term's SD equal to the residual's). On a
large crossed model that start is far away (InstEval's dept:service term optimises at
0.09, and BOBYQA crawled from 1 to it in 60 of its 105 evaluations), and each
evaluation is a Cholesky factor of a dense block of a thousand levels. Moments of the
least-squares residuals cost one pass over the cross-products and land close: InstEval
(0.272, 0.477, 0.077) against the optimum (0.276, 0.435, 0.093).

With ``r`` the residuals of ``y`` on ``X`` and ``u_l = Z_{jl}' r`` (term ``j``, level
``l``; rows scaled by the prior weights' roots as everywhere in the engine), and
:math:`\mathrm{Cov}(y) = \sum_h Z_h (I \otimes \Sigma_h) Z_h' + \sigma^2 I`,

.. math::

    E\Big[\sum_l u_l u_l'\Big] \approx \sum_h \sum_{l, m} B_{lm} \Sigma_h B_{lm}'
        + \sigma^2 \sum_l Z_{jl}'Z_{jl}, \qquad
    E[r'r] \approx \sum_h \mathrm{tr}(Z_h'Z_h\,\Sigma_h) + n \sigma^2,

with :math:`B_{lm} = Z_{jl}'Z_{hm}` the blocks of ``Z_j'Z_h`` (the estimation of
``beta`` is ignored: hence "about"). One equation per free entry of each
:math:`\Sigma_j` and one for ``r'r``: a square linear system in those entries and
:math:`\sigma^2`, solved by least squares. Each :math:`\Sigma_h / \sigma^2` is made
positive definite (eigenvalues at least :data:`FLOOR` squared, or that times the largest) and
factored; :func:`~.theta.pack_theta` gives its parameters in any structure.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lme2sm.engine.crossprod import CrossProducts
from lme2sm.engine.structure import off_block
from lme2sm.engine.theta import TermSpec, pack_theta

__all__ = ["moment_theta", "FLOOR"]

FLOOR = 0.02
"""Relative SDs the moments put at or below zero start at this (BOBYQA takes them to 0
in a few steps when the optimum is singular); a vector term's eigenvalues are kept at
least this squared times its largest."""


def _entries(spec: TermSpec) -> list[tuple[int, int]]:
    """The ``(c, d)``, ``c >= d``, of a term's covariance entries the moments estimate:
    the diagonal only for ``diag`` terms, the lower triangle otherwise."""
    if spec.structure == "diag":
        return [(c, c) for c in range(spec.k)]
    return [(c, d) for d in range(spec.k) for c in range(d, spec.k)]


def _block_products(cp: CrossProducts, j: int, h: int) -> np.ndarray:
    """``Q[c, d, a, b] = sum_{l, m} B_lm[c, a] B_lm[d, b]`` over the blocks ``B_lm`` of
    ``Z_j'Z_h``."""
    kj, kh = cp.k[j], cp.k[h]
    if j == h:
        C = cp.diag[j]
        return np.einsum("lca,ldb->cdab", C, C)
    M = off_block(cp, j, h)
    if kj == 1 and kh == 1:
        return np.full((1, 1, 1, 1), float(np.dot(M.data, M.data)))
    parts = {(c, a): M[c::kj, a::kh].tocsr() for c in range(kj) for a in range(kh)}
    Q = np.empty((kj, kj, kh, kh))
    for c in range(kj):
        for d in range(kj):
            for a in range(kh):
                for b in range(kh):
                    Q[c, d, a, b] = parts[(c, a)].multiply(parts[(d, b)]).sum()
    return Q


def _residual_moments(cp: CrossProducts) -> tuple[np.ndarray, float, list[np.ndarray]]:
    """Least squares of ``y`` on ``X``: ``beta``, ``r'r`` and each term's ``u_l = Z_jl'r``."""
    p = cp.p
    XtX, Xty = cp.xy[:p, :p], cp.xy[:p, p]
    beta = np.linalg.lstsq(XtX, Xty, rcond=None)[0] if p else np.zeros(0)
    rtr = float(cp.xy[p, p] - 2.0 * beta @ Xty + beta @ XtX @ beta)
    u = [z[p] - np.einsum("a,aqk->qk", beta, z[:p]) for z in cp.zxy]
    return beta, rtr, u


def moment_theta(cp: CrossProducts, specs: Sequence[TermSpec]) -> np.ndarray | None:
    """``theta`` from the moments (see the module docstring), or None when they say
    nothing usable (a residual variance at or below zero, a system without a solution)."""
    if not specs:
        return None
    _, rtr, u = _residual_moments(cp)
    slots = [(h, e) for h, s in enumerate(specs) for e in _entries(s)]
    size = len(slots) + 1
    A = np.zeros((size, size))
    rhs = np.zeros(size)
    products = {}
    for row, (j, (c, d)) in enumerate(slots):
        rhs[row] = float(u[j][:, c] @ u[j][:, d])
        A[row, -1] = float(np.sum(cp.diag[j][:, c, d]))
        for col, (h, (a, b)) in enumerate(slots):
            if (j, h) not in products:
                products[(j, h)] = _block_products(cp, j, h)
            Q = products[(j, h)]
            A[row, col] = Q[c, d, a, b] + (Q[c, d, b, a] if a != b else 0.0)
    rhs[-1] = rtr
    for col, (h, (a, b)) in enumerate(slots):
        A[-1, col] = float(np.sum(cp.diag[h][:, a, b])) * (2.0 if a != b else 1.0)
    A[-1, -1] = cp.n
    scale = np.abs(A).max(axis=1, keepdims=True)
    if not np.all(np.isfinite(A)) or not np.all(scale > 0):
        return None
    x = np.linalg.lstsq(A / scale, rhs / scale[:, 0], rcond=None)[0]
    sigma2 = float(x[-1])
    if not (np.isfinite(sigma2) and sigma2 > 0) or not np.all(np.isfinite(x)):
        return None
    factors = []
    at = 0
    for s in specs:
        S = np.zeros((s.k, s.k))
        for c, d in _entries(s):
            S[c, d] = S[d, c] = x[at] / sigma2
            at += 1
        factors.append(_positive_factor(S))
    return pack_theta(factors, specs)


def _positive_factor(S: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor of ``S`` with its eigenvalues raised to at least
    ``FLOOR^2`` (a relative SD of ``FLOOR``), and to ``FLOOR^2`` times the largest when
    that is above 1."""
    values, vectors = np.linalg.eigh(S)
    values = np.maximum(values, FLOOR * FLOOR * max(float(values[-1]), 1.0))
    return np.linalg.cholesky((vectors * values) @ vectors.T)
