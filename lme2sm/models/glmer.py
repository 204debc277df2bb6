"""``glmer``: generalised linear mixed models (binomial, Poisson, Gamma, inverse Gaussian) by
lme4's Laplace approximation, and its result.

The stages, as lme4's ``glFormula`` -> ``mkGlmerDevfun`` -> ``optimizeGlmer`` ->
``mkMerMod``: the model frame (shared with lmer), the response as R's family reads it
(:mod:`lme2sm.glmm.response`), PIRLS on the one PLS core (:mod:`lme2sm.glmm.pirls`),
lme4's two optimisation stages and the Hessian (:mod:`lme2sm.glmm.fit`), and lme4-named
results (:mod:`lme2sm.results.glmer`) with the faces added by :class:`GlmerResult`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from lme2sm import arguments
from lme2sm.engine.progress import fit_progress
from lme2sm.engine.threads import blas_threads
from lme2sm.errors import ArgumentError, ConvergenceWarning, SingularFitWarning
from lme2sm.glmm.family import get_family
from lme2sm.glmm.fit import fit_glmm
from lme2sm.glmm.pirls import GlmmProblem
from lme2sm.glmm.response import glm_response
from lme2sm.models.lmer import one_thread_frame
from lme2sm.models.reporting import ReportingMixin
from lme2sm.results.glmer import GlmerEstimates

__all__ = ["glmer", "GlmerResult"]

MAX_NAGQ = 25
"""lme4's bound on the quadrature nodes (``mkGlmerDevfun``: ``nAGQ <= 25L``)."""


class GlmerResult(ReportingMixin, GlmerEstimates):
    """A generalised linear mixed model fitted as lme4's ``glmer``: the estimates with
    profile intervals, the statsmodels translation, lme4's summary, simulate and the
    reporting methods (R², ICC, tidy, glance, predictions with standard errors)."""

    def __getstate__(self) -> dict:
        """What a fit is made of, without the caches (see :class:`lme2sm.LmerResult`)."""
        keep = ("frame", "response", "family", "problem", "engine_fit", "data_name")
        return {k: v for k, v in self.__dict__.items() if k in keep}

    def _null_intercept(self) -> float | None:
        """insight's null model for the Poisson R²: the refit with only an intercept,
        the offsets and the same random terms, on the rows used."""
        from lme2sm.inference.r2 import needs_null_model, null_formula

        if not needs_null_model(self):
            return None
        f = self.frame
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            null = glmer(null_formula(self), f.data, self.family, weights=f.weights)
        return float(null.fixef().iloc[0])

    def emmeans(self, specs, by=None, level: float = 0.95, at=None, ddf="asymptotic", type="link"):
        """R's ``emmeans(m, specs)`` on the link scale with asymptotic (z) intervals and
        tests (``.pairs(adjust=...)``); ``type="response"`` back-transforms the means
        (emmeans' ``type = "response"``, delta-method SEs); see
        :func:`lme2sm.inference.emmeans.emmeans`."""
        from lme2sm import arguments
        from lme2sm.inference.emmeans import emmeans

        scale = arguments.choice("type", type, ("link", "response"), True)
        out = emmeans(self, specs, by=by, ddf=ddf, level=level, at=at)
        if scale == "link":
            return out
        return out.on_response_scale(self.family.link, self.family.name)

    def confint(
        self,
        level: float = 0.95,
        method: str = "profile",
        parm=None,
        *,
        nsim: int = 500,
        seed=None,
        progress: bool = True,
        n_jobs: int | None = 1,
    ) -> pd.DataFrame:
        """Confidence intervals as lme4's ``confint(m, oldNames = FALSE)``.

        ``method="profile"`` (lme4's default): likelihood-ratio profile intervals for the
        random effects' sds (``sd_(Intercept)|herd``), correlations and the fixed
        effects (:func:`lme2sm.inference.glmer_profile.glmer_profile_confint`). ``"boot"``:
        percentile intervals from ``nsim`` parametric-bootstrap refits (``seed``;
        :mod:`lme2sm.inference.glmer_bootstrap`). ``"Wald"``: the fixed effects' normal
        intervals. ``parm`` limits the rows; ``n_jobs`` runs the profiles or refits in
        that many processes (-1: every core) with the same numbers as one.
        """
        from lme2sm import inference

        return inference.confint(
            self,
            level,
            method,
            nsim=nsim,
            seed=seed,
            progress=progress,
            parm=parm,
            n_jobs=n_jobs,
        )

    def bootstrap_samples(
        self, nsim: int = 500, seed=None, n_jobs: int | None = 1, progress: bool = True
    ) -> pd.DataFrame:
        """lme4's ``bootMer(m, FUN, nsim)`` with ``confint``'s ``FUN``: an nsim-row table
        of sds, correlations (sigma for Gamma and inverse Gaussian) and fixed effects
        refitted to simulated responses; ``n_jobs`` processes give the same rows as one."""
        from lme2sm.inference.glmer_bootstrap import glmer_bootstrap_samples

        return glmer_bootstrap_samples(self, nsim, seed=seed, progress=progress, n_jobs=n_jobs)

    def translation(self):
        """The nearest statsmodels model (a Bayesian mixed GLM) and why its numbers differ."""
        from lme2sm.faces.glmer_translate import translate_glmer

        return translate_glmer(self.frame.parsed, self.family, self.frame.data)

    def summary(self, correlation: bool | None = None) -> str:
        """The text of lme4's ``summary(glmer(...))``."""
        from lme2sm.faces.glmer_summary import format_summary

        return format_summary(self, correlation=correlation)

    def __str__(self) -> str:
        return self.summary()

    # ------------------------------------------- simulate (issue 14): a thin wrapper

    def simulate(self, nsim: int = 1, seed=None, re_form: str | None = "~0") -> pd.DataFrame:
        """lme4's ``simulate(m)``: n x nsim draws from the family (binomial as
        proportions of successes); see :func:`lme2sm.inference.simulate.simulate`."""
        from lme2sm.inference.simulate import simulate

        return simulate(self, nsim=nsim, seed=seed, re_form=re_form)


def glmer(
    formula: str,
    data: pd.DataFrame,
    family="binomial",
    *,
    weights: str | np.ndarray | pd.Series | None = None,
    nAGQ: int = 1,
    data_name: str = "data",
    progress: bool = True,
) -> GlmerResult:
    """Fit a generalised linear mixed model as lme4's ``glmer``.

    Parameters
    ----------
    formula : str
        An lme4 formula. The binomial response may be 0/1, a two-level factor (the
        first level is failure), ``cbind(successes, failures)``, or a proportion with
        ``weights=`` the numbers of trials; ``offset(log(exposure))`` is allowed.
    data : pandas.DataFrame
    family : str or statsmodels family
        ``"binomial"`` (logit; ``"binomial(link='probit')"``, cloglog), ``"poisson"``,
        ``"Gamma"`` (inverse; ``"Gamma(link='log')"``, identity), ``"inverse.gaussian"``
        (1/mu^2; log, inverse, identity) -- the last two with lme4's dispersion --
        or e.g. ``sm.families.Binomial(sm.families.links.Probit())``.
    weights : column name or array, optional
        Prior weights (binomial: numbers of trials for a proportion response).
    nAGQ : int
        1: Laplace (default). 0: lme4's first stage only (beta inside PIRLS). > 1:
        adaptive Gauss-Hermite with that many nodes (one scalar random term only).
    progress : bool
        Progress lines on stderr for a long fit (stage 1, stage 2 or the Hessian,
        evaluations, best deviance, elapsed seconds), none for one that ends within
        5 s; False, or the environment variable ``LME2SM_PROGRESS=0``, silences them.

    Returns
    -------
    GlmerResult
    """
    fam = get_family(family)
    progress = arguments.flag("progress", progress)
    nAGQ = arguments.count("nAGQ", nAGQ, minimum=0, maximum=MAX_NAGQ)
    data_name = arguments.text("data_name", data_name, optional=False)
    if nAGQ > 1 and fam.has_dispersion:
        raise ArgumentError(
            f"nAGQ > 1 is not available for the {fam.name} family here (its Laplace "
            "deviance carries the dispersion estimate); use nAGQ=1"
        )
    frame = one_thread_frame(formula, data, weights=weights, glm=True)
    if nAGQ > 1 and (len(frame.terms) != 1 or frame.terms[0].k != 1):
        raise ArgumentError(
            "nAGQ > 1 is only available for models with a single, scalar random-effects "
            f"term (this model has {len(frame.terms)} term(s)"
            + (
                f", ({frame.terms[0].term.text}) with {frame.terms[0].k} columns"
                if frame.terms[0].k > 1
                else ""
            )
            + "); adaptive Gauss-Hermite quadrature integrates one random effect per level. "
            "Use nAGQ=1 (Laplace)"
        )
    with blas_threads(1):
        response = glm_response(frame, fam)
        problem = GlmmProblem.from_frame(frame, response, fam)
    reporter = fit_progress("glmer", progress)
    with blas_threads(1):  # many small factorisations: threads only contend
        fit = fit_glmm(problem, nAGQ, progress=reporter)
    if reporter is not None:
        reporter.finish(fit.deviance)
    result = GlmerResult(frame, response, fam, problem, fit, data_name)
    for message in fit.warnings:
        warnings.warn(message, ConvergenceWarning, stacklevel=2)
    if result.isSingular():
        warnings.warn(
            "boundary (singular) fit: see help('isSingular')", SingularFitWarning, stacklevel=2
        )
    return result
