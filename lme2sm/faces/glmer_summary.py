"""Printing a glmer fit the way lme4's ``summary(glmer(...))`` prints it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from lme2sm import arguments
from lme2sm.faces.summary import correlation_cells, r_abbreviate, r_format

if TYPE_CHECKING:
    from lme2sm.results.glmer import GlmerEstimates

SIGNIF = "Signif. codes:  0 \u2018***\u2019 0.001 \u2018**\u2019 0.01 \u2018*\u2019 0.05 \u2018.\u2019 0.1 \u2018 \u2019 1"


def _stars(p: float) -> str:
    for cut, star in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return star
    return ""


def _pvalues(ps: list[float]) -> list[str]:
    """R's ``format.pval`` as printCoefmat shows it (3 significant digits)."""
    out = [""] * len(ps)
    fixed = [i for i, p in enumerate(ps) if p >= 1e-4]
    dec = 0
    for i in fixed:
        p = ps[i]
        mag = math.floor(math.log10(p)) if p > 0 else 0
        dec = max(dec, min(15, 2 - mag))
    for i, p in enumerate(ps):
        if not math.isfinite(p):
            out[i] = "NA"
        elif p < 2e-16:
            out[i] = "< 2e-16"
        elif p < 1e-4:
            mant, exp = f"{p:.2e}".split("e")
            out[i] = f"{mant}e-{abs(int(exp)):02d}"
        else:
            out[i] = f"{p:.{dec}f}"
    return out


def _zapsmall(x: np.ndarray, digits: int) -> np.ndarray:
    """R's ``zapsmall(x, digits)``: round to ``digits`` significant digits of the largest."""
    mx = float(np.max(np.abs(x)))
    dec = max(0, digits - math.ceil(math.log10(mx))) if mx > 0 else digits
    return np.round(x, dec)


def _table(header, rows, left) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = []
    for row in [header, *rows]:
        cells = [c.ljust(w) if lf else c.rjust(w) for c, w, lf in zip(row, widths, left)]
        lines.append(" ".join(cells))
    return lines


def _random_effects(m: GlmerEstimates) -> list[str]:
    """The "Random effects:" block. A structured term is printed as the lmer summary
    prints it (glmmTMB's layout): ``diag()`` without correlations, ``cs()`` with its one
    correlation on its first row (``0.65 (cs)``), ``ar1()`` as one row (its SDs are
    equal) with rho (``0.67 (ar1)``)."""
    shown = []  # (group, name, variance, sd, correlation cells)
    for grp, tc in zip(m._group_names(), m.term_covariances):
        cov = np.asarray(tc.cov)
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        names = tc.names[:1] if tc.structure == "ar1" else tc.names
        for i, name in enumerate(names):
            corr = correlation_cells(tc, i, sd)
            shown.append((grp if i == 0 else "", name, float(cov[i, i]), float(sd[i]), corr))
    if m.family.has_dispersion:
        shown.append(("Residual", "", m.sigma**2, m.sigma, []))
    variances = r_format([r[2] for r in shown], 4)
    sds = r_format([r[3] for r in shown], 4)
    has_corr = any(r[4] for r in shown)
    header = [" Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] if has_corr else [])
    rows = []
    for (grp, name, _, _, corr), v, sd_text in zip(shown, variances, sds):
        row = [" " + grp, name, v.strip(), sd_text.strip()]
        rows.append(row + ([" ".join(c.rjust(5) for c in corr)] if has_corr else []))
    return _table(header, rows, [True] * len(header))


def _fixed_effects(m: GlmerEstimates) -> list[str]:
    tab = m.coef_table()
    est, se = list(tab["Estimate"]), list(tab["Std. Error"])
    both = r_format(est + se, 4)
    stat = "t value" if "t value" in tab else "z value"
    z = [f"{v:.3f}" for v in tab[stat]]
    ps = list(tab["Pr(>|z|)"])
    pv = _pvalues(ps)
    stars = [_stars(p) for p in ps]
    names = list(tab.index)
    header = ["", "Estimate", "Std. Error", stat, "Pr(>|z|)", ""]
    k = len(names)
    rows = [
        [names[i], both[i].strip(), both[k + i].strip(), z[i], pv[i], stars[i].ljust(3)]
        for i in range(k)
    ]
    return _table(header, rows, [True, False, False, False, False, True])


def _correlation(m: GlmerEstimates) -> list[str]:
    """lme4's table: ``format(round(corr, 3), nsmall = 3)`` over the whole matrix (one
    width), rows abbreviated to 11 characters and columns to 6, printed left-aligned."""
    V = m._vcov
    sd = np.sqrt(np.diag(V))
    C = V / np.outer(sd, sd)
    names = list(m.frame.fixed_names)
    cells = [[f"{round(float(v), 3) + 0.0:.3f}" for v in row] for row in C]
    width = max(len(c) for row in cells for c in row)
    rows_short = [r_abbreviate(n, 11) for n in names]
    short = [r_abbreviate(n, 6) for n in rows_short]
    header = [""] + short[:-1]
    rows = []
    for i in range(1, len(names)):
        row = [cells[i][j].rjust(width) for j in range(i)] + [""] * (len(names) - 1 - i)
        rows.append([rows_short[i], *row])
    return _table(header, rows, [True] * len(names))


def format_summary(m: GlmerEstimates, correlation: bool | None = None) -> str:
    """The text of ``summary(glmer(...))``."""
    correlation = arguments.optional_flag("correlation", correlation)
    method = (
        "Laplace Approximation"
        if m.nAGQ <= 1
        else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {m.nAGQ}"
    )
    head, tail = method.split(" ", 1)
    lines = [
        f"Generalized linear mixed model fit by maximum likelihood ({head}",
        f"  {tail}) [glmerMod]",
        f" Family: {getattr(m.family, 'label', m.family.name)}  ( {m.family.link_name} )",
        f"Formula: {m.formula}",
        f"   Data: {m.data_name}",
        "",
    ]
    if m.frame.weights is not None and m.frame.weights_name:
        lines.insert(5, f"Weights: {m.frame.weights_name}")
    names = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    values = [
        f"{m.AIC():.1f}",
        f"{m.BIC():.1f}",
        f"{m.logLik():.1f}",
        f"{-2 * m.logLik():.1f}",
        f"{m.df_resid()}",
    ]
    widths = [max(len(a), len(b)) for a, b in zip(names, values)]
    widths = [max(w, 8) for w in widths]
    lines.append(" ".join(n.rjust(w) for n, w in zip(names, widths)) + " ")
    lines.append(" ".join(v.rjust(w) for v, w in zip(values, widths)) + " ")
    lines.append("")
    res = m.residuals("pearson").to_numpy() / m.sigma  # lme4: scaled = TRUE
    q = _zapsmall(np.quantile(res, [0, 0.25, 0.5, 0.75, 1]), 5)
    qs = r_format(list(q), 4)
    w = max(len(s) for s in qs + ["Median"])
    lines.append("Scaled residuals: ")
    lines.append(" ".join(h.rjust(w) for h in ("Min", "1Q", "Median", "3Q", "Max")) + " ")
    lines.append(" ".join(s.rjust(w) for s in qs) + " ")
    lines.append("")
    lines.append("Random effects:")
    lines.extend(_random_effects(m))
    groups = "; ".join(f"{g}, {n}" for g, n in m.ngrps().items())
    lines.append(f"Number of obs: {m.nobs()}, groups:  {groups}")
    lines.append("")
    lines.append("Fixed effects:")
    lines.extend(_fixed_effects(m))
    lines.append("---")
    lines.append(SIGNIF)
    p = len(m.frame.fixed_names)
    if correlation is None:
        correlation = 1 < p <= 12
    if correlation and p > 1:
        lines.append("")
        lines.append("Correlation of Fixed Effects:")
        lines.extend(_correlation(m))
    if m.isSingular():
        lines.append("optimizer (bobyqa) convergence code: 0 (OK)")
        lines.append("boundary (singular) fit: see help('isSingular')")
    for w in m.warnings:
        lines.append(w)
    return "\n".join(lines) + "\n"
