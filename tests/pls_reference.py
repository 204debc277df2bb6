"""A dense reference for one penalised weighted least-squares step (lme4's merPredD
solve), written from the definition: Z and Lambda as dense matrices, one linear solve."""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from lme2sm.engine.theta import unpack_theta


def dense_pls(rows, specs, theta, w, r, X):
    """``(log|L|^2, u, beta)`` minimising ``|W^1/2 (r - X beta - Z Lambda u)|^2 + |u|^2``
    (``X`` with no columns: beta empty)."""
    n = len(r)
    blocks = []
    for t, T in zip(rows, unpack_theta(np.asarray(theta, float), specs)):
        Z = np.zeros((n, t.n_levels * t.k))
        for e in range(t.k):
            Z[np.arange(n), t.codes * t.k + e] = t.Z[:, e]
        blocks.append(Z @ np.kron(np.eye(t.n_levels), T))
    ZL = np.hstack(blocks)
    Q, p = ZL.shape[1], X.shape[1]
    M = np.hstack([ZL, X])
    A = M.T @ (M * w[:, None])
    A[np.arange(Q), np.arange(Q)] += 1.0
    sol = sla.solve(A, M.T @ (w * r), assume_a="pos")
    AZ = A[:Q, :Q]
    ldL2 = float(np.linalg.slogdet(AZ)[1])
    return ldL2, sol[:Q], sol[Q : Q + p]
