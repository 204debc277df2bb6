"""Every call lme2sm makes into patsy: design builders, designs on new rows, one-off
expressions, the evaluation namespace.

patsy sees the data under internal names only (:mod:`.safe_names`), in a namespace of
lme2sm's own (:data:`ENV`: numpy as ``np``, R's ``poly()`` helpers, patsy's ``C``,
``I``, ``center``, contrasts), so a column cannot hide a function or a module
whatever it is called. Its messages are read back with the user's names.

Plain columns skip patsy's evaluation (:mod:`.plain_design`): a numeric column, a
factor (Categorical, text, logical, or ``factor(x)`` of numbers) with treatment
contrasts, and their interactions get patsy's own structure (its contrast choice
for interactions, its column order) from numpy's codes of the data; anything else
(``I()``, ``log()``, ``poly()``, other contrasts...) goes through patsy. Both give
the same :class:`patsy.DesignInfo`, so new rows are built the same way.

statsmodels' own formula calls (``smf.mixedlm`` in the statsmodels view and the
drop-in) evaluate the user's text in :func:`environment`: those are statsmodels'.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import patsy
from patsy.build import _build_subterm, _make_subterm_infos, _subterm_column_names_iter
from patsy.design_info import FactorInfo
from patsy.eval import EvalFactor

from lme2sm.errors import DataError
from lme2sm.formula.model import Expr, LinearPart
from lme2sm.formula.patsy_text import factor_to_patsy, response_to_patsy
from lme2sm.frame import plain_design
from lme2sm.frame.naming import Column, column_names
from lme2sm.frame.rfunctions import HELPERS
from lme2sm.frame.safe_names import (
    columns_in,
    expr_text,
    part_text,
    response_text,
    safe_name,
    user_text,
)

__all__ = [
    "ENV",
    "Design",
    "build",
    "caller_environment",
    "environment",
    "evaluate",
    "factor_codes",
    "factor_matrix",
    "rows",
]


def _categorical(data, contrast=None, levels=None):
    """patsy's ``C()``, reading a numpy array of numbers as Python numbers, as patsy
    reads a pandas column: the model frame hands patsy plain arrays, and numpy's scalars
    would name the levels ``np.float64(2.5)`` instead of ``2.5``."""
    if isinstance(data, np.ndarray) and data.dtype.kind in "iuf":
        data = np.array(data.tolist(), dtype=object)
    return patsy.builtins.C(data, contrast, levels)


ENV = patsy.EvalEnvironment([{"np": np, **HELPERS, "C": _categorical}])
"""The only names formula text sees besides patsy's built-ins and the (renamed) data:
``np`` and R's ``poly()`` helpers. Never the caller's frame, so formula text cannot
reach the caller's variables."""

_NO_NA_CHECK = patsy.NAAction(NA_types=[])
# rows with missing values are gone before patsy sees the frame (and whole-column
# transforms read NaN on purpose); NaN made by a transformation (log(0)) is the
# callers' finiteness check. patsy's own per-value NA check costs milliseconds.


def environment() -> patsy.EvalEnvironment:
    """The namespace for statsmodels' own evaluation of the user's formula text."""
    return ENV


def caller_environment(depth: int) -> patsy.EvalEnvironment:
    """patsy's environment ``depth`` frames above the caller of this function."""
    return patsy.EvalEnvironment.capture(depth + 1)


_FAILURES = (patsy.PatsyError, ValueError, TypeError)
"""patsy's errors, and its own checks on what a factor gave."""


def _data_error(what: str, exc: Exception) -> DataError:
    message = exc.message if isinstance(exc, patsy.PatsyError) else str(exc)
    return DataError(f"{what}: {user_text(message)}")


@contextlib.contextmanager
def _as_data_error(what: str) -> Iterator[None]:
    """patsy's failures as a DataError naming ``what``, in the user's names."""
    try:
        with np.errstate(all="ignore"):
            yield
    except _FAILURES as exc:
        raise _data_error(what, exc) from None


@lru_cache(maxsize=4096)
def _code(text: str) -> str:
    return EvalFactor(text).code


def factor_codes(expr: Expr) -> tuple[str, str]:
    """patsy's normalised code of a formula factor: as lme2sm's designs hold it
    (internal names) and as the user's statsmodels formula writes it."""
    return _code(expr_text(expr)), _code(factor_to_patsy(expr))


@lru_cache(maxsize=512)
def _term_list(text: str, response: bool) -> list:
    desc = patsy.ModelDesc.from_formula(f"{text} ~ 0" if response else text)
    return desc.lhs_termlist if response else desc.rhs_termlist


def source(data: pd.DataFrame, variables: Sequence[str]) -> dict[str, object]:
    """The ``variables`` of ``data`` as arrays (Categoricals kept) under internal names.

    Through a DataFrame every patsy lookup goes through pandas' indexing and Series
    machinery: sleepstudy's design pass took 6.5 ms from a DataFrame and 1.4 ms from
    a dict of the same columns' arrays.
    """
    out: dict[str, object] = {}
    for name in dict.fromkeys(variables):
        col = data[name]
        out[safe_name(name)] = (
            col.array if isinstance(col.dtype, pd.CategoricalDtype) else col.to_numpy()
        )
    return out


@dataclass(frozen=True)
class Design:
    """One model matrix: patsy's design, the columns' names and values in lme4's order."""

    info: patsy.DesignInfo
    columns: tuple[Column, ...]
    values: np.ndarray

    @property
    def patsy_names(self) -> tuple[str, ...]:
        return tuple(c.patsy for c in self.columns)


def build(
    data: pd.DataFrame,
    parts: Sequence[LinearPart],
    response: Expr | None = None,
    where: Sequence[str] = (),
    offsets: tuple[Expr, ...] = (),
    plain: bool = True,
) -> tuple[Design | None, list[Design]]:
    """The response's design (None without ``response``; ``offsets`` subtracted, as
    statsmodels' formula needs) and one design per part.

    One pass: patsy evaluates a variable once however many parts use it. ``where``
    names each part in a failure message (``" for (Days | Subject)"``). With
    ``plain=False`` patsy evaluates plain columns too (the reference the numpy path
    is tested and timed against).
    """
    texts = [(_kept(part_text, p), False) for p in parts]
    variables = [v for p in parts for v in _kept(_variables, p)]
    if response is not None:
        texts.insert(0, (_kept(response_text, response, offsets), True))
        variables += [v for e in (response, *offsets) for v in e.variables()]
    lists = [_term_list(text, lhs) for text, lhs in texts]
    arrays = source(data, variables)
    built = _plain_build(lists, arrays, len(data), tuple(texts)) if plain else None
    if built is None:
        built = _patsy_build(lists, arrays, data, parts, where)
    infos, matrices = built
    designs = []
    for part, info, values in zip(parts, infos[-len(parts) :], matrices[-len(parts) :]):
        cols, picked = _kept(_lme4_columns, part, info)
        designs.append(Design(info, cols, values[:, picked]))
    if response is None:
        return None, designs
    shown = _kept(_response_code, response, offsets)
    y = Design(infos[0], (Column(infos[0].column_names[0], shown, response.label),), matrices[0])
    return y, designs


_KEPT: dict[tuple, tuple] = {}


def _kept(compute, *objects):
    """``compute(*objects)``, kept for the very same objects: a refit of a formula hands
    the same parsed parts (the parse is cached) and the same cached patsy designs, so
    their texts and lme4 names are worked out once. Each entry holds its objects, so
    their ids cannot be reused while it is kept."""
    key = (compute, *map(id, objects))
    hit = _KEPT.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], objects)):
        return hit[1]
    value = compute(*objects)
    if len(_KEPT) >= 512:
        _KEPT.clear()
    _KEPT[key] = (objects, value)
    return value


def _variables(part: LinearPart) -> tuple[str, ...]:
    return part.variables()


def _lme4_columns(part: LinearPart, info: patsy.DesignInfo) -> tuple[tuple[Column, ...], list]:
    """The part's columns (three names each) in lme4's order, and their positions in
    patsy's matrix."""
    cols = tuple(column_names(part, info, factor_codes))
    index = info.column_name_indexes
    return cols, [index[c.patsy] for c in cols]


def _response_code(response: Expr, offsets: tuple[Expr, ...]) -> str:
    return _code(response_to_patsy(response, offsets))


@lru_cache(maxsize=4096)
def _memorized(factor: EvalFactor) -> dict | None:
    """patsy's evaluation state of a factor that needs no pass over the data."""
    state: dict = {}
    return state if factor.memorize_passes_needed(state, ENV) == 0 else None


def _plain_build(lists: list, arrays: dict, n: int, texts: tuple) -> tuple[list, list] | None:
    """patsy's designs of plain factors without patsy's evaluation (None otherwise).

    :func:`.plain_design.sniff` reads each factor's type, levels and codes with numpy;
    patsy's own functions then choose the contrasts and the column order and fill
    the columns, exactly as ``design_matrix_builders`` and ``build_design_matrices``
    (the structure is kept per formula text and factor levels: :func:`_structure`).
    """
    kinds: list[tuple] = []
    values: dict = {}
    for factor in {f for terms in lists for term in terms for f in term.factors}:
        sniffed = plain_design.sniff(factor.code, arrays)
        if sniffed is None or _memorized(factor) is None:
            return None
        kinds.append((factor.code, *_levels_key(sniffed)))
        values[factor] = sniffed[-1]
    infos, structures = _structure(texts, tuple(sorted(kinds)))
    matrices = []
    for _design, subterms, width in structures:
        out = np.empty((n, width))
        start = 0
        for st in subterms:
            _build_subterm(st, infos, values, out[:, start : start + st.num_columns])
            start += st.num_columns
        matrices.append(out)
    return [d for d, _sts, _w in structures], matrices


def _levels_key(sniffed: tuple) -> tuple:
    """A sniffed factor's levels for :func:`_structure`'s key (None for a number), with
    their types and reprs: ``True == 1`` and ``2 == 2.0``, but patsy names such levels
    apart (``[T.True]``, ``[T.2.0]``)."""
    if sniffed[0] == "numerical":
        return (None,)
    levels = sniffed[1]
    return levels, tuple(map(type, levels)), tuple(map(repr, levels))


@lru_cache(maxsize=256)
def _structure(texts: tuple, kinds: tuple) -> tuple[dict, list]:
    """patsy's factor infos and, per term list, its DesignInfo, subterms and width, for
    the term lists of ``texts`` whose factors are ``kinds`` (code → None for a number,
    else the levels). Immutable once made, so every fit of the formula shares them."""
    lists = [_term_list(text, lhs) for text, lhs in texts]
    levels_of = {code: levels for code, levels, *_types in kinds}
    infos: dict = {}
    for factor in {f for terms in lists for term in terms for f in term.factors}:
        state = _memorized(factor)
        if levels_of[factor.code] is None:
            infos[factor] = FactorInfo(factor, "numerical", state, num_columns=1)
        else:
            categories = levels_of[factor.code]
            infos[factor] = FactorInfo(factor, "categorical", state, categories=categories)
    counts = {f: 1 for f, fi in infos.items() if fi.type == "numerical"}
    levels = {f: (fi.categories, None) for f, fi in infos.items() if fi.type == "categorical"}
    structures = []
    for terms in lists:
        codings = _make_subterm_infos(terms, counts, levels)
        subterms = [st for sts in codings.values() for st in sts]
        names = [c for st in subterms for c in _subterm_column_names_iter(infos, st)]
        used = {f: infos[f] for term in terms for f in term.factors}
        info = patsy.DesignInfo(names, factor_infos=used, term_codings=codings)
        structures.append((info, subterms, len(names)))
    return infos, structures


def _patsy_build(lists, arrays, data, parts, where):
    # patsy counts rows from an evaluated variable or a DataFrame's index; with
    # intercepts alone (glmer's ``1 + (1 | herd)``) only the DataFrame has them
    trivial = not any(term.factors for terms in lists for term in terms)
    rows_from = pd.DataFrame(index=data.index) if trivial else arrays
    try:
        with np.errstate(all="ignore"):
            infos = patsy.design_matrix_builders(
                lists, lambda: iter([rows_from]), eval_env=ENV, NA_action=_NO_NA_CHECK
            )
            mats = patsy.build_design_matrices(infos, rows_from, NA_action=_NO_NA_CHECK)
    except _FAILURES as exc:
        # say which part failed: each part alone
        whole = pd.DataFrame(arrays, index=data.index)
        for i, part in enumerate(parts):
            what = "could not build the model matrix" + (where[i] if i < len(where) else "")
            with _as_data_error(what):
                patsy.dmatrix(part_text(part), whole, eval_env=ENV, NA_action=_NO_NA_CHECK)
        raise _data_error("could not build the model matrix", exc) from None
    return infos, [np.asarray(m, dtype=float) for m in mats]


def rows(info: patsy.DesignInfo, data: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """``info``'s design on new rows of ``data`` (user names), the columns ``names``;
    a level the model was not fitted with is a DataError."""
    variables = [c for f in info.factor_infos for c in columns_in(f.code)]
    _check_numeric(info, data)
    arrays = source(data, variables) if variables else pd.DataFrame(index=data.index)
    try:
        with np.errstate(all="ignore"):
            (X,) = patsy.build_design_matrices([info], arrays, NA_action="raise")
    except patsy.PatsyError as exc:
        text = user_text(exc.message)
        if "does not match any of the expected levels" in text:
            where = f" (in {user_text(exc.origin.relevant_code())})" if exc.origin else ""
            text = (
                f"newdata has a factor level the model was not fitted with{where}: "
                + text.split("categorical: ", 1)[-1]
            )
        raise DataError(text) from None
    index = info.column_name_indexes
    values = np.asarray(X, dtype=float)
    return values[:, [index[n] for n in names]]


def _check_numeric(info: patsy.DesignInfo, data: pd.DataFrame) -> None:
    """A column the model used as a number must be one in ``data`` too: name it."""
    for factor, factor_info in info.factor_infos.items():
        if factor_info.type != "numerical":
            continue
        for name in columns_in(factor.code):
            if name not in data:
                continue  # the caller's column check names it
            column = data[name]
            if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
                continue
            raise DataError(
                f"newdata's column {name!r} holds {column.dtype} values, but the model was "
                f"fitted with {name!r} as a number; convert it first, e.g. "
                f"newdata[{name!r}] = pd.to_numeric(newdata[{name!r}])"
            )


def _expression_data(expr: Expr, data: pd.DataFrame) -> pd.DataFrame:
    variables = list(dict.fromkeys(expr.variables()))
    return pd.DataFrame(
        {safe_name(v): data[v].to_numpy() for v in variables}, index=data.index, copy=False
    )


def evaluate(expr: Expr, data: pd.DataFrame, what: str) -> np.ndarray:
    """The values of arithmetic ``expr`` (patsy's ``I()``) on every row of ``data``, as
    an ``(n, k)`` float array; NaN kept. ``what`` names it in a failure message."""
    with _as_data_error(f"could not compute {what}"):
        return np.asarray(
            patsy.dmatrix(
                f"0 + I({expr_text(expr)})",
                _expression_data(expr, data),
                eval_env=ENV,
                NA_action=_NO_NA_CHECK,
            ),
            dtype=float,
        )


def factor_matrix(expr: Expr, data: pd.DataFrame) -> np.ndarray:
    """The model-matrix columns of one formula factor, full (no intercept absorbed)."""
    with _as_data_error(f"could not build the columns of {expr.label}"):
        return np.asarray(
            patsy.dmatrix(
                f"0 + {expr_text(expr)}",
                _expression_data(expr, data),
                eval_env=ENV,
                NA_action=_NO_NA_CHECK,
            ),
            dtype=float,
        )
