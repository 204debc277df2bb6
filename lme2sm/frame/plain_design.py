"""What patsy would learn from a plain column, read with numpy instead.

patsy's design pass evaluates each factor's code on the data, then sniffs its type:
numbers are one numerical column; a Categorical, logical values or text are a
categorical factor whose levels are the categories, ``(False, True)`` or the sorted
values. For a factor that is a bare column (``_c_Days``) or ``C()`` of one (R's
``factor(x)``), without a contrast, the answer can be read off the array directly:
:func:`sniff` gives patsy's type, levels and the rows' level codes, and
:mod:`.design` hands them to patsy's own structure (its contrast choice for
interactions and its column order). Anything else returns None and goes through
patsy's evaluation.

>>> import numpy as np
>>> sniff("_c_x", {"_c_x": np.array([2.0, 1.0])})[0]
'numerical'
>>> kind, levels, codes = sniff("C(_c_g)", {"_c_g": np.array([3, 1, 3])})
>>> kind, levels, codes.tolist()
('categorical', (1, 3), [1, 0, 1])
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

_BARE = re.compile(r"(?:C\()?(_c_[A-Za-z0-9_]+|_x_(?:[0-9a-f]{2})+)\)?")


def sniff(code: str, arrays: dict[str, object]) -> tuple | None:
    """``("numerical", values)`` (an ``(n, 1)`` float array) or ``("categorical",
    levels, codes)`` for a plain factor; None when patsy must evaluate ``code``."""
    match = _BARE.fullmatch(code)
    if match is None:
        return None
    wrapped = code.startswith("C(")
    if wrapped != code.endswith(")") or match.group(1) not in arrays:
        return None
    values = arrays[match.group(1)]
    if isinstance(values, pd.Categorical):
        return "categorical", tuple(values.categories), np.asarray(values.codes, dtype=np.intp)
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        return None
    kind = values.dtype.kind
    if kind == "b":
        return "categorical", (False, True), values.astype(np.intp)
    if kind in "iuf" and not wrapped:
        return "numerical", values.astype(float).reshape(-1, 1)
    if kind in "iu" or (kind == "f" and not _awkward(values)):
        uniques, codes = np.unique(values, return_inverse=True)
        return "categorical", tuple(uniques.tolist()), codes.reshape(-1).astype(np.intp)
    if kind == "O" and len(values):
        return _text(values)
    return None


def _awkward(values: np.ndarray) -> bool:
    """NaN or a negative zero: levels whose identity numpy and Python sets disagree on."""
    return bool(np.isnan(values).any() or (np.signbit(values) & (values == 0)).any())


def _text(values: np.ndarray) -> tuple | None:
    """Text levels in sorted order (patsy sorts the values it sees)."""
    codes, uniques = pd.factorize(values, sort=False)
    levels = list(uniques)
    if not all(type(v) is str for v in levels):
        return None
    order = sorted(range(len(levels)), key=levels.__getitem__)
    rank = np.empty(len(levels), dtype=np.intp)
    rank[order] = np.arange(len(levels))
    return "categorical", tuple(levels[i] for i in order), rank[codes]
