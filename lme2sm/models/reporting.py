"""Reporting methods shared by lmer's and glmer's results (issue 22).

``m.r2_nakagawa()`` and ``m.icc()`` (performance's, :mod:`lme2sm.inference.r2`),
``m.tidy()`` and ``m.glance()`` (broom.mixed's, :mod:`lme2sm.faces.tidy`) and
``m.predict(newdata, se_fit=True, interval=...)`` (:mod:`lme2sm.results.prediction`).
The classes that mix this in put it before their estimates class, so ``predict`` without
``se_fit`` or ``interval`` is the estimates' own.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["ReportingMixin"]


class ReportingMixin:
    """R²/ICC, tidy/glance and predictions with standard errors, as methods."""

    def _null_intercept(self) -> float | None:
        """The null model's intercept where the R² needs it (glmer's Poisson fits
        override this with a refit); None otherwise."""
        return None

    def r2_nakagawa(self) -> pd.Series:
        """``performance::r2_nakagawa(m)``: ``R2_conditional`` and ``R2_marginal``
        (:func:`lme2sm.inference.r2.r2_nakagawa`)."""
        from lme2sm.inference.r2 import r2_nakagawa

        return r2_nakagawa(self, null_intercept=self._null_intercept())

    def icc(self, by_group: bool = False) -> pd.Series:
        """``performance::icc(m)``: ``ICC_adjusted`` and ``ICC_unadjusted``; with
        ``by_group=True`` one ICC per grouping factor (:func:`lme2sm.inference.r2.icc`)."""
        from lme2sm import arguments
        from lme2sm.inference.r2 import icc

        by_group = arguments.flag("by_group", by_group)  # before the null model's refit
        return icc(self, by_group=by_group, null_intercept=self._null_intercept())

    def tidy(self, conf_int: bool = False, level: float = 0.95) -> pd.DataFrame:
        """broom.mixed's ``tidy(m)``: one row per parameter (:func:`lme2sm.faces.tidy.tidy`)."""
        from lme2sm.faces.tidy import tidy

        return tidy(self, conf_int=conf_int, level=level)

    def glance(self) -> pd.DataFrame:
        """broom.mixed's ``glance(m)``: one row of summary numbers."""
        from lme2sm.faces.tidy import glance

        return glance(self)

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        *args,
        se_fit: bool = False,
        interval: str | None = None,
        level: float = 0.95,
        **kwargs,
    ):
        """lme4's ``predict()``; with ``se_fit=True`` or ``interval="confidence"`` /
        ``"prediction"`` a DataFrame of ``fit``, ``se_fit`` (the fixed part's standard
        error) and ``lwr``/``upr`` (:func:`lme2sm.results.prediction.predict_with_se`;
        ``newdata`` is needed, ``re_form``, ``allow_new_levels`` and glmer's ``type``
        as for the plain prediction)."""
        from lme2sm import arguments
        from lme2sm.errors import ArgumentError
        from lme2sm.results.prediction import interval_choice, predict_with_se

        se_fit = arguments.flag("se_fit", se_fit)
        interval = interval_choice(interval)
        level = arguments.probability("level", level)
        if not se_fit and interval is None:
            return super().predict(newdata, *args, **kwargs)  # type: ignore[misc]

        if args:
            raise ArgumentError("with se_fit or interval, pass re_form, type, ... by name")
        return predict_with_se(self, newdata, interval=interval, level=level, **kwargs)
