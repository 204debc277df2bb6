"""The user-facing result of ``lmer``: lme4's estimates plus every face as a method.

:class:`LmerResult` is :class:`~lme2sm.results.lmer.LmerEstimates` (fixef, ranef, VarCorr,
logLik, predictions, computed from the model frame and the engine's record) with the
faces built on them: the statsmodels view and translation, lme4's printed summary, and
inference (confint, anova, coef_table, Kenward-Roger, emmeans, simulate). Those live in
the packages to the left; this class only dispatches to them.
"""

from __future__ import annotations

import warnings
from functools import cached_property

import pandas as pd

from lme2sm.errors import DataError
from lme2sm.models.reporting import ReportingMixin
from lme2sm.results.lmer import LmerEstimates

__all__ = ["LmerResult"]


class LmerResult(ReportingMixin, LmerEstimates):
    """A fitted linear mixed model with lme4's accessors.

    Built by :func:`lme2sm.lmer`. ``.frame`` is the model frame, ``.engine_fit`` the
    engine's record, ``.profiled`` the deviance function, ``.statsmodels`` the
    statsmodels view and ``.translation`` the statsmodels arguments (both raise
    :class:`~lme2sm.NotExpressibleError` for a model MixedLM cannot hold).
    """

    def __getstate__(self) -> dict:
        """What a fit is made of, without the caches (the statsmodels view and the
        translation hold patsy designs, which refuse pickling): a pickled result loads in
        another process with the same numbers, and rebuilds its views on demand."""
        keep = ("frame", "engine_fit", "profiled", "REML", "data_name", "_data", "messages")
        return {k: v for k, v in self.__dict__.items() if k in keep + ("engine",)}

    # ------------------------------------------------------- the statsmodels view

    @cached_property
    def translation(self):
        """The statsmodels MixedLM arguments for this model (:func:`lme2sm.translate`)."""
        from lme2sm.faces.translation import translate

        if self._data is None:
            raise DataError("this fit keeps no data frame to translate")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return translate(self.frame.parsed, self._data, REML=self.REML)

    @cached_property
    def statsmodels_problem(self) -> str | None:
        """Why MixedLM cannot hold this model (one sentence), or None when it can."""
        from lme2sm.errors import NotExpressibleError

        try:
            _ = self.translation
            if self.frame.dropped_fixed or self.frame.weights_name is not None:
                from lme2sm.faces.statsmodels_view import statsmodels_params

                statsmodels_params(self, self.translation)
        except NotExpressibleError as exc:
            return str(exc).splitlines()[0]
        except DataError:
            if getattr(self.frame, "lazy", False):
                return (
                    "the rows are not in memory (Dask, polars or Parquet), and MixedLM needs them"
                )
            return "no data frame was kept to translate"
        return None

    @cached_property
    def statsmodels(self):
        """This fit as a statsmodels ``MixedLMResults``, built at the engine's optimum.

        Raises :class:`~lme2sm.NotExpressibleError` (with ``translate``'s explanation)
        when MixedLM cannot hold the model.
        """
        from lme2sm.errors import FitError, Lme2smError
        from lme2sm.faces.statsmodels_view import results_at

        try:
            return results_at(self)
        except Lme2smError:
            raise
        except Exception as exc:  # noqa: BLE001 - statsmodels/patsy/numpy on the translated data
            first = (str(exc).splitlines() or [""])[0][:200]
            raise FitError(
                f"statsmodels could not build the MixedLM view of this fit "
                f"({type(exc).__name__}: {first}); lme2sm's own results do not depend on "
                "it, and translate() shows the statsmodels call it makes"
            ) from None

    # ------------------------------------------------------------------ intervals

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
        """Confidence intervals, rows named as lme4's ``confint(m, oldNames=FALSE)``.

        ``method="profile"`` (lme4's default): likelihood-ratio profile intervals for
        every parameter. ``"Wald"``: the fixed effects' normal intervals. ``"boot"``:
        parametric bootstrap (``nsim`` refits, ``seed``, ``progress``). ``parm`` limits
        the rows (names, lme4's ``"theta_"`` or ``"beta_"``); ``n_jobs`` runs the
        profiles or refits in that many processes (-1: every core) with the same
        numbers; see :func:`lme2sm.inference.confint`.
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
        of the parameters refitted to simulated responses (sd/cor/sigma, fixed effects;
        NaN where a refit failed), ``n_jobs`` processes giving the same rows as one."""
        from lme2sm.inference.bootstrap import bootstrap_samples

        return bootstrap_samples(self, nsim=nsim, seed=seed, progress=progress, n_jobs=n_jobs)

    def anova(self, type: int | str = 3, ddf: str = "Satterthwaite") -> pd.DataFrame:
        """Type III F tests, as lmerTest's ``anova(m, ddf = ddf)`` (Satterthwaite's or
        Kenward-Roger's denominator df)."""
        from lme2sm import inference

        return inference.anova(self, type=type, ddf=ddf)

    # --------------------------------------------------------------------- print

    def summary(
        self, ddf: str | None = "auto", correlation: bool | None = None, vcov: str | None = None
    ) -> str:
        """The text of ``summary(lmer(...))``, by default as lmerTest prints it.

        ``ddf="Satterthwaite"`` adds lmerTest's df and ``Pr(>|t|)`` columns;
        ``ddf=None`` prints lme4's own summary (t values only). The default
        ``"auto"`` is Satterthwaite unless the model has more than
        :data:`lme2sm.faces.summary.AUTO_DDF_MAX_RE` random effects, where those numerical
        derivatives get slow; the summary then says so. ``vcov="CR2"`` (or ``"CR0"``,
        ``"CR1"``): cluster-robust standard errors with clubSandwich's Satterthwaite df.
        """
        from lme2sm.faces.summary import format_summary

        return format_summary(self, correlation=correlation, ddf=ddf, vcov=vcov)

    def __str__(self) -> str:
        return self.summary()

    # ------------------------------------------- after the fit (issue 14): KR, emmeans,
    # simulate; thin wrappers over lme2sm.inference.coef_table / kenward_roger,
    # lme2sm.inference.emmeans and lme2sm.inference.simulate.

    def coef_table(
        self,
        ddf: str | None = "Satterthwaite",
        vcov: str | None = None,
        cluster: str | None = None,
    ) -> pd.DataFrame:
        """lmerTest's ``coef(summary(m, ddf = ddf))``: ``Estimate``, ``Std. Error``,
        ``df``, ``t value``, ``Pr(>|t|)`` (ddf ``"Satterthwaite"``, ``"Kenward-Roger"``;
        ``"lme4"`` for lme4's three columns). ``vcov="CR2"`` (``"CR0"``, ``"CR1"``):
        clubSandwich's ``coef_test(m, vcov, test = "Satterthwaite")`` instead, clustered
        on ``cluster`` (default: the outermost grouping factor)."""
        if vcov is not None:
            from lme2sm.inference.robust import coef_test

            return coef_test(self, vcov, cluster)
        from lme2sm.inference.coef_table import coef_table

        return coef_table(self, ddf=ddf)

    def vcovCR(self, type: str = "CR2", cluster: str | None = None) -> pd.DataFrame:
        """clubSandwich's ``vcovCR(m, type)``: the fixed effects' cluster-robust covariance."""
        from lme2sm.inference.robust import vcov_cr

        return vcov_cr(self, type, cluster)

    def vcovAdj(self) -> pd.DataFrame:
        """pbkrtest's ``vcovAdj(m)``: the Kenward-Roger-adjusted ``vcov``."""
        from lme2sm.inference.kenward_roger import vcov_adj

        return vcov_adj(self)

    def emmeans(self, specs, by=None, ddf: str = "Kenward-Roger", level: float = 0.95, at=None):
        """R's ``emmeans(m, specs)``: estimated marginal means (``.table``) and
        ``.pairs(adjust=...)``; see :func:`lme2sm.inference.emmeans.emmeans`."""
        from lme2sm.inference.emmeans import emmeans

        return emmeans(self, specs, by=by, ddf=ddf, level=level, at=at)

    def simulate(self, nsim: int = 1, seed=None, re_form: str | None = "~0") -> pd.DataFrame:
        """lme4's ``simulate(m)``: an n x nsim DataFrame (``re_form=None`` keeps the
        fitted random effects); see :func:`lme2sm.inference.simulate.simulate`."""
        from lme2sm.inference.simulate import simulate

        return simulate(self, nsim=nsim, seed=seed, re_form=re_form)
