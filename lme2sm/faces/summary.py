"""Printing a fit the way lme4's ``summary(lmer(...))`` prints it.

Numbers are formatted with R's rules for ``format(x, digits=)``: per column, the
fewest decimals that show every entry to ``digits`` significant digits.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lme2sm import arguments
from lme2sm.errors import ArgumentError
from lme2sm.inference.coef_table import coef_table, ddf_method
from lme2sm.large.predict import residual_quantiles
from lme2sm.results.lmer import suffixed_groups

if TYPE_CHECKING:
    from lme2sm.results.lmer import LmerEstimates


def _decimals(x: float, digits: int) -> int:
    if x == 0 or not math.isfinite(x):
        return 0
    magnitude = math.floor(math.log10(abs(x)))
    text = f"{round(x, digits - 1 - magnitude):.{max(0, digits - 1 - magnitude)}f}"
    if "." not in text:
        return 0
    return len(text.split(".")[1].rstrip("0"))


def r_format(values: Sequence[float], digits: int = 4) -> list[str]:
    """R's ``format(values, digits=digits)``: common decimals, right-aligned; in
    scientific notation (one mantissa width) when that is narrower than the fixed
    notation, as R's ``formatReal`` chooses with ``scipen = 0`` (``7.479e-08``)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    dec = max((_decimals(v, digits) for v in finite), default=0)
    dec = min(dec, 15)
    texts = ["NA" if v is None or not math.isfinite(v) else f"{v:.{dec}f}" for v in values]
    sci = _r_scientific(values, finite, digits)
    if sci is not None and max(map(len, sci)) < max(map(len, texts)):
        texts = sci
    width = max((len(s) for s in texts), default=0)
    return [s.rjust(width) for s in texts]


def _r_scientific(values, finite, digits: int) -> list[str] | None:
    """The values as R writes them in scientific notation: the fewest significant digits
    (at most ``digits``) that show every value to ``digits``, two exponent digits."""
    if not finite:
        return None
    sig = 1
    for v in finite:
        mant = f"{abs(v):.{digits - 1}e}".split("e")[0].replace(".", "").rstrip("0")
        sig = max(sig, len(mant) or 1)
    return ["NA" if v is None or not math.isfinite(v) else f"{v:.{sig - 1}e}" for v in values]


def r_abbreviate(name: str, minlength: int = 6) -> str:
    """R's ``abbreviate(name, minlength)``: drop lower-case vowels, then letters, from the right."""
    chars = list(name)
    if len(chars) <= minlength:
        return name
    for pattern in ("aeiou", "abcdefghijklmnopqrstuvwxyz"):
        i = len(chars) - 1
        while len(chars) > minlength and i > 0:
            if chars[i] in pattern and chars[i - 1] != " ":
                del chars[i]
            i -= 1
    return "".join(chars[: max(minlength, len(chars))])


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[bool]
) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    out = []
    for row in [header, *rows]:
        cells = [c.ljust(w) if lft else c.rjust(w) for c, w, lft in zip(row, widths, left)]
        out.append(" " + " ".join(cells))
    return out


def correlation_cells(tc, i: int, sd: np.ndarray) -> list[str]:
    """Row ``i``'s correlation cells for one term in the printed random-effects table
    (lme4's lower triangle for ``us``; glmmTMB's one ``0.65 (cs)`` / ``0.67 (ar1)`` cell
    on a structured term's first row; none for ``diag``)."""
    if tc.structure in ("cs", "ar1"):
        return [f"{tc.rho:.2f} ({tc.structure})"] if i == 0 else []
    if tc.structure != "us":
        return []
    cov = np.asarray(tc.cov)
    return [f"{cov[i, j] / (sd[i] * sd[j]):.2f}" if sd[i] * sd[j] > 0 else "NaN" for j in range(i)]


def random_effects_table(m: LmerEstimates) -> list[str]:
    """The "Random effects:" block: Groups, Name, Variance, Std.Dev., Corr. A structured
    term is printed as glmmTMB prints it: ``diag()`` without correlations, ``cs()`` with
    its one correlation on its first row (``0.07 (cs)``), ``ar1()`` as one row (its
    first column: the SDs are equal) with rho (``0.93 (ar1)``)."""
    terms = m.term_covariances
    names, groups, variances, sds, corr_rows = [], [], [], [], []

    for grp, tc in zip(suffixed_groups(terms), terms):
        sd = np.sqrt(np.clip(np.diag(tc.cov), 0, None))
        shown = tc.names[:1] if tc.structure == "ar1" else tc.names
        for i, name in enumerate(shown):
            groups.append(grp if i == 0 else "")
            names.append(name)
            variances.append(float(tc.cov[i, i]))
            sds.append(float(sd[i]))
            corr_rows.append(correlation_cells(tc, i, sd))
    groups.append("Residual")
    names.append("")
    variances.append(m.sigma**2)
    sds.append(m.sigma)
    corr_rows.append([])
    var_txt = r_format(variances, 4)
    sd_txt = r_format(sds, 4)
    k = max((len(c) for c in corr_rows), default=0)
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (["Corr"] + [""] * (k - 1) if k else [])
    rows = []
    for g, n, v, s, c in zip(groups, names, var_txt, sd_txt, corr_rows):
        rows.append([g, n, v.strip(), s.strip()] + ([*c, *[""] * (k - len(c))] if k else []))
    width_v = max(len(v) for v in var_txt)
    for row, v, s in zip(rows, var_txt, sd_txt):
        row[2], row[3] = v.rjust(width_v), s
    left = [True, True, True, True] + [False] * k
    return _table(header, rows, left)


def fixed_effects_table(
    m: LmerEstimates, extra: dict[str, Sequence[str]] | None = None, se=None
) -> list[str]:
    """The "Fixed effects:" block: Estimate, Std. Error, t value (and extra columns);
    ``se`` replaces lme4's standard errors (Kenward-Roger's adjusted ones)."""
    fe, se = m.fixef(), (m.se() if se is None else se)
    t = fe / se
    dec = max(_dec_col(fe.to_numpy()), _dec_col(se.to_numpy()))
    est = [f"{v:.{dec}f}" for v in fe]
    err = [f"{v:.{dec}f}" for v in se]
    tv = r_format([round(float(v), 3) for v in t.to_numpy()], 4)
    header = ["", "Estimate", "Std. Error", "t value"]
    rows = [[n, e, s, v.strip()] for n, e, s, v in zip(fe.index, est, err, tv)]
    if extra:
        for col, values in extra.items():
            # lmerTest prints df between "Std. Error" and "t value"
            at = 3 if col == "df" else len(header)
            header.insert(at, col)
            for row, val in zip(rows, values):
                row.insert(at, val.strip() if col == "df" else val)
    return [line[1:] for line in _table(header, rows, [True] + [False] * (len(header) - 1))]


def _dec_col(values: np.ndarray, digits: int = 4) -> int:
    return max((_decimals(float(v), digits) for v in values), default=0)


def correlation_table(m: LmerEstimates) -> list[str]:
    """The "Correlation of Fixed Effects:" lower triangle (R prints it left-aligned)."""
    cov = m.vcov().to_numpy()
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    names = list(m.fixef().index)
    texts = {
        (i, j): f"{round(corr[i, j], 3) + 0.0:.3f}" for i in range(len(names)) for j in range(i)
    }
    width = max((len(t) for t in texts.values()), default=0)
    rows = []
    for i in range(1, len(names)):
        cells = [texts[i, j].rjust(width) for j in range(i)]
        rows.append([r_abbreviate(names[i], 11), *cells, *[""] * (len(names) - 1 - i)])
    header = ["", *(r_abbreviate(n) for n in names[:-1])]
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    return [" ".join(c.ljust(w) for c, w in zip(r, widths)) for r in [header, *rows]]


AUTO_DDF_MAX_RE = 3000
"""``summary()`` computes Satterthwaite df by default up to this many random effects."""


def _n_random_effects(m: LmerEstimates) -> int:
    return sum(tc.n_levels * len(tc.names) for tc in m.term_covariances)


def format_summary(
    m: LmerEstimates,
    correlation: bool | None = None,
    ddf: str | None = "auto",
    vcov: str | None = None,
) -> str:
    """lme4's ``print(summary(m))`` as text; ``vcov="CR2"`` (or CR0, CR1): the fixed
    effects' standard errors, df and p-values cluster-robust, as clubSandwich's
    ``coef_test(m, vcov, test = "Satterthwaite")``."""
    correlation = arguments.optional_flag("correlation", correlation)
    if vcov is not None:
        title, extra_cols, kr_se, skipped = _robust_columns(m, vcov)
    else:
        title, extra_cols, kr_se, skipped = _test_columns(m, ddf)
    lines = [title, f"Formula: {m.formula}"]
    if m.data_name:
        lines.append(f"   Data: {m.data_name}")
    lines.append("")
    lines += _criteria(m)
    approximation = getattr(m.engine_fit, "approximation", None)
    if approximation:
        lines.append(f"NOTE: {approximation}")
    lines.append("")
    lines += _scaled_residuals(m)
    lines.append("")
    lines.append("Random effects:")
    lines += random_effects_table(m)
    groups = "; ".join(f"{g}, {n}" for g, n in m.ngrps().items())
    lines.append(f"Number of obs: {m.nobs}, groups:  {groups}")
    lines.append("")
    lines.append("Fixed effects:")
    lines += fixed_effects_table(m, extra_cols, se=kr_se)
    if extra_cols:
        lines += ["---", "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"]
    if skipped:
        lines.append(skipped)
    if correlation is None:
        correlation = 1 < len(m.fixef()) <= 12
    if correlation and len(m.fixef()) > 1:
        lines.append("")
        lines.append("Correlation of Fixed Effects:")
        lines += correlation_table(m)
    lines += _closing_messages(m)
    return "\n".join(lines) + "\n"


def _test_columns(m: LmerEstimates, ddf: str | None):
    """The title line and, for lmerTest's tests, the df and p-value columns: (title,
    columns or None, Kenward-Roger's standard errors or None, a note on skipped df)."""
    how = "REML" if m.REML else "maximum likelihood "
    skipped = None
    if not (isinstance(ddf, str) and ddf == "auto"):
        try:
            ddf = ddf_method(ddf)
        except ArgumentError:
            raise ArgumentError(
                f"ddf must be 'Satterthwaite', 'Kenward-Roger', 'lme4', None or 'auto', "
                f"not {ddf!r}"
            ) from None
    if ddf == "auto":
        q = _n_random_effects(m)
        ddf = "Satterthwaite" if q <= AUTO_DDF_MAX_RE else None
        if ddf is None:
            skipped = (
                f"(Satterthwaite df not computed by default for {q} random effects: "
                'use summary(ddf="Satterthwaite"))'
            )
    if ddf not in ("Satterthwaite", "Kenward-Roger"):
        return f"Linear mixed model fit by {how} ['lmerMod']", None, None, skipped
    table = coef_table(m, ddf)
    kr_se = table["Std. Error"] if ddf == "Kenward-Roger" else None
    extra_cols = {
        "df": [f"{v:.3f}" for v in table["df"]],
        "Pr(>|t|)": [_pvalue(p) for p in table["Pr(>|t|)"]],
        "": [_stars(p) for p in table["Pr(>|t|)"]],
    }
    title = f"Linear mixed model fit by {how}. t-tests use {ddf}'s method ['lmerModLmerTest']"
    return title, extra_cols, kr_se, skipped


def _robust_columns(m: LmerEstimates, vcov: str):
    """The title and columns of a summary with clubSandwich's cluster-robust tests."""
    from lme2sm.inference.robust import coef_test

    table = coef_test(m, vcov)
    how = "REML" if m.REML else "maximum likelihood "
    extra_cols = {
        "df": [f"{v:.3f}" for v in table["df"]],
        "Pr(>|t|)": [_pvalue(p) for p in table["Pr(>|t|)"]],
        "": [_stars(p) for p in table["Pr(>|t|)"]],
    }
    title = (
        f"Linear mixed model fit by {how}. t-tests use {table.attrs['vcov']} cluster-robust "
        f"standard errors (cluster: {table.attrs['cluster']}) and Satterthwaite df, as "
        "clubSandwich's coef_test"
    )
    return title, extra_cols, table["Std. Error"], None


def _criteria(m: LmerEstimates) -> list[str]:
    """The REML criterion, or the ML fit's AIC, BIC, logLik, deviance and df.resid."""
    if m.REML:
        crit = f"{round(m.REMLcrit(), 1):.1f}".removesuffix(".0")
        return [f"REML criterion at convergence: {crit}"]
    header = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    values = [round(v, 1) for v in (m.AIC(), m.BIC(), m.logLik(), m.deviance())]
    cells = [f"{v:.1f}" for v in values] + [str(m.nobs - m.df)]
    w = max(len(x) for x in [*header, *cells])
    return [" ".join(h.rjust(w) for h in header) + " ", " ".join(c.rjust(w) for c in cells) + " "]


def _scaled_residuals(m: LmerEstimates) -> list[str]:
    """lme4's quantiles of the scaled Pearson residuals, sqrt(w) (y - fitted) / sigma."""
    if getattr(m.frame, "lazy", False):  # rows beyond memory: one pass over the source
        q = _zapsmall(np.asarray(residual_quantiles(m.frame, m.engine_fit)) / m.sigma, 5)
    else:
        resid = m.residuals().to_numpy() / m.sigma
        if m.frame.weights is not None:
            resid = resid * np.sqrt(m.frame.weights)
        q = _zapsmall(np.quantile(resid, [0, 0.25, 0.5, 0.75, 1]), 5)
    qt = r_format(list(q), 4)
    head = ["Min", "1Q", "Median", "3Q", "Max"]
    w = [max(len(h), len(x)) for h, x in zip(head, qt)]
    return [
        "Scaled residuals: ",
        " ".join(h.rjust(x) for h, x in zip(head, w)) + " ",
        " ".join(v.rjust(x) for v, x in zip(qt, w)) + " ",
    ]


def _closing_messages(m: LmerEstimates) -> list[str]:
    """The singular-fit and convergence messages, and why MixedLM cannot hold the model."""
    lines = []
    if m.isSingular():
        lines += [
            "optimizer (nloptwrap) convergence code: 0 (OK)",
            "boundary (singular) fit: see help('isSingular')",
        ]
    lines += list(m.outcome.messages)
    problem = getattr(m, "statsmodels_problem", None)
    if problem is not None:
        lines.append(
            f"statsmodels cannot hold this model (.statsmodels is unavailable): {problem}"
        )
    return lines


def _zapsmall(x: np.ndarray, digits: int) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest entry."""
    mx = float(np.max(np.abs(x)))
    if mx <= 0:
        return x
    return np.round(x, max(0, math.floor(digits - math.log10(mx) + 0.5)))


def _signif(x: float, digits: int) -> str:
    if x == 0 or not math.isfinite(x):
        return str(x)
    mag = math.floor(math.log10(abs(x)))
    dec = max(0, digits - 1 - mag)
    return f"{round(x, dec):.{dec}f}".rstrip("0").rstrip(".") if dec else f"{round(x):.0f}"


def _pvalue(p: float) -> str:
    """R's ``format.pval`` as printCoefmat shows it: ``< 2e-16``, ``3.26e-06``, ``0.679``."""
    if not math.isfinite(p):
        return "NA"
    if p < 2e-16:
        return "< 2e-16"
    if p < 1e-4:
        return re.sub(r"e-(\d)$", r"e-0\1", f"{p:.2e}")
    return f"{float(f'{p:.3g}'):.{max(0, 2 - math.floor(math.log10(p)))}f}"


def _stars(p: float) -> str:
    """lmerTest's significance stars."""
    if not math.isfinite(p):
        return ""
    for cut, star in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return star
    return ""
