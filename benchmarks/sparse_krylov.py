"""The Krylov candidate for the crossed PLS system (issue #21): no factorisation at all.

D_1 is eliminated exactly (it is diagonal), and the q2 x q2 Schur complement
S = D_2 - B'D_1^-1 B is only ever applied to vectors (two sparse products with N):

* solves: preconditioned conjugate gradients on S, Jacobi preconditioner diag(S), all
  right-hand sides at once, stopped at a relative residual ``rtol`` (1e-4 by default);
* log|S| = sum log diag(S) + log|S~|, S~ = diag(S)^-1/2 S diag(S)^-1/2, with
  stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017) on S~: ``probes``
  Rademacher vectors (fixed seed, so the estimate is a smooth function of theta, as an
  optimiser needs) and ``steps`` Lanczos steps each, run together as one block.

The name ``krylov:<probes>:<steps>:<rtol>`` picks the numbers (``krylov`` = 32:40:1e-4).
"""

from __future__ import annotations

import numpy as np
from sparse_methods import SchurBase
from sparse_system import schur_diagonal, schur_matvec

__all__ = ["Krylov", "pcg", "slq_logdet"]


def pcg(apply, diag: np.ndarray, B: np.ndarray, rtol: float, maxiter: int = 2000):
    """Jacobi-preconditioned CG on every column of B at once; returns (X, iterations)."""
    X = np.zeros_like(B)
    R = B.copy()
    Zp = R / diag[:, None]
    Pd = Zp.copy()
    rz = np.einsum("ij,ij->j", R, Zp)
    bnorm = np.linalg.norm(B, axis=0)
    bnorm[bnorm == 0] = 1.0
    for it in range(1, maxiter + 1):
        AP = apply(Pd)
        alpha = rz / np.einsum("ij,ij->j", Pd, AP)
        X += alpha * Pd
        R -= alpha * AP
        if np.all(np.linalg.norm(R, axis=0) <= rtol * bnorm):
            return X, it
        Zp = R / diag[:, None]
        rz_new = np.einsum("ij,ij->j", R, Zp)
        Pd = Zp + (rz_new / rz) * Pd
        rz = rz_new
    return X, maxiter


def slq_logdet(apply, q: int, probes: int, steps: int, seed: int = 0) -> float:
    """Stochastic Lanczos quadrature estimate of log det of the SPD operator ``apply``
    (q x q), all probes in one block, no reorthogonalisation."""
    rng = np.random.default_rng(seed)
    V = rng.choice([-1.0, 1.0], size=(q, probes)) / np.sqrt(q)
    V_prev = np.zeros_like(V)
    alphas, betas = [], []
    beta = np.zeros(probes)
    for j in range(steps):
        W = apply(V) - beta * V_prev
        a = np.einsum("ij,ij->j", V, W)
        W -= a * V
        alphas.append(a)
        beta = np.linalg.norm(W, axis=0)
        if j == steps - 1 or np.any(beta < 1e-12):
            break
        betas.append(beta)
        V_prev, V = V, W / beta
    total = 0.0
    for p in range(probes):
        T = np.diag([a[p] for a in alphas])
        off = [b[p] for b in betas[: len(alphas) - 1]]
        T += np.diag(off, 1) + np.diag(off, -1)
        ev, U = np.linalg.eigh(T)
        total += q * float(np.sum(U[0] ** 2 * np.log(ev)))
    return total / probes


class Krylov(SchurBase):
    """PCG solves and SLQ log-determinant on the Schur complement of D_1."""

    def __init__(self, probes: int = 32, steps: int = 40, rtol: float = 1e-4):
        self.probes, self.steps, self.rtol = probes, steps, rtol
        self.name = f"krylov:{probes}:{steps}:{rtol:g}"
        self.iterations: list[int] = []

    @classmethod
    def from_name(cls, name: str) -> Krylov:
        parts = name.split(":")[1:]
        kinds = (int, int, float)
        return cls(*(k(p) for k, p in zip(kinds, parts)))

    def factor_schur(self, theta):
        P = self.P
        apply = schur_matvec(P, theta, self.Nt)
        diag = schur_diagonal(P, theta)
        s = 1.0 / np.sqrt(diag)

        def scaled(V):
            return s[:, None] * apply(s[:, None] * V)

        ld = float(np.sum(np.log(diag))) + slq_logdet(scaled, P.q2, self.probes, self.steps)

        def solve(R):
            X, it = pcg(apply, diag, R, self.rtol)
            self.iterations.append(it)
            return X

        return ld, solve
