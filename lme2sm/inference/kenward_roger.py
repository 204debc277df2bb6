r"""Kenward–Roger's adjusted covariance and denominator df, as pbkrtest computes them.

Kenward & Roger (1997, Biometrics 53, 983-997), in pbkrtest's form (Halekoh & Højsgaard
2014, J. Stat. Softw. 59(9); ``vcovAdj``, ``Lb_ddf``, ``KRmodcomp``). The marginal
covariance of ``y`` is written as a sum over the covariance parameters ``gamma_r``

.. math::

    \Sigma = \sum_r \gamma_r G_r, \qquad
    G_r = Z_j (I_{m_j} \otimes E_{ab}) Z_j' \ \text{(one per variance or covariance
    element of term } j\text{)}, \qquad G_{\text{last}} = I_n,

``gamma`` being each term's covariance matrix elements (lower triangle, as lme4's
``VarCorr``) and the residual variance. With :math:`\Phi` = lme4's ``vcov``,
:math:`P_r = -X'\Sigma^{-1}G_r\Sigma^{-1}X`,
:math:`Q_{rs} = X'\Sigma^{-1}G_r\Sigma^{-1}G_s\Sigma^{-1}X`,
:math:`K_{rs} = \mathrm{tr}(\Sigma^{-1}G_r\Sigma^{-1}G_s)` and the information
:math:`I_{rs} = K_{rs} - 2\,\mathrm{tr}(\Phi Q_{rs}) + \mathrm{tr}(\Phi P_r \Phi P_s)`,
:math:`W = 2 I^{-1}` and

.. math::

    \Phi_A = \Phi + 2\Phi\Big[\sum_{r,s} W_{rs}(Q_{rs} - P_r\Phi P_s)\Big]\Phi .

The denominator df of a test of ``L beta = 0`` (``q`` rows) follows from
:math:`A_1 = \sum W_{rs}\mathrm{tr}(\Theta\Phi P_r\Phi)\mathrm{tr}(\Theta\Phi P_s\Phi)`,
:math:`A_2 = \sum W_{rs}\mathrm{tr}(\Theta\Phi P_r\Phi\Theta\Phi P_s\Phi)`,
:math:`\Theta = L'(L\Phi L')^{-1}L` (pbkrtest's ``Lb_ddf``, copied term by term).

pbkrtest forms the n x n matrices :math:`\Sigma^{-1}` and :math:`G_r\Sigma^{-1}`. Here
nothing n x n is formed: with :math:`U = Z\Lambda`, :math:`M = U'U + I`,
:math:`\Sigma^{-1} = \sigma^{-2}(I - UM^{-1}U')` (Woodbury), every trace and product
above reduces to q x q matrices (q = number of random effects): ``Z'Σ⁻¹Z``,
``Z'Σ⁻²Z``, ``Z'Σ⁻¹X``, ``Z'Σ⁻²X``, ``X'Σ⁻ᵏX`` (k = 1, 2, 3) and
:math:`\mathrm{tr}(\Sigma^{-2}) = \sigma^{-4}(n - q + \mathrm{tr}(M^{-2}))`, after one
pass over the rows for ``Z'Z`` and ``Z'X``. When ``M`` splits into small independent
blocks (nested models: the levels of the top grouping factor never share rows), every
q x q matrix is block diagonal and stays sparse: O(q) work (q = 40,000 in 0.2 s).
Otherwise (crossed terms) the matrices are dense, O(q³) work, and models with more
than :data:`MAX_Q` random effects are refused.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp
from scipy import stats

from lme2sm.engine.frame_input import frame_Zt
from lme2sm.errors import ArgumentError
from lme2sm.inference.satterthwaite import ANOVA_COLUMNS

if TYPE_CHECKING:
    from lme2sm.engine.record import LmmFit
    from lme2sm.frame.model_frame import ModelFrame

__all__ = [
    "MAX_Q",
    "KenwardRoger",
    "kenward_roger",
    "kenward_roger_model",
    "kr_coef_table",
    "kr_anova",
    "kr_anova_table",
    "vcov_adj",
]

MAX_Q = 4000
"""Largest number of random effects when they do not split into small independent
blocks (crossed terms): dense q x q matrices, about q³ flops (q = 2,500: about 5 s)."""

MAX_SPARSE_WORK = 300_000_000
"""Nested models: largest ``q * p * (number of covariance parameters)`` (memory)."""


# ------------------------------------------------------------------------ the model


@dataclass
class KenwardRoger:
    """pbkrtest's ``vcovAdj`` result with its attributes ``P`` and ``W``."""

    names: tuple[str, ...]
    beta: np.ndarray
    vcov: np.ndarray
    """lme4's ``vcov(m)`` (unadjusted), pbkrtest's ``Phi``/``V0``."""
    vcov_adj: np.ndarray
    """Kenward–Roger's adjusted covariance of the fixed effects (``vcovAdj``)."""
    P: list[np.ndarray]
    W: np.ndarray
    sigma: float
    condi: float
    """Smallest absolute eigenvalue of the information (pbkrtest's ``condi``)."""

    def ddf(self, L: np.ndarray) -> float:
        """The denominator df of the test of ``L @ beta = 0`` (pbkrtest's ``Lb_ddf``)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        return self._ddf_aux(L, L.shape[0])[0]

    def _ddf_aux(self, L: np.ndarray, q: int) -> tuple[float, float]:
        """``(df2, A2)`` of pbkrtest's ``Lb_ddf``/``.KR_adjust`` with ``q`` = the rank."""
        V0 = self.vcov
        Theta = L.T @ np.linalg.solve(L @ V0 @ L.T, L)
        ThetaV0 = Theta @ V0
        u = [ThetaV0 @ P @ V0 for P in self.P]
        tr = np.array([np.trace(x) for x in u])
        W = self.W
        A1 = float(tr @ W @ tr)
        A2 = 0.0
        g = len(u)
        for i in range(g):
            for j in range(i, g):
                e = 1.0 if i == j else 2.0
                A2 += e * W[i, j] * float(np.sum(u[i] * u[j].T))
        B = (A1 + 6 * A2) / (2 * q)
        gg = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        den = 3 * q + 2 * (1 - gg)
        c1, c2, c3 = gg / den, (q - gg) / den, (q + 2 - gg) / den
        V0_ = 1 + c1 * B
        V1 = 1 - c2 * B
        V2 = 1 - c3 * B
        if abs(V0_) < 1e-10:
            V0_ = 0.0
        x = 1 - A2 / q
        ratio = 1.0 if abs(x) < 1e-14 and abs(V1) < 1e-14 else x / V1
        rho = ratio**2 * V0_ / V2 / q
        df2 = 4 + (q + 2) / (q * rho - 1)
        return float(df2), A2

    def contest1d(self, L: np.ndarray) -> dict[str, float]:
        """t test of ``L @ beta = 0`` with the adjusted SE and KR df (lmerTest's
        ``contest1D(ddf="Kenward-Roger")``)."""
        L = np.asarray(L, dtype=float).ravel()
        estimate = float(L @ self.beta)
        se = math.sqrt(max(float(L @ self.vcov_adj @ L), 0.0))
        df = self.ddf(L)
        t = estimate / se if se > 0 else math.nan
        p = float(2 * stats.t.sf(abs(t), df)) if math.isfinite(t) else math.nan
        return {"estimate": estimate, "se": se, "df": df, "t": t, "p": p}

    def contest_md(self, L: np.ndarray) -> dict[str, float]:
        """F test of ``L @ beta = 0`` as lmerTest's ``contestMD(ddf="Kenward-Roger")``
        (pbkrtest's ``KRmodcomp``: scaled F, ``F.scaling`` applied); no rows: NAs."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        if L.shape[0] == 0:
            return dict.fromkeys(ANOVA_COLUMNS, math.nan)
        q = int(np.linalg.matrix_rank(L))
        df2, A2 = self._ddf_aux(L, q)
        scaling = 1.0 if abs(df2 - 2) < 0.01 else df2 * (1 - A2 / q) / (df2 - 2)
        Lb = L @ self.beta
        wald = float(Lb @ np.linalg.solve(L @ self.vcov_adj @ L.T, Lb))
        F_unscaled = wald / q
        F = F_unscaled * scaling
        ms = F_unscaled * self.sigma**2
        return {
            "Sum Sq": ms * q,
            "Mean Sq": ms,
            "NumDF": q,
            "DenDF": df2,
            "F value": F,
            "Pr(>F)": float(stats.f.sf(F, q, df2)),
        }


# ------------------------------------------------------------------ computation


def _lambda(frame: ModelFrame, factors: list[np.ndarray]) -> sp.csr_matrix:
    parts = [sp.kron(sp.identity(t.n_levels), T) for t, T in zip(frame.terms, factors)]
    return sp.block_diag(parts, format="csr")


def kenward_roger(frame: ModelFrame, fit: LmmFit) -> KenwardRoger:
    """pbkrtest's ``vcovAdj`` of a REML fit (``frame`` and its engine record)."""
    if not fit.reml:
        raise ArgumentError(
            "Kenward-Roger's method is only available for REML model fits "
            "(lmerTest refuses ML fits too); refit with REML=True"
        )
    if frame.weights is not None and not np.allclose(frame.weights, 1.0):
        raise ArgumentError(
            "Kenward-Roger with prior weights is not implemented: pbkrtest ignores the "
            "weights (its residual covariance is sigma^2 I), so there is no reference to "
            "match; use Satterthwaite's df"
        )
    q_sizes = [t.n_levels * t.k for t in frame.terms]
    q = sum(q_sizes)
    Zt = frame_Zt(frame)
    ZtZ = (Zt @ Zt.T).tocsr()
    Lam = _lambda(frame, fit.factors)
    M = (Lam.T @ ZtZ @ Lam + sp.identity(q, format="csr")).tocsr()
    blocks = _independent_blocks(M)
    n_par = sum(t.k * (t.k + 1) // 2 for t in frame.terms)
    if blocks is not None and q * frame.p * n_par > MAX_SPARSE_WORK:
        raise ArgumentError(
            f"Kenward-Roger needs {n_par} q x p = {q} x {frame.p} matrices here, more than "
            f"this module allows ({MAX_SPARSE_WORK:.0e} numbers); use Satterthwaite's df"
        )
    if blocks is not None:
        PP, QQ, Kt = _pieces_sparse(frame, fit, Zt, ZtZ, Lam, M, blocks)
    else:
        if q > MAX_Q:
            raise ArgumentError(
                f"the model has {q} random effects that do not split into independent "
                f"blocks of at most {MAX_BLOCK} (crossed terms); Kenward-Roger here then "
                f"needs dense {q} x {q} matrices (O(q^3) time) and is limited to {MAX_Q}. "
                f"pbkrtest would need n x n = {frame.n} x {frame.n} matrices. Use "
                "Satterthwaite's df instead"
            )
        PP, QQ, Kt = _pieces_dense(frame, fit, Zt, ZtZ, Lam, M.toarray())
    g = len(PP)
    p = frame.p

    Phi = np.asarray(fit.cov_beta, dtype=float)
    IE2 = np.zeros((g, g))
    for i in range(g):
        PhiPi = Phi @ PP[i]
        for j in range(i, g):
            IE2[i, j] = IE2[j, i] = (
                Kt[i, j]
                - 2 * float(np.sum(Phi * QQ[(i, j)]))
                + float(np.sum(PhiPi * (PP[j] @ Phi)))
            )
    eig = np.linalg.eigvalsh(IE2)
    condi = float(np.min(np.abs(eig)))
    if condi > 1e-10:
        W = 2 * np.linalg.inv(IE2)
    else:  # MASS::ginv: singular values above sqrt(eps) times the largest
        W = 2 * np.linalg.pinv(IE2, rcond=math.sqrt(np.finfo(float).eps))
    W = (W + W.T) / 2
    UU = np.zeros((p, p))
    for i in range(g - 1):
        for j in range(i + 1, g):
            UU += W[i, j] * (QQ[(i, j)] - PP[i] @ Phi @ PP[j])
    UU = UU + UU.T
    for i in range(g):
        UU += W[i, i] * (QQ[(i, i)] - PP[i] @ Phi @ PP[i])
    PhiA = Phi + 2 * (Phi @ UU @ Phi)
    return KenwardRoger(
        names=tuple(frame.fixed_names),
        beta=np.asarray(fit.beta, dtype=float),
        vcov=Phi,
        vcov_adj=PhiA,
        P=PP,
        W=W,
        sigma=float(fit.sigma),
        condi=condi,
    )


def _pieces_dense(frame, fit, Zt, ZtZ: sp.csr_matrix, Lam, M: np.ndarray):
    """pbkrtest's ``P_r``, ``Q_rs`` and ``K_rs`` with dense q x q matrices: one
    inversion, then sparse-times-dense products (about q³ flops in all)."""
    q_sizes = [t.n_levels * t.k for t in frame.terms]
    q = sum(q_sizes)
    X = frame.X
    n, p = X.shape
    s2 = fit.sigma**2
    a = 1.0 / s2
    ZtX = np.asarray(Zt @ X)
    XtX = X.T @ X
    K = sla.cho_solve(sla.cho_factor(M, lower=True), np.eye(q))
    LKL = np.asarray((Lam @ (Lam @ K).T).T)  # Lambda K Lambda'
    C = -a * np.asarray(ZtZ @ LKL)  # Z' Sigma^-1 = C Z'
    C[np.diag_indices(q)] += a
    A = np.asarray(ZtZ @ C.T).T  # Z' S^-1 Z = C Z'Z
    A = (A + A.T) / 2
    F = C @ ZtX  # Z' S^-1 X
    H = C @ F  # Z' S^-2 X

    def b_entries(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Entries of Z' S^-2 Z = C Z'Z C' = A C' (only the ones needed)."""
        return np.einsum("ij,ij->i", A[i], C[j])

    XVX = a * (XtX - ZtX.T @ LKL @ ZtX)
    XV2X = a * (XVX - ZtX.T @ LKL @ F)
    XV2X = (XV2X + XV2X.T) / 2
    XV3X = a * (XV2X - F.T @ LKL @ F)
    XV3X = (XV3X + XV3X.T) / 2
    trV2 = a * a * (n - q + float(np.sum(K * K)))

    # the covariance parameters: (term, rows, a, b) per element, residual last
    offsets = np.concatenate([[0], np.cumsum(q_sizes)]).astype(int)
    params: list[tuple[int, slice, int, int]] = []
    for j, t in enumerate(frame.terms):
        rows = slice(offsets[j], offsets[j + 1])
        for c in range(t.k):
            for r in range(c, t.k):
                params.append((j, rows, r, c))

    def erows(par, Y: np.ndarray) -> np.ndarray:
        """(I ⊗ E_ab) Y[rows]: the term-j rows of E_r Y."""
        j, rows, r, c = par
        k = frame.terms[j].k
        Yj = Y[rows].reshape(frame.terms[j].n_levels, k, -1)
        out = np.zeros_like(Yj)
        out[:, r] = Yj[:, c]
        out[:, c] = Yj[:, r]
        return out.reshape(Y[rows].shape)

    g = len(params) + 1
    EF = [erows(par, F) for par in params]
    EA = [erows(par, A) for par in params]
    PP = [-(F[par[1]].T @ ef) for par, ef in zip(params, EF)] + [-XV2X]
    PP = [(P + P.T) / 2 for P in PP]  # pbkrtest's forceSymmetric
    QQ: dict[tuple[int, int], np.ndarray] = {}
    Kt = np.zeros((g, g))
    for r, pr in enumerate(params):
        for s in range(r, len(params)):
            ps = params[s]
            QQ[(r, s)] = EF[r].T @ A[pr[1], ps[1]] @ EF[s]
            Kt[r, s] = Kt[s, r] = float(np.sum(EA[r][:, ps[1]] * EA[s][:, pr[1]].T))
        QQ[(r, g - 1)] = EF[r].T @ H[pr[1]]
        j, rows, ra, ca = pr
        first = rows.start + np.arange(frame.terms[j].n_levels) * frame.terms[j].k
        tr = float(np.sum(b_entries(first + ra, first + ca)))  # tr(E_r Z'S^-2Z)
        Kt[r, g - 1] = Kt[g - 1, r] = tr if ra == ca else 2 * tr
    QQ[(g - 1, g - 1)] = XV3X
    Kt[g - 1, g - 1] = trV2
    return PP, QQ, Kt


MAX_BLOCK = 400
"""Largest independent block of random effects for the sparse (block-diagonal) path."""


def _independent_blocks(M: sp.csr_matrix) -> np.ndarray | None:
    """Component labels of the random effects when ``M`` splits into independent
    blocks of at most :data:`MAX_BLOCK` (nested models); None otherwise."""
    from scipy.sparse.csgraph import connected_components

    if M.shape[0] <= 1:
        return None
    _, labels = connected_components(M, directed=False)
    return labels if np.bincount(labels).max() <= MAX_BLOCK else None


def _block_inverse(M: sp.csr_matrix, labels: np.ndarray) -> sp.csr_matrix:
    """``M^-1`` for a block-diagonal ``M`` (blocks = components), batched by size."""
    q = M.shape[0]
    sizes = np.bincount(labels)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = np.empty(q, dtype=np.int64)
    pos[order] = np.arange(q) - starts[labels[order]]
    coo = M.tocoo()
    rows, cols, vals = [], [], []
    for size in np.unique(sizes):
        comps = np.flatnonzero(sizes == size)
        slot = np.full(len(sizes), -1)
        slot[comps] = np.arange(len(comps))
        blocks = np.zeros((len(comps), size, size))
        keep = sizes[labels[coo.row]] == size
        r, c = coo.row[keep], coo.col[keep]
        blocks[slot[labels[r]], pos[r], pos[c]] = coo.data[keep]
        inv = np.linalg.inv(blocks)
        members = np.empty((len(comps), size), dtype=np.int64)
        sel = np.flatnonzero(sizes[labels] == size)
        members[slot[labels[sel]], pos[sel]] = sel
        shape = (len(comps), size, size)
        rows.append(np.broadcast_to(members[:, :, None], shape).ravel())
        cols.append(np.broadcast_to(members[:, None, :], shape).ravel())
        vals.append(inv.ravel())
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(q, q)
    )


def _pieces_sparse(frame, fit, Zt, ZtZ, Lam, M, labels):
    """pbkrtest's ``P_r``, ``Q_rs`` and ``K_rs`` when the random effects split into small
    independent blocks: every q x q matrix is block diagonal, the work O(q)."""
    X = frame.X
    n = X.shape[0]
    q = M.shape[0]
    a = 1.0 / fit.sigma**2
    K = _block_inverse(M, labels)
    ZtX = np.asarray(Zt @ X)
    XtX = X.T @ X
    LKL = (Lam @ K @ Lam.T).tocsr()
    C = (a * (sp.identity(q, format="csr") - ZtZ @ LKL)).tocsr()
    A = (C @ ZtZ).tocsr()
    A = ((A + A.T) / 2).tocsr()
    F = np.asarray(C @ ZtX)
    B = (C @ ZtZ @ C.T).tocsr()
    H = np.asarray(C @ F)
    XVX = a * (XtX - ZtX.T @ np.asarray(LKL @ ZtX))
    XV2X = a * (XVX - ZtX.T @ np.asarray(LKL @ F))
    XV2X = (XV2X + XV2X.T) / 2
    XV3X = a * (XV2X - F.T @ np.asarray(LKL @ F))
    XV3X = (XV3X + XV3X.T) / 2
    trV2 = a * a * (n - q + float(K.multiply(K).sum()))
    E = []
    start = 0
    for t in frame.terms:
        for c in range(t.k):
            for r in range(c, t.k):
                idx = start + np.arange(t.n_levels) * t.k
                rr = np.concatenate([idx + r, idx + c]) if r != c else idx + r
                cc = np.concatenate([idx + c, idx + r]) if r != c else idx + r
                E.append(sp.csr_matrix((np.ones(len(rr)), (rr, cc)), shape=(q, q)))
        start += t.n_levels * t.k
    g = len(E) + 1
    EF = [np.asarray(Er @ F) for Er in E]
    EA = [(Er @ A).tocsr() for Er in E]
    PP = [-(F.T @ ef) for ef in EF] + [-XV2X]
    PP = [(P + P.T) / 2 for P in PP]
    QQ: dict[tuple[int, int], np.ndarray] = {}
    Kt = np.zeros((g, g))
    for r in range(g - 1):
        for s_ in range(r, g - 1):
            QQ[(r, s_)] = EF[r].T @ np.asarray(A @ EF[s_])
            Kt[r, s_] = Kt[s_, r] = float(EA[r].multiply(EA[s_].T).sum())
        QQ[(r, g - 1)] = EF[r].T @ H
        Kt[r, g - 1] = Kt[g - 1, r] = float(E[r].multiply(B.T).sum())
    QQ[(g - 1, g - 1)] = XV3X
    Kt[g - 1, g - 1] = trV2
    return PP, QQ, Kt


# ------------------------------------------------------------- from a result

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def model_parts(m: Any) -> tuple[ModelFrame, LmmFit]:
    """The model frame and the engine's record of a fitted model."""
    frame = getattr(m, "frame", None)
    fit = getattr(m, "engine_fit", None)
    if frame is None or fit is None:
        raise ArgumentError(
            "this needs a model fitted by lme2sm's engine (lme2sm.lmer), with .frame and "
            ".engine_fit"
        )
    return frame, fit


def kenward_roger_model(m: Any) -> KenwardRoger:
    """Kenward–Roger's ingredients for a fitted model (computed once per result)."""
    try:
        store = _CACHE.setdefault(m, {})
    except TypeError:  # not weak-referenceable: no caching
        store = {}
    if "kr" not in store:
        store["kr"] = kenward_roger(*model_parts(m))
    return store["kr"]


def vcov_adj(m: Any) -> pd.DataFrame:
    """pbkrtest's ``vcovAdj(m)``: the Kenward–Roger-adjusted covariance of the fixed
    effects, labelled with lme4's names."""
    kr = kenward_roger_model(m)
    names = list(kr.names)
    return pd.DataFrame(kr.vcov_adj, index=names, columns=names)


def kr_coef_table(m: Any) -> pd.DataFrame:
    """lmerTest's ``coef(summary(m, ddf = "Kenward-Roger"))``."""
    kr = kenward_roger_model(m)
    rows = []
    for j in range(len(kr.names)):
        L = np.zeros(len(kr.names))
        L[j] = 1.0
        rows.append(kr.contest1d(L))
    table = pd.DataFrame(rows, index=list(kr.names))
    table = table.rename(
        columns={"estimate": "Estimate", "se": "Std. Error", "t": "t value", "p": "Pr(>|t|)"}
    )
    return table[["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]]


def kr_anova_table(m: Any, contrasts: dict[str, np.ndarray]) -> pd.DataFrame:
    """lmerTest's ``anova(m, ddf = "Kenward-Roger")`` for the given term contrasts."""
    kr = kenward_roger_model(m)
    rows, index = [], []
    for label, L in contrasts.items():
        index.append(label)
        rows.append(kr.contest_md(L))
    table = pd.DataFrame(rows, index=index, columns=ANOVA_COLUMNS)
    table.attrs["heading"] = "Type III Analysis of Variance Table with Kenward-Roger's method"
    return table


def kr_anova(m: Any, type: int | str = 3) -> pd.DataFrame:
    """lmerTest's ``anova(m, ddf = "Kenward-Roger")``: type III F tests."""
    from lme2sm.inference.satterthwaite import type3_contrasts

    if str(type).upper() not in ("3", "III"):
        raise ArgumentError("only type III tests are implemented (lmerTest's default)")
    return kr_anova_table(m, type3_contrasts(m))
