"""``lmer``: model frame → engine → results, the composition of the pipeline's stages."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd

from lme2sm import arguments
from lme2sm.engine.frame_input import frame_crossprods, profiled_of, term_specs
from lme2sm.engine.hessian_check import checked, is_singular, unidentifiable_messages
from lme2sm.engine.krylov import KRYLOV_HINT, KrylovLMM
from lme2sm.engine.lmm import ProfiledLMM
from lme2sm.engine.progress import FitProgress, fit_progress
from lme2sm.engine.record import LmmFit
from lme2sm.engine.threads import blas_threads
from lme2sm.errors import ArgumentError, ConvergenceWarning, FitError
from lme2sm.frame.model_frame import ModelFrame, build_model_frame, check_reml_rows
from lme2sm.glmm.derivatives import central_gradient
from lme2sm.models.lmer_result import LmerResult

ENGINES = ("auto", "lme4", "statsmodels")
FACTORS = ("exact", "krylov")

GRADIENT_TOL = 2e-3
"""lme4's ``check.conv.grad`` tolerance."""


def lmer(
    formula: str,
    data: pd.DataFrame,
    REML: bool = True,
    *,
    weights: str | np.ndarray | pd.Series | None = None,
    engine: str = "auto",
    data_name: str | None = None,
    approximate: bool = False,
    progress: bool = True,
    factor: str = "exact",
) -> LmerResult:
    """Fit a linear mixed model written as an lme4 formula.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : pandas.DataFrame, dask.dataframe.DataFrame, polars.LazyFrame or path
        Never modified. A Dask or polars frame, or a Parquet file, directory or glob,
        is fitted from cross-products summed partition by partition
        (:func:`lmer_large`; extras ``lme2sm[dask]``, ``[polars]``,
        ``[parquet]``).
    REML : bool
        Restricted maximum likelihood (lme4's default) or maximum likelihood.
    weights : str or array, optional
        lme4's prior weights: a column name or one positive value per row (the residual
        variance of row i is sigma^2 / w_i).
    engine : {"auto", "lme4", "statsmodels"}
        ``"auto"``/``"lme4"``: lme4's penalised least squares (every model lmer
        accepts). ``"statsmodels"``: statsmodels' own optimiser on the translated
        MixedLM (for comparison and teaching; only models MixedLM can express).
    data_name : str, optional
        Shown as ``Data:`` in the summary, as lme4 shows the data's name.
    approximate : bool
        With ``engine="statsmodels"``: fit the nearest model MixedLM can express.
    progress : bool
        Progress lines on stderr for a long fit (evaluations, best deviance, elapsed
        seconds), none for one that ends within 5 s; False, or the environment variable
        ``LME2SM_PROGRESS=0``, silences them (:mod:`lme2sm.engine.progress`).
    factor : {"exact", "krylov"}
        ``"exact"`` (default): lme4's deviance from the Cholesky factor. ``"krylov"``:
        an APPROXIMATE fit for crossed designs too large for the exact factor (10^4 or
        more levels crossed with the largest term): conjugate-gradient solves and a
        stochastic (fixed-probe) estimate of ``log|L|^2``
        (:mod:`lme2sm.engine.krylov`). Its logLik is off by about the standard error
        the summary states (measured 1e-3 on MovieLens-shaped data), theta, fixed
        effects and sigma much less; ``result.approximate`` is True.

    Returns
    -------
    LmerResult
    """
    REML = arguments.flag("REML", REML)
    engine = arguments.choice("engine", engine, ENGINES)
    factor = arguments.choice("factor", factor, FACTORS)
    if factor == "krylov" and engine == "statsmodels":
        raise ArgumentError("factor='krylov' is lme2sm's own engine; use engine='auto'")
    data_name = arguments.text("data_name", data_name)
    approximate = arguments.flag("approximate", approximate)
    progress = arguments.flag("progress", progress)
    if not isinstance(data, pd.DataFrame) and _is_large_source(data):
        return lmer_large(
            formula,
            data,
            REML=REML,
            weights=weights,
            data_name=data_name,
            progress=progress,
            factor=factor,
        )
    frame = one_thread_frame(formula, data, weights=weights)
    if REML:
        check_reml_rows(frame)
    if engine == "statsmodels":
        return _fit_statsmodels(frame, data, bool(REML), data_name, approximate)
    reporter = fit_progress(f"lmer {'REML' if REML else 'ML'}", progress)
    return fit_frame(
        frame, bool(REML), data_name=data_name, data=data, progress=reporter, factor=factor
    )


def one_thread_frame(formula: str, data: pd.DataFrame, **options) -> ModelFrame:
    """:func:`build_model_frame` on one BLAS thread, as the optimiser runs (and the
    cross-products and the engine's set-up in :func:`fit_frame`): on the rows, threaded
    norms and dots cost more than they save, most when the other core is busy (InstEval
    on a loaded 2-core machine: frame 0.11 -> 0.06 s, cross-products 0.05 -> 0.02 s,
    engine set-up 0.25 -> 0.19 s)."""
    with blas_threads(1):
        return build_model_frame(formula, data, **options)


def _is_large_source(data) -> bool:
    """A Dask or polars frame, or a path to Parquet files (lme2sm.large fits those)."""
    import os

    if isinstance(data, (str, os.PathLike)):
        return True
    module = type(data).__module__
    return module.startswith(("dask", "polars"))


def fit_frame(
    frame: ModelFrame,
    reml: bool,
    *,
    data_name: str | None = None,
    data: pd.DataFrame | None = None,
    start: np.ndarray | None = None,
    warn: bool = True,
    progress: FitProgress | None = None,
    factor: str = "exact",
) -> LmerResult:
    """Fit a model frame with the engine and check the optimum as lme4 does.

    ``warn=False`` keeps lme4's convergence messages on the result (``messages``)
    without warning (a refit for ``anova``), and touches no warning filter. ``progress``
    reports the optimisation of a long fit (none: silent). ``factor="krylov"``: the
    approximate deviance of :mod:`lme2sm.engine.krylov`."""
    with blas_threads(1), np.errstate(over="ignore", invalid="ignore"):
        cp = frame_crossprods(frame)
    if not (np.all(np.isfinite(cp.xy)) and all(np.all(np.isfinite(z)) for z in cp.zxy)):
        raise FitError(
            "the sums of squares of the response or of a covariate overflow double "
            "precision (values near 1e154 or larger): rescale them before fitting"
        )
    try:
        with blas_threads(1):
            if factor == "krylov":
                profiled = KrylovLMM(cp, term_specs(frame))
            else:
                profiled = ProfiledLMM(cp, term_specs(frame))
    except MemoryError as exc:
        raise FitError(f"{exc}. {KRYLOV_HINT}") from None
    with blas_threads(1):
        try:
            record = profiled.fit(reml=reml, start=start, progress=progress)
        except np.linalg.LinAlgError as exc:
            raise FitError(
                f"the penalised least-squares system is singular at every theta tried ({exc}); "
                "check for a response that the fixed effects fit exactly, or rescale the data"
            ) from None
        if not np.isfinite(record.deviance) or exactly_fitted(cp, record):
            raise FitError(
                "the model leaves no residual variation: the response is constant or "
                "exactly fitted by the fixed effects, so sigma and the deviance are not "
                "defined; check the response column and the formula's right-hand side"
            )
        messages = convergence_messages(profiled, record)
    if progress is not None:
        progress.finish(record.deviance)
    if warn:
        for text in messages:
            warnings.warn(text, ConvergenceWarning, stacklevel=3)
    return LmerResult(
        frame, record, profiled, reml, data_name, data, messages, "lme4", warn_singular=warn
    )


EXACT_FIT = 1e-14
"""A residual sum of squares below this fraction of the response's own is rounding, not
noise: y = 3x + 1 leaves 1e-16 of it; a residual SD of 1e-7 of the response's is at
that floor too in double precision."""


def exactly_fitted(cp, record: LmmFit) -> bool:
    """The fixed and random effects leave no residual worth the name: ``r^2`` is below
    rounding of the response's sum of squares (about its mean when the sums are
    shifted), so sigma and the deviance would be noise."""
    total = float(cp.xy[-1, -1])
    return total > 0 and record.evaluation.r2 <= EXACT_FIT * total


def convergence_messages(profiled: ProfiledLMM, record: LmmFit) -> tuple[str, ...]:
    """lme4's ``checkConv``: the gradient of the deviance at the optimum (central
    differences) must be small, or its Newton step ``H^-1 g`` must be; on a fit that is not
    singular (lme4's terms only), the Hessian's eigenvalues must not be too large or spread
    (``check.conv.hess``, :mod:`lme2sm.engine.hessian_check`)."""
    theta = np.asarray(record.theta, dtype=float)
    lower = profiled.lower
    free = ~(np.isfinite(lower) & (np.abs(theta - lower) < 1e-4))
    if not np.any(free) or is_singular(theta, lower):  # lme4 checks no further
        return ()
    hess_check = checked(getattr(profiled, "specs", ()), theta, lower)
    if record.derivatives is not None:
        idx, grad, hess, at = record.derivatives
        keep = np.flatnonzero(free[idx])
        if len(keep) == 0:
            return ()
        grad, hess = grad[keep], hess[np.ix_(keep, keep)]
        if float(np.max(np.abs(grad))) > GRADIENT_TOL and not np.array_equal(at, theta):
            # measured before the Newton step: lme4 checks where the fit ends
            grad = _central_gradient(profiled, record, idx[keep])
    else:
        grad, hess = _derivatives_afresh(profiled, record, free, need_hessian=hess_check)
    out = ()
    if float(np.max(np.abs(grad))) > GRADIENT_TOL:
        out = _scaled_gradient_messages(grad, hess)
    if hess_check:
        out += unidentifiable_messages(hess)
    return out


def _derivatives_afresh(profiled, record, free, need_hessian):
    """Central-difference gradient and Hessian of the deviance over the ``free`` theta
    (steps ``1e-4 max(|theta|, 0.01)``); the Hessian only if the gradient is not small
    or ``need_hessian``."""
    theta = np.asarray(record.theta, dtype=float)
    reml = record.reml

    def dev(th):
        return profiled.deviance(th, reml)

    idx = np.flatnonzero(free)
    grad = _central_gradient(profiled, record, idx)
    if not need_hessian and float(np.max(np.abs(grad))) <= GRADIENT_TOL:
        return grad, np.zeros((0, 0))
    hess = np.empty((len(idx), len(idx)))
    f0 = record.deviance
    step = _step(theta)
    for a, i in enumerate(idx):
        for b, j in enumerate(idx[: a + 1]):
            hi, hj = step(i), step(j)
            ei = np.zeros_like(theta)
            ej = np.zeros_like(theta)
            ei[i], ej[j] = hi, hj
            if i == j:
                value = (dev(theta + ei) - 2 * f0 + dev(theta - ei)) / (hi * hi)
            else:
                value = (
                    dev(theta + ei + ej)
                    - dev(theta + ei - ej)
                    - dev(theta - ei + ej)
                    + dev(theta - ei - ej)
                ) / (4 * hi * hj)
            hess[a, b] = hess[b, a] = value
    return grad, hess


def _step(theta: np.ndarray):
    """The difference step for entry ``j``: ``1e-4 max(|theta_j|, 0.01)``."""
    return lambda j: 1e-4 * max(abs(theta[j]), 1e-2)


def _central_gradient(profiled, record, idx) -> np.ndarray:
    """Central-difference gradient of the deviance at ``record.theta`` over entries ``idx``."""
    theta = np.asarray(record.theta, dtype=float)
    steps = np.array([_step(theta)(j) for j in idx])
    return central_gradient(lambda th: profiled.deviance(th, record.reml), theta, steps, idx)


def _scaled_gradient_messages(grad: np.ndarray, hess: np.ndarray) -> tuple[str, ...]:
    """lme4's ``checkConv`` from a gradient that is not small: its Newton step
    (the gradient scaled by the Hessian's Cholesky factor) must be."""
    try:
        R = np.linalg.cholesky(hess).T
        scaled = np.linalg.solve(R, grad)
    except np.linalg.LinAlgError:
        return ("Model is nearly unidentifiable: the Hessian of the deviance is singular",)
    worst = float(np.max(np.minimum(np.abs(scaled), np.abs(grad))))
    if not np.isfinite(worst) or worst > GRADIENT_TOL:
        return (f"Model failed to converge with max|grad| = {worst:.6g} (tol = {GRADIENT_TOL})",)
    return ()


def _fit_statsmodels(frame, data, reml, data_name, approximate) -> LmerResult:
    """statsmodels' optimiser on the translation; results through the same engine record."""
    from lme2sm.faces.statsmodels_fit import fit as sm_fit
    from lme2sm.faces.statsmodels_view import theta_from_statsmodels
    from lme2sm.faces.translation import translate

    translation = translate(frame.parsed, data, REML=reml, approximate=approximate)
    t0 = time.perf_counter()
    outcome = sm_fit(translation, reml=reml)
    profiled = profiled_of(frame)
    theta = theta_from_statsmodels(frame, translation, outcome.result)
    record = profiled.record_at(theta, reml)
    record.seconds = time.perf_counter() - t0
    result = LmerResult(
        frame, record, profiled, reml, data_name, data, outcome.messages, "statsmodels"
    )
    result.__dict__["translation"] = translation
    result.__dict__["statsmodels"] = outcome.result
    return result


def refit_ml(m: LmerResult) -> LmerResult:
    """The same model fitted by maximum likelihood (lme4's ``refitML``)."""
    if not m.REML:
        return m
    factor = "krylov" if m.engine_fit.approximation else "exact"
    return fit_frame(
        m.frame,
        False,
        data_name=m.data_name,
        data=m._data,
        start=m.theta,
        warn=False,
        factor=factor,
    )


def lmer_large(
    formula: str,
    source,
    REML: bool = True,
    weights: str | None = None,
    progress: bool = True,
    data_name: str | None = None,
    factor: str = "exact",
):
    """``lmer`` on a Dask DataFrame, a polars LazyFrame or Parquet files.

    Parameters
    ----------
    formula : str
        lme4 formula, as for :func:`lme2sm.lmer`.
    source : dask.dataframe.DataFrame, polars.LazyFrame, str or path
        The rows: a Dask DataFrame (computed on the active Dask scheduler, e.g. a
        ``dask.distributed`` cluster), a polars LazyFrame (streamed), or a Parquet file,
        a directory of Parquet files or a glob (streamed with pyarrow).
    REML : bool
        Restricted maximum likelihood (lme4's default) or maximum likelihood.
    weights : str, optional
        Name of a column of prior weights.
    progress : bool
        Progress lines on stderr for the two passes over the data and, for an
        optimisation that runs longer than 5 s, its evaluations, best deviance and
        elapsed seconds. False, or the environment variable ``LME2SM_PROGRESS=0``,
        silences them.
    data_name : str, optional
        Shown as ``Data:`` in the summary.
    factor : {"exact", "krylov"}
        As for :func:`lmer`: ``"krylov"`` fits crossed designs beyond the exact dense
        block approximately, from the same summed cross-products.

    Returns
    -------
    LmerResult
        The same class as in memory; its ``frame`` is a :class:`LazyModelFrame`.
    """
    from lme2sm.large.fit import fit_large

    REML = arguments.flag("REML", REML)
    progress = arguments.flag("progress", progress)
    data_name = arguments.text("data_name", data_name)
    fitted = fit_large(
        formula, source, REML=REML, weights=weights, progress=progress, factor=factor
    )
    return LmerResult(
        fitted.frame,
        fitted.engine_fit,
        fitted.profiled,
        REML,
        data_name=data_name,
    )
