"""broom.mixed's ``tidy()`` and ``glance()`` for lmer and glmer fits.

``tidy(m)`` is one row per parameter, as ``broom.mixed::tidy(m)`` (0.2.9) lays out an
lme4 fit: the fixed effects (``effect = "fixed"``: ``estimate``, ``std.error``,
``statistic``; a glmer fit adds the Wald ``p.value``), then each grouping factor's
``sd__<column>`` and ``cor__<column>.<column>`` rows (``effect = "ran_pars"``, in
broom's order: each column's SD followed by its correlations with the later columns),
then ``Residual``'s ``sd__Observation`` for families with a scale. ``conf_int=True`` adds
Wald ``conf.low``/``conf.high`` for the fixed effects (``tidy(m, conf.int = TRUE)``).

``glance(m)`` is one row: ``nobs``, ``sigma``, ``logLik``, ``AIC``, ``BIC``, then
``REMLcrit`` (REML fits) or ``deviance``, and ``df.residual``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from lme2sm import arguments

__all__ = ["tidy", "glance", "TIDY_COLUMNS"]

TIDY_COLUMNS = ["effect", "group", "term", "estimate", "std.error", "statistic"]


def _is_glmer(m: Any) -> bool:
    return getattr(m, "family", None) is not None


def _nobs(m: Any) -> int:
    n = m.nobs
    return int(n() if callable(n) else n)


def _df(m: Any) -> int:
    d = m.df
    return int(d() if callable(d) else d)


def _has_scale(m: Any) -> bool:
    return not _is_glmer(m) or m.family.name in ("Gamma", "inverse.gaussian")


def _sigma(m: Any) -> float:
    return float(m.sigma) if _has_scale(m) else 1.0


def _fixed_rows(m: Any, conf_int: bool, level: float) -> pd.DataFrame:
    est, se = m.fixef(), m.se()
    out = pd.DataFrame(
        {
            "effect": "fixed",
            "group": None,
            "term": list(est.index),
            "estimate": est.to_numpy(),
            "std.error": se.to_numpy(),
            "statistic": (est / se).to_numpy(),
        }
    )
    if _is_glmer(m) and not _has_scale(m):
        out["p.value"] = 2 * stats.norm.sf(np.abs(out["statistic"]))
    if conf_int:
        z = stats.norm.ppf(0.5 + level / 2)
        out["conf.low"] = out["estimate"] - z * out["std.error"]
        out["conf.high"] = out["estimate"] + z * out["std.error"]
    return out


def _ran_pars(m: Any) -> list[tuple[str, str, float]]:
    """(group, term, estimate) in broom's order, from VarCorr's rows."""
    vc = m.VarCorr()
    vc = vc[vc["grp"] != "Residual"]
    out: list[tuple[str, str, float]] = []
    for grp in dict.fromkeys(vc["grp"]):
        rows = vc[vc["grp"] == grp]
        sds = rows[rows["var2"].isna()]
        cors = rows[rows["var2"].notna()]
        names = list(sds["var1"])
        for i, name in enumerate(names):
            out.append((grp, f"sd__{name}", float(sds["sdcor"].iloc[i])))
            for other in names[i + 1 :]:
                hit = cors[(cors["var1"] == name) & (cors["var2"] == other)]
                out.append((grp, f"cor__{name}.{other}", float(hit["sdcor"].iloc[0])))
    if _has_scale(m):
        out.append(("Residual", "sd__Observation", _sigma(m)))
    return out


def tidy(m: Any, conf_int: bool = False, level: float = 0.95) -> pd.DataFrame:
    """broom.mixed's ``tidy(m)``: fixed effects, then the random-effect SDs and
    correlations (see the module docstring)."""
    conf_int = arguments.flag("conf_int", conf_int)
    level = arguments.probability("level", level)
    fixed = _fixed_rows(m, conf_int, level)
    ran = pd.DataFrame(_ran_pars(m), columns=["group", "term", "estimate"])
    ran.insert(0, "effect", "ran_pars")
    out = pd.concat([fixed, ran], ignore_index=True)
    for col in fixed.columns:
        if col not in ran.columns:
            out[col] = out[col].astype(float)
    out["group"] = pd.Series([None] * len(fixed) + list(ran["group"]), dtype=object)
    return out[list(fixed.columns)]


def glance(m: Any) -> pd.DataFrame:
    """broom.mixed's ``glance(m)``: one row of the fit's summary numbers."""
    row: dict[str, float] = {
        "nobs": _nobs(m),
        "sigma": _sigma(m),
        "logLik": float(m.logLik()),
        "AIC": float(m.AIC()),
        "BIC": float(m.BIC()),
    }
    if getattr(m, "REML", False):
        row["REMLcrit"] = float(m.REMLcrit())
    else:
        row["deviance"] = float(m.deviance())
    row["df.residual"] = _nobs(m) - _df(m)
    return pd.DataFrame([row])
