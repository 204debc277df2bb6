r"""Cluster-robust covariances of lmer's fixed effects, as R's clubSandwich.

``vcov_cr(m, "CR2")`` is ``clubSandwich::vcovCR(m, type = "CR2")`` and
``coef_test(m, "CR2")`` its ``coef_test(m, vcov = "CR2", test = "Satterthwaite")``
(clubSandwich 0.5.8), for a fit whose random effects nest within one cluster: by default
the grouping factor with the fewest levels (clubSandwich's ``get_outer_group``).

With :math:`V_j = Z_j \Lambda\Lambda' Z_j' + I` the working covariance of cluster
:math:`j`'s rows relative to :math:`\sigma^2`, :math:`W_j = V_j^{-1}`,
:math:`M = (\sum_j X_j' W_j X_j)^{-1}` and the marginal residuals
:math:`e_j = y_j - X_j\hat\beta`:

.. math::

    V^{CR} = M \Big(\sum_j X_j' W_j A_j e_j e_j' A_j' W_j X_j\Big) M

with :math:`A_j = I` for CR0, :math:`\sqrt{J/(J-1)}\,I` for CR1 and, for CR2 (Bell and
McCaffrey's bias-reduced linearisation, clubSandwich's ``inverse_var`` form),
:math:`A_j = R_j' G_j^{-1/2} R_j` where :math:`R_j'R_j = V_j` and
:math:`G_j = R_j (I - X_j M X_j' W_j) V_j R_j'`. The Satterthwaite df of coefficient
:math:`i` is :math:`(\operatorname{tr} P_i)^2 / \|P_i\|_F^2`, with the J x J matrix
:math:`P_i = \operatorname{diag}_j(\|g_{ij}\|^2) - H_i'H_i`, :math:`g_{ij}` row :math:`i`
of :math:`M X_j' W_j A_j L_j` (:math:`L_j L_j' = V_j`) and :math:`H_i`'s column
:math:`j` row :math:`i` of :math:`M X_j' W_j A_j X_j L_M` (:math:`L_M L_M' = M`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, stats

from lme2sm.errors import ArgumentError

__all__ = ["TYPES", "RobustVcov", "robust_vcov", "vcov_cr", "coef_test"]

TYPES = ("CR0", "CR1", "CR2")


@dataclass(frozen=True)
class RobustVcov:
    """A cluster-robust covariance with what its Satterthwaite df need."""

    type: str
    cluster: str
    n_clusters: int
    vcov: pd.DataFrame
    df: pd.Series
    """Satterthwaite df per coefficient (clubSandwich's ``df_Satt``)."""


def _check_type(type: str, name: str = "type") -> str:
    key = type.upper() if isinstance(type, str) else None
    if key not in TYPES:
        raise ArgumentError(f"{name} must be one of {', '.join(TYPES)}, not {type!r}")
    return key


def _cluster_codes(m: Any, cluster: str | None) -> tuple[str, np.ndarray]:
    """The clustering factor's name and each row's cluster code; every random term's
    levels must lie within one cluster (clubSandwich refuses crossed effects)."""
    terms = m.frame.terms
    if cluster is None:
        fewest = min(t.n_levels for t in terms)
        term = next(t for t in terms if t.n_levels == fewest)
    else:
        matches = [t for t in terms if t.group == cluster]
        if not matches:
            groups = ", ".join(dict.fromkeys(t.group for t in terms))
            raise ArgumentError(
                f"cluster {cluster!r} is not a grouping factor of the model ({groups})"
            )
        term = matches[0]
    codes = np.asarray(term.codes)
    for t in terms:
        pairs = np.unique(np.column_stack([np.asarray(t.codes), codes]), axis=0)
        if len(np.unique(pairs[:, 0])) != len(pairs):
            raise ArgumentError(
                f"the random effects of {t.group} are not nested within {term.group}: "
                "cluster-robust variances need every random effect within one cluster "
                "(clubSandwich refuses such models too)"
            )
    return term.group, codes


def _relative_covariances(m: Any) -> list[np.ndarray]:
    s2 = float(m.sigma) ** 2
    return [np.asarray(tc.cov, dtype=float) / s2 for tc in m.term_covariances]


def _cluster_v(m: Any, rows: np.ndarray, rel: list[np.ndarray]) -> np.ndarray:
    """V_j = Z_j Lambda Lambda' Z_j' + I for the rows of one cluster."""
    V = np.eye(len(rows))
    for t, S in zip(m.frame.terms, rel):
        Z = np.asarray(t.Z)[rows]
        c = np.asarray(t.codes)[rows]
        V += (Z @ S @ Z.T) * (c[:, None] == c[None, :])
    return V


def _inv_sqrt(G: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """clubSandwich's matrix_power(G, -1/2): eigenvalues <= tol are left at 0."""
    vals, vecs = np.linalg.eigh((G + G.T) / 2)
    inv = np.where(vals > tol, 1.0 / np.sqrt(np.where(vals > tol, vals, 1.0)), 0.0)
    return (vecs * inv) @ vecs.T


def robust_vcov(m: Any, type: str = "CR2", cluster: str | None = None) -> RobustVcov:
    """clubSandwich's ``vcovCR(m, type)`` with the Satterthwaite df of ``coef_test``.

    Parameters
    ----------
    m : LmerResult
    type : {"CR0", "CR1", "CR2"}
    cluster : str, optional
        A grouping factor of the model (default: the one with the fewest levels).
    """
    type = _check_type(type)
    if not hasattr(m, "term_covariances") or getattr(m, "family", None) is not None:
        raise ArgumentError("cluster-robust variances are implemented for lmer fits only")
    f = m.frame
    if f.weights is not None:
        raise ArgumentError("cluster-robust variances with prior weights are not supported")
    name, codes = _cluster_codes(m, cluster)
    X = np.asarray(f.X, dtype=float)
    beta = np.asarray(m.fixef(), dtype=float)
    resid = np.asarray(f.y, dtype=float) - X @ beta - np.asarray(f.offset, dtype=float)
    rel = _relative_covariances(m)
    clusters = [np.flatnonzero(codes == c) for c in np.unique(codes)]
    J = len(clusters)
    parts = []
    for rows in clusters:
        V = _cluster_v(m, rows, rel)
        L = np.linalg.cholesky(V)
        W = linalg.cho_solve((L, True), np.eye(len(rows)))
        parts.append((rows, V, L, W, X[rows].T @ W))
    M = np.linalg.inv(sum(xw @ X[rows] for rows, _, _, _, xw in parts))
    E_list = []
    for rows, V, L, _W, xw in parts:
        if type == "CR2":
            R = L.T
            G = R @ (np.eye(len(rows)) - X[rows] @ M @ xw) @ V @ R.T
            E_list.append(xw @ (R.T @ _inv_sqrt(G) @ R))
        elif type == "CR1":
            E_list.append(xw * np.sqrt(J / (J - 1)))
        else:
            E_list.append(xw)
    C = np.column_stack([E @ resid[rows] for E, (rows, *_rest) in zip(E_list, parts)])
    vcov = M @ C @ C.T @ M
    df = _satterthwaite_df(M, E_list, parts, X)
    names = list(f.fixed_names)
    return RobustVcov(
        type=type,
        cluster=name,
        n_clusters=J,
        vcov=pd.DataFrame(vcov, index=names, columns=names),
        df=pd.Series(df, index=names, name="df"),
    )


def _satterthwaite_df(M: np.ndarray, E_list, parts, X: np.ndarray) -> np.ndarray:
    """clubSandwich's Satterthwaite df (get_GH, get_P_array, Satterthwaite) for
    ``inverse_var = TRUE``."""
    LM = np.linalg.cholesky(M)
    J, p = len(parts), X.shape[1]
    g2 = np.empty((p, J))
    H = np.empty((p, p, J))
    for j, (E, (rows, _V, L, _W, _xw)) in enumerate(zip(E_list, parts)):
        ME = M @ E
        g2[:, j] = np.sum((ME @ L) ** 2, axis=1)
        H[:, :, j] = ME @ X[rows] @ LM
    df = np.empty(p)
    for i in range(p):
        P = -H[i].T @ H[i]
        P[np.diag_indices(J)] += g2[i]
        df[i] = np.trace(P) ** 2 / np.sum(P**2)
    return df


def vcov_cr(m: Any, type: str = "CR2", cluster: str | None = None) -> pd.DataFrame:
    """``clubSandwich::vcovCR(m, type = type)`` as a DataFrame named by lme4's fixef."""
    return robust_vcov(m, type, cluster).vcov


def coef_test(m: Any, vcov: str = "CR2", cluster: str | None = None) -> pd.DataFrame:
    """``clubSandwich::coef_test(m, vcov = type, test = "Satterthwaite")`` with
    lmerTest's column names: ``Estimate``, ``Std. Error``, ``df``, ``t value``,
    ``Pr(>|t|)``."""
    r = robust_vcov(m, _check_type(vcov, "vcov"), cluster)
    est = m.fixef()
    se = pd.Series(np.sqrt(np.diag(r.vcov.to_numpy())), index=est.index)
    t = est / se
    out = pd.DataFrame(
        {
            "Estimate": est,
            "Std. Error": se,
            "df": r.df,
            "t value": t,
            "Pr(>|t|)": 2 * stats.t.sf(np.abs(t), r.df),
        }
    )
    out.attrs["vcov"] = r.type
    out.attrs["cluster"] = r.cluster
    return out
