"""Preparing the caller's data for a translated model (never modifying the caller's frame).

Checks that every column the formula reads exists (suggesting close matches), that
the response is numeric, drops rows with missing values (and says how many), builds
one string column per grouping factor (``b:a`` holds the level combinations) and
computes the finest exact ``groups`` partition: the connected components of the rows
linked by shared levels of any grouping factor.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from lme2sm.errors import DataError, DroppedRowsWarning
from lme2sm.formula.bind import bind_calls
from lme2sm.formula.functions import WHOLE_COLUMN, option
from lme2sm.formula.model import Call, Name, ParsedFormula


@dataclass(frozen=True)
class PreparedData:
    """The model's own copy of the data and what was done to make it."""

    frame: pd.DataFrame
    n_dropped: int
    group_columns: dict[str, str]
    """lme4 grouping-factor name (``b:a``) → column of ``frame`` holding its levels."""
    created_columns: dict[str, tuple[str, ...]]
    """Columns made here → the data columns they combine (for ``code()``)."""
    level_order: dict[str, tuple[str, ...]]
    """lme4 grouping-factor name → its levels in R's factor order."""


def check_columns(data: pd.DataFrame, needed: Sequence[str], formula: str) -> None:
    """Raise a DataError naming the first missing column, with close matches."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, not {type(data).__name__}")
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
        if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
            raise DataError(
                f"the response column {name!r} must be numeric, but it holds "
                f"{col.dtype} values (e.g. {col.dropna().iloc[0]!r}); "
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
    assigning through the frame cost 1.5 ms of pandas work on sleepstudy's 180 rows."""
    names = list(dict.fromkeys(columns))
    cols = {name: data[name] for name in names}
    missing = {name: col.isna().to_numpy(dtype=bool) for name, col in cols.items()}
    incomplete = np.logical_or.reduce(list(missing.values())) if missing else None
    n_dropped = int(incomplete.sum()) if incomplete is not None else 0
    if n_dropped:
        which = ", ".join(f"{c} ({int(m.sum())})" for c, m in missing.items() if m.any())
        warnings.warn(
            f"dropped {n_dropped} of {len(data)} rows with missing values in: {which}",
            DroppedRowsWarning,
            stacklevel=3,
        )
        keep = ~incomplete
        cols = {name: col[keep] for name, col in cols.items()}
    if len(data) - n_dropped == 0:
        raise DataError("no complete rows left after dropping rows with missing values")
    index = data.index if not n_dropped else data.index[~incomplete]
    frame = pd.DataFrame(
        {name: plain_column(col, name) for name, col in cols.items()}, index=index, copy=True
    )
    return frame, n_dropped


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
    return col


def level_strings(col: pd.Series) -> pd.Series:
    """Grouping levels as plain strings, one per distinct value, exactly.

    ``1.0`` becomes ``"1"`` as in R; whole floats of any size are written as the
    integer they are (``2.0**64`` → ``"18446744073709551616"``), never through int64,
    so distinct IDs never merge. The same value gives the same text whatever the
    column's dtype (float, object, categorical).
    """
    codes, uniques = pd.factorize(col, sort=False)
    texts = np.array([_level_string(v) for v in uniques], dtype=object)
    out = np.empty(len(codes), dtype=object)
    valid = codes >= 0
    out[valid] = texts[codes[valid]]
    out[~valid] = None
    return pd.Series(out, index=col.index, dtype=object)


def _level_string(value) -> str:
    if isinstance(value, float | np.floating) and not isinstance(value, bool):
        value = float(value)
        return str(int(value)) if np.isfinite(value) and value.is_integer() else repr(value)
    return str(value)


def add_group_columns(
    frame: pd.DataFrame, groups: dict[str, tuple[str, ...]], other_uses: set[str]
) -> PreparedData:
    """Add one plain-string column per grouping factor; return the prepared data.

    ``groups`` maps lme4 names (``b:a``) to the columns they combine. A single text
    column is used as it is; a numeric or categorical one used elsewhere in the
    formula gets a separate string copy, so its other uses keep their type.
    """
    # R's level order comes from the columns as they are (numbers sort as numbers),
    # before any of them is replaced by its strings below
    combined = {name: _combinations(frame, f) for name, f in groups.items() if len(f) > 1}
    orders = {
        name: r_level_order(frame, factors, combined[name][1] if name in combined else None)
        for name, factors in groups.items()
    }
    group_columns: dict[str, str] = {}
    created: dict[str, tuple[str, ...]] = {}
    for name, factors in groups.items():
        if len(factors) == 1:
            col = frame[factors[0]]
            plain = pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)
            if plain and not isinstance(col.dtype, pd.CategoricalDtype):
                frame[factors[0]] = col.astype(object)
                group_columns[name] = factors[0]
                continue
            target = factors[0] if factors[0] not in other_uses else _fresh(frame, name + ".grp")
            frame[target] = level_strings(col)
            group_columns[name] = target
            if target != factors[0]:
                created[target] = factors
            continue
        target = _fresh(frame, name)
        frame[target] = combined[name][0]
        group_columns[name] = target
        created[target] = factors
    return PreparedData(frame, 0, group_columns, created, orders)


def _component_rank(col: pd.Series) -> dict[str, int]:
    """Rank of each level as R's ``factor()`` orders it: categories, numbers, or text."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = [c for c in col.cat.categories if c in set(col.dropna())]
        return {s: i for i, s in enumerate(level_strings(pd.Series(cats)))}
    if pd.api.types.is_object_dtype(col.dtype):  # numbers in an object column sort as numbers
        values = pd.Series(col.dropna().unique())
    else:
        values = col.dropna().unique()
    numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(
        values.dtype
    )
    if numeric:
        ordered = np.sort(np.asarray(values))
        return {_level_string(v): i for i, v in enumerate(ordered)}
    texts = sorted({_level_string(v) for v in values})
    return {s: i for i, s in enumerate(texts)}


def r_level_order(
    frame: pd.DataFrame,
    factors: tuple[str, ...],
    combos: list[tuple[str, ...]] | None = None,
) -> tuple[str, ...]:
    """Levels of the grouping factor ``factors`` (``b:a`` → ``("b", "a")``) in R's order.

    R's ``b:a`` varies the first factor slowest, keeping only combinations present
    (``combos``, the second value of :func:`_combinations`, when already computed).
    """
    ranks = [_component_rank(frame[f]) for f in factors]
    if len(factors) == 1:  # one column: its levels, already ranked
        return tuple(sorted(ranks[0], key=ranks[0].__getitem__))
    if combos is None:
        _, combos = _combinations(frame, factors)
    keys = sorted((tuple(r[v] for r, v in zip(ranks, row)), ":".join(row)) for row in combos)
    return tuple(label for _, label in keys)


def _combinations(
    frame: pd.DataFrame, factors: tuple[str, ...]
) -> tuple[pd.Series, list[tuple[str, ...]]]:
    """Each row's ``a:b`` label (None where a value is missing) and the distinct
    combinations present, as tuples of level strings: one factorize per column and a
    string per distinct combination, not per row.

    The per-column codes make one integer key per row (mixed radix, 0 for a missing
    value), so the distinct combinations come from a 1-d ``np.unique``; the row-wise
    ``np.unique(axis=0)`` it replaces sorted a structured view, 2.2 ms on the schools
    data's 2,350 rows for one three-factor interaction.
    """
    n = len(frame)
    codes, texts = [], []
    for f in factors:
        c, uniques = pd.factorize(frame[f], sort=False)
        codes.append(c)
        texts.append([_level_string(v) for v in uniques])
    radices = [len(t) + 1 for t in texts]
    if float(np.prod(np.asarray(radices, dtype=float))) < 2.0**62:
        key = np.zeros(n, dtype=np.int64)
        for c, r in zip(codes, radices):
            key = key * r + (c + 1)
        uniq, inverse = np.unique(key, return_inverse=True)
        rows = np.empty((len(uniq), len(factors)), dtype=np.int64)
        rest = uniq
        for j in range(len(factors) - 1, -1, -1):
            rest, digit = np.divmod(rest, radices[j])
            rows[:, j] = digit - 1
    else:  # pragma: no cover - needs more than 2**62 possible combinations
        key = np.column_stack(codes) if n else np.zeros((0, len(factors)), dtype=np.int64)
        rows, inverse = np.unique(key, axis=0, return_inverse=True)
    complete = np.all(rows >= 0, axis=1)
    combos = [tuple(t[c] for t, c in zip(texts, row)) for row in rows[complete].tolist()]
    labels = np.full(len(rows), None, dtype=object)
    labels[complete] = [":".join(c) for c in combos]
    return pd.Series(labels[inverse.ravel()], index=frame.index, dtype=object), combos


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
        if not all(isinstance(v, str) for v in col.unique()):
            continue
        frame[name] = pd.Categorical(col, categories=sorted(col.unique()))


def _fresh(frame: pd.DataFrame, name: str) -> str:
    candidate = name
    while candidate in frame.columns:
        candidate += "_"
    return candidate


def check_lme4_sizes(n_obs: int, levels_per_term: Sequence[tuple[str, str, int, int]]) -> None:
    """lme4's size checks, worded as lme4 words them (``checkNlevels``, ``checkZdims``).

    ``levels_per_term`` holds, per random term, ``(term text, grouping factor, number
    of levels, number of columns)``, e.g. ``("Days | Subject", "Subject", 18, 2)``.
    Raises a DataError when a grouping factor has one level or at least ``n_obs``
    levels, or when a term has at least ``n_obs`` random effects (levels × columns).

    >>> check_lme4_sizes(6, [("x | g", "g", 3, 2)])
    Traceback (most recent call last):
    ...
    lme2sm.errors.DataError: number of observations (=6) <= number of random effects (=6) for term (x | g); the random-effects parameters and the residual variance (or scale parameter) are probably unidentifiable
    """
    single = [g for _, g, k, _ in levels_per_term if k < 2]
    if single:
        raise DataError(
            "grouping factors must have > 1 sampled level (problems: "
            + ", ".join(dict.fromkeys(single))
            + ")"
        )
    many = [g for _, g, k, _ in levels_per_term if k >= n_obs]
    if many:
        raise DataError(
            "number of levels of each grouping factor must be < number of observations "
            "(problems: " + ", ".join(dict.fromkeys(many)) + ")"
        )
    for term, _, k, q in levels_per_term:
        if k * q >= n_obs:
            raise DataError(
                f"number of observations (={n_obs}) <= number of random effects (={k * q}) "
                f"for term ({term}); the random-effects parameters and the residual variance "
                "(or scale parameter) are probably unidentifiable"
            )


def check_levels(frame: pd.DataFrame, group_columns: dict[str, str]) -> None:
    """lme4 refuses a grouping factor with one level or with as many levels as rows."""
    n = len(frame)
    for name, col in group_columns.items():
        k = frame[col].nunique()
        if k < 2:
            raise DataError(
                f"the grouping factor {name!r} has only {k} level in the data used; a "
                "random effect needs at least two levels (lme4 refuses this too): "
                "drop the term or check the column"
            )
        if k >= n:
            raise DataError(
                f"the grouping factor {name!r} has {k} levels for {n} rows, one per row, so "
                "its variance cannot be told apart from the residual variance (lme4 "
                "refuses this too): drop the term or group by a coarser factor"
            )


def components(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[int, np.ndarray]:
    """Connected components of rows linked by shared levels of any of ``columns``.

    Returns the number of components and a component index per row. This is the
    finest partition in which every grouping factor nests: one component when the
    factors are fully crossed, the top factor's levels when they are nested.
    """
    n = len(frame)
    if not columns:
        return 1, np.zeros(n, dtype=np.int64)
    rows, cols = [], []
    offset = n
    for col in columns:
        codes, uniques = pd.factorize(frame[col], sort=False)
        rows.append(np.arange(n))
        cols.append(codes + offset)
        offset += len(uniques)
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    graph = sp.coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(offset, offset))
    n_comp, labels = connected_components(graph, directed=False)
    row_labels = labels[:n]
    # renumber in order of first appearance so component 1 holds the first row
    _, first = np.unique(row_labels, return_index=True)
    order = np.argsort(np.argsort(first))
    relabelled = order[np.searchsorted(np.unique(row_labels), row_labels)]
    return int(len(first)), relabelled.astype(np.int64)


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


def formula_group_columns(frame: pd.DataFrame, parsed) -> tuple[PreparedData, set[str]]:
    """One string column per grouping factor of ``parsed`` (:func:`add_group_columns`),
    and the columns the formula uses besides grouping (their types are kept)."""
    groups_of = {t.group: t.group_factors for t in parsed.random_terms}
    other_uses = set(parsed.fixed_part.variables()) | set(parsed.response_expr.variables())
    for t in parsed.random_terms:
        other_uses |= set(t.effects_part.variables())
    return add_group_columns(frame, groups_of, other_uses), other_uses
