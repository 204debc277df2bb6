"""Translating a parsed lme4 formula plus data into statsmodels MixedLM's arguments.

MixedLM fits, per group i of ``groups``::

    y_i = X_i b + Z_i u_i + sum_j Z_ij v_ij + e_i,  u_i ~ N(0, Psi),  v_ij ~ N(0, s_j^2 I)

with groups independent. So every grouping factor must nest inside ``groups``; the
finest such partition is the connected components of the grouping factors. A term
whose grouping factor *is* that partition goes to ``re_formula`` (it may carry a
correlation matrix; several such terms share Psi block-diagonally through
``fit(free=...)``). Every other term must be scalar, one model-matrix column, and
becomes a ``vc_formula`` entry: ``(1|g)`` → ``"0 + C(g)"``, ``(0 + x|g)`` →
``"0 + C(g):x"``. Anything else raises :class:`~lme2sm.NotExpressibleError`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from lme2sm.errors import (
    ApproximationWarning,
    ArgumentError,
    DataError,
    NotExpressibleError,
)
from lme2sm.faces.codegen import translation_code, translation_explanation
from lme2sm.faces.translation_data import ParamLabel, Placement, TranslationData
from lme2sm.faces.translation_structures import is_categorical as _is_categorical
from lme2sm.faces.translation_structures import plain_terms
from lme2sm.formula import ParsedFormula, parse
from lme2sm.formula.model import LinearPart, RandomTerm, Term
from lme2sm.formula.patsy_text import (
    name_to_patsy,
    part_to_patsy,
    response_to_patsy,
    statsmodels_column,
)
from lme2sm.frame import data_prep, design


class Translation(TranslationData):
    """statsmodels MixedLM arguments for an lme4 formula, and the term-by-term map.

    Build it with :func:`translate`; ``model()`` returns the unfitted MixedLM,
    ``code()`` the same call as plain statsmodels code and ``explain()`` the reasoning.
    """

    def code(self) -> str:
        """Plain Python (pandas + statsmodels only) building and fitting this model.

        Run with ``data`` bound to the caller's data frame, it leaves the fit in
        ``result``.
        """
        return translation_code(self)

    def explain(self) -> str:
        """A term-by-term explanation: lme4 term → statsmodels slot → why."""
        return translation_explanation(self)

    def __str__(self) -> str:
        return self.code()


# --------------------------------------------------------------------------- translate


def translate(
    formula: str | ParsedFormula,
    data: pd.DataFrame,
    *,
    REML: bool = True,
    approximate: bool = False,
    family=None,
) -> Translation:
    """Map an lme4 formula onto statsmodels MixedLM's arguments.

    Parameters
    ----------
    formula : str or ParsedFormula
        An lme4 formula such as ``"Reaction ~ Days + (Days | Subject)"``.
    data : pandas.DataFrame
        The data; it is never modified (the translation keeps its own copy).
    REML : bool
        Fit option recorded in the translation (lme4's default, True).
    approximate : bool
        When a correlated term cannot be expressed, fit the nearest expressible model
        (the term's correlations dropped, as ``||`` would) with an
        :class:`~lme2sm.errors.ApproximationWarning`, instead of raising
        :class:`~lme2sm.NotExpressibleError`.
    family : str or statsmodels family, optional
        A glmer family (``"binomial"``, ``"poisson"``): the translation is then
        glmer's, to statsmodels' Bayesian mixed GLMs
        (:func:`lme2sm.faces.glmer_translate.translate_family`). None or ``"gaussian"``: lmer's.
    """
    if family is not None:
        from lme2sm.faces.glmer_translate import translate_family

        glm = translate_family(formula, data, family)
        if glm is not None:
            return glm
    return _translate(formula, data, REML=REML, approximate=approximate, bind=True)


def _translate(
    formula: str | ParsedFormula,
    data: pd.DataFrame,
    *,
    REML: bool = True,
    approximate: bool = False,
    bind: bool = True,
) -> Translation:
    """:func:`translate`; ``bind=False`` leaves ``scale()``/``poly()`` to compute their
    numbers from the rows patsy sees (for the CLI's placeholder data, whose numbers
    must not end up in the printed code)."""
    for name, value in (("REML", REML), ("approximate", approximate)):
        if not (
            isinstance(value, bool | np.bool_) or (isinstance(value, int) and value in (0, 1))
        ):
            raise ArgumentError(f"{name} must be True or False, not {value!r}")
    parsed = formula if isinstance(formula, ParsedFormula) else parse(formula)
    data_prep.require_random_terms(parsed)
    data_prep.check_columns(data, parsed.variables(), parsed.formula)
    if bind:
        parsed = data_prep.bind_transforms(parsed, data)
    frame, n_dropped = data_prep.drop_missing(data, parsed.variables())
    data_prep.check_response(frame, parsed.response_expr.variables())

    prepared, other_uses = data_prep.formula_group_columns(frame, parsed)
    frame = prepared.frame
    data_prep.check_levels(frame, prepared.group_columns)
    data_prep.categorize_text(frame, sorted(other_uses), set(prepared.group_columns.values()))
    n_levels = {g: int(frame[c].nunique()) for g, c in prepared.group_columns.items()}

    terms = plain_terms(parsed.random_terms, frame, _is_categorical)  # us(), diag()
    n_comp, comp = data_prep.components(frame, list(prepared.group_columns.values()))
    partition = [g for g in prepared.group_columns if n_levels[g] == n_comp]
    correlated = [t.group for t in terms if _n_columns(t, frame) > 1]
    group_name = _choose_partition(partition, correlated, n_comp)

    if group_name is not None:
        groups_col, kind = prepared.group_columns[group_name], "factor"
    else:
        groups_col = _free_name(frame, "group")
        frame[groups_col] = 1 if n_comp == 1 else comp + 1
        kind = "single" if n_comp == 1 else "components"

    resolved = _resolve_terms(terms, frame, group_name, n_levels, n_comp, approximate)
    data_prep.check_lme4_sizes(
        len(frame), [(t.text, t.group, n_levels[t.group], len(cols)) for t, _, cols in resolved]
    )
    placements, re_formula, vc_formula, re_blocks = _place_terms(
        resolved, frame, prepared.group_columns, group_name, n_levels, n_comp
    )

    response = response_to_patsy(parsed.response_expr, parsed.fixed_part.offsets)
    fixed_formula = f"{response} ~ {part_to_patsy(parsed.fixed_part)}"
    y, X, fixed_names = _fixed_matrices(parsed, frame)
    _check_finite(y, X, dict(fixed_names))
    params = _param_labels(fixed_names, placements, re_blocks)
    return Translation(
        formula=parsed.formula,
        parsed=parsed,
        data=frame.rename(columns=statsmodels_column),  # the names the text uses
        fixed_formula=fixed_formula,
        groups=statsmodels_column(groups_col),
        re_formula=re_formula,
        vc_formula=vc_formula,
        placements=tuple(placements),
        params=params,
        fixed_names=fixed_names,
        re_blocks=re_blocks,
        n_groups=n_comp,
        n_dropped=n_dropped,
        reml=REML,
        use_sparse=bool(vc_formula) and n_comp == 1,
        group_columns=dict(prepared.group_columns),
        created_columns=dict(prepared.created_columns),
        group_kind=kind,
        level_order=dict(prepared.level_order),
        fixed_matrices=(y, X),
    )


def _fixed_matrices(parsed: ParsedFormula, frame: pd.DataFrame):
    """The response (offsets subtracted) and fixed-effects design with statsmodels'
    names, columns in lme4's order, and the columns' ``(statsmodels, lme4)`` names."""
    offsets = parsed.fixed_part.offsets
    yd, (Xd,) = design.build(frame, [parsed.fixed_part], parsed.response_expr, offsets=offsets)
    y = pd.DataFrame(yd.values, index=frame.index, columns=[yd.columns[0].statsmodels])
    X = pd.DataFrame(Xd.values, index=frame.index, columns=[c.statsmodels for c in Xd.columns])
    return y, X, tuple((c.statsmodels, c.lme4) for c in Xd.columns)


def _check_finite(y: pd.DataFrame, X: pd.DataFrame, lme4_names: dict[str, str]) -> None:
    """Refuse NaN or infinite values made by a transformation (``log(0)``), as lme4 does."""
    for name, column in [(y.columns[0], y.iloc[:, 0]), *X.items()]:
        bad = ~np.isfinite(column.to_numpy(dtype=float))
        if bad.any():
            label = lme4_names.get(name, name)
            rows = ", ".join(str(i) for i in column.index[bad][:5])
            raise DataError(
                f"{label} is NaN or infinite in {int(bad.sum())} rows (e.g. rows {rows}); lme4 "
                "refuses such values too: fix the data or the transformation (log of zero?)"
            )


def _free_name(frame: pd.DataFrame, name: str) -> str:
    while name in frame.columns:
        name += "_"
    return name


def _choose_partition(partition: list[str], correlated: list[str], n_comp: int) -> str | None:
    """The grouping factor to use as ``groups`` (prefer one with a correlated term)."""
    for g in correlated:
        if g in partition:
            return g
    return partition[0] if partition else None


# ------------------------------------------------------------------------- the terms


def _design(part: LinearPart, frame: pd.DataFrame) -> design.Design:
    """The design of right-hand side ``part`` on ``frame``."""
    return design.build(frame, [part], where=[f" for {part_to_patsy(part)!r}"])[1][0]


def _statsmodels_names(part: LinearPart, frame: pd.DataFrame) -> list[str]:
    """statsmodels' names of ``part``'s columns, in statsmodels' (patsy's) order."""
    d = _design(part, frame)
    shown = {c.patsy: c.statsmodels for c in d.columns}
    return [shown[n] for n in d.info.column_names]


def _n_columns(term: RandomTerm, frame: pd.DataFrame) -> int:
    return len(_design(term.effects_part, frame).columns)


def _term_columns(term: RandomTerm, frame: pd.DataFrame) -> list[tuple[str, str]]:
    return [(c.statsmodels, c.lme4) for c in _design(term.effects_part, frame).columns]


def _vc_text(term: RandomTerm, group_col: str) -> str:
    g = f"C({name_to_patsy(group_col)})"
    if term.intercept and not term.effects:
        return f"0 + {g}"
    effect = ":".join(part_to_patsy(LinearPart(False, (t,)))[4:] for t in term.effects_part.terms)
    return f"0 + {g}:{effect}"


def _vc_key(term: RandomTerm, used: set[str]) -> str:
    key = term.group if term.intercept else f"{term.group}|{term.effects[0]}"
    base, i = key, 1
    while key in used:
        i += 1
        key = f"{base}.{i}"
    used.add(key)
    return key


def _nearest_text(term: RandomTerm) -> str:
    lhs = " + ".join(term.effects) if term.effects else "1"
    if not term.intercept:
        lhs = "0 + " + lhs
    return f"({lhs} || {term.group})"


def _split_term(term: RandomTerm) -> list[RandomTerm]:
    """A correlated term as one scalar term per model-matrix column (``||``)."""
    out = []
    if term.intercept:
        out.append(
            RandomTerm(LinearPart(True), term.group, term.group_factors, term.span, term.source)
        )
    for t in term.effects_part.terms:
        out.append(
            RandomTerm(
                LinearPart(False, (t,)), term.group, term.group_factors, term.span, term.source
            )
        )
    return out


def _resolve_terms(terms, frame, group_name, n_levels, n_comp, approximate):
    """Each term with its columns; a multi-column term off the partition is refused or,
    with ``approximate``, split into one scalar term per column (as ``||`` would)."""
    resolved: list[tuple[RandomTerm, str | None, list[tuple[str, str]]]] = []
    queue: list[tuple[RandomTerm, str | None]] = [(t, None) for t in terms]
    while queue:
        term, origin = queue.pop(0)
        cols = _term_columns(term, frame)
        if term.group == group_name or len(cols) == 1:
            resolved.append((term, origin, cols))
            continue
        reason, suggestion = _why_not(term, group_name, n_levels, n_comp)
        if _split_term(term) == [term]:  # one effect with several columns: poly(x, 2)
            raise NotExpressibleError(
                term.text,
                reason + f"; its effect {term.lhs_text} has several columns, which || does "
                "not split (lme4 keeps them together too): use the columns one by one, or "
                "group by the partition",
                None,
            )
        if not approximate:
            raise NotExpressibleError(term.text, reason, suggestion)
        if any(_is_categorical(t, frame) for t in term.effects_part.terms):
            raise NotExpressibleError(
                term.text,
                reason + "; it has a factor effect, which cannot be split column by column",
                suggestion,
            )
        warnings.warn(
            f"fitting {suggestion} instead of ({term.text}): {reason}; the correlations "
            f"among {', '.join(n for _, n in cols)} for {term.group} are not estimated",
            ApproximationWarning,
            stacklevel=3,
        )
        queue[:0] = [(t, f"({term.text})") for t in _split_term(term)]
    return resolved


def _re_members(resolved, group_name) -> set[int]:
    """Which terms go in ``re_formula``: the multi-column terms on the partition, or
    else its first one-column term. Other one-column terms on the partition become
    variance components, so no covariance has to be pinned at zero."""
    on_partition = [i for i, (t, _o, _c) in enumerate(resolved) if t.group == group_name]
    multi = {i for i in on_partition if len(resolved[i][2]) > 1}
    if multi:
        return multi
    return set(on_partition[:1])


def _place_terms(resolved, frame, group_columns, group_name, n_levels, n_comp):
    """Placements for resolved terms, the re_formula, vc_formula and re blocks."""
    placements: list[Placement] = []
    vc: dict[str, str] = {}
    in_re = _re_members(resolved, group_name)
    # vc keys become "<key> Var" parameters: keep them clear of re_formula's names
    used: set[str] = {group_columns[group_name]} if group_name is not None else set()
    for i in in_re:
        used.update(resolved[i][0].effects)
    for index, (term, origin, cols) in enumerate(resolved):
        if index in in_re:
            reason = (
                f"{term.group} is the groups partition: its {n_comp} levels are independent "
                "groups, so this term's random effects go in MixedLM's per-group covariance matrix"
            )
            text = part_to_patsy(term.effects_part)
            placements.append(
                Placement(
                    term,
                    "re_formula",
                    None,
                    text,
                    tuple(cols),
                    reason,
                    n_levels[term.group],
                    origin,
                )
            )
            continue
        key = _vc_key(term, used)
        text = _vc_text(term, group_columns[term.group])
        vc[key] = text
        if term.group == group_name:
            reason = (
                f"{term.group} is the groups partition, but lme4 keeps this one-column term "
                "separate from the others on it (no correlation), so it is a variance component "
                "of its own: one column per group, one variance"
            )
        else:
            where = (
                "all rows form one group"
                if n_comp == 1
                else f"{term.group} nests inside the {n_comp} groups"
            )
            reason = (
                f"{term.group} is not the groups partition ({where}) and the term has one "
                "column, so it is a variance component: one column per level, one shared variance"
            )
        placements.append(
            Placement(
                term, "vc_formula", key, text, tuple(cols), reason, n_levels[term.group], origin
            )
        )
    re_terms = [p.term for p in placements if p.slot == "re_formula"]
    if not re_terms:
        return placements, "0", vc, ()
    re_formula = part_to_patsy(_re_union(re_terms))
    blocks = _re_blocks(placements, _statsmodels_names(_re_union(re_terms), frame))
    groups_col = statsmodels_column(group_columns[group_name])
    placements = [
        _with_re_names(p, groups_col) if p.slot == "re_formula" else p for p in placements
    ]
    return placements, re_formula, vc, tuple(blocks)


def _re_blocks(placements: list[Placement], names: list[str]) -> list[tuple[int, ...]]:
    """Each re_formula term's columns among the shared covariance matrix's ``names``
    (refused when sharing would change a term's columns or repeat one)."""
    blocks: list[tuple[int, ...]] = []
    for p in placements:
        if p.slot != "re_formula":
            continue
        missing = [sm for sm, _ in p.columns if sm not in names]
        if missing:
            raise NotExpressibleError(
                p.term.text,
                f"its columns change when it shares one covariance matrix with the other "
                f"{p.term.group} terms",
                f"one ( ... | {p.term.group}) term holding all of {p.term.group}'s effects",
            )
        idx = tuple(names.index(sm) for sm, _ in p.columns)
        if set(idx) & {i for b in blocks for i in b}:
            raise NotExpressibleError(
                p.term.text,
                f"it repeats a column of another {p.term.group} term, and MixedLM holds each "
                "random-effect column once",
                "the formula without the repeated term",
            )
        blocks.append(idx)
    return blocks


def _re_union(parts: list[RandomTerm]) -> LinearPart:
    intercept = any(p.intercept for p in parts)
    seen: list[Term] = []
    for p in parts:
        for t in p.effects_part.terms:
            if t not in seen:
                seen.append(t)
    return LinearPart(intercept, tuple(seen))


def _with_re_names(p: Placement, groups_col: str) -> Placement:
    """statsmodels calls the re intercept after the groups column: rename to match."""
    cols = tuple((groups_col if sm == "Intercept" else sm, r) for sm, r in p.columns)
    return Placement(
        p.term, p.slot, p.key, p.statsmodels_text, cols, p.reason, p.n_levels, p.approximated_from
    )


def _why_not(term, group_name, n_levels, n_comp):
    """One sentence on why a multi-column term cannot be placed, and the nearest formula."""
    nearest = _nearest_text(term)
    if group_name is None:
        if n_comp == 1:
            where = "the grouping factors are crossed, so all rows form one group"
        else:
            where = (
                f"the grouping factors link the rows into {n_comp} independent groups, "
                f"and {term.group} ({n_levels[term.group]} levels) is not that partition"
            )
    else:
        where = (
            f"the groups partition is {group_name} ({n_comp} levels) and {term.group} "
            f"({n_levels[term.group]} levels) is nested in it or crossed with it"
        )
    reason = (
        f"a term with several correlated columns needs its own covariance matrix, which "
        f"MixedLM allows only for the groups factor; {where}"
    )
    return reason, nearest


def _param_labels(fixed_names, placements, re_blocks) -> tuple[ParamLabel, ...]:
    """Every statsmodels parameter name with the lme4 quantity it stands for."""
    out = [ParamLabel(sm, "fixed", var1=r) for sm, r in fixed_names]
    re_placements = [(i, p) for i, p in enumerate(placements) if p.slot == "re_formula"]
    by_index: dict[int, tuple[str, str, str, int, int]] = {}
    for b, ((i, p), block) in enumerate(zip(re_placements, re_blocks)):
        for idx, (sm, r) in zip(block, p.columns):
            by_index[idx] = (sm, r, p.term.group, i, b)
    cols = [by_index[k] for k in sorted(by_index)]
    for a in range(len(cols)):
        for c in range(a + 1):
            sm_a, r_a, grp, t_a, b_a = cols[a]
            sm_c, r_c, _g, _t, b_c = cols[c]
            if a == c:
                out.append(ParamLabel(f"{sm_a} Var", "var", grp, r_a, None, t_a))
            elif b_a == b_c:
                out.append(ParamLabel(f"{sm_c} x {sm_a} Cov", "cov", grp, r_c, r_a, t_a))
            else:
                out.append(ParamLabel(f"{sm_c} x {sm_a} Cov", "pinned", grp, r_c, r_a, None))
    for i, p in enumerate(placements):
        if p.slot == "vc_formula":
            out.append(ParamLabel(f"{p.key} Var", "var", p.term.group, p.columns[0][1], None, i))
    return tuple(out)
