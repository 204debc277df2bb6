"""The model frame: a parsed formula and the data turned into the engine's arrays, once.

lme4's ``lFormula`` builds the model frame, ``X``, ``Z``'s terms, weights and offset one
time and passes them on; this is that stage. Everything downstream (the engine, the
results, inference, predict, plots, the statsmodels view) reads this object and never
rebuilds a design from the formula.

What it does, in lme4's order: check columns; drop rows with a missing value in any
variable the formula (or ``weights``) uses, and say how many; build the fixed-effects
matrix (:mod:`.design`), named as R names it; drop aliased columns as lme4 does (with one
message); build one ``(codes, Z)`` pair per random term, terms in lme4's order
(decreasing number of levels), levels in R's order.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lme2sm.errors import DataError, FormulaError, RankDeficiencyWarning
from lme2sm.formula import ParsedFormula, parse
from lme2sm.formula.model import RandomTerm
from lme2sm.frame import data_prep, design, grouping

if TYPE_CHECKING:
    import patsy

__all__ = ["ModelFrame", "RandomTermFrame", "build_model_frame", "lme4_term_order"]

RANK_TOL = 1e-7
"""R's ``qr()`` tolerance, which lme4's ``chkRank.drop.cols`` uses."""


@dataclass(frozen=True)
class RandomTermFrame:
    """One lme4 random term on the model frame's rows."""

    term: RandomTerm
    group: str
    """lme4's name of the grouping factor (``Subject``, ``classroom:school``)."""
    column: str
    """Column of ``ModelFrame.data`` holding the levels as strings."""
    names: tuple[str, ...]
    """lme4 names of the term's columns (``(Intercept)``, ``Days``)."""
    patsy_names: tuple[str, ...]
    """patsy's names of the same columns in ``info`` (internal column names)."""
    levels: tuple[str, ...]
    """Levels in R's order (rows of ``ranef``)."""
    codes: np.ndarray
    Z: np.ndarray
    info: patsy.DesignInfo = field(repr=False, compare=False)

    def __reduce__(self):
        """Pickled without patsy's DesignInfo, which refuses pickling; the ModelFrame that
        holds the term rebuilds it when it is unpickled (:func:`_unpickled_frame`)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return (_unpickled_term, ({**fields, "info": None},))

    """patsy's design of the term's left-hand side, to build it on new data."""

    @property
    def k(self) -> int:
        return len(self.names)

    @property
    def structure(self) -> str:
        """The term's covariance structure: ``us`` (lme4's), ``diag``, ``cs``, ``ar1``."""
        return self.term.covariance

    @property
    def n_levels(self) -> int:
        return len(self.levels)


@dataclass(frozen=True)
class ModelFrame:
    """Everything the engine and the results need, built once from formula and data."""

    formula: str
    parsed: ParsedFormula
    data: pd.DataFrame
    """The model's own copy of the used columns (complete rows, grouping columns added)."""
    n_dropped: int
    response_name: str
    y: np.ndarray
    """The response (without the offset)."""
    offset: np.ndarray
    weights: np.ndarray | None
    X: np.ndarray
    fixed_names: tuple[str, ...]
    """lme4 names of the kept fixed-effect columns."""
    fixed_patsy_names: tuple[str, ...]
    """patsy's names of the kept columns in ``fixed_info`` (internal column names)."""
    dropped_fixed: tuple[str, ...]
    """Aliased columns dropped (lme4's rank-deficiency rule)."""
    fixed_info: patsy.DesignInfo = field(repr=False, compare=False)

    def __reduce__(self):
        """Pickled without patsy's DesignInfos (they refuse pickling): rebuilt from the
        rows kept when the frame is unpickled (:func:`_unpickled_frame`), so a fitted
        result can be saved and loaded in another process."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return (_unpickled_frame, ({**fields, "fixed_info": None},))

    terms: tuple[RandomTermFrame, ...] = ()
    """Random terms in lme4's order (the order of ``theta`` and ``VarCorr``)."""
    group_columns: dict[str, str] = field(default_factory=dict)
    level_order: dict[str, tuple[str, ...]] = field(default_factory=dict)
    weights_name: str | None = None

    @property
    def n(self) -> int:
        return len(self.y)

    @property
    def p(self) -> int:
        return self.X.shape[1]


# --------------------------------------------------------------------------- building


def lme4_term_order(n_levels: list[int]) -> list[int]:
    """lme4's term order (``mkReTrms``): unless the numbers of levels already decrease,
    ``rev(order(nl))``: decreasing levels, ties in reverse formula order."""
    if any(b > a for a, b in zip(n_levels, n_levels[1:])):
        return sorted(range(len(n_levels)), key=lambda i: n_levels[i])[::-1]
    return list(range(len(n_levels)))


def build_model_frame(
    formula: str | ParsedFormula,
    data: pd.DataFrame,
    weights: str | np.ndarray | pd.Series | None = None,
    glm: bool = False,
) -> ModelFrame:
    """Parse (if needed), check and prepare ``data``; build X, y, offset, weights, Z terms.

    With ``glm=True`` (glmer's frame) the response is neither checked nor built (``y`` is
    NaN; the caller reads the response columns from ``ModelFrame.data``), and lme4's
    glmer checks apply: a grouping factor may have one level per row (observation-level
    random effects), as ``glmerControl`` allows.
    """
    parsed = formula if isinstance(formula, ParsedFormula) else parse(formula)
    data_prep.require_random_terms(parsed)
    variables = list(parsed.variables())
    data_prep.check_columns(data, variables, parsed.formula)
    # scale() and poly() take their numbers from the whole columns, as R's model.frame
    parsed = data_prep.bind_transforms(parsed, data)
    weights_name, weight_values = _weights_column(weights, data)
    extra = {} if weight_values is None else {weights_name: weight_values}
    frame, n_dropped, kept = data_prep.drop_missing_with(data, variables, extra)
    if not glm:
        _refuse_cbind(parsed)
        data_prep.check_response(frame, parsed.response_expr.variables())

    prepared, other_uses = grouping.formula_group_columns(frame, parsed)
    frame = prepared.frame
    if glm:
        _check_two_levels(frame, prepared.group_columns)
    else:
        counted = {name: len(prepared.level_order[name]) for name in prepared.codes}
        grouping.check_levels(frame, prepared.group_columns, counted)
    data_prep.categorize_text(frame, sorted(other_uses), set(prepared.group_columns.values()))

    parts = [parsed.fixed_part] + [t.effects_part for t in parsed.random_terms]
    where = _PartNames(parsed.random_terms)
    yd, (Xd, *Ed) = design.build(frame, parts, None if glm else parsed.response_expr, where)
    pairs = [(c.patsy, c.lme4) for c in Xd.columns]
    y = yd.values[:, 0] if yd is not None else np.full(len(frame), np.nan)
    X = Xd.values
    if not glm:
        _check_finite("the response", y)
    if not _columns_usable(X):
        for (_sm, r), col in zip(pairs, X.T):
            _check_finite(r, col)
            _check_magnitude(r, col)
    offset = _offset(parsed, frame)
    X, pairs, dropped = _drop_aliased(X, pairs)

    w = None if weight_values is None else kept[weights_name]

    raw_terms = [_term_frame(term, E, frame, prepared) for term, E in zip(parsed.random_terms, Ed)]
    order = lme4_term_order([t.n_levels for t in raw_terms])
    terms = tuple(raw_terms[i] for i in order)
    _check_sizes(len(frame), terms, glm=glm)
    return ModelFrame(
        formula=parsed.formula,
        parsed=parsed,
        data=frame,
        n_dropped=n_dropped,
        response_name=yd.columns[0].statsmodels if yd is not None else parsed.response_expr.label,
        y=y,
        offset=offset,
        weights=w,
        X=X,
        fixed_names=tuple(r for _, r in pairs),
        fixed_patsy_names=tuple(sm for sm, _ in pairs),
        dropped_fixed=dropped,
        fixed_info=Xd.info,
        terms=terms,
        group_columns=dict(prepared.group_columns),
        level_order=dict(prepared.level_order),
        weights_name=None if weights is None or not isinstance(weights, str) else weights,
    )


def _unpickled_term(fields: dict) -> RandomTermFrame:
    return RandomTermFrame(**fields)


def _unpickled_frame(fields: dict) -> ModelFrame:
    """A pickled :class:`ModelFrame` with patsy's designs rebuilt from its rows (the
    transforms' constants are bound in ``parsed``, the text columns already factors, so
    the columns and levels are the fitted ones)."""
    parsed = fields["parsed"]
    parts = [parsed.fixed_part] + [t.effects_part for t in parsed.random_terms]
    _y, (Xd, *Ed) = design.build(fields["data"], parts, None, [""] * len(parts))
    by_term = [(t, E.info) for t, E in zip(parsed.random_terms, Ed)]
    terms = [
        dataclasses.replace(t, info=next(i for term, i in by_term if term == t.term))
        for t in fields["terms"]
    ]
    return ModelFrame(**{**fields, "fixed_info": Xd.info, "terms": tuple(terms)})


def check_reml_rows(frame: ModelFrame) -> None:
    """REML needs more observations than fixed-effect columns (its residual degrees of
    freedom are n - p); lme4 fails there ("objective in x0 returns NA")."""
    if frame.n <= frame.p:
        raise DataError(
            f"REML needs more observations than fixed effects: {frame.n} rows for "
            f"{frame.p} fixed-effect columns leave no residual degrees of freedom (lme4 "
            "fails here too); fit with REML=False or use fewer fixed effects"
        )


def _check_two_levels(frame: pd.DataFrame, group_columns: dict[str, str]) -> None:
    """glmer's check: every grouping factor has two levels (one per row is allowed)."""
    for name, col in group_columns.items():
        if frame[col].nunique() < 2:
            raise DataError(
                f"the grouping factor {name!r} has only one level in the data used; a "
                "random effect needs at least two levels (lme4 refuses this too)"
            )


def _drop_aliased(X: np.ndarray, pairs: list[tuple[str, str]]):
    """X and its ``(patsy, lme4)`` names without the aliased columns, and the lme4
    names of those dropped (lme4's rank-deficiency rule, with its one message)."""
    keep = kept_columns(X)
    dropped = tuple(r for j, (_sm, r) in enumerate(pairs) if j not in keep)
    if not dropped:
        return X, pairs, dropped
    warnings.warn(
        f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
        f"column{'s' if len(dropped) > 1 else ''} / coefficient"
        f"{'s' if len(dropped) > 1 else ''} ({', '.join(dropped)})",
        RankDeficiencyWarning,
        stacklevel=4,
    )
    return X[:, keep], [pairs[j] for j in keep], dropped


def _refuse_cbind(parsed: ParsedFormula) -> None:
    expr = parsed.response_expr
    if getattr(expr, "func", None) == "cbind":
        raise FormulaError(
            "cbind(successes, failures) is a binomial response: fit it with lme2sm.glmer "
            "(family='binomial'), not lmer",
            parsed.formula,
            expr.span,
        )


def _weights_column(weights, data: pd.DataFrame) -> tuple[str | None, np.ndarray | None]:
    """lme4's prior weights: a column name or one value per row, positive and finite."""
    if weights is None:
        return None, None
    if isinstance(weights, str):
        data_prep.check_columns(data, [weights], f"weights = {weights}")
        values = data[weights]
        name = weights
    else:
        array = np.asarray(weights)  # by position, as lme4 reads a vector of weights
        if array.ndim != 1:
            raise DataError(f"weights must be one value per row, not an array of {array.shape}")
        if len(array) != len(data):
            raise DataError(f"weights has {len(array)} values for {len(data)} rows of data")
        values = pd.Series(array, index=data.index)
        name = "(weights)"
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_complex_dtype(values)
    if not numeric or pd.api.types.is_bool_dtype(values):
        raise DataError(f"weights must be real numbers, not {values.dtype}")
    numbers = values.to_numpy(dtype=float, na_value=np.nan)
    present = numbers[~np.isnan(numbers)]
    if np.any(present < 0):
        raise DataError("negative weights are not allowed (lme4 refuses them too)")
    if np.any(present == 0) or np.any(~np.isfinite(present)):
        raise DataError(
            "weights must be positive and finite; drop the rows with zero weight instead"
        )
    return name, numbers


def _offset(parsed: ParsedFormula, frame: pd.DataFrame) -> np.ndarray:
    """The sum of the fixed part's ``offset()`` terms (zeros when there are none)."""
    offsets = parsed.fixed_part.offsets
    if not offsets:
        return np.zeros(len(frame))
    total = sum(design.evaluate(o, frame, "the offset").sum(axis=1) for o in offsets)
    _check_finite("the offset", total)
    return total


class _PartNames(Sequence[str]):
    """Each design part's name in a failure message (``""`` for the fixed part, then
    ``" for (Days | Subject)"``), written only when a message needs one."""

    def __init__(self, terms: tuple[RandomTerm, ...]) -> None:
        self.terms = terms

    def __len__(self) -> int:
        return len(self.terms) + 1

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return "" if i == 0 else f" for ({self.terms[i - 1].text})"


def _columns_usable(M: np.ndarray) -> bool:
    """Whether every column of ``M`` passes :func:`_check_finite` and
    :func:`_check_magnitude` (one vectorised test; the per-column checks name a
    failure)."""
    if not np.isfinite(M).all():
        return False
    if not M.size:
        return True
    return not np.any(np.max(np.abs(M), axis=0) * np.sqrt(M.shape[0]) > 1e150)


def _check_finite(label: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(
            f"{label} is NaN or infinite in {int(bad.sum())} rows; lme4 refuses such values "
            "too: fix the data or the transformation (log of zero?)"
        )


def _check_magnitude(label: str, values: np.ndarray) -> None:
    """Refuse a covariate so large that its sum of squares over the rows overflows
    (near 1e154): no fit can use it (lme4's fails: "objective in x0 returns NA")."""
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest * np.sqrt(len(values)) > 1e150:
        raise DataError(
            f"{label} reaches {largest:.3g}: its sum of squares overflows double "
            "precision, so no fit can use it (lme4's fails too); rescale it first"
        )


def kept_columns(X: np.ndarray, tol: float = RANK_TOL) -> list[int]:
    """Columns lme4 keeps: in order, each one not (numerically) a combination of the
    ones kept before it (R's ``qr()`` with limited pivoting, tolerance 1e-7)."""
    keep: list[int] = []
    Q = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        col = X[:, j]
        norm = float(np.linalg.norm(col))
        if norm == 0:
            continue
        resid = col - Q @ (Q.T @ col)
        resid = resid - Q @ (Q.T @ resid)
        rn = float(np.linalg.norm(resid))
        if rn > tol * norm:
            keep.append(j)
            Q = np.column_stack([Q, resid / rn])
    return keep


def _term_frame(
    term: RandomTerm, E: design.Design, frame: pd.DataFrame, prepared
) -> RandomTermFrame:
    Z = E.values
    if not _columns_usable(Z):
        _check_finite(f"the random-effects matrix of ({term.text})", Z)
        for name, col in zip(E.columns, Z.T):
            _check_magnitude(f"{name.lme4} in ({term.text})", col)
    col = prepared.group_columns[term.group]
    levels = tuple(prepared.level_order[term.group])
    codes = prepared.codes.get(term.group)
    if codes is None:
        codes = level_codes(frame[col], levels)
    if np.any(codes < 0):  # pragma: no cover - level_order comes from the same column
        raise DataError(f"levels of {term.group} could not be matched")
    return RandomTermFrame(
        term=term,
        group=term.group,
        column=col,
        names=tuple(c.lme4 for c in E.columns),
        patsy_names=E.patsy_names,
        levels=levels,
        codes=codes,
        Z=Z,
        info=E.info,
    )


def level_codes(column: pd.Series, levels: tuple[str, ...]) -> np.ndarray:
    """Each row's position in ``levels`` (-1 if absent): one hash pass over the rows,
    then a lookup per distinct value (a Categorical of the strings took 5 ms on 2,759
    rows of InstEval, mostly converting Arrow-backed strings)."""
    codes, uniques = pd.factorize(column, sort=False)
    where = {lv: i for i, lv in enumerate(levels)}
    lookup = np.array([where.get(str(u), -1) for u in uniques] + [-1], dtype=np.int64)
    return lookup[codes]  # a missing value (code -1) reads the trailing -1


def _check_structures(terms: tuple[RandomTermFrame, ...]) -> None:
    """A correlation structure (``cs``, ``ar1``) needs two columns or more."""
    for t in terms:
        if t.structure in ("cs", "ar1") and t.k < 2:
            raise FormulaError(
                f"{t.term.term_text} has {t.k} column: its {t.structure} correlation needs "
                f"two or more (e.g. {t.structure}(0 + f | {t.group}) with f a factor); write "
                f"({t.term.text}) for one variance"
            )


def _check_sizes(n: int, terms: tuple[RandomTermFrame, ...], glm: bool = False) -> None:
    """lme4's checks (``check.nobs.vs.nlev``, ``check.nobs.vs.nRE``), worded as lme4's.

    lmer refuses a grouping factor with as many levels as rows and a term with as many
    random effects as rows; glmer (``allow.n = TRUE`` in lme4's ``glFormula``) allows
    one level per row and refuses only more random effects than rows. A ``cs`` or
    ``ar1`` term is not held to the number of random effects (glmmTMB fits
    ``ar1(0 + time | subject)`` with one random effect per row).
    """
    _check_structures(terms)
    crowded = [t.group for t in terms if t.n_levels > n or (t.n_levels == n and not glm)]
    if crowded:
        raise DataError(
            "number of levels of each grouping factor must be "
            f"{'<=' if glm else '<'} number of observations "
            f"(problems: {', '.join(crowded)}); lme4 refuses this too"
        )
    for t in terms:
        q = t.n_levels * t.k
        if t.structure in ("cs", "ar1"):
            continue  # a handful of parameters, whatever the number of random effects
        if n < q or (n == q and not glm):
            residual = "" if glm else " and the residual variance (or scale parameter)"
            raise DataError(
                f"number of observations (={n}) {'<' if glm else '<='} number of random "
                f"effects (={q}) for term ({t.term.text}); the random-effects parameters"
                f"{residual} are probably unidentifiable (lme4 refuses this too)"
            )
