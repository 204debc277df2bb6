"""Scalar random-effects terms, the input of the variance-component engine.

A scalar term is one lme4 term with a single model-matrix column per level of its
grouping factor: ``(1 | g)`` (a random intercept) or ``(0 + x | g)`` (a random slope
without an intercept). Its design matrix ``Z_j`` (n x q_j) has exactly one non-zero
per row: ``Z_j[i, codes[i]] = covariate[i]`` (or 1 for an intercept). The term is
described by its codes, never by a dense matrix.

In statsmodels MixedLM the same term is the variance component ``name`` with
``vc_formula[name] = "0 + C(g)"`` (intercept) or ``"0 + C(g):x"`` (slope); patsy names
the columns ``C(g)[level]`` and ``C(g)[level]:x``, and ``random_effects`` labels them
``name[C(g)[level]]``. :meth:`ScalarTerm.column_name` reproduces those labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

__all__ = ["ScalarTerm", "term_values", "term_matrix", "validate_terms"]


@dataclass(frozen=True)
class ScalarTerm:
    """One scalar random-effects term.

    Parameters
    ----------
    name : str
        The statsmodels variance-component name (the ``vc_formula`` key), e.g. ``"plate"``.
    codes : numpy.ndarray
        int64 level index per row, ``0 .. len(levels) - 1``.
    levels : tuple
        Level labels (strings); ``levels[c]`` is the label of code ``c``. Codes are
        expected to follow the order patsy's ``C()`` would use (sorted levels), so that
        ``random_effects`` lists columns in the same order as plain MixedLM.
    covariate : numpy.ndarray or None
        ``None`` for a random intercept ``(1 | g)``; the ``x`` values for ``(0 + x | g)``.
    factor : str or None
        The text inside ``C(...)`` in the equivalent ``vc_formula`` (default: ``name``).
        Only used for labels.
    covariate_name : str or None
        The name of ``x`` in ``"0 + C(g):x"`` (default ``"x"``). Only used for labels.
    """

    name: str
    codes: np.ndarray
    levels: tuple
    covariate: np.ndarray | None = None
    factor: str | None = None
    covariate_name: str | None = None

    @property
    def n_levels(self) -> int:
        """Number of levels ``q_j`` (columns of ``Z_j``)."""
        return len(self.levels)

    @property
    def is_intercept(self) -> bool:
        """True for ``(1 | g)``, False for ``(0 + x | g)``."""
        return self.covariate is None

    def column_name(self, level: object) -> str:
        """The patsy column name of one level, as plain MixedLM labels it.

        Parameters
        ----------
        level : object
            A level label.

        Returns
        -------
        str
            ``"C(g)[level]"`` for an intercept, ``"C(g)[level]:x"`` for a slope.
        """
        factor = self.factor if self.factor is not None else self.name
        base = f"C({factor})[{level}]"
        if self.covariate is None:
            return base
        cov = self.covariate_name if self.covariate_name is not None else "x"
        return f"{base}:{cov}"


def term_values(term: ScalarTerm, n: int) -> np.ndarray:
    """The non-zero value of ``Z_j`` in every row (ones for an intercept).

    Parameters
    ----------
    term : ScalarTerm
        The term.
    n : int
        Number of rows.

    Returns
    -------
    numpy.ndarray
        float64 array of length ``n``.
    """
    if term.covariate is None:
        return np.ones(n)
    return np.asarray(term.covariate, dtype=np.float64)


def term_matrix(term: ScalarTerm, n: int) -> sparse.csr_array:
    """The sparse design matrix ``Z_j`` (n x q_j, one non-zero per row).

    Parameters
    ----------
    term : ScalarTerm
        The term.
    n : int
        Number of rows.

    Returns
    -------
    scipy.sparse.csr_array
        ``Z_j`` in CSR form, built in O(n).
    """
    codes = np.asarray(term.codes, dtype=np.int64)
    indptr = np.arange(n + 1, dtype=np.int64)
    return sparse.csr_array((term_values(term, n), codes, indptr), shape=(n, term.n_levels))


def validate_terms(terms: Sequence[ScalarTerm], n: int) -> None:
    """Check codes, levels and covariates of every term; raise ValueError if wrong.

    Parameters
    ----------
    terms : sequence of ScalarTerm
        The terms.
    n : int
        Number of rows the codes must have.
    """
    if len(terms) == 0:
        raise ValueError("at least one random-effects term is required")
    names = [t.name for t in terms]
    if len(set(names)) != len(names):
        raise ValueError(f"variance-component names must be unique, got {names}")
    for t in terms:
        codes = np.asarray(t.codes)
        if codes.shape != (n,):
            raise ValueError(f"term {t.name!r}: codes must have shape ({n},), got {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"term {t.name!r}: codes must be integers")
        if len(t.levels) == 0:
            raise ValueError(f"term {t.name!r}: no levels")
        if n and (codes.min() < 0 or codes.max() >= len(t.levels)):
            raise ValueError(f"term {t.name!r}: codes must lie in 0..{len(t.levels) - 1}")
        if t.covariate is not None:
            cov = np.asarray(t.covariate, dtype=np.float64)
            if cov.shape != (n,):
                raise ValueError(
                    f"term {t.name!r}: covariate must have shape ({n},), got {cov.shape}"
                )
            if not np.all(np.isfinite(cov)):
                raise ValueError(f"term {t.name!r}: covariate has non-finite values")
