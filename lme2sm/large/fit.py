"""``lmer`` on data beyond memory: two passes over the partitions, then the engine locally.

1. Levels (:meth:`ModelPlan.summarise` per partition, added up): complete rows, rows
   dropped for missing values, the distinct levels of every grouping factor and factor.
2. Cross-products (:meth:`ModelPlan.crossprods` per partition, added up with
   :meth:`CrossProducts.add`): X'X, X'y, y'y and per term Z'X, Z'y, Z'Z.
3. The profiled deviance is optimised on the summed cross-products in this process
   (:class:`~lme2sm.engine.lmm.ProfiledLMM`, or with ``factor="krylov"`` the approximate
   :class:`~lme2sm.engine.krylov.KrylovLMM` on the same sums: the sparse level x level
   cross-products and the per-level sums, never a dense levels^2 block): nothing
   n-sized is ever gathered here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from lme2sm import arguments
from lme2sm.engine.crossprod import CrossProducts
from lme2sm.engine.frame_input import term_specs
from lme2sm.engine.krylov import KRYLOV_HINT, KrylovLMM
from lme2sm.engine.lmm import ProfiledLMM
from lme2sm.engine.progress import fit_progress
from lme2sm.engine.record import LmmFit
from lme2sm.errors import DataError, DroppedRowsWarning, FitError, RankDeficiencyWarning
from lme2sm.frame import design
from lme2sm.frame.model_frame import RANK_TOL, RandomTermFrame, _check_sizes, check_reml_rows
from lme2sm.large.frame import LazyModelFrame
from lme2sm.large.plan import ModelPlan, PartitionSummary
from lme2sm.large.progress import Progress
from lme2sm.large.sources import as_source

__all__ = ["FACTORS", "LargeFit", "fit_large", "build_lazy_frame", "kept_columns_gram"]

FACTORS = ("exact", "krylov")


@dataclass(frozen=True)
class LargeFit:
    """The stages' output before results: the frame, the engine's record, the deviance."""

    frame: LazyModelFrame
    engine_fit: LmmFit
    profiled: ProfiledLMM | KrylovLMM
    reml: bool


def kept_columns_gram(G: np.ndarray, tol: float = RANK_TOL) -> list[int]:
    """:func:`lme2sm.frame.model_frame.kept_columns` from ``X'X`` alone: in order, each column
    whose residual on the columns kept before it is larger than ``tol`` times its norm."""
    keep: list[int] = []
    for j in range(G.shape[0]):
        gjj = float(G[j, j])
        if gjj <= 0:
            continue
        if keep:
            K = np.ix_(keep, keep)
            g = G[keep, j]
            coef = np.linalg.lstsq(G[K], g, rcond=None)[0]
            r2 = gjj - float(g @ coef)
        else:
            r2 = gjj
        if r2 > 0 and np.sqrt(r2) > tol * np.sqrt(gjj):
            keep.append(j)
    return keep


def _select_fixed(cp: CrossProducts, keep: list[int]) -> CrossProducts:
    idx = [*keep, cp.p]
    return CrossProducts(
        cp.q,
        cp.k,
        cp.diag,
        cp.off,
        [z[idx] for z in cp.zxy],
        cp.xy[np.ix_(idx, idx)],
        cp.n,
        cp.sum_log_w,
        cp.pattern,
        None if cp.beta_shift is None else cp.beta_shift[keep],
    )


def _warn_dropped(summary: PartitionSummary) -> None:
    dropped = summary.n_rows - summary.n_complete
    if dropped:
        which = ", ".join(f"{c} ({n})" for c, n in summary.na_counts.items() if n)
        warnings.warn(
            f"dropped {dropped} of {summary.n_rows} rows with missing values in: {which}",
            DroppedRowsWarning,
            stacklevel=4,
        )


def _drop_aliased(cp: CrossProducts, pairs) -> tuple[CrossProducts, list[int], tuple]:
    """lme4's rank-deficiency rule on the summed ``X'X``: the kept columns, the sums
    without the dropped ones, and their names (with lme4's message)."""
    keep = kept_columns_gram(cp.xy[:-1, :-1])
    if len(keep) == len(pairs):
        return cp, keep, ()
    dropped = tuple(r for j, (_sm, r) in enumerate(pairs) if j not in keep)
    n = len(dropped)
    warnings.warn(
        f"fixed-effect model matrix is rank deficient so dropping {n} "
        f"column{'s' if n > 1 else ''} / coefficient{'s' if n > 1 else ''} "
        f"({', '.join(dropped)})",
        RankDeficiencyWarning,
        stacklevel=4,
    )
    return _select_fixed(cp, keep), keep, dropped


def _lazy_term(plan: ModelPlan, t, info, tpairs) -> RandomTermFrame:
    """A random term of the frame without rows: names, levels and design, no codes or Z."""
    factors = t.group_factors
    if len(factors) == 1 and factors[0] not in plan.other_uses:
        column = factors[0]
    else:
        column = t.group + (".grp" if len(factors) == 1 else "")
        while column in plan.columns:
            column += "_"
    return RandomTermFrame(
        term=t,
        group=t.group,
        column=column,
        names=tuple(r for _, r in tpairs),
        patsy_names=tuple(sm for sm, _ in tpairs),
        levels=tuple(plan.levels[t.group]),
        codes=None,
        Z=None,
        info=info,
    )


def build_lazy_frame(
    formula,
    source,
    weights: str | None = None,
    progress: bool = True,
) -> LazyModelFrame:
    """Both passes over ``source``: the model frame without rows, cross-products summed."""
    src = as_source(source)
    plan = ModelPlan.from_formula(formula, src.head(), weights)
    columns = list(plan.columns)
    summary = src.map_reduce(
        plan.summarise,
        PartitionSummary.add,
        columns,
        Progress("lme2sm: levels", enabled=progress),
    )
    if summary is None or summary.n_rows == 0:  # no partition, or only empty ones
        raise DataError("the data have no rows: there is nothing to fit")
    _warn_dropped(summary)
    plan = plan.with_levels(summary).with_shift(summary.sample)
    cp = src.map_reduce(
        plan.crossprods,
        CrossProducts.add,
        columns,
        Progress("lme2sm: cross-products", enabled=progress),
    )
    d = plan.designs
    pairs = d["X_pairs"]
    cp, keep, dropped = _drop_aliased(cp, pairs)
    kept_pairs = [pairs[j] for j in keep]
    raw_terms = [
        _lazy_term(plan, t, info, tpairs)
        for t, info, tpairs in zip(plan.parsed.random_terms, d["terms"], d["term_pairs"])
    ]
    terms = tuple(raw_terms[i] for i in plan.term_order)
    _check_sizes(cp.n, terms)
    return LazyModelFrame(
        formula=plan.parsed.formula,
        parsed=plan.parsed,
        n_dropped=summary.n_rows - summary.n_complete,
        response_name=design.factor_codes(plan.parsed.response_expr)[1],
        fixed_names=tuple(r for _, r in kept_pairs),
        fixed_patsy_names=tuple(sm for sm, _ in kept_pairs),
        dropped_fixed=dropped,
        fixed_info=d["X"],
        terms=terms,
        group_columns={t.group: t.column for t in terms},
        level_order={g: tuple(lv) for g, lv in plan.levels.items()},
        weights_name=weights,
        n=cp.n,
        crossprods=cp,
        source=src,
        plan=plan,
        keep_columns=tuple(keep),
    )


def profiled_large(frame: LazyModelFrame, factor: str = "exact") -> ProfiledLMM | KrylovLMM:
    """The deviance on the summed cross-products: exact, or ``factor="krylov"``'s
    approximation; a FitError pointing to the latter when the exact crossed block is
    too large."""
    cp, specs = frame.crossprods, term_specs(frame)
    try:
        if factor == "krylov":
            return KrylovLMM(cp, specs)
        return ProfiledLMM(cp, specs)
    except MemoryError as exc:
        raise FitError(f"{exc}. {KRYLOV_HINT}") from None


def fit_large(
    formula,
    source,
    REML: bool = True,
    weights: str | None = None,
    progress: bool = True,
    factor: str = "exact",
) -> LargeFit:
    """Fit ``formula`` to data beyond memory; the stages' output (the result is built by
    :func:`lme2sm.models.lmer.lmer_large`). ``progress``: lines on stderr for the passes
    and, past 5 s, for the optimisation (:mod:`lme2sm.engine.progress`). ``factor``:
    ``"exact"`` or ``"krylov"`` (the approximate deviance of :mod:`lme2sm.engine.krylov`,
    for crossed designs beyond the exact dense block)."""
    REML = arguments.flag("REML", REML)
    progress = arguments.flag("progress", progress)
    factor = arguments.choice("factor", factor, FACTORS)
    frame = build_lazy_frame(formula, source, weights=weights, progress=progress)
    if REML:
        check_reml_rows(frame)
    profiled = profiled_large(frame, factor)
    reporter = fit_progress(f"lmer {'REML' if REML else 'ML'}", progress)
    engine_fit = profiled.fit(reml=REML, progress=reporter)
    if reporter is not None:
        reporter.finish(engine_fit.deviance)
    return LargeFit(frame, engine_fit, profiled, REML)
