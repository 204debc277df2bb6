"""Each random term's covariance parameters: its shape (:class:`TermSpec`), lme4's
``theta`` (the lower triangle of ``T_j`` column by column, a diagonal term's diagonal),
its bounds and start, and the map between ``theta`` and the factors ``T_j``.

A new covariance structure is a new way of filling ``T_j`` from its parameters: it goes
here (its parameters, bounds, start, ``unpack_theta``), and the rest of the engine sees
only the factors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["TermSpec", "pack_theta", "theta_lower", "theta_start", "unpack_theta"]


@dataclass(frozen=True)
class TermSpec:
    """The shape of one random term's covariance: levels, columns, structure."""

    n_levels: int
    k: int
    diagonal: bool = False
    """Only the diagonal of ``T`` is estimated (independent columns)."""

    @property
    def n_theta(self) -> int:
        return self.k if self.diagonal else self.k * (self.k + 1) // 2


def theta_lower(specs: Sequence[TermSpec]) -> np.ndarray:
    """lme4's bounds: 0 on each ``T``'s diagonal, unbounded below it."""
    out = []
    for s in specs:
        if s.diagonal:
            out.extend([0.0] * s.k)
            continue
        for c in range(s.k):
            for r in range(c, s.k):
                out.append(0.0 if r == c else -np.inf)
    return np.array(out)


def theta_start(specs: Sequence[TermSpec]) -> np.ndarray:
    """lme4's start: identity ``T`` (1 on the diagonal, 0 below)."""
    return np.where(np.isfinite(theta_lower(specs)), 1.0, 0.0)


def unpack_theta(theta: np.ndarray, specs: Sequence[TermSpec]) -> list[np.ndarray]:
    """Each term's lower-triangular ``T_j`` from ``theta`` (lme4's order)."""
    out, i = [], 0
    for s in specs:
        T = np.zeros((s.k, s.k))
        if s.diagonal:
            T[np.diag_indices(s.k)] = theta[i : i + s.k]
            i += s.k
        else:
            for c in range(s.k):
                for r in range(c, s.k):
                    T[r, c] = theta[i]
                    i += 1
        out.append(T)
    return out


def pack_theta(factors: Sequence[np.ndarray], specs: Sequence[TermSpec]) -> np.ndarray:
    """The inverse of :func:`unpack_theta`."""
    out = []
    for T, s in zip(factors, specs):
        if s.diagonal:
            out.extend(np.diag(T))
        else:
            for c in range(s.k):
                out.extend(T[c:, c])
    return np.array(out, dtype=float)
