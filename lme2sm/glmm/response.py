"""The response of a generalised model, read as R's ``family$initialize`` reads it.

Binomial: 0/1 numbers, a two-level factor (the first level is failure, as in R),
``cbind(successes, failures)``, or a proportion with ``weights=`` trials. Poisson:
non-negative integer counts. The result is R's ``y`` (a proportion for binomial),
``n`` (trials per row) and the glm weights (prior weights times trials).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lme2sm.errors import DataError
from lme2sm.frame import design
from lme2sm.frame.model_frame import ModelFrame
from lme2sm.glmm.family import Family

__all__ = ["GlmResponse", "glm_response"]

INT_TOL = 1e-7


@dataclass(frozen=True)
class GlmResponse:
    y: np.ndarray
    """The response (proportion of successes for binomial)."""
    trials: np.ndarray
    """R's ``n``: binomial trials per row (1 for 0/1 and Poisson)."""
    weights: np.ndarray
    """glm weights: prior weights times trials."""
    prior: np.ndarray
    """The user's prior weights (ones when none)."""
    label: str
    levels: tuple[str, str] | None = None
    """A factor response's levels (failure, success)."""


_ARITHMETIC = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide}


def _plain(expr, frame: pd.DataFrame) -> np.ndarray | float | None:
    """``expr`` on numpy alone when it is numeric columns and numbers joined by ``+ - *
    /`` (cbpp's ``size - incidence``): what patsy's ``I()`` gives (integer columns are
    exact in floats below 2^53, and one rounding of the exact result either way), without
    patsy's 2 ms; None for anything else (patsy computes it)."""
    kind = type(expr).__name__
    if kind == "Name":
        column = frame[expr.name] if expr.name in frame.columns else None
        if column is None or not pd.api.types.is_numeric_dtype(column):
            return None
        if pd.api.types.is_bool_dtype(column):
            return None
        try:
            return column.to_numpy(dtype=float)
        except (TypeError, ValueError):  # a nullable column's NA: patsy's message
            return None
    if kind == "Number":
        try:
            return float(expr.text)
        except ValueError:
            return None
    if kind == "Paren":
        return _plain(expr.inner, frame)
    if kind == "BinOp" and expr.op in _ARITHMETIC:
        left, right = _plain(expr.left, frame), _plain(expr.right, frame)
        if left is None or right is None or (expr.op == "/" and not isinstance(right, float)):
            return None  # a column divided by a column: patsy's zero handling
        with np.errstate(all="ignore"):  # inf or NaN: the caller's message, as patsy's
            return _ARITHMETIC[expr.op](left, right)
    return None


def _evaluate(expr, frame: pd.DataFrame, what: str) -> np.ndarray:
    values = _plain(expr, frame)
    if isinstance(values, np.ndarray):
        values = np.array(values, dtype=float)  # a copy: never the frame's own memory
    else:
        values = design.evaluate(expr, frame, what)
        if values.shape[1] != 1:
            raise DataError(f"{what} must be numeric, one number per row")
        values = values[:, 0]
    if not np.all(np.isfinite(values)):
        raise DataError(f"{what} is NaN or infinite in {int((~np.isfinite(values)).sum())} rows")
    return values


def glm_response(mf: ModelFrame, family: Family) -> GlmResponse:
    """R's ``y``, ``n`` and weights for ``family`` from the model frame's data."""
    expr = mf.parsed.response_expr
    frame = mf.data
    prior = np.ones(len(frame)) if mf.weights is None else np.asarray(mf.weights, dtype=float)
    if getattr(expr, "func", None) == "cbind":
        return _cbind_response(expr, frame, family, prior)
    column = frame[expr.name] if hasattr(expr, "name") and expr.name in frame.columns else None
    if column is not None and not pd.api.types.is_numeric_dtype(column):
        return _factor_response(column, expr.label, family, prior)
    y = _evaluate(expr, frame, f"the response {expr.label}")
    if family.name == "binomial":
        return _binomial_numbers(y, expr.label, prior, mf.weights is not None)
    return _positive_response(y, expr.label, family, prior)


def _cbind_response(expr, frame: pd.DataFrame, family: Family, prior) -> GlmResponse:
    """``cbind(successes, failures)``: the proportion, the trials as ``n``."""
    label = expr.label
    if family.name != "binomial":
        raise DataError(
            f"cbind(successes, failures) is a binomial response, not a {family.name} one"
        )
    s = _evaluate(expr.args[0], frame, f"the successes {expr.args[0].label}")
    f = _evaluate(expr.args[1], frame, f"the failures {expr.args[1].label}")
    if np.any(s < 0) or np.any(f < 0):
        raise DataError(
            f"negative counts in {label}: successes and failures must be >= 0 "
            "(is the second column failures, e.g. size - incidence?)"
        )
    if np.any(np.abs(s - np.round(s)) > INT_TOL) or np.any(np.abs(f - np.round(f)) > INT_TOL):
        raise DataError(f"non-integer counts in {label}: successes and failures must be whole")
    trials = s + f
    if np.any(trials == 0):
        raise DataError(
            f"{int((trials == 0).sum())} rows have no trials (successes + failures = 0); "
            "they carry no information: drop them"
        )
    return GlmResponse(s / trials, trials, prior * trials, prior, label)


def _factor_response(column: pd.Series, label: str, family: Family, prior) -> GlmResponse:
    """A two-level factor (binomial only): its first level is failure, as in R."""
    if family.name != "binomial":
        kind = "positive numbers" if family.has_dispersion else "numeric counts"
        raise DataError(f"the {family.name} response {label} must be {kind}")
    if isinstance(column.dtype, pd.CategoricalDtype):
        cats = list(column.cat.categories)
        values = column.astype(object)
    else:
        cats = sorted(pd.unique(column.astype(str)))
        values = column.astype(str)
    if len(cats) > 2:
        raise DataError(
            f"the binomial response {label} is a factor with {len(cats)} levels "
            f"({', '.join(map(str, cats[:5]))}{', ...' if len(cats) > 5 else ''}); "
            "it needs two (the first is failure, as in R)"
        )
    y = (values != cats[0]).to_numpy(dtype=float)
    levels = (str(cats[0]), str(cats[-1]))
    return GlmResponse(y, np.ones(len(y)), prior.copy(), prior, label, levels)


def _binomial_numbers(y: np.ndarray, label: str, prior, weighted: bool) -> GlmResponse:
    """0/1 answers, or proportions with the trials as weights."""
    if np.any(y < 0) or np.any(y > 1):
        raise DataError(
            f"the binomial response {label} has values outside [0, 1] (e.g. "
            f"{y[(y < 0) | (y > 1)][0]:g}); give 0/1 answers, a proportion with "
            "weights= trials, or cbind(successes, failures)"
        )
    if not weighted:
        if np.any((y != 0) & (y != 1)):
            raise DataError(
                f"the binomial response {label} has values other than 0 and 1; for "
                "proportions give the numbers of trials as weights=, or write "
                "cbind(successes, failures)"
            )
    else:
        k = y * prior
        if np.any(np.abs(k - np.round(k)) > INT_TOL * np.maximum(1, np.abs(k))):
            raise DataError(
                f"non-integer #successes: {label} times the weights must be whole numbers "
                "(weights are the numbers of trials)"
            )
    # R: with weights, n = weights and the glm weights are the weights
    return GlmResponse(y, prior.copy(), prior.copy(), np.ones(len(y)), label)


def _positive_response(y: np.ndarray, label: str, family: Family, prior) -> GlmResponse:
    """Poisson counts, or Gamma / inverse Gaussian values above zero (R's initialize)."""
    n = len(y)
    if family.has_dispersion:
        if np.any(y <= 0):
            bad = y[y <= 0][0]
            raise DataError(
                f"the {family.name} response {label} has non-positive values (e.g. {bad:g}); "
                f"the {family.name} family needs y > 0"
            )
        return GlmResponse(y, np.ones(n), prior.copy(), prior, label)
    if np.any(y < 0):
        raise DataError(f"negative counts in the Poisson response {label}")
    if np.any(np.abs(y - np.round(y)) > INT_TOL):
        raise DataError(f"non-integer counts in the Poisson response {label}")
    return GlmResponse(y, np.ones(n), prior.copy(), prior, label)
