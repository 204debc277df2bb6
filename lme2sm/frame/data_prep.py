"""Preparing the caller's data for a model (never modifying the caller's frame).

Checks that every column the formula reads exists (suggesting close matches), that
the response is numeric, drops rows with missing values (and says how many), turns
text factors into Categoricals, and computes ``scale()``/``poly()``'s numbers from the
whole columns first, as R does. Grouping factors are :mod:`.grouping`'s (re-exported
here for the callers that prepare a frame step by step).
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from lme2sm.errors import DataError, DroppedRowsWarning
from lme2sm.formula.bind import bind_calls, calls
from lme2sm.formula.functions import WHOLE_COLUMN, option
from lme2sm.formula.model import Call, Name, ParsedFormula
from lme2sm.formula.rchars import char_label, non_ascii_digits
from lme2sm.frame.grouping import (  # noqa: F401  (re-exported)
    PreparedData,
    add_group_columns,
    check_levels,
    check_lme4_sizes,
    components,
    formula_group_columns,
    level_strings,
    level_text,
    r_level_order,
)


def check_columns(
    data: pd.DataFrame, needed: Sequence[str], formula: str, what: str = "data"
) -> None:
    """Raise a DataError naming the first missing column, with close matches; ``what``
    names the argument (``newdata``)."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame, not {type(data).__name__}")
    if isinstance(data.columns, pd.MultiIndex):
        raise DataError(
            f"{what} has MultiIndex (hierarchical) column labels, which a formula cannot name;"
            f" flatten them first, e.g. {what}.columns = ['_'.join(map(str, c)) for c in "
            f"{what}.columns]\n    formula: {formula}"
        )
    duplicated = () if data.columns.is_unique else set(data.columns[data.columns.duplicated()])
    present = set(data.columns)
    for name in needed:
        if name in duplicated:
            raise DataError(
                f"the data have more than one column named {name!r}, and the formula uses "
                f"it: rename or drop the duplicates first\n    formula: {formula}"
            )
        if name in present:
            continue
        columns = [str(c) for c in data.columns]
        close = difflib.get_close_matches(name, columns, n=3, cutoff=0.6)
        lower = [c for c in columns if c.lower() == name.lower() and c not in close]
        hint = close + lower
        text = f"the formula uses a column {name!r} that the data do not have"
        digits = non_ascii_digits(name)
        if digits:
            text += (
                f" ({char_label(digits[0])} is a letter to R, so {name} is a name, not a "
                "number; write numbers with the digits 0-9)"
            )
        if hint:
            text += "; did you mean " + " or ".join(repr(h) for h in hint) + "?"
        else:
            shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
            text += f"; the data's columns are: {shown}"
        raise DataError(text + f"\n    formula: {formula}")


def check_response(frame: pd.DataFrame, response_vars: Sequence[str]) -> None:
    """lme4 fits a numeric response only; say so clearly for text or factor columns."""
    for name in response_vars:
        col = frame[name]
        dtype = col.dtype
        plain = isinstance(dtype, np.dtype) and dtype.kind in "iuf"  # numpy numbers
        if not plain and not (
            pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        ):
            present = col.dropna()
            example = f" (e.g. {present.iloc[0]!r})" if len(present) else ""
            raise DataError(
                f"the response column {name!r} must be numeric, but it holds "
                f"{col.dtype} values{example}; "
                "convert it first (pd.to_numeric) or choose a numeric response"
            )
        values = col.to_numpy(dtype=float)
        if len(values) > 1 and np.all(values == values[0]):
            raise DataError(
                f"the response column {name!r} is constant (every value is {values[0]:g}) in "
                "the rows used: there is no variation to model (lme4 returns a degenerate "
                "fit with a residual standard deviation of 0)"
            )


def drop_missing(data: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """Copy the used columns and drop incomplete rows, as lme4's na.omit does; warn.

    Column by column, and one DataFrame built at the end: selecting, copying and
    assigning through the frame cost 1.5 ms of pandas work on sleepstudy's 180 rows.
    Plain numpy numbers and pandas text are read as numpy arrays (:func:`_plain_values`:
    ``np.isnan`` for the missing floats), the rest through pandas (:func:`plain_column`).
    """
    frame, n_dropped, _ = drop_missing_with(data, columns, {})
    return frame, n_dropped


def drop_missing_with(
    data: pd.DataFrame, columns: Sequence[str], extra: dict[str, np.ndarray]
) -> tuple[pd.DataFrame, int, dict[str, np.ndarray]]:
    """:func:`drop_missing` with more float vectors of one value per row (``extra``: the
    prior weights, NaN where missing) checked and kept alongside but not put in the
    frame: a copy of the data with them as a column, then dropping it again, cost 2.7 of
    3.6 ms of sleepstudy's weighted frame. Returns the frame, the rows dropped and the
    extra vectors' complete rows."""
    names = list(dict.fromkeys(columns))
    values: dict[str, object] = {}
    missing: dict[str, np.ndarray | None] = {}
    for name in names:
        col = data[name]
        values[name], missing[name] = _plain_values(col)
    for name, vector in extra.items():
        if name not in missing:  # a variable of the formula too: its rows are the same
            missing[name] = np.isnan(vector)
    masks = [m for m in missing.values() if m is not None]
    incomplete = np.logical_or.reduce(masks) if masks else None
    n_dropped = int(incomplete.sum()) if incomplete is not None else 0
    if n_dropped:
        which = ", ".join(
            f"{c} ({int(m.sum())})" for c, m in missing.items() if m is not None and m.any()
        )
        warnings.warn(
            f"dropped {n_dropped} of {len(data)} rows with missing values in: {which}",
            DroppedRowsWarning,
            stacklevel=3,
        )
    if len(data) == 0:
        raise DataError("the data have no rows: there is nothing to fit")
    if len(data) - n_dropped == 0:
        raise DataError("no complete rows left after dropping rows with missing values")
    keep = None if not n_dropped else ~incomplete
    index = data.index if keep is None else data.index[keep]
    frame = pd.DataFrame(
        {name: _kept(v, keep, index, name) for name, v in values.items()}, index=index, copy=False
    )
    if len(names) == len(data.columns) and names == data.columns.tolist():
        # the same labels: share the data's (immutable) column index, whose lookup table
        # pandas has built already (0.1 ms to build again for three text labels)
        frame.columns = data.columns
    kept = {name: v.copy() if keep is None else v[keep] for name, v in extra.items()}
    return frame, n_dropped, kept


def _plain_values(col: pd.Series) -> tuple[object, np.ndarray | None]:
    """A column's values and its missing rows (None: none can be missing).

    numpy numbers and logicals come as their numpy array, pandas text (``str``,
    ``string``) as an object array of ``str``; anything else stays a Series for
    :func:`plain_column`."""
    dtype = col.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "fiub":
        array = col.to_numpy()
        return array, (np.isnan(array) if dtype.kind == "f" else None)
    if isinstance(dtype, pd.StringDtype):
        return col.to_numpy(dtype=object), np.asarray(col.array.isna(), dtype=bool)
    return col, col.isna().to_numpy(dtype=bool)


def _kept(values, keep: np.ndarray | None, index: pd.Index, name: str):
    """The model's own copy of one column's complete rows (never the caller's data)."""
    if isinstance(values, pd.Series):
        return plain_column(values if keep is None else values[keep], name).copy(deep=True)
    array = values.copy() if keep is None else values[keep]
    if array.dtype == object:  # text stays object: pandas would infer its own str dtype
        return pd.Series(array, index=index, dtype=object, copy=False)
    return array


def plain_column(col: pd.Series, name: str) -> pd.Series:
    """A column without missing values in a dtype patsy and statsmodels read as R would.

    pandas' nullable and pyarrow types become numpy ones (``Int64`` → ``int64``,
    ``boolean``/``bool[pyarrow]`` → ``bool``, ``string`` → text); a Categorical loses
    the categories no row uses (R's ``drop.unused.levels``, which lme4 applies);
    datetimes, durations, periods, intervals and complex numbers are refused with the
    column named.
    """
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return col.cat.remove_unused_categories()
    kind = getattr(dtype, "kind", "O")
    if pd.api.types.is_bool_dtype(dtype):
        return col.astype(bool)
    if (
        pd.api.types.is_datetime64_any_dtype(dtype)
        or kind in "mMc"
        or isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype)
    ):
        raise DataError(
            f"the column {name!r} holds {dtype} values, which a model formula cannot use: "
            "convert it to numbers (e.g. days since a start date) or to text first"
        )
    if pd.api.types.is_integer_dtype(dtype) and not isinstance(dtype, np.dtype):
        return col.astype("uint64" if kind == "u" else "int64")
    if pd.api.types.is_float_dtype(dtype) and not isinstance(dtype, np.dtype):
        return col.astype("float64")
    if pd.api.types.is_string_dtype(dtype) and not isinstance(dtype, np.dtype):
        return col.astype(str).astype(object)
    if kind == "O":
        bad = next((v for v in col if not isinstance(v, Hashable)), None)
        if bad is not None:
            raise DataError(
                f"the column {name!r} holds {type(bad).__name__} values (e.g. {bad!r}), which "
                "a model formula cannot use: convert it to numbers or text first"
            )
        check_mixed_levels(col, name)
    return col


def check_mixed_levels(col: pd.Series, name: str) -> None:
    """Refuse an object column whose levels R could not tell apart or hold together.

    R holds a factor's levels as text, so two distinct values that print the same
    (``1`` and ``"1"``, ``True`` and ``"True"``) would be one level in lme4 and two in
    patsy; and bytes (``b"a"``) beside text or numbers are a decoding slip R has no
    counterpart for. Either is a DataError naming the column and two such values.

    >>> check_mixed_levels(pd.Series(["a", b"a"], dtype=object), "g")
    Traceback (most recent call last):
    ...
    lme2sm.errors.DataError: the column 'g' mixes bytes with other values ('a' and b'a'), which R cannot hold in one factor: decode the bytes (data['g'].str.decode('utf-8')) or convert the column with data['g'].astype(str) first
    """
    _, uniques = pd.factorize(col, sort=False)
    values = list(uniques)
    is_bytes = [isinstance(v, bytes | bytearray) for v in values]
    if any(is_bytes) and not all(is_bytes):
        pair = (values[is_bytes.index(False)], values[is_bytes.index(True)])
        raise DataError(
            f"the column {name!r} mixes bytes with other values ({pair[0]!r} and {pair[1]!r}), "
            "which R cannot hold in one factor: decode the bytes "
            f"(data[{name!r}].str.decode('utf-8')) or convert the column with "
            f"data[{name!r}].astype(str) first"
        )
    seen: dict[str, object] = {}
    for v in values:
        text = level_text(v)
        if text in seen:
            raise DataError(
                f"the column {name!r} holds {seen[text]!r} and {v!r}, distinct values that "
                f"R reads as the same level {text!r}: make the column one type first "
                f"(e.g. data[{name!r}].astype(str))"
            )
        seen[text] = v


def categorize_text(frame: pd.DataFrame, columns: Sequence[str], keep: set[str]) -> None:
    """Text columns the model uses as factors become pandas Categoricals, in place.

    The categories are the sorted levels, the order patsy would give the text itself
    (so names and reference levels do not change), but patsy then codes them with
    pandas' vectorised machinery instead of a Python loop per row: on InstEval's
    73,421 rows that is 0.9 s saved. Columns in ``keep`` (grouping columns that
    statsmodels splits per group, where all categories would become columns) stay text.
    """
    for name in dict.fromkeys(columns):
        if name in keep or name not in frame.columns:
            continue
        col = frame[name]
        if isinstance(col.dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)
        ):
            continue
        codes, uniques = pd.factorize(col, sort=False)  # one hash pass over the rows
        levels = list(uniques)
        if not all(isinstance(v, str) for v in levels):
            continue
        order = sorted(range(len(levels)), key=levels.__getitem__)
        rank = np.empty(len(levels), dtype=codes.dtype)
        rank[order] = np.arange(len(levels))
        frame[name] = pd.Categorical.from_codes(rank[codes], [levels[i] for i in order])


# ------------------------------------------------------------------ R's order of evaluation


def bind_transforms(parsed: ParsedFormula, data: pd.DataFrame) -> ParsedFormula:
    """``parsed`` with the numbers of ``scale()`` and ``poly()`` computed from the whole
    columns of ``data``, before any row is dropped, as R's ``model.frame`` does.

    R evaluates every variable of the formula on all rows first and drops rows with a
    missing value afterwards, so ``scale(x)``'s mean and sd use rows that are later
    dropped for a missing ``z`` (only rows missing ``x`` itself are left out). The
    numbers go into the formula (``Call.baked``) and from there into the patsy text,
    where new data are evaluated with them too (R's ``makepredictcall``).
    """

    def binder(call: Call) -> tuple[float, ...] | None:
        if call.func not in WHOLE_COLUMN:
            return None
        if call.func == "poly" and option(call, "raw", 2, 0.0) != 0.0:
            return None
        values = _argument_values(call, data)
        if call.func == "scale":
            from lme2sm.frame.rfunctions import scale_numbers

            center = option(call, "center", 1, 1.0) != 0.0
            scale = option(call, "scale", 2, 1.0) != 0.0
            return scale_numbers(values, center, scale)
        from lme2sm.frame.rfunctions import poly_coefficients

        missing = int(np.isnan(values).sum())
        if missing:
            raise DataError(
                f"missing values are not allowed in 'poly' (R refuses them too): "
                f"{call.label} reads a value missing in {missing} rows; drop those rows first"
            )
        degree = int(option(call, "degree", 1, 1.0))
        try:
            alpha, norm2 = poly_coefficients(values, degree)
        except ValueError as exc:
            raise DataError(f"{call.label}: {exc}") from None
        return (*alpha, *norm2)

    if not any(call.func in WHOLE_COLUMN for call in calls(parsed)):
        return parsed  # nothing to bind: the same (cached) parse, so its designs are too
    return bind_calls(parsed, binder)


def _argument_values(call: Call, data: pd.DataFrame) -> np.ndarray:
    """The data argument of ``call`` evaluated on every row of ``data`` (NaN kept)."""
    arg = call.args[0]
    if isinstance(arg, Name):
        col = data[arg.name]
        text = f"column {arg.name!r}"
        if isinstance(col, pd.DataFrame):
            raise DataError(f"the data have more than one column named {arg.name!r}")
    else:
        from lme2sm.frame.design import evaluate

        text = arg.label
        col = pd.Series(evaluate(arg, data, call.label)[:, 0], index=data.index)
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        raise DataError(
            f"{call.func}() needs numbers, but {text} holds {col.dtype} values (in {call.label})"
        )
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def require_random_terms(parsed) -> None:
    """lmer needs at least one ``( ... | group)`` term; say so with the formula."""
    from lme2sm.errors import FormulaError

    if not parsed.random_terms:
        raise FormulaError(
            "the formula has no random-effects terms such as (1 | group); "
            "for a fixed-effects-only model use statsmodels' ols, or add a term",
            parsed.formula,
            (0, len(parsed.formula)),
        )
