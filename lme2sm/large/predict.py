"""Fitted values and residuals of a fit on data beyond memory, partition by partition.

The result is lazy in the source's own kind: a Dask Series (computed when the caller
computes it, on the same scheduler), a polars LazyFrame with one column, or, for
Parquet files, an iterator of pandas Series (one per batch). As in memory, rows with a
missing value in a model variable are left out (lme4's ``na.omit``). Dask keeps the
source's index and Parquet batches are indexed by row position in the files (in order),
so the values align with the rows they belong to.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from lme2sm.engine.record import LmmFit
from lme2sm.large.frame import LazyModelFrame
from lme2sm.large.plan import ModelPlan

__all__ = ["KINDS", "lazy_fitted", "partition_values", "residual_quantiles"]

KINDS = ("fitted", "residuals", "population")
"""``fitted``: X beta + Z b + offset (lme4's ``fitted``); ``residuals``: y - fitted;
``population``: X beta + offset (``predict(re.form = NA)``)."""


def partition_values(
    df: pd.DataFrame,
    plan: ModelPlan,
    keep: tuple[int, ...],
    beta: np.ndarray,
    b: list[np.ndarray],
    kind: str,
) -> pd.Series:
    """One partition's values of ``kind`` (see :data:`KINDS`), indexed by its complete rows."""
    part = plan.design(df, with_response=kind == "residuals")
    values = part.X[:, list(keep)] @ beta + part.offset
    if kind != "population":
        for t, bj in zip(part.terms, b):
            values = values + np.sum(t.Z * np.asarray(bj)[t.codes], axis=1)
    if kind == "residuals":
        values = part.y - values
    return pd.Series(values, index=df.index[part.keep], name=kind)


def _polars_batch(batch, fn):
    import polars as pl

    return pl.from_pandas(fn(batch.to_pandas()).reset_index(drop=True).to_frame())


def lazy_fitted(frame: LazyModelFrame, engine_fit: LmmFit, kind: str = "fitted"):
    """``kind`` values (see :data:`KINDS`) for every complete row of the fitted source."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    fn = partial(
        partition_values,
        plan=frame.plan,
        keep=frame.keep_columns,
        beta=np.asarray(engine_fit.beta),
        b=[np.asarray(x) for x in engine_fit.b],
        kind=kind,
    )
    src = frame.source
    columns = list(frame.plan.columns)
    if src.kind == "dask":
        return src.frame[columns].map_partitions(fn, meta=pd.Series(dtype=float, name=kind))
    if src.kind == "polars":
        import polars as pl

        return (
            src.frame.select(columns)
            .map_batches(partial(_polars_batch, fn=fn), schema={kind: pl.Float64})
            .select(kind)
        )
    return (fn(df) for df in src.numbered_batches(columns))


SAMPLE = 200_000
"""Residuals kept for the quantiles (all of them when there are no more rows)."""


def _residual_sketch(df, fn, rate, seed):
    r = fn(df).to_numpy()
    if len(r) == 0:
        return None
    rng = np.random.default_rng([seed, len(df), int(df.index[0]) if len(df.index) else 0])
    kept = r if rate >= 1 else r[rng.random(len(r)) < rate]
    return float(r.min()), float(r.max()), kept


def _add_sketches(a, b):
    return min(a[0], b[0]), max(a[1], b[1]), np.concatenate([a[2], b[2]])


def residual_quantiles(
    frame: LazyModelFrame,
    engine_fit: LmmFit,
    probs=(0.0, 0.25, 0.5, 0.75, 1.0),
    sample: int = SAMPLE,
    progress: bool = False,
) -> np.ndarray:
    """Quantiles of the residuals (R's type 7), one pass over the source.

    Exact when the model has at most ``sample`` rows; otherwise the minimum and maximum
    are exact and the other quantiles come from a uniform sample of about ``sample``
    residuals.
    """
    from lme2sm.large.progress import Progress

    fn = partial(
        partition_values,
        plan=frame.plan,
        keep=frame.keep_columns,
        beta=np.asarray(engine_fit.beta),
        b=[np.asarray(x) for x in engine_fit.b],
        kind="residuals",
    )
    rate = min(1.0, sample / max(frame.n, 1))
    lo, hi, kept = frame.source.map_reduce(
        partial(_residual_sketch, fn=fn, rate=rate, seed=0),
        _add_sketches,
        list(frame.plan.columns),
        Progress("lme2sm: residuals", enabled=progress),
    )
    out = np.quantile(kept, probs)
    probs = np.asarray(probs)
    out[probs == 0] = lo
    out[probs == 1] = hi
    return out
