"""Fitting a translation robustly with statsmodels, and judging the optimum.

The statsmodels path (``lmer(..., engine="statsmodels")``); ``lmer`` itself fits with
lme4's formulation (:mod:`lme2sm.engine.lmm`). statsmodels' default optimiser can stop
short of the optimum and still report convergence (DESIGN.md). The fit here is a fixed
sequence of steps, the same one ``Translation.code()`` prints: L-BFGS; when lme4's
convergence check fails there, a Powell polish and L-BFGS again; the best
log-likelihood wins.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from lme2sm import arguments
from lme2sm.errors import ArgumentError, ConvergenceWarning, FitError
from lme2sm.faces.translation_data import TranslationData

FIT_STEPS: tuple[tuple[str, str | None], ...] = (
    ("lbfgs", None),
    ("powell", "previous"),
    ("lbfgs", "previous"),
)
"""``(method, start)`` for each attempt; ``"previous"`` starts from the best so far."""

FIT_STEPS_PINNED: tuple[tuple[str, str | None], ...] = (
    ("lbfgs", None),
    ("cg", "previous"),
    ("lbfgs", "previous"),
)
"""Steps when covariances are pinned with ``free=``: statsmodels applies that mask to
the gradient only, so derivative-free methods (Powell) would move pinned values."""


def fit_steps(translation: TranslationData) -> tuple[tuple[str, str | None], ...]:
    """The optimiser sequence for ``translation``."""
    return FIT_STEPS_PINNED if len(translation.re_blocks) > 1 else FIT_STEPS


SINGULAR_TOL = 1e-4
"""lme4's isSingular tolerance on the relative-covariance-factor (theta) scale."""


@dataclass(frozen=True)
class FitOutcome:
    """The chosen statsmodels result plus how it was reached."""

    result: object
    """statsmodels ``MixedLMResults``."""
    engine: str
    """``"statsmodels"``."""
    attempts: tuple[tuple[str, float], ...]
    """``(method, llf)`` of every attempt, in order."""
    seconds: float
    messages: tuple[str, ...] = field(default=())
    """Warnings about the optimum, worded as lme4 words them."""


def fit(translation: TranslationData, reml: bool | None = None) -> FitOutcome:
    """Fit ``translation`` with statsmodels' own optimisers; the best result found.

    This is the statsmodels path (``lmer(..., engine="statsmodels")``, and the steps
    ``Translation.code()`` prints); ``lmer`` itself fits with lme4's formulation.

    Parameters
    ----------
    translation : TranslationData
    reml : bool, optional
        Defaults to ``translation.reml``.
    """
    if not isinstance(translation, TranslationData):
        raise ArgumentError(
            f"fit() takes the translation lme2sm.translate(formula, data) gives, not "
            f"{type(translation).__name__}"
        )
    reml = arguments.optional_flag("reml", reml)
    reml = translation.reml if reml is None else reml
    start = time.perf_counter()
    model = translation.model()
    free = translation.free()
    start_params = None
    attempts: list[tuple[str, float]] = []
    best = None
    doubts: list[str] | None = None  # lme4's convergence check at ``best``, once known
    for method, start_from in fit_steps(translation):
        kwargs = {"reml": reml, "method": method}
        if free is not None:
            kwargs["free"] = free
        if start_from == "previous" and best is not None:
            kwargs["start_params"] = best.params_object
        elif start_from is None and start_params is not None:
            kwargs["start_params"] = start_params
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with np.errstate(all="ignore"):
                    result = model.fit(**kwargs)
        except (np.linalg.LinAlgError, ValueError) as exc:
            attempts.append((method, float("nan")))
            last_error = exc
            continue
        llf = float(result.llf)
        attempts.append((method, llf))
        if not np.isfinite(llf):  # a degenerate point, not a likelihood
            continue
        if best is None or llf > float(best.llf) + 1e-9:
            best = result
        elif start_from == "previous" and method != "lbfgs":
            break  # the polish found nothing better: the L-BFGS point stands
        doubts = None
        if start_from is None:
            doubts = _gradient_doubts(model, best, free)
            if not doubts:
                break  # the first optimum already passes the check: no polish needed
    if best is None:
        raise FitError(f"every optimiser failed: {last_error}")
    messages = tuple(_gradient_doubts(model, best, free) if doubts is None else doubts)
    for text in messages:
        warnings.warn(text, ConvergenceWarning, stacklevel=3)
    return FitOutcome(best, "statsmodels", tuple(attempts), time.perf_counter() - start, messages)


GRADIENT_TOL = 2e-3
"""lme4's default tolerance on the scaled gradient (``check.conv.grad``)."""


def _gradient_doubts(model, result, free) -> list[str]:
    """lme4's convergence check: the Newton step ``H^-1 g`` of the profiled
    log-likelihood at the optimum (its "scaled gradient") must be small."""
    try:
        x = result.params_object.get_packed(use_sqrt=True, has_fe=False)
        mask = np.ones_like(x) if free is None else free.get_packed(use_sqrt=False, has_fe=False)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")

            def score(point):
                return np.asarray(model.score(point, profile_fe=True)) * mask

            grad = score(x)
            hess = np.empty((len(x), len(x)))
            for j in range(len(x)):
                h = 1e-5 * max(1.0, abs(x[j]))
                step = np.zeros_like(x)
                step[j] = h
                hess[:, j] = (score(x + step) - score(x - step)) / (2 * h)
        free_ix = mask > 0
        hess = 0.5 * (hess + hess.T)[np.ix_(free_ix, free_ix)]
        scaled = np.linalg.solve(hess, grad[free_ix])
    except Exception:  # noqa: BLE001 - the check is advisory
        return []
    boundary = np.abs(x[free_ix]) < 1e-4  # a variance at zero: gradient need not vanish
    scaled = np.where(boundary, 0.0, scaled)
    worst = float(np.max(np.abs(scaled))) if scaled.size else 0.0
    if not np.isfinite(worst) or worst > GRADIENT_TOL:
        return [
            f"Model failed to converge with max|relgrad| = {worst:.4g} (tol = {GRADIENT_TOL}); "
            "the optimum is doubtful: try centring or scaling covariates"
        ]
    return []
