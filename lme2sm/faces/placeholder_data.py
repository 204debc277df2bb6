"""Translating a formula without data: a small made-up frame with the formula's columns.

``lme2sm translate "FORMULA"`` (no ``--data``) translates on this frame, crossed first
and nested when crossed cannot be expressed, and says what it assumed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lme2sm.errors import NotExpressibleError
from lme2sm.faces.translation import _translate
from lme2sm.formula import parse

__all__ = ["grouping_columns", "placeholder_frame", "placeholder_translation"]


def grouping_columns(parsed) -> list[str]:
    """The data columns that define grouping factors, outermost first.

    In ``c:(b:a)`` (from ``a/b/c``) the last column is the outermost; ties keep the
    order of first use.
    """
    depth: dict[str, int] = {}
    first: dict[str, int] = {}
    for term in parsed.random_terms:
        for d, f in enumerate(reversed(term.group_factors)):
            depth[f] = min(depth.get(f, d), d)
            first.setdefault(f, len(first))
    return sorted(depth, key=lambda f: (depth[f], first[f]))


def placeholder_frame(parsed, layout: str = "crossed", levels: int = 3) -> pd.DataFrame:
    """A small made-up data frame with the formula's columns, for translating without data.

    Grouping columns hold text labels, every other column small positive numbers.
    ``layout="crossed"``: every combination of the grouping columns' levels occurs
    (labels ``g1``, ``g2``, ... reused); beyond six factors (729 combinations) every
    pair of factors is crossed instead (:func:`_pairwise_crossed_codes`), so the rows
    stay few however many factors there are. ``layout="nested"``: each grouping column
    nests in the one before it (in order of first use), with labels unique overall
    (beyond six factors one more level per step, :func:`_nested_paths`). Either way each
    term has fewer levels, and fewer random effects, than the frame has rows.
    """
    groups = grouping_columns(parsed)
    k = len(groups)
    columns = max((len(t.effects) + 1 for t in parsed.random_terms), default=1)
    frame: dict[str, Any] = {}
    if layout == "crossed":
        codes = _all_combinations(k, levels) if levels**k <= 729 else _pairwise_crossed_codes(k)
    elif k <= 6:
        codes = _nested_levels(k, levels)
    else:
        codes = _nested_paths(k)
    # every cell repeated: more rows than any term's levels times its columns
    codes = np.tile(codes, (columns + 1, 1))
    n = len(codes)
    for pos, name in enumerate(groups):
        labels = np.array([f"{name}{c + 1}" for c in range(int(codes[:, pos].max()) + 1)])
        frame[name] = labels[codes[:, pos]].astype(object)
    rng = np.random.default_rng(0)
    for name in parsed.variables():
        if name not in frame:
            # positive (log() works) and with many distinct values (poly(x, k) works)
            frame[name] = rng.integers(1, 5, size=n) + rng.integers(0, 100, size=n) / 100
    return pd.DataFrame(frame)


def _all_combinations(k: int, levels: int) -> np.ndarray:
    """Every combination of ``k`` factors' ``levels`` levels, one row each (the first
    factor varies slowest)."""
    index = np.arange(levels**k)
    return np.column_stack(
        [(index // levels ** (k - pos - 1)) % levels for pos in range(k)]
    ).reshape(levels**k, k)


def _pairwise_crossed_codes(k: int) -> np.ndarray:
    """``k`` three-level factors, every pair fully crossed, on few rows.

    The rows are the vectors u of GF(3)^d and factor j's level is ``c_j . u mod 3`` for
    distinct directions c_j (vectors whose first nonzero entry is 1): two distinct
    directions are independent, so each pair of factors takes all nine combinations
    equally often, and any interaction of factors has at most 3^d levels. d grows
    with log k (3^d < 6k + 3), so the frame's size is linear in the number of factors.

    >>> _pairwise_crossed_codes(4).shape
    (9, 4)
    """
    d = 2
    while (3**d - 1) // 2 < k:
        d += 1
    vectors = _all_combinations(d, 3)  # every u in GF(3)^d, one per row
    nonzero = vectors[1:]
    first = nonzero[np.arange(len(nonzero)), np.argmax(nonzero != 0, axis=1)]
    directions = nonzero[first == 1][:k]
    return (vectors @ directions.T) % 3


def _nested_levels(k: int, levels: int) -> np.ndarray:
    """Each factor nests in the one before it, ``levels`` children per level: the path
    to each of the ``levels**k`` cells (level numbers unique in each column)."""
    n_cells = levels**k if k else 1
    index = np.arange(n_cells)
    return np.column_stack([index // levels ** (k - pos - 1) for pos in range(k)]).reshape(
        n_cells, k
    )


def _nested_paths(k: int) -> np.ndarray:
    """Each factor nests in the one before it on ``k + 1`` cells: cell i's level at
    depth p is ``min(i, p + 1)``, so depth p has p + 2 levels and one level of each
    depth splits in two at the next.

    >>> _nested_paths(2).tolist()
    [[0, 0], [1, 1], [1, 2]]
    """
    cells = np.arange(k + 1)[:, None]
    return np.minimum(cells, np.arange(k)[None, :] + 1)


def placeholder_translation(formula: str, approximate: bool):
    """Translate on placeholder data: crossed first; nested when crossed cannot be expressed.

    Returns the translation and the lines describing what was assumed.
    """

    def translate(parsed, frame, approximate):
        return _translate(parsed, frame, approximate=approximate, bind=False)

    parsed = parse(formula)
    groups = grouping_columns(parsed)
    others = [v for v in parsed.variables() if v not in groups]
    lines = [
        "No data given, so this translation was made on a small placeholder data frame.",
        "Assumed:",
        f"  - numeric columns: {', '.join(others) if others else '(none)'}",
        f"  - grouping factors, as text labels: {', '.join(groups) if groups else '(none)'}",
    ]
    layout_note = None
    crossed_error: NotExpressibleError | None = None
    try:
        t = translate(parsed, placeholder_frame(parsed, "crossed"), approximate=approximate)
        if len(groups) > 1:
            how = (
                "every combination of their levels occurs"
                if 3 ** len(groups) <= 729
                else "every pair of them meets in every combination of levels"
            )
            layout_note = (
                f"  - the grouping factors {', '.join(groups)} are crossed ({how}); "
                "nesting is only what the formula writes with / or :"
            )
    except NotExpressibleError as exc:
        if len(groups) < 2:
            raise
        crossed_error = exc
        try:
            t = translate(parsed, placeholder_frame(parsed, "nested"), approximate=approximate)
        except NotExpressibleError:
            raise crossed_error from None
        layout_note = (
            f"  - the grouping factors nest in this order, outermost first: "
            f"{' > '.join(groups)} (each label unique overall). If they were crossed, MixedLM "
            f"could not fit the model:\n      {crossed_error.term}: {crossed_error.reason}"
        )
    if layout_note:
        lines.append(layout_note)
    lines += [
        "With your data the translation can differ: groups= follows how the factors really",
        "nest or cross, and a text column used as a covariate becomes a factor with one",
        "column per level; the numbers of levels below are the placeholder's. For the",
        "exact translation, pass --data DATA.csv.",
    ]
    return t, lines
