"""What one evaluation of the profiled deviance gives (:class:`Evaluation`) and the
engine's record of a fit (:class:`LmmFit`), from which every result is computed."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LOG_2PI", "Evaluation", "LmmFit", "profiled_criteria"]

LOG_2PI = math.log(2.0 * math.pi)


@dataclass
class Evaluation:
    """One factorisation at ``theta``: the deviance's pieces and the solution."""

    theta: np.ndarray
    ldL2: float
    ldRX2: float
    r2: float
    beta: np.ndarray
    RX: np.ndarray
    """Upper-triangular p x p, :math:`R_X'R_X = X'V^{-1}X` (V relative to sigma^2)."""
    deviance_reml: float
    deviance_ml: float
    u: list[np.ndarray] | None = None
    """Spherical modes per term (input order), ``(q_j, k_j)``, when asked for."""

    def deviance(self, reml: bool) -> float:
        return self.deviance_reml if reml else self.deviance_ml


@dataclass
class LmmFit:
    """The engine's record of a fit: everything results are computed from."""

    theta: np.ndarray
    beta: np.ndarray
    sigma: float
    reml: bool
    deviance: float
    """The optimised criterion (REML or ML deviance), -2 logLik."""
    evaluation: Evaluation
    factors: list[np.ndarray]
    """``T_j`` per term (input order): term covariance = sigma^2 T_j T_j'."""
    b: list[np.ndarray]
    """Conditional modes on the data scale per term, ``(q_j, k_j)``."""
    cov_beta: np.ndarray
    n_evals: int
    converged: bool
    message: str
    optimizer: str
    seconds: float
    scaled_gradient: float = float("nan")
    warnings: tuple[str, ...] = field(default=())
    derivatives: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    """(indices, gradient, Hessian, theta) of the deviance over the free entries of theta
    at the optimiser's stop ``theta``, before the final Newton step (lme4's convergence
    check; the gradient is measured again where the step lands if it fails there)."""
    approximation: str | None = None
    """None for the exact factor; for an approximate fit (``factor="krylov"``,
    :mod:`.krylov`) what is approximated and how far the logLik may be off."""
    logdet_se: float = 0.0
    """An approximate fit's standard error of ``log|L|^2`` (from its probes)."""

    @property
    def logLik(self) -> float:
        return -0.5 * self.deviance

    def covariances(self) -> list[np.ndarray]:
        """Each term's covariance matrix on the data scale, sigma^2 T T'."""
        return [self.sigma**2 * (T @ T.T) for T in self.factors]


def profiled_criteria(
    ldL2: float, ldRX2: float, r2: float, n: int, p: int, sum_log_w: float
) -> tuple[float, float]:
    """The REML and ML profiled deviances from the log-determinants and ``r^2`` (any
    engine's: exact or Krylov)."""
    if r2 <= 0:
        return -np.inf, -np.inf
    dev_ml = ldL2 + n * (1.0 + LOG_2PI + math.log(r2 / n)) - sum_log_w
    nmp = n - p
    if nmp <= 0:
        return np.inf, dev_ml
    return ldL2 + ldRX2 + nmp * (1.0 + LOG_2PI + math.log(r2 / nmp)) - sum_log_w, dev_ml
