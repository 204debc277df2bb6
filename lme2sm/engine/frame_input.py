"""The engine's input from a model frame: each term's rows and shape, and the sums over rows.

The model frame (:mod:`lme2sm.frame`) holds the design as arrays and knows nothing of the
engine; this module turns it into what the engine takes: :class:`TermRows` and
:class:`TermSpec` per random term and the :class:`CrossProducts` of ``[Z X y]``. A frame
of data beyond memory (``frame.lazy``) already carries its summed cross-products.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from lme2sm.engine.crossprod import CrossProducts, TermRows, cross_products, term_matrix
from lme2sm.engine.lmm import ProfiledLMM
from lme2sm.engine.theta import TermSpec
from lme2sm.errors import RowsNotInMemoryError

__all__ = [
    "term_rows",
    "term_specs",
    "frame_crossprods",
    "crossprods_with_response",
    "frame_Zt",
    "profiled_of",
    "response_shift",
]

_CACHE = "_engine_crossprods"
"""Where a frame keeps its sums once computed (the frame is immutable, so they stay valid)."""


def term_rows(term) -> TermRows:
    """One random term of a model frame as the engine's rows (codes, levels, Z)."""
    return TermRows(term.codes, term.n_levels, term.Z)


def term_specs(frame) -> list[TermSpec]:
    """The shape of each random term's covariance (levels, columns, structure), lme4's
    term order."""
    return [TermSpec(t.n_levels, t.k, structure=t.structure) for t in frame.terms]


def response_shift(
    fixed_names: tuple[str, ...], y: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray | None:
    """The ``beta_shift`` of the engine's sums (see ``CrossProducts``): the response's
    (weighted) mean on the intercept, None without an intercept."""
    if "(Intercept)" not in fixed_names or len(y) == 0:
        return None
    shift = np.zeros(len(fixed_names))
    center = float(np.average(y, weights=weights))
    if not np.isfinite(center):
        return None
    shift[fixed_names.index("(Intercept)")] = center
    return shift


def frame_crossprods(frame) -> CrossProducts:
    """The engine's sums over rows of a model frame (response minus offset), computed once
    per frame."""
    if getattr(frame, "lazy", False):
        return frame.crossprods
    cached = frame.__dict__.get(_CACHE)
    if cached is not None:
        return cached
    y = frame.y - frame.offset
    cp = cross_products(
        [term_rows(t) for t in frame.terms],
        frame.X,
        y,
        frame.weights,
        beta_shift=response_shift(frame.fixed_names, y, frame.weights),
    )
    frame.__dict__[_CACHE] = cp
    return cp


def crossprods_with_response(frame, y: np.ndarray) -> CrossProducts:
    """The same design's sums with another response (simulation, bootstrap)."""
    if getattr(frame, "lazy", False):
        raise RowsNotInMemoryError(
            "this model was fitted to data beyond memory: a new response for every row "
            "(simulate, parametric bootstrap) is not available; fit a sample in memory "
            "with lme2sm.lmer(formula, pandas_frame) for that"
        )
    w = frame.weights
    sw = None if w is None else np.sqrt(w)
    yy = np.asarray(y, dtype=float) - frame.offset
    yw = yy if sw is None else yy * sw
    Xw = frame.X if sw is None else frame.X * sw[:, None]
    zy = []
    for t in frame.terms:
        Zm = term_matrix(term_rows(t), sw)
        zy.append(np.asarray(Zm.T @ yw).reshape(t.n_levels, t.k))
    return frame_crossprods(frame).with_response(zy, Xw.T @ yw, float(yw @ yw))


def frame_Zt(frame) -> sp.csr_matrix:
    """Z' as a sparse matrix (q x n), terms in lme4's order (lme4's ``getME(m, "Zt")``)."""
    if getattr(frame, "lazy", False):
        raise RowsNotInMemoryError(
            "this model was fitted to data beyond memory: Z has one row per data row and "
            "is not built; the cross-products are in .crossprods"
        )
    return sp.hstack([term_matrix(term_rows(t)) for t in frame.terms]).T.tocsr()


def profiled_of(frame) -> ProfiledLMM:
    """The profiled deviance of a model frame, ready to optimise."""
    return ProfiledLMM(frame_crossprods(frame), term_specs(frame))
