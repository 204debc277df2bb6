"""lme4's names for model-matrix columns, read off patsy's design structure.

patsy names a column ``C(recipe)[T.B]:temp`` where lme4 (R's ``model.matrix``) says
``recipeB:temp``. Both enumerate the columns of a term the same way (left-most factor
varies fastest), so the two names are built side by side from patsy's
``DesignInfo``: no string surgery on finished names.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import patsy
from patsy.eval import EvalFactor

from lme2sm.formula.model import Expr, LinearPart
from lme2sm.formula.patsy_text import to_patsy

INTERCEPT = "(Intercept)"


def patsy_env() -> patsy.EvalEnvironment:
    """The only names patsy may see besides its own built-ins and the data: ``np`` and
    R's ``poly()`` helpers (:mod:`lme2sm.frame.rfunctions`).

    Never the caller's frame, so formula text cannot reach the caller's variables.
    """
    import numpy

    from lme2sm.frame.rfunctions import HELPERS

    return patsy.EvalEnvironment([{"np": numpy, **HELPERS, "C": _categorical}])


def _categorical(data, contrast=None, levels=None):
    """patsy's ``C()``, reading a numpy array of numbers as Python numbers, as patsy
    reads a pandas column: the model frame hands patsy plain arrays, and numpy's scalars
    would name the levels ``np.float64(2.5)`` instead of ``2.5``."""
    import numpy

    if isinstance(data, numpy.ndarray) and data.dtype.kind in "iuf":
        data = numpy.array(data.tolist(), dtype=object)
    return patsy.builtins.C(data, contrast, levels)


def _level(suffix: str) -> str:
    """The level in a patsy contrast suffix: ``[T.Male]`` → ``Male``, ``[a]`` → ``a``."""
    inner = suffix[1:-1] if suffix.startswith("[") and suffix.endswith("]") else suffix
    for prefix in ("T.", "S.", "H.", "D."):
        if inner.startswith(prefix):
            return inner[len(prefix) :]
    return inner


def _r_level(level: str) -> str:
    return {"True": "TRUE", "False": "FALSE"}.get(level, level)


def _labels_by_code(part: LinearPart) -> dict[str, str]:
    """patsy's normalised code for each factor of ``part`` → its lme4 label."""
    out: dict[str, str] = {}
    for term in part.terms:
        for factor in term.factors:
            out[EvalFactor(to_patsy(factor)).code] = _factor_label(factor)
    return out


def _factor_label(factor: Expr) -> str:
    return factor.label


def column_name_pairs(part: LinearPart, info: patsy.DesignInfo) -> list[tuple[str, str]]:
    """``(patsy name, lme4 name)`` for every column of ``info``, in lme4's order.

    lme4's order is the intercept, then the formula's terms in R's order, each
    term's columns in patsy's (= R's) order.
    """
    labels = _labels_by_code(part)
    by_term: dict[frozenset[str], list[tuple[str, str]]] = {}
    for term, codings in info.term_codings.items():
        key = frozenset(f.code for f in term.factors)
        by_term[key] = list(_term_pairs(codings, info, labels))
    ordered: list[tuple[str, str]] = []
    if frozenset() in by_term:
        ordered += by_term.pop(frozenset())
    for term in part.terms:
        key = frozenset(EvalFactor(to_patsy(f)).code for f in term.factors)
        ordered += by_term.pop(key, [])
    for rest in by_term.values():  # anything patsy added that R would not name: keep it
        ordered += rest
    return ordered


def _term_pairs(
    codings, info: patsy.DesignInfo, labels: dict[str, str]
) -> Iterator[tuple[str, str]]:
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
            sm_pieces, r_pieces = [], []
            for factor, idx in zip(subterm.factors, combo):
                fi = info.factor_infos[factor]
                label = labels.get(factor.code, factor.name())
                if fi.type == "numerical":
                    if fi.num_columns > 1:
                        sm_pieces.append(f"{factor.name()}[{idx}]")
                        r_pieces.append(f"{label}{idx + 1}")
                    else:
                        sm_pieces.append(factor.name())
                        r_pieces.append(label)
                else:
                    suffix = subterm.contrast_matrices[factor].column_suffixes[idx]
                    sm_pieces.append(f"{factor.name()}{suffix}")
                    r_pieces.append(label + _r_level(_level(suffix)))
            if sm_pieces:
                yield ":".join(sm_pieces), ":".join(r_pieces)
            else:
                yield "Intercept", INTERCEPT
