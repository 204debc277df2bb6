"""What test_fuzz_pickles.py compares between the fitting process and a fresh one."""

from __future__ import annotations

import math


def _floats(values) -> list:
    return [None if math.isnan(v) else v for v in map(float, values)]


def describe(m) -> dict:
    """A fit's numbers and texts as JSON-ready values (NaN as None)."""
    from lme2sm import Lme2smError

    vc = m.VarCorr()
    try:
        summary = m.summary()
    except Lme2smError as exc:
        summary = f"{type(exc).__name__}: {exc}"
    return {
        "class": type(m).__name__,
        "fixef_names": list(m.fixef().index),
        "fixef": _floats(m.fixef()),
        "logLik": _floats([m.logLik()]),
        "varcorr_names": [[str(v) for v in row] for row in vc[["grp", "var1", "var2"]].values],
        "vcov": _floats(vc["vcov"]),
        "fitted": _floats(m.fitted()),
        "summary": summary,
    }
