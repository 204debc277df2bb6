r"""Predictions with standard errors and intervals for lmer and glmer fits.

lme4's ``predict()`` gives no standard errors; the usual R computation (lme4's FAQ,
``merTools``' analytic intervals) is this module's:

* ``se_fit``: the fixed part's standard error, :math:`\sqrt{x'\,\mathrm{vcov}(\hat\beta)\,x}`
  with :math:`x` the new row of the fixed-effects design (R's ``X %*% vcov(m) %*% t(X)``);
* the random part's variance, summed over the terms: for a level the model has seen,
  :math:`z'\,\mathrm{condVar}\,z` with lme4's conditional variance of that level's effects
  (``ranef(m, condVar = TRUE)``: :math:`\sigma^2 \Lambda (\Lambda'Z'WZ\Lambda + I)^{-1}
  \Lambda'`'s block); for a new level (predicted at 0, as lme4's ``allow.new.levels``),
  :math:`z'\Sigma z` with the term's covariance :math:`\Sigma`; with ``re_form="~0"``
  every term counts as new (the population's spread);
* the residual variance :math:`\sigma^2` (lmer).

``interval="confidence"``: ``fit`` :math:`\pm z_{1-\alpha/2}` ``se_fit``;
``interval="prediction"`` (lmer): ``fit`` :math:`\pm z \sqrt{se\_fit^2 + var_{re} +
\sigma^2}`. The uncertainty of :math:`\hat\beta` and of the conditional modes are added as
if independent, and :math:`\theta`'s is left out, as those R computations do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import stats

from lme2sm import arguments
from lme2sm.errors import ArgumentError
from lme2sm.frame import data_prep, design

__all__ = ["PredictionParts", "prediction_parts", "predict_with_se", "conditional_variances"]

INTERVALS = ("confidence", "prediction")
"""``predict(interval=...)``'s choices (None: no interval)."""

DENSE_Q = 4000
"""Up to this many random effects the conditional variances use a dense Cholesky."""


@dataclass(frozen=True)
class PredictionParts:
    """Per new row: predictions and the variances an interval adds up."""

    fit: np.ndarray
    """Link-scale prediction at ``re_form`` (new levels at 0)."""
    se_fit: np.ndarray
    """The fixed part's standard error."""
    var_re: np.ndarray
    """The random part's variance (condVar for seen levels, Sigma for new ones)."""
    new_level: np.ndarray
    """True where some term's level is new (or ``re_form="~0"``)."""
    sigma2: float | None
    """The residual variance (lmer), None for glmer."""
    index: pd.Index


def _is_glmer(m: Any) -> bool:
    return getattr(m, "family", None) is not None


def _relative_covariances(m: Any) -> list[np.ndarray]:
    if _is_glmer(m):
        return [np.asarray(c, dtype=float) for c in m._covariances()]
    s2 = float(m.sigma) ** 2
    return [np.asarray(tc.cov, dtype=float) / s2 for tc in m.term_covariances]


def _scale(m: Any) -> float:
    """sigma^2 for lmer (and GLMMs with a dispersion), 1 for binomial and Poisson."""
    if _is_glmer(m):
        return float(getattr(m, "sigma", 1.0)) ** 2 if _has_dispersion(m) else 1.0
    return float(m.sigma) ** 2


def _has_dispersion(m: Any) -> bool:
    return getattr(m.family, "name", "") in ("Gamma", "inverse.gaussian")


def _factor(S: np.ndarray) -> np.ndarray:
    """Any F with F F' = S (S positive semidefinite, as at a singular fit)."""
    vals, vecs = np.linalg.eigh((S + S.T) / 2)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def _working_weights(m: Any) -> np.ndarray:
    f = m.frame
    if _is_glmer(m):
        return np.asarray(m.engine_fit.state.weights, dtype=float)
    return np.ones(f.n) if f.weights is None else np.asarray(f.weights, dtype=float)


def conditional_variances(
    m: Any, wanted: dict[int, set[int]]
) -> dict[tuple[int, int], np.ndarray]:
    """lme4's ``ranef(m, condVar = TRUE)`` blocks: {(term, level code): k x k matrix}
    for the levels in ``wanted`` ({term index: level codes})."""
    f = m.frame
    factors = [_factor(S) for S in _relative_covariances(m)]
    offsets, blocks, start = [], [], 0
    rows, cols, vals = [], [], []
    for t, F in zip(f.terms, factors):
        k = len(t.names)
        offsets.append(start)
        ZF = np.asarray(t.Z, dtype=float) @ F  # rows of Z Lambda for this term
        codes = np.asarray(t.codes)
        for e in range(k):
            rows.append(np.arange(f.n))
            cols.append(start + codes * k + e)
            vals.append(ZF[:, e])
        blocks.append(sp.kron(sp.identity(t.n_levels), sp.csr_matrix(F)))
        start += t.n_levels * k
    ZL = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(f.n, start)
    )
    A = (ZL.T @ sp.diags(_working_weights(m)) @ ZL + sp.identity(start)).tocsc()
    need = sorted(
        offsets[i] + lev * len(f.terms[i].names) + e
        for i, levels in wanted.items()
        for lev in levels
        for e in range(len(f.terms[i].names))
    )
    if not need:
        return {}
    E = np.zeros((start, len(need)))
    E[need, np.arange(len(need))] = 1.0
    if start <= DENSE_Q:
        X = sla.cho_solve(sla.cho_factor(A.toarray(), lower=True), E)
    else:
        X = spla.splu(A).solve(E)
    where = {c: j for j, c in enumerate(need)}
    scale = _scale(m)
    out = {}
    for i, levels in wanted.items():
        k = len(f.terms[i].names)
        F = factors[i]
        for lev in levels:
            idx = [offsets[i] + lev * k + e for e in range(k)]
            block = X[np.ix_(idx, [where[c] for c in idx])]
            out[(i, lev)] = scale * F @ block @ F.T
    return out


def _level_codes(t, data: pd.DataFrame) -> np.ndarray:
    """Each new row's code of the term's level (-1 where the model has not seen it)."""
    parts = [data_prep.level_strings(data[g]) for g in t.term.group_factors]
    labels = parts[0]
    for p in parts[1:]:
        labels = labels + ":" + p
    return pd.Index(list(t.levels)).get_indexer(labels.astype(str))


def prediction_parts(
    m: Any, newdata: pd.DataFrame, re_form: str | None = None, allow_new_levels: bool = False
) -> PredictionParts:
    """The pieces of :func:`predict_with_se` for ``newdata``."""
    population = re_form is not None
    fit = np.asarray(m.predict(newdata, re_form=re_form, allow_new_levels=allow_new_levels))
    data = m._prepare_newdata(newdata)
    f = m.frame
    X = design.rows(f.fixed_info, data, f.fixed_patsy_names)
    V = m.vcov().to_numpy()
    se = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", X, V, X), 0.0, None))
    n = len(data)
    var_re = np.zeros(n)
    new = np.zeros(n, dtype=bool) | population
    codes, Zs = [], []
    for t in f.terms:
        Zs.append(design.rows(t.info, data, t.patsy_names))
        c = np.full(n, -1) if population else _level_codes(t, data)
        codes.append(c)
        new |= c < 0
    wanted = {i: set(c[c >= 0].tolist()) for i, c in enumerate(codes)}
    cond = conditional_variances(m, wanted)
    scale = _scale(m)
    for i, (Z, c) in enumerate(zip(Zs, codes)):
        S = scale * _relative_covariances(m)[i]
        for r in range(n):
            z = Z[r]
            block = S if c[r] < 0 else cond[(i, int(c[r]))]
            var_re[r] += float(z @ block @ z)
    sigma2 = None if _is_glmer(m) else float(m.sigma) ** 2
    return PredictionParts(fit, se, var_re, new, sigma2, data.index)


def interval_choice(interval: Any) -> str | None:
    """``interval`` checked: None, ``"confidence"`` or ``"prediction"``."""
    if interval is None or (isinstance(interval, str) and interval in INTERVALS):
        return interval
    raise ArgumentError(f"interval={interval!r}: use None, 'confidence' or 'prediction'")


def predict_with_se(
    m: Any,
    newdata: pd.DataFrame,
    re_form: str | None = None,
    allow_new_levels: bool = False,
    interval: str | None = None,
    level: float = 0.95,
    type: str = "link",
) -> pd.DataFrame:
    """Predictions for ``newdata`` with ``se_fit`` and, with ``interval=``
    ``"confidence"`` or ``"prediction"``, ``lwr`` and ``upr`` (the module docstring).

    ``type="response"`` (glmer) maps ``fit`` and the interval's ends through the inverse
    link; ``se_fit`` stays on the link scale.
    """
    interval = interval_choice(interval)
    level = arguments.probability("level", level)
    type = arguments.choice("type", type, ("link", "response"))
    if interval == "prediction" and _is_glmer(m):
        raise ArgumentError(
            "prediction intervals are for lmer fits (a GLMM's new response is not normal); "
            "use interval='confidence'"
        )
    if newdata is None:
        raise ArgumentError("se_fit needs newdata (pass the model's data to predict its rows)")
    p = prediction_parts(m, newdata, re_form, allow_new_levels)
    out = pd.DataFrame({"fit": p.fit, "se_fit": p.se_fit}, index=p.index)
    if interval is not None:
        z = stats.norm.ppf(0.5 + level / 2)
        half = z * p.se_fit
        if interval == "prediction":
            half = z * np.sqrt(p.se_fit**2 + p.var_re + p.sigma2)
        out["lwr"], out["upr"] = p.fit - half, p.fit + half
    if type == "response" and _is_glmer(m):
        inv = m.family.link.inverse
        for col in ("fit", "lwr", "upr"):
            if col in out:
                out[col] = inv(out[col].to_numpy())
    return out
