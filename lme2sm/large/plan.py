"""The model's design as a plan that every partition applies the same way.

In memory, :func:`~lme2sm.frame.model_frame.build_model_frame` sees every row at once: levels,
patsy's columns and lme4's names come from the whole frame. Here the rows arrive in
partitions, so the model is planned in two passes:

1. :meth:`ModelPlan.summarise` (per partition, additive): complete rows, the rows
   dropped for missing values per column, and the distinct values of every grouping
   factor and of every column the design treats as a factor. Small for the data this
   path is for (levels in the thousands to a few hundred thousand), whatever n is.
2. :meth:`ModelPlan.with_levels` turns the combined summary into global levels in R's
   order (:func:`lme2sm.frame.data_prep.r_level_order`) and patsy designs made once from a
   small prototype holding every level, so :meth:`ModelPlan.design` builds the same
   columns, names and level codes in every partition.

A plan is pickled to Dask workers; patsy's designs are not picklable and are rebuilt
from the prototype on each worker the first time they are needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from lme2sm.engine.crossprod import CrossProducts, TermRows, cross_products
from lme2sm.engine.frame_input import response_shift
from lme2sm.errors import DataError, FormulaError
from lme2sm.formula import ParsedFormula, parse
from lme2sm.formula.expand import walk
from lme2sm.formula.model import Call, LinearPart
from lme2sm.formula.patsy_text import part_to_patsy
from lme2sm.frame import data_prep, design
from lme2sm.frame.model_frame import _check_finite, _offset, lme4_term_order

__all__ = ["ModelPlan", "PartitionSummary", "PartitionDesign"]

FACTOR_CALLS = {"C", "factor", "as.factor"}
STATEFUL = ("standardize(", "center(")


@dataclass
class PartitionSummary:
    """What the first pass learns from some rows; :meth:`add` combines two."""

    n_rows: int
    """Rows read."""
    n_complete: int
    na_counts: dict[str, int]
    combos: dict[str, pd.DataFrame]
    """lme4 grouping factor → distinct combinations of its columns' raw values."""
    uniques: dict[str, pd.Series]
    """Factor column → its distinct values."""
    sample: pd.DataFrame
    """A few complete rows (dtypes, prototype)."""

    def add(self, other: PartitionSummary) -> PartitionSummary:
        return PartitionSummary(
            self.n_rows + other.n_rows,
            self.n_complete + other.n_complete,
            {c: self.na_counts[c] + other.na_counts[c] for c in self.na_counts},
            {
                g: pd.concat([self.combos[g], other.combos[g]], ignore_index=True)
                .drop_duplicates()
                .reset_index(drop=True)
                for g in self.combos
            },
            {
                c: pd.Series(pd.concat([self.uniques[c], other.uniques[c]]).unique())
                for c in self.uniques
            },
            self.sample if len(self.sample) else other.sample,
        )


@dataclass
class PartitionDesign:
    """The arrays of one partition's complete rows (what build_model_frame makes)."""

    y: np.ndarray
    offset: np.ndarray
    weights: np.ndarray | None
    X: np.ndarray
    """All of patsy's fixed columns in lme4's order (before the rank-deficiency drop)."""
    terms: list[TermRows]
    """Random terms in lme4's order."""
    keep: np.ndarray
    """Boolean mask of the partition's rows that were complete."""


def _factor_call_columns(part: LinearPart) -> set[str]:
    out: set[str] = set()
    for term in part.terms:
        for expr in term.factors:
            for node in walk(expr):
                if isinstance(node, Call) and node.func in FACTOR_CALLS:
                    for arg in node.args[:1]:
                        out.update(arg.variables())
    return out


def _is_text(col: pd.Series) -> bool:
    return (
        pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)
    ) and not isinstance(col.dtype, pd.CategoricalDtype)


def value_codes(col: pd.Series, values: list) -> np.ndarray:
    """Position of each of ``col``'s values in ``values`` (-1 when absent), vectorised.

    Text goes through Arrow's hash lookup when pyarrow is installed (pandas' own lookup
    on Arrow-backed strings converts them to Python objects first, 10x slower).
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        where = value_codes(pd.Series(col.cat.categories), values)
        codes = col.cat.codes.to_numpy()
        return np.where(codes >= 0, where[np.maximum(codes, 0)], -1)
    if _is_text(col):
        try:
            import pyarrow as pa
            import pyarrow.compute as pc
        except ImportError:  # pragma: no cover - pyarrow comes with every extra
            pa = None
        if pa is not None:
            try:
                found = pc.index_in(pa.array(col, from_pandas=True), value_set=pa.array(values))
                return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
            except (pa.ArrowException, TypeError, ValueError):
                pass  # mixed types: pandas' lookup below
    raw = col.to_numpy()
    if raw.dtype.kind in "iu" and len(values):
        ints = np.asarray(values)
        if ints.dtype.kind in "iu" and 0 <= ints.min() and ints.max() < 50 * len(ints) + 1000:
            table = np.full(int(ints.max()) + 1, -1, dtype=np.int64)
            table[ints] = np.arange(len(ints))
            inside = (raw >= 0) & (raw <= ints.max())
            return np.where(inside, table[np.where(inside, raw, 0)], -1)
    return pd.Index(values).get_indexer(raw).astype(np.int64)


@dataclass
class ModelPlan:
    """A formula planned for partitions; levels filled in by :meth:`with_levels`."""

    parsed: ParsedFormula
    weights: str | None
    columns: tuple[str, ...]
    """Columns read from the source (the formula's variables and the weights column)."""
    groups: dict[str, tuple[str, ...]]
    """lme4 grouping factor (``b:a``) → the columns it combines."""
    other_uses: frozenset[str]
    """Columns used outside grouping (fixed part, response, random-effect columns)."""
    factor_columns: tuple[str, ...] = ()
    # ----- filled by with_levels
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """lme4 grouping factor → levels in R's order."""
    integral: dict[str, bool] = field(default_factory=dict)
    """Float grouping columns whose values are all whole numbers (``1.0`` → ``"1"``)."""
    factor_levels: dict[str, list] = field(default_factory=dict)
    """Text or categorical factor column → its global categories."""
    component_values: dict[str, list] = field(default_factory=dict)
    """Grouping column → its distinct raw values (the positions are the codes below)."""
    group_keys: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """lme4 grouping factor → (sorted mixed-radix keys of its columns' codes, level of
    each key): a partition's rows find their level without building strings."""
    prototype: pd.DataFrame | None = None
    term_order: tuple[int, ...] = ()
    beta_shift: np.ndarray | None = None
    """The shift of the response in the sums (``CrossProducts.beta_shift``), on all of
    patsy's fixed columns; set from a few rows before the second pass."""
    _designs: dict | None = field(default=None, repr=False, compare=False)

    # ------------------------------------------------------------------ set-up

    @classmethod
    def from_formula(
        cls, formula: str | ParsedFormula, schema: pd.DataFrame, weights: str | None
    ) -> ModelPlan:
        """Check the formula against the source's columns (``schema``: a few rows)."""
        parsed = formula if isinstance(formula, ParsedFormula) else parse(formula)
        data_prep.require_random_terms(parsed)
        texts = [part_to_patsy(parsed.fixed_part)] + [
            part_to_patsy(t.effects_part) for t in parsed.random_terms
        ]
        for text in texts:
            if any(s in text for s in STATEFUL):
                raise FormulaError(
                    "scale(), center() and standardize() learn from all rows at once, "
                    "which data beyond memory cannot offer; add the transformed column to "
                    "the data (e.g. with Dask or polars) and use it instead",
                    parsed.formula,
                    (0, len(parsed.formula)),
                )
        variables = list(parsed.variables())
        if weights is not None and not isinstance(weights, str):
            raise DataError(
                "for data beyond memory, weights must be the name of a column of the data"
            )
        data_prep.check_columns(schema, variables + ([weights] if weights else []), parsed.formula)
        columns = tuple(dict.fromkeys(variables + ([weights] if weights else [])))
        data_prep.check_response(schema, parsed.response_expr.variables())
        other = set(parsed.fixed_part.variables()) | set(parsed.response_expr.variables())
        calls = _factor_call_columns(parsed.fixed_part)
        for t in parsed.random_terms:
            other |= set(t.effects_part.variables())
            calls |= _factor_call_columns(t.effects_part)
        factor_columns = []
        for name in sorted(other - set(parsed.response_expr.variables())):
            col = schema[name]
            if (
                _is_text(col)
                or isinstance(col.dtype, pd.CategoricalDtype)
                or (name in calls and not pd.api.types.is_bool_dtype(col))
            ):
                factor_columns.append(name)
        return cls(
            parsed=parsed,
            weights=weights,
            columns=columns,
            groups={t.group: t.group_factors for t in parsed.random_terms},
            other_uses=frozenset(other),
            factor_columns=tuple(factor_columns),
        )

    def __dask_tokenize__(self):
        # patsy's designs cannot be hashed; a plan is identified by its formula and levels
        import hashlib
        import pickle

        state = self.__getstate__()
        return "lme2sm-plan", hashlib.sha1(pickle.dumps(state)).hexdigest()

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_designs"] = None
        return state

    # --------------------------------------------------------------- pass one

    def _complete(self, df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, dict[str, int]]:
        frame = df.loc[:, list(self.columns)]
        missing = frame.isna()
        keep = ~missing.any(axis=1).to_numpy()
        counts = {c: int(missing[c].sum()) for c in self.columns}
        return frame.loc[keep], keep, counts

    def summarise(self, df: pd.DataFrame) -> PartitionSummary:
        """Pass one on one partition (pandas rows)."""
        frame, _keep, counts = self._complete(df)
        combos = {
            g: frame.loc[:, list(cols)].drop_duplicates().reset_index(drop=True)
            for g, cols in self.groups.items()
        }
        uniques = {c: pd.Series(frame[c].unique()) for c in self.factor_columns}
        return PartitionSummary(len(df), len(frame), counts, combos, uniques, frame.head(5))

    def with_levels(self, summary: PartitionSummary) -> ModelPlan:
        """The plan with global levels (pass one's combined summary)."""
        if summary.n_complete == 0:
            raise DataError("no complete rows left after dropping rows with missing values")
        levels = {g: data_prep.r_level_order(c, self.groups[g]) for g, c in summary.combos.items()}
        for g, lv in levels.items():
            k, n = len(lv), summary.n_complete
            if k < 2:
                raise DataError(
                    f"the grouping factor {g!r} has only {k} level in the data used; a "
                    "random effect needs at least two levels (lme4 refuses this too): "
                    "drop the term or check the column"
                )
            if k >= n:
                raise DataError(
                    f"the grouping factor {g!r} has {k} levels for {n} rows, one per row, "
                    "so its variance cannot be told apart from the residual variance (lme4 "
                    "refuses this too): drop the term or group by a coarser factor"
                )
        integral = {}
        for g, combos in summary.combos.items():
            for c in self.groups[g]:
                col = combos[c]
                integral[c] = bool(
                    pd.api.types.is_float_dtype(col) and np.all(np.mod(col.to_numpy(), 1) == 0)
                )
        component_values: dict[str, list] = {}
        for g, combos in summary.combos.items():
            for c in self.groups[g]:
                values = component_values.setdefault(c, [])
                seen = set(values)
                values.extend(v for v in pd.unique(combos[c]) if v not in seen)
        group_keys = {}
        for g, combos in summary.combos.items():
            labels = self._labels(combos, self.groups[g], integral)
            where = {label: i for i, label in enumerate(levels[g])}
            keys = self._keys(combos, self.groups[g], component_values)
            order = np.argsort(keys)
            level_of = np.array([where[label] for label in labels], dtype=np.int64)
            group_keys[g] = (keys[order], level_of[order])
        factor_levels: dict[str, list] = {}
        sample = summary.sample
        for c in self.factor_columns:
            values = summary.uniques[c]
            if isinstance(sample[c].dtype, pd.CategoricalDtype):
                factor_levels[c] = list(sample[c].cat.categories)
            elif _is_text(sample[c]) and all(isinstance(v, str) for v in values):
                factor_levels[c] = sorted(values)
            else:  # numbers inside factor(): patsy sorts the values it sees
                factor_levels[c] = sorted(values)
        plan = replace(
            self,
            levels=levels,
            integral=integral,
            factor_levels=factor_levels,
            component_values=component_values,
            group_keys=group_keys,
            _designs=None,
        )
        plan.prototype = plan._prototype(sample)
        n_levels = [len(levels[t.group]) for t in self.parsed.random_terms]
        plan.term_order = tuple(lme4_term_order(n_levels))
        return plan

    def _prototype(self, sample: pd.DataFrame) -> pd.DataFrame:
        """A few rows holding every level of every factor column (patsy learns from it)."""
        n = max([len(v) for v in self.factor_levels.values()] + [len(sample)])
        idx = np.arange(n) % len(sample)
        proto = sample.iloc[idx].reset_index(drop=True).copy()
        for c, lv in self.factor_levels.items():
            values = pd.Series(lv, dtype=object if not lv else None).iloc[np.arange(n) % len(lv)]
            proto[c] = values.to_numpy()
        return self._prepare(proto)

    # --------------------------------------------------------------- designs

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Factor columns as Categoricals with the global levels (what patsy reads)."""
        frame = frame.copy()
        for c, lv in self.factor_levels.items():
            col = frame[c]
            if isinstance(col.dtype, pd.CategoricalDtype) or _is_text(col):
                if _is_text(col) and not all(isinstance(v, str) for v in lv):
                    continue
                codes = value_codes(col, lv)
                frame[c] = pd.Categorical.from_codes(codes, categories=lv)
        return frame

    @staticmethod
    def _labels(frame: pd.DataFrame, factors: tuple[str, ...], integral: dict) -> list[str]:
        """lme4's level labels (``"3:12"``) of each row, as the in-memory path writes them."""
        from lme2sm.frame.grouping import level_strings

        parts = []
        for f in factors:
            col = frame[f]
            if integral.get(f, False) and np.all(np.abs(col.to_numpy()) < 2**63):
                col = col.astype("int64")
            # the in-memory path's text of a value (1e-300 as '1e-300', a whole -1e300 as
            # its 301 digits): before, astype(str) wrote '-1e+300' and the levels missed
            parts.append(level_strings(col).to_numpy())
        return [":".join(row) for row in zip(*parts)]

    @staticmethod
    def _keys(frame: pd.DataFrame, factors: tuple[str, ...], values: dict) -> np.ndarray:
        key = np.zeros(len(frame), dtype=np.int64)
        for f in factors:
            codes = value_codes(frame[f], values[f])
            key = np.where((key < 0) | (codes < 0), -1, key * len(values[f]) + codes)
        return key

    def _level_codes(self, frame: pd.DataFrame, group: str) -> np.ndarray:
        keys, level_of = self.group_keys[group]
        key = self._keys(frame, self.groups[group], self.component_values)
        pos = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
        found = (keys[pos] == key) & (key >= 0)
        if not found.all():
            raise DataError(f"levels of {group} could not be matched across partitions")
        return level_of[pos]

    @property
    def designs(self) -> dict:
        """patsy designs (response, fixed, each term's left-hand side), made once."""
        if self._designs is None:
            terms = self.parsed.random_terms
            parts = [self.parsed.fixed_part] + [t.effects_part for t in terms]
            yd, (xd, *eds) = design.build(self.prototype, parts, self.parsed.response_expr)
            self._designs = {
                "y": yd.info,
                "X": xd.info,
                "X_pairs": [(c.patsy, c.lme4) for c in xd.columns],
                "terms": [e.info for e in eds],
                "term_pairs": [[(c.patsy, c.lme4) for c in e.columns] for e in eds],
            }
        return self._designs

    def design(self, df: pd.DataFrame, with_response: bool = True) -> PartitionDesign:
        """One partition's arrays, columns and level codes identical in every partition."""
        frame, keep, _ = self._complete(df)
        d = self.designs
        frame = self._prepare(frame)
        w = None
        if self.weights is not None:
            w = frame[self.weights].to_numpy(dtype=float)
            if np.any(w <= 0) or not np.all(np.isfinite(w)):
                raise DataError(
                    "weights must be positive and finite (lme4 refuses negative weights "
                    "too); drop the rows with zero weight instead"
                )
        y = np.empty(0)
        if with_response:
            y = design.rows(d["y"], frame, d["y"].column_names[:1])[:, 0]
        Xa = design.rows(d["X"], frame, [sm for sm, _ in d["X_pairs"]])
        if with_response:
            _check_finite("the response", y)
        for (_sm, r), col in zip(d["X_pairs"], Xa.T):
            _check_finite(r, col)
        offset = _offset(self.parsed, frame)
        raw = []
        for t, info, pairs in zip(self.parsed.random_terms, d["terms"], d["term_pairs"]):
            Z = design.rows(info, frame, [sm for sm, _ in pairs])
            _check_finite(f"the random-effects matrix of ({t.text})", Z)
            codes = self._level_codes(frame, t.group)
            raw.append(TermRows(codes, len(self.levels[t.group]), Z))
        terms = [raw[i] for i in self.term_order]
        return PartitionDesign(y, offset, w, Xa, terms, keep)

    def crossprods(self, df: pd.DataFrame) -> CrossProducts | None:
        """Pass two on one partition: the engine's sums over its complete rows."""
        if len(df) == 0:
            return None
        part = self.design(df)
        if len(part.y) == 0:
            return None
        return cross_products(
            part.terms, part.X, part.y - part.offset, part.weights, beta_shift=self.beta_shift
        )

    def with_shift(self, sample: pd.DataFrame) -> ModelPlan:
        """The plan with the response's shift taken from a few complete rows (their mean
        on the intercept): the sums keep their digits without a pass for the mean."""
        part = self.design(sample)
        names = tuple(r for _, r in self.designs["X_pairs"])
        shift = response_shift(names, part.y - part.offset, part.weights)
        plan = replace(self, beta_shift=shift)
        plan._designs = self._designs
        return plan
