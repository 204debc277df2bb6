r"""The optimiser's coordinates for ``theta``: each term's ``T`` in a basis where the
term's own columns are orthonormal.

lme4 optimises the entries of each term's lower-triangular ``T_j`` in the units of the
term's columns. With an uncentred covariate (``(age | school)``, ages 7 to 12) the
intercept and slope columns are nearly collinear, the deviance is a long curved valley
in ``theta``, and BOBYQA crawls along it: the seed's nested example 2 took 5,090
evaluations of its first run and lme4 stops 0.006 short in deviance after 1,966.

Here the optimiser sees, for each unstructured term with two or more columns, the
columns :math:`Z_j B_j`, with :math:`B_j = R_j^{-1}` and :math:`R_j` the upper Cholesky
factor of :math:`Z_j'WZ_j / n` summed over the levels: orthonormal on average, an
intercept column kept at its own scale. Since :math:`Z_j b = (Z_j B_j)(B_j^{-1} b)`,
the term's covariance in those coordinates is :math:`\Sigma' = B^{-1} \Sigma B^{-T}`;
the optimiser moves :math:`T'` (:math:`\Sigma' = \sigma^2 T'T'^\top`); each
evaluation uses the factor :math:`B T'` as it is (the deviance reads only
:math:`\Lambda\Lambda^\top`), and the optimum is mapped back to lme4's ``T``, the
lower Cholesky factor of :math:`(B T')(B T')^\top`. That map is a bijection of the positive semidefinite
matrices that keeps their rank, so the optimum, and whether it is singular, are the
same; only the optimiser's path changes (the seed's example 2: 394 evaluations).

Scalar terms, diagonal (``||``, ``diag()``) terms and the structured ``cs()`` and
``ar1()`` terms keep their own parameters: a change of basis would mix their
independent columns or break their structure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lme2sm.engine.theta import TermSpec, pack_theta, unpack_theta

__all__ = ["ThetaCoordinates"]


@dataclass(frozen=True)
class ThetaCoordinates:
    """Per term, the basis change ``B`` (None: lme4's own coordinates) and its inverse."""

    specs: tuple[TermSpec, ...]
    basis: tuple[np.ndarray | None, ...]
    inverse: tuple[np.ndarray | None, ...]

    @classmethod
    def from_blocks(
        cls, specs: Sequence[TermSpec], diag_blocks: Sequence[np.ndarray], n: float
    ) -> ThetaCoordinates:
        """Coordinates from each term's per-level cross-products ``Z_l'W Z_l``
        (``(q, k, k)``, :attr:`CrossProducts.diag`) and the number of rows."""
        basis: list[np.ndarray | None] = []
        inverse: list[np.ndarray | None] = []
        for s, blocks in zip(specs, diag_blocks):
            if s.k < 2 or s.structure != "us" or n <= 0:
                basis.append(None)
                inverse.append(None)
                continue
            pooled = np.asarray(blocks, dtype=float).sum(axis=0) / n
            try:
                R = np.linalg.cholesky(pooled).T
            except np.linalg.LinAlgError:  # collinear columns: lme4's coordinates
                basis.append(None)
                inverse.append(None)
                continue
            B = np.linalg.inv(R)
            if not (np.all(np.isfinite(B)) and np.all(np.isfinite(R))):
                basis.append(None)
                inverse.append(None)
                continue
            basis.append(B)
            inverse.append(R)
        return cls(tuple(specs), tuple(basis), tuple(inverse))

    @classmethod
    def identity(cls, specs: Sequence[TermSpec]) -> ThetaCoordinates:
        """lme4's own coordinates for every term."""
        none = tuple(None for _ in specs)
        return cls(tuple(specs), none, none)

    @property
    def is_identity(self) -> bool:
        return all(B is None for B in self.basis)

    def factors(self, phi: np.ndarray) -> list[np.ndarray]:
        """Each term's factor ``F_j = B_j T'_j`` at the optimiser's point: not lower
        triangular, but :math:`F_j F_j^\top = T_j T_j^\top`, which is all the deviance
        reads (:meth:`ProfiledLMM.deviance_of_factors`), without a factorisation."""
        return [
            T if B is None else B @ T for T, B in zip(unpack_theta(phi, self.specs), self.basis)
        ]

    def to_theta(self, phi: np.ndarray) -> np.ndarray:
        """lme4's ``theta`` from the optimiser's coordinates."""
        return self._map(phi, self.basis)

    def from_theta(self, theta: np.ndarray) -> np.ndarray:
        """The optimiser's coordinates of lme4's ``theta`` (a start value)."""
        return self._map(theta, self.inverse)

    def _map(self, values: np.ndarray, mats: tuple[np.ndarray | None, ...]) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        out, i = [], 0
        for s, M in zip(self.specs, mats):
            part = values[i : i + s.n_theta]
            i += s.n_theta
            if M is None:  # the term's own parameters, whatever its structure
                out.append(part)
                continue
            T = unpack_theta(part, [s])[0]
            out.append(pack_theta([_lower_factor_of_product(M, T)], [s]))
        return np.concatenate(out) if out else np.zeros(0)


def _lower_factor_of_product(M: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor of :math:`(M T)(M T)^\top`.

    It is the transposed R of the QR factorisation of :math:`(M T)^\top`, with each
    column's sign set so that the diagonal is nonnegative. No square root of a
    difference is taken, so a rank-deficient product gives a zero (or rounding) on the
    diagonal where Cholesky could fail on a negative rounding error. Called once a fit
    (the optimiser itself evaluates at :meth:`ThetaCoordinates.factors`).
    """
    L = np.linalg.qr((M @ T).T, mode="r").T
    return L * np.where(np.diag(L) < 0, -1.0, 1.0)[None, :]
