"""The fixed effects' t tests with a choice of denominator df, as R users print them.

``coef_table(m, ddf=...)`` is ``coef(summary(m, ddf = ...))`` of lmerTest:

* ``"Satterthwaite"`` (lmerTest's default) — :mod:`lme2sm.inference.satterthwaite`;
* ``"Kenward-Roger"`` (pbkrtest through lmerTest): Kenward–Roger's adjusted standard
  errors and df — :mod:`lme2sm.inference.kenward_roger`;
* ``"lme4"``: lme4's own table (``Estimate``, ``Std. Error``, ``t value``; no df, no
  p-value, as lme4 prints it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lme2sm.errors import ArgumentError

__all__ = ["DDF_METHODS", "coef_table", "ddf_method"]

DDF_METHODS = {
    "satterthwaite": "Satterthwaite",
    "kenward-roger": "Kenward-Roger",
    "kenwardroger": "Kenward-Roger",
    "kr": "Kenward-Roger",
    "lme4": "lme4",
}

COLUMNS = ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]


def ddf_method(ddf: str | None) -> str:
    """The canonical name of a df method (``None`` means lme4's, no df)."""
    if ddf is None:
        return "lme4"
    key = str(ddf).strip().lower().replace("_", "-").replace(" ", "-")
    if key not in DDF_METHODS:
        raise ArgumentError(f"ddf must be 'Satterthwaite', 'Kenward-Roger' or 'lme4', not {ddf!r}")
    return DDF_METHODS[key]


def coef_table(m: Any, ddf: str | None = "Satterthwaite") -> pd.DataFrame:
    """lmerTest's ``coef(summary(m, ddf = ddf))``, indexed by lme4's fixed-effect names.

    Parameters
    ----------
    m : LmerResult
    ddf : {"Satterthwaite", "Kenward-Roger", "lme4"}
        ``"lme4"`` (or ``None``) gives lme4's columns only (``Estimate``,
        ``Std. Error``, ``t value``).

    Returns
    -------
    pandas.DataFrame
        Columns ``Estimate``, ``Std. Error``, ``df``, ``t value``, ``Pr(>|t|)``.
    """
    method = ddf_method(ddf)
    if method == "Satterthwaite":
        from lme2sm.inference.satterthwaite import satterthwaite_table

        return satterthwaite_table(m)[COLUMNS].copy()
    if method == "Kenward-Roger":
        from lme2sm.inference.kenward_roger import kr_coef_table

        return kr_coef_table(m)
    beta = m.fixef()
    se = np.sqrt(np.diag(m.vcov().to_numpy()))
    return pd.DataFrame(
        {"Estimate": beta.to_numpy(), "Std. Error": se, "t value": beta.to_numpy() / se},
        index=beta.index,
    )
