"""Estimated marginal means and their pairwise contrasts, as R's emmeans computes them.

``emmeans(m, "Variety")`` is R's ``emmeans(m, ~ Variety)``: the *reference grid* holds
every combination of the levels of the fixed part's factors, with each numeric
covariate at its mean over the model's rows (emmeans' ``cov.reduce = mean``). The
marginal mean of a level is the prediction ``x'beta`` averaged, with equal weights,
over the levels of the factors not named (emmeans' default ``weights = "equal"``):
one linear function ``l'beta`` per row. Its standard error is ``sqrt(l'Vl)`` and its
df depend on ``ddf``:

* ``"Kenward-Roger"`` (emmeans' default for lmer): ``V`` is pbkrtest's ``vcovAdj`` and
  the df pbkrtest's ``Lb_ddf(l)`` (:mod:`lme2sm.inference.kenward_roger`);
* ``"Satterthwaite"``: lme4's ``vcov`` and lmerTest's df for ``l``;
* ``"asymptotic"``: lme4's ``vcov``, infinite df (z tests).

``.pairs()`` takes every difference ``A - B`` (in the table's order, within each
``by`` group) and adjusts the p-values within each group as emmeans does: Tukey's HSD
from the studentized range (``ptukey(sqrt(2)|t|, k, df)``, k = number of means),
Bonferroni, Holm, Šidák or none.

An ``offset()`` adds its average over the model's rows to every mean (what emmeans
gives for ``offset(log(temp))`` on cake); contrasts do not depend on it. Not done:
emmeans' automatic detection of nested fixed factors and ``type = "response"``
back-transformation (means are on the model's scale, as emmeans' default).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from lme2sm import arguments
from lme2sm.errors import ArgumentError
from lme2sm.frame import design
from lme2sm.frame.safe_names import columns_in
from lme2sm.inference.emmeans_tables import adjust_p_values, contrast_labels, t_quantile, t_sf

__all__ = ["EMMeans", "emmeans"]

ADJUSTMENTS = ("tukey", "bonferroni", "holm", "sidak", "none")
DDF = {
    "kenward-roger": "Kenward-Roger",
    "satterthwaite": "Satterthwaite",
    "asymptotic": "asymptotic",
}


@dataclass
class EMMeans:
    """Estimated marginal means (``.table``) and what their contrasts need."""

    table: pd.DataFrame
    """Factor columns, ``emmean``, ``SE``, ``df``, ``lower.CL``, ``upper.CL``."""
    L: np.ndarray
    """One row of the fixed-effects linear function per row of ``table``."""
    specs: tuple[str, ...]
    by: tuple[str, ...]
    ddf: str
    level: float
    _model: Any = field(repr=False)
    _V: np.ndarray = field(repr=False)
    _estimable: Estimability | None = field(default=None, repr=False)
    response_link: Any = field(default=None, repr=False)
    """The link the means were back-transformed through (``type="response"``)."""

    def __repr__(self) -> str:
        return self.table.to_string(index=False)

    def on_response_scale(self, link: Any, family: str) -> EMMeans:
        """emmeans' ``type = "response"``: each mean through the inverse link, its SE by
        the delta method (``|dmu/deta| SE``), the interval's ends through the inverse
        link; the column is ``prob`` (binomial), ``rate`` (poisson) or ``response``."""
        t = self.table.copy()
        eta = t["emmean"].to_numpy(dtype=float)
        name = {"binomial": "prob", "poisson": "rate"}.get(family, "response")
        t["SE"] = np.abs(link.mu_eta(eta)) * t["SE"].to_numpy(dtype=float)
        for end in ("lower.CL", "upper.CL"):
            t[end] = link.inverse(t[end].to_numpy(dtype=float))
        if link.name in ("inverse", "1/mu^2"):  # decreasing: the ends swap
            t["lower.CL"], t["upper.CL"] = t["upper.CL"].copy(), t["lower.CL"].copy()
        t["emmean"] = link.inverse(eta)
        t = t.rename(columns={"emmean": name})
        t.attrs = dict(self.table.attrs, type="response")
        return replace(self, table=t, response_link=link)

    def pairs(self, adjust: str = "tukey", reverse: bool = False) -> pd.DataFrame:
        """All pairwise differences within each ``by`` group (emmeans' ``pairs()``).

        Parameters
        ----------
        adjust : {"tukey", "bonferroni", "holm", "sidak", "none"}
            Any case; None is ``"none"``.
        reverse : bool
            ``B - A`` instead of ``A - B`` (emmeans' ``revpairwise``).

        Returns
        -------
        pandas.DataFrame
            ``contrast`` (``"A - B"``), the ``by`` columns, ``estimate``, ``SE``,
            ``df``, ``t.ratio``, ``p.value``.
        """
        adjust = (
            "none" if adjust is None else arguments.choice("adjust", adjust, ADJUSTMENTS, True)
        )
        reverse = arguments.flag("reverse", reverse)
        if self.response_link is not None:
            raise ArgumentError(
                "pairs() of back-transformed means (emmeans' odds or rate ratios) is not "
                "done: call it on the link-scale means, emmeans(specs) without "
                "type='response'"
            )
        labels = contrast_labels(self.table, self.specs)
        rows = []
        for _key, idx in self._groups():
            k = len(idx)
            family = []
            for a, b in itertools.combinations(range(k), 2):
                i, j = idx[a], idx[b]
                if reverse:
                    i, j = j, i
                ell = self.L[i] - self.L[j]
                if self._estimable is not None and not self._estimable.difference_ok(i, j):
                    est = se = df = t = math.nan  # emmeans' nonEst
                else:
                    est = float(ell @ self._model_beta)
                    se = math.sqrt(max(float(ell @ self._V @ ell), 0.0))
                    df = self._df(ell)
                    t = est / se if se > 0 else math.nan
                row = {"contrast": f"{labels[i]} - {labels[j]}"}
                for b_name in self.by:
                    row[b_name] = self.table.loc[i, b_name]
                row.update({"estimate": est, "SE": se, "df": df, "t.ratio": t})
                family.append(row)
            p = np.array([2 * t_sf(abs(r["t.ratio"]), r["df"]) for r in family], dtype=float)
            p = adjust_p_values(p, adjust, family, k)
            for r, pv in zip(family, p):
                r["p.value"] = float(pv)
            rows.extend(family)
        columns = ["contrast", *self.by, "estimate", "SE", "df", "t.ratio", "p.value"]
        out = pd.DataFrame(rows, columns=columns)
        out.attrs["adjust"] = adjust
        out.attrs["ddf"] = self.ddf
        return out

    # -------------------------------------------------------------- helpers

    @property
    def _model_beta(self) -> np.ndarray:
        return np.asarray(self._model.fixef(), dtype=float)

    def _df(self, ell: np.ndarray) -> float:
        return _df_for(self._model, self.ddf, ell)

    def _groups(self) -> list[tuple[tuple, list[int]]]:
        if not self.by:
            return [((), list(self.table.index))]
        groups: dict[tuple, list[int]] = {}
        for i in self.table.index:
            key = tuple(self.table.loc[i, b] for b in self.by)
            groups.setdefault(key, []).append(i)
        return list(groups.items())


# ---------------------------------------------------------------------- building


def emmeans(
    m: Any,
    specs: str | list[str] | tuple[str, ...],
    by: str | list[str] | None = None,
    ddf: str | None = None,
    level: float = 0.95,
    at: dict[str, Any] | None = None,
) -> EMMeans:
    """Estimated marginal means of a fitted lmer model (R's ``emmeans(m, specs)``).

    Parameters
    ----------
    m : LmerResult or GlmerResult
    specs : str or list of str
        Factor name(s) (``"Variety"``, ``["A", "B"]``) or an emmeans formula
        (``"~ Variety"``, ``"~ A | B"``, ``"pairwise ~ Variety"``; the left-hand side
        is accepted and ignored: call ``.pairs()``).
    by : str or list of str, optional
        Factors to condition on (means and contrasts within each level).
    ddf : {"Kenward-Roger", "Satterthwaite", "asymptotic"}, optional
        Default: Kenward-Roger for lmer (as emmeans with pbkrtest), asymptotic (z,
        df = Inf) for glmer, the only one emmeans has there. Means are on the model's
        scale (a glmer's link), as emmeans' default.
    level : float
        Confidence level of ``lower.CL``/``upper.CL``.
    at : dict, optional
        emmeans' ``at``: the values of a covariate (instead of its mean) or the levels
        of a factor to put in the grid, ``{"Days": [0, 3, 6, 9]}``. A variable given
        several values and not named in ``specs``/``by`` is averaged over them.
    """
    level = arguments.probability("level", level)
    at = arguments.mapping("at", at)
    glmm = getattr(m, "family", None) is not None
    if ddf is None:
        ddf = "asymptotic" if glmm else "Kenward-Roger"
    key = str(ddf).strip().lower().replace("_", "-")
    if key not in DDF:
        raise ArgumentError(
            f"ddf must be 'Kenward-Roger', 'Satterthwaite' or 'asymptotic', not {ddf!r}"
        )
    ddf = DDF[key]
    if glmm and ddf != "asymptotic":
        raise ArgumentError(
            f"ddf={ddf!r} is for lmer fits; a glmer's means are asymptotic (z tests, "
            "df = Inf), as emmeans gives them: leave ddf out or pass ddf='asymptotic'"
        )
    frame = m.frame
    variables = _grid_variables(frame)
    spec_vars, by_vars = _parse_specs(specs, by, variables)
    _apply_at(variables, at)
    for where, v in [*(("specs", v) for v in spec_vars), *(("by", v) for v in by_vars)]:
        if v not in variables:
            raise ArgumentError(
                f"{where}: {v!r} is not a variable of the fixed part "
                f"({', '.join(variables) or 'none'}); emmeans' grid has only those"
            )
    _check_column_names(spec_vars, by_vars)
    named = [*spec_vars, *by_vars]
    others = [v for v in variables if v not in named and variables[v][0] == "factor"]
    cells = _expand_grid([variables[v][1] for v in named])
    n_cells, n_comb, records = _grid_records(variables, named, others, cells)
    X = _grid_matrix(frame, _grid_frame(frame, records, variables))
    L = X.reshape(n_cells, n_comb, -1).mean(axis=1)
    V = _vcov_for(m, ddf)
    estimable = Estimability.of(frame, _grid_frame(frame, records, variables), n_cells, n_comb)
    table = _means_table(m, L, V, ddf, level, estimable)
    for pos, v in enumerate(named):
        column = [c[pos] for c in cells]
        if isinstance(variables[v][1][0], str):
            column = pd.Categorical(column, categories=list(variables[v][1]))
        table.insert(pos, v, column)
    table.attrs["ddf"] = ddf
    table.attrs["level"] = level
    if others:
        table.attrs["averaged_over"] = tuple(others)
    return EMMeans(table, L, tuple(spec_vars), tuple(by_vars), ddf, level, m, V, estimable)


def _apply_at(variables: dict[str, tuple], at: dict[str, Any]) -> None:
    """emmeans' ``at``: the given values (or factor levels) replace a variable's grid."""
    for v, values in at.items():
        if v not in variables:
            raise ArgumentError(f"at: {v!r} is not a variable of the fixed part")
        many = isinstance(values, list | tuple | np.ndarray | pd.Series | pd.Index)
        values = tuple(values) if many else (values,)
        if not values:
            raise ArgumentError(f"at: no values given for {v!r}")
        kind, levels = variables[v]
        if kind == "factor":
            unknown = [x for x in values if x not in levels]
            if unknown:
                raise ArgumentError(f"at: {unknown} are not levels of {v!r}")
            values = tuple(x for x in levels if x in values)
        else:
            values = tuple(arguments.finite(f"at[{v!r}]", x) for x in values)
        variables[v] = ("factor", values)


def _grid_records(variables, named, others, cells) -> tuple[int, int, dict[str, list]]:
    """The reference grid's columns: every cell of the named variables crossed with every
    combination of the other factors (averaged over), the rest at their one value."""
    combos = _expand_grid([variables[v][1] for v in others])
    n_cells, n_comb = len(cells), len(combos)
    records: dict[str, list] = {}
    for pos, v in enumerate(named):
        records[v] = [c[pos] for c in cells for _ in range(n_comb)]
    for pos, v in enumerate(others):
        records[v] = [c[pos] for _ in range(n_cells) for c in combos]
    for v, (_kind, values) in variables.items():
        if v not in records:
            records[v] = [values[0]] * (n_cells * n_comb)
    return n_cells, n_comb, records


def _means_table(m, L: np.ndarray, V: np.ndarray, ddf: str, level: float, estimable):
    """emmean, SE, df and the confidence limits of each row of ``L`` (NaN where the
    mean is not estimable)."""
    frame = m.frame
    beta = np.asarray(m.fixef(), dtype=float)
    # an offset() enters every mean at its average over the model's rows (emmeans)
    est = L @ beta + (float(np.mean(frame.offset)) if frame.parsed.fixed_part.offsets else 0.0)
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", L, V, L), 0.0))
    nonest = np.zeros(len(L), dtype=bool) if estimable is None else ~estimable.rows_ok()
    dfs = np.array([np.nan if bad else _df_for(m, ddf, ell) for ell, bad in zip(L, nonest)])
    crit = np.array(
        [np.nan if bad else t_quantile(1 - (1 - level) / 2, d) for d, bad in zip(dfs, nonest)]
    )
    est[nonest] = se[nonest] = np.nan
    return pd.DataFrame(
        {
            "emmean": est,
            "SE": se,
            "df": dfs,
            "lower.CL": est - crit * se,
            "upper.CL": est + crit * se,
        }
    )


_MEANS_COLUMNS = ("emmean", "SE", "df", "lower.CL", "upper.CL")
_PAIRS_COLUMNS = ("contrast", "estimate", "SE", "df", "t.ratio", "p.value")


def _check_column_names(spec_vars: list[str], by_vars: list[str]) -> None:
    """A grid variable cannot share its name with a column of the tables (R's emmeans
    gives duplicated names there, and its print fails)."""
    clashes = [v for v in spec_vars + by_vars if v in _MEANS_COLUMNS]
    clashes += [v for v in by_vars if v in _PAIRS_COLUMNS and v not in clashes]
    if clashes:
        raise ArgumentError(
            f"{', '.join(map(repr, clashes))} is the name of a column of emmeans' own tables "
            f"({', '.join(dict.fromkeys(_MEANS_COLUMNS + _PAIRS_COLUMNS))}): rename that "
            "column of the data to get its marginal means"
        )


_SPEC_NAME = re.compile(r"`[^`]*`|[^*+:\s`]+")
"""One variable of an emmeans formula: a bare name or R's backticked one."""


def _spec_names(text: str, variables) -> list[str]:
    """The variables a spec text names: the text itself when it is a variable's name
    (``"my col"``), else its bare or backticked names (``"~ A * `my col`"``)."""
    if text in variables or text.strip() in variables:
        return [text if text in variables else text.strip()]
    return [v[1:-1] if v.startswith("`") else v for v in _SPEC_NAME.findall(text)]


def _parse_specs(specs, by, variables=()) -> tuple[list[str], list[str]]:
    if by is not None and not isinstance(by, str | list | tuple):
        raise ArgumentError(f"by must be a factor's name or a list of names, not {by!r}")
    by_vars = [] if by is None else ([by] if isinstance(by, str) else list(by))
    if isinstance(specs, str):
        if specs in variables or specs.strip() in variables:
            text = specs
        else:
            text = specs.strip()
            if "~" in text:
                text = text.split("~", 1)[1]
            if "|" in text:
                text, by_text = text.split("|", 1)
                by_vars += _spec_names(by_text, variables)
        spec_vars = _spec_names(text, variables)
    elif isinstance(specs, list | tuple) and all(isinstance(v, str) for v in specs):
        spec_vars = list(specs)
    else:
        raise ArgumentError(
            f"specs must be a factor's name, a list of names or an emmeans formula "
            f"('~ A | B'), not {specs!r}"
        )
    for v in by_vars:
        if not isinstance(v, str):
            raise ArgumentError(f"by must name factors, not {v!r}")
    if not spec_vars:
        raise ArgumentError("specs must name at least one variable of the fixed part")
    both = set(spec_vars) & set(by_vars)
    if both:
        raise ArgumentError(f"{', '.join(sorted(both))} cannot be both in specs and in by")
    return spec_vars, by_vars


def _grid_variables(frame) -> dict[str, tuple[str, tuple]]:
    """Each fixed-part variable: ``("factor", levels)`` or ``("covariate", (mean,))``."""
    info = frame.fixed_info
    categorical_codes = [
        (fi.factor.code, fi.categories)
        for fi in info.factor_infos.values()
        if fi.type == "categorical"
    ]
    out: dict[str, tuple[str, tuple]] = {}
    for v in frame.parsed.fixed_part.variables():
        if v in out or v not in frame.data.columns:
            continue
        col = frame.data[v]
        if isinstance(col.dtype, pd.CategoricalDtype):
            out[v] = ("factor", tuple(col.cat.categories))
        elif pd.api.types.is_bool_dtype(col):
            out[v] = ("factor", (False, True))
        elif pd.api.types.is_numeric_dtype(col):
            wrapped = [cats for code, cats in categorical_codes if v in columns_in(code)]
            if wrapped:  # factor(x) of a numeric column
                out[v] = ("factor", tuple(wrapped[0]))
            else:
                out[v] = ("covariate", (float(col.to_numpy(dtype=float).mean()),))
        else:
            out[v] = ("factor", tuple(sorted(col.astype(str).unique())))
    return out


def _expand_grid(values: list[tuple]) -> list[tuple]:
    """R's ``expand.grid``: the first variable varies fastest."""
    if not values:
        return [()]
    return [tuple(reversed(c)) for c in itertools.product(*reversed(values))]


def _grid_frame(frame, records: dict[str, list], variables) -> pd.DataFrame:
    grid = pd.DataFrame(records)
    for v in variables:
        col = frame.data[v]
        if isinstance(col.dtype, pd.CategoricalDtype):
            grid[v] = pd.Categorical(grid[v], categories=col.cat.categories)
    return grid


def _grid_matrix(frame, grid: pd.DataFrame) -> np.ndarray:
    return design.rows(frame.fixed_info, grid, frame.fixed_patsy_names)


@dataclass
class Estimability:
    """emmeans' estimability check when lme4 dropped aliased columns: ``l'beta`` is
    estimable when the full-design ``l`` is orthogonal to the null space of ``X``."""

    L_full: np.ndarray
    null: np.ndarray
    tol: float

    @classmethod
    def of(cls, frame, grid: pd.DataFrame, n_cells: int, n_comb: int) -> Estimability | None:
        if not frame.dropped_fixed:
            return None
        import scipy.linalg as sla

        names = frame.fixed_info.column_names
        X_all = design.rows(frame.fixed_info, frame.data, names)
        X_grid = design.rows(frame.fixed_info, grid, names)
        L_full = np.asarray(X_grid).reshape(n_cells, n_comb, -1).mean(axis=1)
        null = sla.null_space(np.asarray(X_all))
        return cls(L_full, null, 1e-6 * max(1.0, float(np.max(np.abs(L_full)))))

    def _ok(self, ell: np.ndarray) -> bool:
        return not self.null.size or float(np.max(np.abs(ell @ self.null))) <= self.tol

    def rows_ok(self) -> np.ndarray:
        return np.array([self._ok(row) for row in self.L_full], dtype=bool)

    def difference_ok(self, i: int, j: int) -> bool:
        return self._ok(self.L_full[i] - self.L_full[j])


def _vcov_for(m, ddf: str) -> np.ndarray:
    if ddf == "Kenward-Roger":
        from lme2sm.inference.kenward_roger import kenward_roger_model

        return kenward_roger_model(m).vcov_adj
    return np.asarray(m.vcov(), dtype=float)


def _df_for(m, ddf: str, ell: np.ndarray) -> float:
    if ddf == "Kenward-Roger":
        from lme2sm.inference.kenward_roger import kenward_roger_model

        return kenward_roger_model(m).ddf(ell)
    if ddf == "Satterthwaite":
        from lme2sm.inference.satterthwaite import satterthwaite_model

        return float(satterthwaite_model(m).contest1d(ell)["df"])
    return math.inf
