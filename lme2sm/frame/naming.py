"""lme4's names for model-matrix columns, read off patsy's design structure.

patsy names a column ``C(recipe)[T.B]:temp`` where lme4 (R's ``model.matrix``) says
``recipeB:temp``. Both enumerate the columns of a term the same way (left-most factor
varies fastest), so the two names are built side by side from patsy's
``DesignInfo``: no string surgery on finished names.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from lme2sm.formula.model import Expr, LinearPart
from lme2sm.frame.grouping import level_text
from lme2sm.frame.safe_names import user_text

if TYPE_CHECKING:
    import patsy

INTERCEPT = "(Intercept)"

FactorCodes = Callable[[Expr], tuple[str, str]]
"""A formula factor → patsy's normalised code of it, as the design was built (internal
column names) and as a user's statsmodels formula writes it
(:func:`lme2sm.frame.design.factor_codes`)."""


class Column(NamedTuple):
    """One model-matrix column's three names."""

    patsy: str
    """patsy's name in the design lme2sm built (internal column names)."""
    statsmodels: str
    """The name statsmodels gives it from the user's formula (``C(recipe)[T.B]:temp``)."""
    lme4: str
    """R's ``model.matrix`` name (``recipeB:temp``)."""


def _level(suffix: str) -> str:
    """The level in a patsy contrast suffix: ``[T.Male]`` → ``Male``, ``[a]`` → ``a``."""
    inner = suffix[1:-1] if suffix.startswith("[") and suffix.endswith("]") else suffix
    for prefix in ("T.", "S.", "H.", "D."):
        if inner.startswith(prefix):
            return inner[len(prefix) :]
    return inner


def _r_level(level: str) -> str:
    return {"True": "TRUE", "False": "FALSE"}.get(level, level)


def _level_name(text: str, categories) -> str:
    """R's text of the level patsy wrote as ``text``: a number's as R prints it (a
    float column's ``6.0`` is R's level ``6``, as for grouping levels), else
    :func:`_r_level`'s."""
    for value in categories or ():
        if isinstance(value, float | np.floating) and str(value) == text:
            return level_text(value)
    return _r_level(text)


def column_names(part: LinearPart, info: patsy.DesignInfo, codes: FactorCodes) -> list[Column]:
    """The three names of every column of ``info``, in lme4's order.

    lme4's order is the intercept, then the formula's terms in R's order, each
    term's columns in patsy's (= R's) order.
    """
    labels: dict[str, tuple[str, str]] = {}
    for term in part.terms:
        for factor in term.factors:
            internal, shown = codes(factor)
            labels[internal] = (shown, factor.label)
    by_term: dict[frozenset[str], list[Column]] = {}
    for term, codings in info.term_codings.items():
        key = frozenset(f.code for f in term.factors)
        by_term[key] = list(_term_columns(codings, info, labels))
    ordered: list[Column] = []
    if frozenset() in by_term:
        ordered += by_term.pop(frozenset())
    for term in part.terms:
        key = frozenset(codes(f)[0] for f in term.factors)
        ordered += by_term.pop(key, [])
    for rest in by_term.values():  # anything patsy added that R would not name: keep it
        ordered += rest
    return ordered


def _term_columns(
    codings, info: patsy.DesignInfo, labels: dict[str, tuple[str, str]]
) -> Iterator[Column]:
    for subterm in codings:
        widths = []
        for factor in subterm.factors:
            fi = info.factor_infos[factor]
            if fi.type == "numerical":
                widths.append(fi.num_columns)
            else:
                widths.append(subterm.contrast_matrices[factor].matrix.shape[1])
        for reversed_combo in itertools.product(*(range(w) for w in reversed(widths))):
            combo = reversed_combo[::-1]
            pieces: list[tuple[str, str, str]] = []
            for factor, idx in zip(subterm.factors, combo):
                fi = info.factor_infos[factor]
                name = factor.name()
                shown, label = labels.get(factor.code) or (user_text(name),) * 2
                if fi.type == "numerical":
                    if fi.num_columns > 1:
                        pieces.append((f"{name}[{idx}]", f"{shown}[{idx}]", f"{label}{idx + 1}"))
                    else:
                        pieces.append((name, shown, label))
                else:
                    suffix = subterm.contrast_matrices[factor].column_suffixes[idx]
                    level = _level_name(_level(suffix), fi.categories)
                    pieces.append((name + suffix, shown + suffix, label + level))
            if pieces:
                yield Column(*(":".join(p[i] for p in pieces) for i in range(3)))
            else:
                yield Column("Intercept", "Intercept", INTERCEPT)
