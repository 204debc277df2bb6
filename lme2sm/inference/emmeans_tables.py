"""emmeans' arithmetic on its tables: t tails and quantiles (normal when df is infinite),
the p-value adjustments within a family of contrasts, and the contrast labels as R
prints them. Used by :mod:`lme2sm.inference.emmeans`.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["adjust_p_values", "contrast_labels", "t_quantile", "t_sf"]


def t_sf(t: float, df: float) -> float:
    if not math.isfinite(t):
        return math.nan
    return float(stats.norm.sf(t) if not math.isfinite(df) else stats.t.sf(t, df))


def t_quantile(p: float, df: float) -> float:
    if not math.isfinite(df):
        return float(stats.norm.ppf(p))
    return float(stats.t.ppf(p, df))


def adjust_p_values(p: np.ndarray, method: str, family: list[dict], k: int) -> np.ndarray:
    """emmeans' ``.adj.p.value`` within one family of pairwise contrasts.

    Non-estimable contrasts (NaN) still count in the family (R's ``p.adjust(n = )``).
    Tukey: ``ptukey(sqrt(2) |t|, k, zapsmall(df))`` with the family's df, a missing
    df counted as infinite (so one non-estimable contrast rounds the others' df to
    integers, as emmeans does)."""
    n = len(p)
    ok = np.isfinite(p)
    if method == "none" or n == 0:
        return p
    out = np.full(n, np.nan)
    if method == "bonferroni":
        out[ok] = np.minimum(1.0, p[ok] * n)
    elif method == "sidak":
        out[ok] = 1 - (1 - p[ok]) ** n
    elif method == "holm":  # R's p.adjust(method = "holm", n = n)
        good = p[ok]
        order = np.argsort(good, kind="stable")
        adj = np.maximum.accumulate((n - np.arange(len(good))) * good[order])
        held = np.empty(len(good))
        held[order] = np.minimum(1.0, adj)
        out[ok] = held
    else:  # tukey
        dfs = np.array([r["df"] for r in family], dtype=float)
        dfs[np.isnan(dfs)] = np.inf
        dfs = _zapsmall(dfs)
        for i, r in enumerate(family):
            q = math.sqrt(2) * abs(r["t.ratio"])
            if not math.isfinite(q):
                continue
            out[i] = float(stats.studentized_range.sf(q, k, dfs[i]))  # df = inf is fine
    return out


def _zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall(x)`` (an infinite entry rounds the others to integers)."""
    finite = x[~np.isnan(x)]
    mx = float(np.max(np.abs(finite))) if finite.size else 0.0
    if mx <= 0:
        return x
    places = 0 if math.isinf(mx) else max(0, digits - math.ceil(math.log10(mx)))
    return np.where(np.isinf(x), x, np.round(x, places))


def contrast_labels(table: pd.DataFrame, specs: tuple[str, ...]) -> dict:
    """emmeans' level labels: the spec values pasted with spaces; a variable whose
    values all read as numbers gets its name in front (``tf175``); a label with
    ``-``, ``+``, ``/`` or ``*`` in it is put in parentheses."""
    columns = []
    for v in specs:
        text = [_r_format(x) for x in table[v]]
        if all(_is_number(t) for t in text):
            text = [v + t for t in text]
        columns.append(text)
    out = {}
    for pos, i in enumerate(table.index):
        label = " ".join(col[pos] for col in columns)
        out[i] = f"({label})" if re.search(r"-|\+|/|\*", label) else label
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _r_format(v) -> str:
    """A level as R prints it (``1`` not ``1.0``, ``TRUE`` for True)."""
    if isinstance(v, (bool, np.bool_)):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() else format(float(v), ".15g")
    return str(v)
