r"""Each random term's covariance parameters: its shape and structure
(:class:`TermSpec`), its parameters ``theta``, their bounds and start, and the map from
``theta`` to the factor ``T_j`` (:math:`T_j T_j' = \Sigma_j / \sigma^2`, lower triangular).

Structures (glmmTMB's, on lme4's relative scale):

* ``us`` (lme4's unstructured term): the lower triangle of ``T_j`` column by column
  (lme4's ``theta``), 0 the lower bound on the diagonal.
* ``diag`` (``diag(x | g)``, lme4's ``||``): the diagonal of ``T_j``, the relative SDs.
* ``cs`` (heterogeneous compound symmetry): ``k`` relative SDs :math:`s_i \ge 0`, then
  :math:`t` with the common correlation :math:`\rho = (1 + a)\,\mathrm{logit}^{-1}(t) - a`,
  :math:`a = 1/(k-1)`, which keeps :math:`\rho` inside :math:`(-1/(k-1), 1)` (glmmTMB's
  transform).
* ``ar1``: one relative SD :math:`s \ge 0`, then :math:`t` with
  :math:`\rho = t/\sqrt{1 + t^2}` in :math:`(-1, 1)` (glmmTMB's);
  :math:`\mathrm{corr}(i, j) = \rho^{|i - j|}` over the term's columns.

For ``cs`` and ``ar1``, :math:`T = D L_R` with :math:`D` the SDs and :math:`L_R` the
Cholesky factor of the correlation matrix (``ar1``'s in closed form). The correlation
parameter is unbounded, so every structure's bounds are lower bounds only: 0 on the
SDs (and ``us``' diagonal), :math:`-\infty` elsewhere, and the optimisers, the edge
restarts and the inference code see one kind of box. The rest of the engine sees only
the factors.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "STRUCTURES",
    "TermSpec",
    "correlation_of",
    "correlation_parameter",
    "pack_theta",
    "snap_to_edge",
    "term_correlations",
    "theta_lower",
    "theta_start",
    "unpack_theta",
]

STRUCTURES = ("us", "diag", "cs", "ar1")


@dataclass(frozen=True)
class TermSpec:
    """The shape of one random term's covariance: levels, columns, structure."""

    n_levels: int
    k: int
    diagonal: bool = False
    """Only the diagonal of ``T`` is estimated (independent columns): ``structure="diag"``."""
    structure: str = "us"
    """``us``, ``diag``, ``cs`` or ``ar1`` (see the module's docstring)."""

    def __post_init__(self):
        if self.diagonal and self.structure == "us":
            object.__setattr__(self, "structure", "diag")
        if self.structure not in STRUCTURES:
            raise ValueError(f"unknown covariance structure {self.structure!r}")
        if self.structure in ("cs", "ar1") and self.k < 2:
            raise ValueError(f"a {self.structure} term needs two columns or more")
        object.__setattr__(self, "diagonal", self.structure == "diag")

    @property
    def n_sd(self) -> int:
        """How many of the parameters are relative SDs (bounded below by 0); the rest,
        of ``us``' lower triangle or a correlation's transform, are unbounded."""
        return {"us": 0, "diag": self.k, "cs": self.k, "ar1": 1}[self.structure]

    @property
    def n_theta(self) -> int:
        if self.structure == "us":
            return self.k * (self.k + 1) // 2
        return self.n_sd + (1 if self.structure in ("cs", "ar1") else 0)

    @property
    def cholesky(self) -> bool:
        """``theta`` is the lower triangle (or diagonal) of ``T`` itself."""
        return self.structure in ("us", "diag")


def _spec_lower(s: TermSpec) -> list[float]:
    if s.structure == "us":
        return [0.0 if r == c else -np.inf for c in range(s.k) for r in range(c, s.k)]
    return [0.0] * s.n_sd + [-np.inf] * (s.n_theta - s.n_sd)


def theta_lower(specs: Sequence[TermSpec]) -> np.ndarray:
    """Lower bounds: 0 on each ``T``'s diagonal and on the SDs, unbounded elsewhere."""
    return np.array([b for s in specs for b in _spec_lower(s)], dtype=float)


def theta_start(specs: Sequence[TermSpec]) -> np.ndarray:
    """lme4's start, identity ``T`` (1 on the diagonal, 0 below); for ``cs`` and ``ar1``
    SDs of 1 and a correlation of 0."""
    out: list[float] = []
    for s in specs:
        if s.structure == "cs":
            out += [1.0] * s.k + [_cs_t(0.0, s.k)]
        elif s.structure == "ar1":
            out += [1.0, 0.0]
        else:
            out += [1.0 if np.isfinite(b) else 0.0 for b in _spec_lower(s)]
    return np.array(out, dtype=float)


def correlation_of(spec: TermSpec, t: float) -> float:
    """The correlation parameter ``rho`` of a ``cs`` or ``ar1`` term from its ``t``."""
    if spec.structure == "ar1":
        return float(t / math.sqrt(1.0 + t * t)) if np.isfinite(t) else float(np.sign(t))
    a = 1.0 / (spec.k - 1)
    return float((1.0 + a) * _expit(t) - a)


def _expit(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t)) if t >= 0 else math.exp(t) / (1.0 + math.exp(t))


def correlation_parameter(spec: TermSpec, rho: float) -> float:
    """The ``t`` of a correlation ``rho`` (the inverse of :func:`correlation_of`)."""
    if spec.structure == "ar1":
        rho = min(max(rho, -1 + 1e-15), 1 - 1e-15)
        return rho / math.sqrt(1.0 - rho * rho)
    return _cs_t(rho, spec.k)


def _cs_t(rho: float, k: int) -> float:
    """The inverse of :func:`correlation_of` for ``cs``."""
    a = 1.0 / (k - 1)
    p = min(max((rho + a) / (1.0 + a), 1e-300), 1.0 - 1e-16)
    return math.log(p / (1.0 - p))


def _correlation_factor(structure: str, k: int, rho: float) -> np.ndarray:
    """The lower Cholesky factor of a ``cs`` or ``ar1`` correlation matrix (valid at
    the singular ends too: zero columns where a pivot vanishes)."""
    if structure == "ar1":
        i = np.arange(k)
        power = np.subtract.outer(i, i)
        L = np.where(power >= 0, float(rho) ** np.maximum(power, 0), 0.0)
        L[:, 1:] *= math.sqrt(max(0.0, 1.0 - rho * rho))
        return L
    R = np.full((k, k), float(rho))
    np.fill_diagonal(R, 1.0)
    try:
        return np.linalg.cholesky(R)
    except np.linalg.LinAlgError:
        return _semidefinite_cholesky(R)


def _semidefinite_cholesky(S: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of a positive semidefinite matrix (zero pivots kept 0)."""
    k = S.shape[0]
    L = np.zeros_like(S)
    for j in range(k):
        d = S[j, j] - float(L[j, :j] @ L[j, :j])
        if d <= 1e-14:
            continue
        L[j, j] = math.sqrt(d)
        L[j + 1 :, j] = (S[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]
    return L


@functools.cache
def _lower_by_columns(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the lower triangle's entries, column by column (lme4's theta
    order); cached: the optimiser unpacks theta at every evaluation."""
    cols, rows = np.triu_indices(k)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


def _unpack_one(values: np.ndarray, s: TermSpec) -> np.ndarray:
    if s.structure == "us":
        if s.k == 1:
            return np.array([[float(values[0])]])
        T = np.zeros((s.k, s.k))
        T[_lower_by_columns(s.k)] = values
        return T
    if s.structure == "diag":
        return np.diag(np.asarray(values, dtype=float))
    sds = np.asarray(values[: s.n_sd], dtype=float)
    sds = np.repeat(sds, s.k) if s.structure == "ar1" else sds
    L = _correlation_factor(s.structure, s.k, correlation_of(s, float(values[-1])))
    return sds[:, None] * L


def unpack_theta(theta: np.ndarray, specs: Sequence[TermSpec]) -> list[np.ndarray]:
    """Each term's lower-triangular ``T_j`` from ``theta`` (lme4's term order)."""
    out, i = [], 0
    for s in specs:
        out.append(_unpack_one(theta[i : i + s.n_theta], s))
        i += s.n_theta
    return out


def pack_theta(factors: Sequence[np.ndarray], specs: Sequence[TermSpec]) -> np.ndarray:
    """The inverse of :func:`unpack_theta` (for ``cs`` and ``ar1``: the SDs and the
    correlation of ``T T'``, the mean of its correlations for ``cs``)."""
    out: list[float] = []
    for T, s in zip(factors, specs):
        if s.structure == "us":
            for c in range(s.k):
                out.extend(T[c:, c])
            continue
        if s.structure == "diag":
            out.extend(np.diag(T))
            continue
        S = T @ T.T
        sd = np.sqrt(np.clip(np.diag(S), 0.0, None))
        denom = np.outer(sd, sd)
        corr = np.divide(S, denom, out=np.zeros_like(S), where=denom > 0)
        if s.structure == "ar1":
            out += [float(sd[0]), correlation_parameter(s, float(corr[1, 0]))]
        else:
            rho = float(np.mean(corr[np.tril_indices(s.k, -1)]))
            out += [*map(float, sd), _cs_t(rho, s.k)]
    return np.array(out, dtype=float)


def term_correlations(theta: np.ndarray, specs: Sequence[TermSpec]) -> list[float | None]:
    """Each term's correlation parameter ``rho`` (``cs``, ``ar1``; None for the others),
    read from ``theta`` (defined even where an SD is 0 and ``T T'`` cannot show it)."""
    out: list[float | None] = []
    i = 0
    for s in specs:
        i += s.n_theta
        out.append(
            correlation_of(s, float(theta[i - 1])) if s.structure in ("cs", "ar1") else None
        )
    return out


def snap_to_edge(theta: np.ndarray, specs: Sequence[TermSpec], edge: float) -> np.ndarray:
    """``theta`` with each near-zero SD set to exactly zero (lme4's ``restart_edge``):
    for ``us`` a whole column of ``T`` when its diagonal entry is below ``edge``, for
    the other structures each relative SD below ``edge``."""
    snapped = np.array(theta, dtype=float)
    i = 0
    for s in specs:
        if s.structure == "us":
            for c in range(s.k):
                col = slice(i, i + s.k - c)
                if theta[i] < edge:
                    snapped[col] = 0.0
                i += s.k - c
            continue
        sd = slice(i, i + s.n_sd)
        snapped[sd] = np.where(theta[sd] < edge, 0.0, theta[sd])
        i += s.n_theta
    return snapped
