"""Diagnostic plots R users draw for lme4 fits (matplotlib, an optional extra).

``caterpillar`` (lme4's ``dotplot(ranef(m, condVar=TRUE))``), ``residuals_vs_fitted``
(``plot(m)``) and ``qq_ranef`` (``qqmath(ranef(m))``). matplotlib is imported only
when a plot is drawn: ``pip install lme2sm[plot]``. Each function returns the
matplotlib ``Figure``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from lme2sm.errors import ArgumentError

if TYPE_CHECKING:
    from lme2sm.results.lmer import LmerEstimates

Z975 = float(stats.norm.ppf(0.975))


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "lme2sm's plots need matplotlib: install it with  pip install lme2sm[plot]"
        ) from exc
    return plt


def _figure(ax, n_panels: int = 1, horizontal: bool = True):
    """The figure and axes to draw on: ``ax`` when given, else new subplots."""
    plt = _pyplot()
    if ax is not None:
        axes = list(np.atleast_1d(ax).ravel())
        if len(axes) < n_panels:
            raise ArgumentError(f"ax: this plot needs {n_panels} axes, got {len(axes)}")
        return axes[0].figure, axes
    shape = (1, n_panels) if horizontal else (n_panels, 1)
    fig, axes = plt.subplots(*shape, figsize=(4.2 * n_panels, 4.5), squeeze=False)
    return fig, list(axes.ravel())


def _group(m: LmerEstimates, group: str | None) -> str:
    groups = list(m.ranef())
    if group is None:
        return groups[0]
    if group not in groups:
        raise ArgumentError(
            f"group: no random effects for {group!r}; the model has {', '.join(groups)}"
        )
    return group


def conditional_sd(m: LmerEstimates) -> dict[str, pd.DataFrame]:
    """Conditional standard deviations of the random effects, laid out as ``ranef()``.

    lme4's ``condVar``: the diagonal of ``sigma^2 Lambda (Lambda'Z'Z Lambda + I)^-1
    Lambda'`` at the estimates (fixed effects taken as known).
    """
    from lme2sm.inference._design import one_blas_thread
    from lme2sm.inference.satterthwaite import design_of

    D = design_of(m)
    theta = D.theta_from_result(m)
    with one_blas_thread():
        lam = D.lambda_matrix(theta)
        if D.scalar:
            A = D.ZtZ * lam[:, None] * lam[None, :] + np.eye(D.q)
            Ainv = np.linalg.inv(A)
            var = lam**2 * np.diag(Ainv)
        else:
            lam = lam if isinstance(lam, np.ndarray) else lam.toarray()
            A = lam.T @ D.ZtZ @ lam + np.eye(D.q)
            var = np.einsum("ij,jk,ik->i", lam, np.linalg.inv(A), lam)
    sd = np.sqrt(np.clip(var, 0, None)) * m.sigma
    out = {}
    for group, frame in m.ranef().items():
        result = pd.DataFrame(np.nan, index=frame.index, columns=frame.columns)
        for t in D.terms:
            if t.group != group:
                continue
            levels = list(m.frame.level_order[group])
            pos = [levels.index(lv) for lv in frame.index]
            for e, name in enumerate(t.names):
                idx = t.offset + np.array(pos) * t.k + e
                result[name] = sd[idx]
        out[group] = result
    return out


def caterpillar(m: LmerEstimates, group: str | None = None, ax=None):
    """Conditional modes of ``group``'s random effects with 95% intervals (±1.96 SD).

    One panel per random-effect column, levels sorted by the first column's mode, as
    lme4's ``dotplot(ranef(m, condVar = TRUE))``. Returns the Figure.
    """
    group = _group(m, group)
    re = m.ranef()[group]
    sd = conditional_sd(m)[group]
    fig, axes = _figure(ax, len(re.columns))
    order = re.iloc[:, 0].sort_values().index
    ypos = np.arange(len(order))
    for axis, col in zip(axes, re.columns):
        values = re.loc[order, col].to_numpy()
        err = Z975 * sd.loc[order, col].to_numpy()
        axis.errorbar(values, ypos, xerr=err, fmt="o", color="C0", ecolor="0.4", capsize=2)
        axis.axvline(0.0, color="0.6", linestyle="--", linewidth=1)
        axis.set_yticks(ypos)
        axis.set_yticklabels([str(v) for v in order])
        axis.set_xlabel(col)
        axis.set_title(f"{group}: {col}")
    axes[0].set_ylabel(group)
    fig.tight_layout()
    return fig


def residuals_vs_fitted(m: LmerEstimates, ax=None):
    """Residuals against fitted values, with a line at zero (lme4's ``plot(m)``)."""
    fig, axes = _figure(ax, 1)
    axis = axes[0]
    fitted = m.fitted().to_numpy()
    resid = m.residuals().to_numpy()
    axis.scatter(fitted, resid, s=12, color="C0", alpha=0.8)
    axis.axhline(0.0, color="0.5", linestyle="--", linewidth=1)
    axis.set_xlabel("Fitted values")
    axis.set_ylabel("Residuals")
    axis.set_title(m.formula)
    fig.tight_layout()
    return fig


def qq_ranef(m: LmerEstimates, group: str | None = None, ax=None):
    """Normal quantile-quantile plot of ``group``'s conditional modes, one panel per column."""
    group = _group(m, group)
    re = m.ranef()[group]
    fig, axes = _figure(ax, len(re.columns))
    for axis, col in zip(axes, re.columns):
        values = np.sort(re[col].to_numpy())
        n = len(values)
        probs = (np.arange(1, n + 1) - (0.375 if n <= 10 else 0.5)) / (
            n + (0.25 if n <= 10 else 0.0)
        )  # R's ppoints()
        theo = stats.norm.ppf(probs)
        axis.scatter(theo, values, s=14, color="C0")
        q1, q3 = np.quantile(values, [0.25, 0.75])
        t1, t3 = stats.norm.ppf([0.25, 0.75])
        slope = (q3 - q1) / (t3 - t1) if t3 != t1 else 0.0
        axis.plot(theo, q1 + slope * (theo - t1), color="0.5", linewidth=1)  # R's qqline()
        axis.set_xlabel("Standard normal quantiles")
        axis.set_ylabel(f"{col} | {group}")
        axis.set_title(f"{group}: {col}")
    fig.tight_layout()
    return fig
