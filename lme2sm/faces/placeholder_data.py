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
    (labels ``g1``, ``g2``, ... reused); beyond six factors the labels are shuffled
    independently instead, so the rows stay few however many factors there are. ``layout="nested"``: each grouping
    column nests in the one before it (in order of first use), with labels unique
    overall (two levels per step beyond six factors, to keep the frame small).
    """
    groups = grouping_columns(parsed)
    k = len(groups)
    rng = np.random.default_rng(0)
    widest = max((len(t.group_factors) for t in parsed.random_terms), default=1)
    columns = max((len(t.effects) + 1 for t in parsed.random_terms), default=1)
    frame: dict[str, Any] = {}
    if layout == "crossed" and levels**k <= 729:
        n = levels**k * (columns + 1)  # every combination, more rows than random effects
        index = np.arange(n) % levels**k
        for pos, name in enumerate(groups):
            codes = (index // levels ** (k - pos - 1)) % levels
            frame[name] = [f"{name}{c + 1}" for c in codes]
    elif layout == "crossed":
        # too many combinations to list: shuffle each factor's labels independently,
        # with enough rows for every combination a term uses, times its columns
        n = 2 * levels**widest * (columns + 1)
        base = np.arange(n) % levels
        for name in groups:
            frame[name] = [f"{name}{c + 1}" for c in rng.permutation(base)]
    else:
        levels = levels if k <= 6 else 2
        n_cells = levels**k if k else 1
        n = n_cells * (columns + 1)
        index = np.arange(n) % n_cells
        for pos, name in enumerate(groups):
            path = index // levels ** (k - pos - 1)  # the cell's path to this level
            frame[name] = [f"{name}{p + 1}" for p in path]
    for name in parsed.variables():
        if name not in frame:
            # positive (log() works) and with many distinct values (poly(x, k) works)
            frame[name] = rng.integers(1, 5, size=n) + rng.integers(0, 100, size=n) / 100
    return pd.DataFrame(frame)


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
            layout_note = (
                f"  - the grouping factors {', '.join(groups)} are crossed (every combination "
                "of their levels occurs); nesting is only what the formula writes with / or :"
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
