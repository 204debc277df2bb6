"""Satterthwaite's degrees of freedom for t and F tests of fixed effects, as lmerTest.

lmerTest (Kuznetsova, Brockhoff & Christensen 2017, J. Stat. Softw. 82(13)) works with
the variance parameters ``varpar = (theta, sigma)`` (lme4's theta, the residual
standard deviation). At the fit it takes

* ``A = 2 H^-1``, ``H`` the Hessian of the deviance (the REML criterion for REML fits)
  in ``varpar`` with beta profiled out (``devfun_vp``), inverted on its positive
  eigenvalues (Moore-Penrose);
* ``J_i = d vcov(beta) / d varpar_i``, with ``vcov(beta) = sigma^2 (X'V^-1X)^-1``
  (``get_covbeta``);

both by numDeriv's Richardson extrapolation. For a contrast ``l``:
``df = 2 (l'Cl)^2 / (g'Ag)``, ``g_i = l'J_i l``. An F test of ``L`` (q rows) rotates
``L`` onto the eigenvectors of ``LCL'``, takes a df ``nu_m`` for each, and combines
them as ``E = sum nu_m / (nu_m - 2)``, ``DenDF = 2E / (E - q)``.

Singular fits (a theta at its bound) are handled as lmerTest handles them: the
deviance is even in each diagonal theta, so the central differences at 0 are still
valid, and eigen-directions of ``H`` that are not positive are dropped from ``A``
(with lmerTest's warning).
"""

from __future__ import annotations

import math
import warnings
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from lme2sm.frame import design
from lme2sm.inference import _numderiv
from lme2sm.inference._design import LmmDesign, one_blas_thread

if TYPE_CHECKING:
    from lme2sm.results.lmer import LmerEstimates

EIGEN_TOL = 1e-8
"""lmerTest's tolerance on the Hessian's eigenvalues (``as_lmerModLT(tol=1e-8)``)."""


ANOVA_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
"""The columns of lmerTest's type III table."""


@dataclass
class SatterthwaiteModel:
    """What lmerTest stores in an ``lmerModLmerTest`` object."""

    names: tuple[str, ...]
    beta: np.ndarray
    vcov_beta: np.ndarray
    vcov_varpar: np.ndarray
    jac_list: list[np.ndarray]
    sigma: float
    varpar: np.ndarray
    messages: list[str] = field(default_factory=list)

    # ----------------------------------------------------------------- tests

    def contest1d(self, L: np.ndarray) -> dict[str, float]:
        """t test of ``L @ beta = 0``: estimate, se, df, t, p (lmerTest's ``contest1D``)."""
        L = np.asarray(L, dtype=float).ravel()
        estimate = float(L @ self.beta)
        var_con = float(L @ self.vcov_beta @ L)
        grad = np.array([float(L @ J @ L) for J in self.jac_list])
        denom = float(grad @ self.vcov_varpar @ grad)
        df = 2 * var_con**2 / denom if denom > 0 else math.inf
        se = math.sqrt(var_con)
        t = estimate / se if se > 0 else math.nan
        p = float(2 * stats.t.sf(abs(t), df)) if math.isfinite(t) else math.nan
        return {"estimate": estimate, "se": se, "df": df, "t": t, "p": p}

    def contest_md(self, L: np.ndarray) -> dict[str, float]:
        """F test of ``L @ beta = 0`` (lmerTest's ``contestMD``); a term with no kept
        column (an all-zero covariate, dropped as aliased) is a row of NAs, as lmerTest's."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        if L.shape[0] == 0:
            return dict.fromkeys(ANOVA_COLUMNS, math.nan)
        if L.shape[0] == 1:
            res = self.contest1d(L[0])
            return self._ftable(res["t"] ** 2, 1, res["df"])
        VL = L @ self.vcov_beta @ L.T
        d, P = np.linalg.eigh(VL)
        order = np.argsort(d)[::-1]  # R's eigen(): decreasing
        d, P = d[order], P[:, order]
        tol = max(math.sqrt(np.finfo(float).eps) * d[0], 0.0)
        pos = d > tol
        q = int(np.sum(pos))
        if q <= 0:
            return self._ftable(math.nan, 0, math.nan)
        PtL = (P.T @ L)[:q]
        if q == 1:
            res = self.contest1d(PtL[0])
            return self._ftable(res["t"] ** 2, 1, res["df"])
        t2 = (PtL @ self.beta) ** 2 / d[:q]
        F = float(np.sum(t2) / q)
        nu = []
        for m in range(q):
            grad = np.array([float(PtL[m] @ J @ PtL[m]) for J in self.jac_list])
            nu.append(2 * d[m] ** 2 / float(grad @ self.vcov_varpar @ grad))
        return self._ftable(F, q, fstat_ddf(np.array(nu)))

    def _ftable(self, F: float, ndf: int, ddf: float) -> dict[str, float]:
        ms = F * self.sigma**2
        p = float(stats.f.sf(F, ndf, ddf)) if ndf > 0 and math.isfinite(F) else math.nan
        return {
            "Sum Sq": ms * ndf,
            "Mean Sq": ms,
            "NumDF": ndf,
            "DenDF": ddf,
            "F value": F,
            "Pr(>F)": p,
        }


def fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's ``get_Fstat_ddf``: combine per-direction df into the F test's DenDF."""
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2 * E / (E - nu.size)


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def design_of(m: LmerEstimates) -> LmmDesign:
    """The :class:`LmmDesign` of ``m`` (built once per result)."""
    key = ("design",)
    store = _CACHE.setdefault(m, {})
    if key not in store:
        store[key] = LmmDesign.from_result(m)
    return store[key]


def satterthwaite_model(m: LmerEstimates) -> SatterthwaiteModel:
    """lmerTest's ingredients for ``m`` (computed once per result)."""
    store = _CACHE.setdefault(m, {})
    if "satt" not in store:
        D = design_of(m)
        theta = D.theta_from_result(m)
        store["satt"] = build_satterthwaite(D, theta, m.sigma, m.REML, beta=m.fixef().to_numpy())
    return store["satt"]


def build_satterthwaite(
    D: LmmDesign,
    theta: np.ndarray,
    sigma: float,
    reml: bool,
    beta: np.ndarray | None = None,
) -> SatterthwaiteModel:
    """The Satterthwaite ingredients of design ``D`` at ``(theta, sigma)``."""
    varpar = np.concatenate([np.asarray(theta, dtype=float), [float(sigma)]])
    messages = []
    with one_blas_thread(), np.errstate(all="ignore"):
        H = _numderiv.hessian(lambda vp: D.deviance_varpar(vp, reml), varpar)
        jac = _numderiv.jacobian(D.covbeta_varpar, varpar)
        ev = D.evaluate(theta)
    evals, evecs = np.linalg.eigh(H)
    neg = evals < -EIGEN_TOL
    zero = np.abs(evals) <= EIGEN_TOL
    if np.any(neg):
        messages.append(
            f"Model failed to converge with {int(np.sum(neg))} negative eigenvalue(s): "
            + " ".join(f"{v:.1e}" for v in evals[neg])
        )
    if np.any(zero):
        messages.append(
            f"Model may not have converged with {int(np.sum(zero))} eigenvalue(s) close to "
            "zero: " + " ".join(f"{v:.1e}" for v in evals[zero])
        )
    for text in messages:
        warnings.warn(text, stacklevel=3)
    pos = evals > EIGEN_TOL
    h_inv = (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    p = D.p
    jac_list = [jac[:, i].reshape(p, p) for i in range(jac.shape[1])]
    return SatterthwaiteModel(
        names=D.fixed_names,
        beta=ev.beta if beta is None else np.asarray(beta, dtype=float),
        vcov_beta=sigma**2 * ev.mxx_inv,
        vcov_varpar=2 * h_inv,
        jac_list=jac_list,
        sigma=float(sigma),
        varpar=varpar,
        messages=messages,
    )


def coefficient_table(model: SatterthwaiteModel) -> pd.DataFrame:
    """lmerTest's ``coef(summary(m))``: one Satterthwaite t test per fixed effect."""
    rows = []
    for j in range(len(model.names)):
        L = np.zeros(len(model.names))
        L[j] = 1.0
        rows.append(model.contest1d(L))
    table = pd.DataFrame(rows, index=list(model.names))
    table = table.rename(columns={"estimate": "Estimate", "se": "Std. Error", "t": "t value"})
    table = table[["Estimate", "Std. Error", "df", "t value", "p"]]
    table["Pr(>|t|)"] = table["p"]
    return table


def satterthwaite_table(m: LmerEstimates) -> pd.DataFrame:
    """Satterthwaite t tests of the fixed effects, as lmerTest's ``summary(m)``.

    Columns ``Estimate``, ``Std. Error``, ``df``, ``t value``, ``p`` (and the same
    p-value again as ``Pr(>|t|)``, lmerTest's name), indexed by ``m.fixef()``'s names.
    """
    return coefficient_table(satterthwaite_model(m))


# --------------------------------------------------------------------- type III


def _zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall(x)``."""
    x = np.asarray(x, dtype=float)
    mx = float(np.max(np.abs(x))) if x.size else 0.0
    if mx <= 0:
        return x
    return np.round(x, max(0, digits - math.ceil(math.log10(mx))))


@dataclass(frozen=True)
class FixedTermInfo:
    """A fixed-effects term with its columns and factors (R's ``terms()`` view)."""

    label: str
    columns: tuple[int, ...]
    """Positions in ``fixef()``."""
    factors: tuple[str, ...]
    """Factor labels (``recipe``, ``temp``)."""
    numeric: frozenset[str]
    """The factors that are numeric (not categorical)."""
    rd_blocks: tuple[tuple[str, np.ndarray], ...]
    """Per factor: ``("categorical", indicator matrix)`` or ``("numeric", column)``."""
    rd_labels: tuple[tuple[str, ...], ...]
    """Per factor: column labels (``recipeA``, ... or ``temp``)."""


def fixed_terms(m: LmerEstimates) -> list[FixedTermInfo]:
    """The fixed part's terms, their ``fixef()`` columns and their factors' values."""
    from lme2sm.frame.naming import _r_level

    frame = m.frame
    info = frame.fixed_info
    sm_pos = {sm: i for i, sm in enumerate(frame.fixed_patsy_names)}
    by_code = {f.code: (f, fi) for f, fi in info.factor_infos.items()}
    patsy_terms = {frozenset(f.code for f in term.factors): term for term in info.terms}
    out = []
    for term in frame.parsed.fixed_part.terms:
        codes = [design.factor_codes(f)[0] for f in term.factors]
        pterm = patsy_terms.get(frozenset(codes))
        if pterm is None:
            raise NotImplementedError(f"cannot find the columns of fixed term {term.label}")
        names = info.column_names[info.term_slices[pterm]]
        columns = tuple(sm_pos[n] for n in names if n in sm_pos)
        blocks, labels, numeric = [], [], set()
        for factor, code in zip(term.factors, codes):
            pf, fi = by_code[code]
            if fi.type == "categorical":
                for sub in info.term_codings[pterm]:
                    cm = sub.contrast_matrices.get(pf)
                    if cm is not None and not _is_treatment(cm, fi):
                        raise NotImplementedError(
                            "type III tests are implemented for treatment contrasts only"
                        )
                values = _factor_columns(factor, frame.data)
                blocks.append(("categorical", values))
                labels.append(
                    tuple(factor.label + _r_level(_level_text(c)) for c in fi.categories)
                )
            else:
                values = _factor_columns(factor, frame.data)
                numeric.add(factor.label)
                blocks.append(("numeric", values))
                if values.shape[1] == 1:
                    labels.append((factor.label,))
                else:
                    labels.append(tuple(f"{factor.label}{i + 1}" for i in range(values.shape[1])))
        out.append(
            FixedTermInfo(
                term.label,
                columns,
                tuple(f.label for f in term.factors),
                frozenset(numeric),
                tuple(blocks),
                tuple(labels),
            )
        )
    return out


def _level_text(level) -> str:
    """A level as patsy names its column (so as fixef() does): text as it is, bytes
    decoded, anything else its repr (before, str(b'x') was "b'x'" where fixef() says
    ``x``, and anova() of an object column holding bytes raised NotImplementedError)."""
    if isinstance(level, str):
        return level
    if isinstance(level, bytes):
        try:
            return level.decode("utf-8")
        except UnicodeDecodeError:
            return repr(level)
    return repr(level)


def _is_treatment(cm, fi) -> bool:
    """True when a patsy contrast matrix is treatment coding (identity or reference dropped)."""
    mat = np.asarray(cm.matrix)
    k = len(fi.categories)
    if mat.shape == (k, k):
        return bool(np.allclose(mat, np.eye(k)))
    return bool(mat.shape == (k, k - 1) and np.allclose(mat, np.eye(k)[:, 1:]))


def _rd_columns(term: FixedTermInfo) -> tuple[np.ndarray, list[str]]:
    """R's ``model.matrix(~ 0 + term)``: every level combination, left-most fastest."""
    mat = np.ones((term.rd_blocks[0][1].shape[0], 1))
    names = [""]
    for (_, values), labels in zip(term.rd_blocks, term.rd_labels):
        new_cols, new_names = [], []
        for j, lab in enumerate(labels):
            for i, prev in enumerate(names):
                new_cols.append(mat[:, i] * values[:, j])
                new_names.append(lab if not prev else f"{prev}:{lab}")
        mat = np.column_stack(new_cols)
        names = new_names
    return mat, names


def type3_contrasts(m: LmerEstimates) -> dict[str, np.ndarray]:
    """lmerTest's ``get_contrasts_type3`` for treatment-coded models."""
    D = design_of(m)
    X = D.X
    names = list(D.fixed_names)
    terms = fixed_terms(m)
    if X.shape[1] <= 1 or len(terms) <= 1:
        return type1_contrasts(X, terms)
    intercept = m.frame.parsed.fixed_part.intercept
    rd_cols = [np.ones((X.shape[0], 1))] if intercept else []
    rd_names = ["(Intercept)"] if intercept else []
    for term in terms:
        mat, nm = _rd_columns(term)
        rd_cols.append(mat)
        rd_names += nm
    rdX = np.column_stack(rd_cols)
    L = _zapsmall((np.linalg.pinv(X) @ rdX).T)  # rows: rdX columns, columns: X columns
    order = sorted(range(len(terms)), key=lambda i: -len(terms[i].factors))
    for i in order:
        term = terms[i]
        contains = [
            other
            for other in terms
            if set(term.factors) < set(other.factors) and term.numeric == other.numeric
        ]
        if contains:
            xcols = sorted({c for other in contains for c in other.columns})
            Xc = L[:, xcols]
            Y = L[:, list(term.columns)]
            coef, *_ = np.linalg.lstsq(Xc, Y, rcond=None)
            L[:, list(term.columns)] = _zapsmall(Y - Xc @ coef)
    row_of = {n: i for i, n in enumerate(rd_names)}
    missing = [n for n in names if n not in row_of]
    if missing:
        raise NotImplementedError(f"type III contrasts: no reduced-rank column for {missing}")
    L = L[[row_of[n] for n in names]]
    out = {}
    for term in terms:
        Lt = L[:, list(term.columns)].T
        out[term.label] = Lt[np.sum(np.abs(Lt), axis=1) > 1e-8]
    return out


def type1_contrasts(X: np.ndarray, terms: list[FixedTermInfo]) -> dict[str, np.ndarray]:
    """lmerTest's ``get_contrasts_type1``: rows of the Doolittle factor of X'X."""
    p = X.shape[1]
    if p == 1:
        U = np.ones((1, 1))
    else:
        R = np.linalg.cholesky(X.T @ X).T  # upper: X'X = R'R
        U = R / np.diag(R)[:, None]  # t(L) of the Doolittle decomposition
    return {term.label: U[list(term.columns)] for term in terms}


def anova_table(m: LmerEstimates, type: int | str = 3) -> pd.DataFrame:
    """lmerTest's ``anova(m)``: type III F tests with Satterthwaite's denominator df.

    Rows are the fixed terms (lme4's labels); columns ``Sum Sq``, ``Mean Sq``,
    ``NumDF``, ``DenDF``, ``F value``, ``Pr(>F)``.
    """
    if str(type).upper() not in ("3", "III"):
        from lme2sm.errors import ArgumentError

        raise ArgumentError(
            f"type={type!r}: only type III tests are implemented (lmerTest's default, type=3)"
        )
    model = satterthwaite_model(m)
    rows, index = [], []
    for label, L in type3_contrasts(m).items():
        index.append(label)
        rows.append(model.contest_md(L))
    table = pd.DataFrame(rows, index=index, columns=ANOVA_COLUMNS)
    table.attrs["heading"] = "Type III Analysis of Variance Table with Satterthwaite's method"
    return table


def _factor_columns(factor, data) -> np.ndarray:
    """The model-matrix columns of one formula factor, full (no intercept absorbed)."""
    return design.factor_matrix(factor, data)
