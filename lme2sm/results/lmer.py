"""lme4-named results of a fit by the engine.

:class:`LmerEstimates` rests on three things built once: the model frame
(:class:`~lme2sm.frame.model_frame.ModelFrame`: X, y, weights, offset, the random terms), the
engine's record of the fit (:class:`~lme2sm.engine.lmm.LmmFit`: theta, beta, sigma, the
conditional modes) and the profiled deviance itself
(:class:`~lme2sm.engine.lmm.ProfiledLMM`, for inference at other theta). It answers
with lme4's names and layouts: ``fixef()``, ``ranef()``, ``coef()``, ``VarCorr()`` (as
R's ``as.data.frame(VarCorr(m))``), ``sigma``, ``logLik()``, ``AIC()``, ...
``.statsmodels`` is the same fit as a statsmodels ``MixedLMResults``, built at the
engine's optimum when MixedLM can express the model.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from lme2sm import arguments
from lme2sm.engine.lmm import ProfiledLMM
from lme2sm.engine.record import LOG_2PI, LmmFit
from lme2sm.errors import ArgumentError, DataError, SingularFitWarning
from lme2sm.frame import design
from lme2sm.frame.model_frame import ModelFrame, lme4_term_order

SINGULAR_TOL = 1e-4
"""lme4's isSingular tolerance on the relative-covariance-factor (theta) scale."""


@dataclass(frozen=True)
class TermCovariance:
    """One lme4 random term's covariance matrix, on the data scale."""

    group: str
    """lme4 grouping factor (``Subject``, ``cask:batch``)."""
    names: tuple[str, ...]
    """lme4 column names (``(Intercept)``, ``Days``)."""
    cov: np.ndarray
    n_levels: int
    structure: str = "us"
    """The covariance structure: ``us`` (lme4's), ``diag``, ``cs``, ``ar1``."""
    rho: float | None = None
    """The common correlation of a ``cs`` term, the lag-1 correlation of an ``ar1`` term."""


class LmerEstimates:
    """A fitted linear mixed model's lme4-named estimates and predictions.

    ``.frame`` is the model frame, ``.engine_fit`` the engine's record, ``.profiled`` the
    deviance function. The user-facing :class:`lme2sm.LmerResult` adds the faces
    (summary, statsmodels view, translation, inference) on top of this class.
    """

    def __init__(
        self,
        frame: ModelFrame,
        engine_fit: LmmFit,
        profiled: ProfiledLMM,
        reml: bool,
        data_name: str | None = None,
        data: pd.DataFrame | None = None,
        messages: tuple[str, ...] = (),
        engine: str = "lme4",
        warn_singular: bool = True,
    ):
        self.frame = frame
        self.engine_fit = engine_fit
        self.profiled = profiled
        self.REML = reml
        self.data_name = data_name
        self._data = data
        self.messages = tuple(messages)
        self.engine = engine
        if warn_singular and self.isSingular():
            warnings.warn(
                "boundary (singular) fit: see help('isSingular')", SingularFitWarning, stacklevel=3
            )

    # ------------------------------------------------------------------ basics

    @property
    def formula(self) -> str:
        return self.frame.formula

    @property
    def nobs(self) -> int:
        return int(self.frame.n)

    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        return float(self.engine_fit.sigma)

    @property
    def theta(self) -> np.ndarray:
        """lme4's ``getME(m, "theta")``: each term's relative Cholesky factor, lme4's order."""
        return np.asarray(self.engine_fit.theta, dtype=float).copy()

    @property
    def approximate(self) -> bool:
        """True for an approximate fit (``lmer(..., factor="krylov")``): its logLik is
        an estimate (``engine_fit.approximation`` says how good), not lme4's."""
        return getattr(self.engine_fit, "approximation", None) is not None

    @property
    def converged(self) -> bool:
        return not self.messages

    @property
    def outcome(self):
        """How the fit was reached (engine name, messages), for the CLI and summary."""
        from types import SimpleNamespace

        return SimpleNamespace(
            engine=self.engine,
            messages=self.messages,
            seconds=self.engine_fit.seconds,
            n_evals=self.engine_fit.n_evals,
        )

    def fixef(self) -> pd.Series:
        """Fixed effects, named as lme4 names them."""
        return pd.Series(
            np.asarray(self.engine_fit.beta, dtype=float),
            index=list(self.frame.fixed_names),
            name="fixef",
        )

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed effects: sigma^2 (R_X'R_X)^-1, as lme4."""
        labels = list(self.frame.fixed_names)
        return pd.DataFrame(np.array(self.engine_fit.cov_beta), index=labels, columns=labels)

    def se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov().to_numpy())), index=self.fixef().index)

    # ------------------------------------------------------------ random part

    @cached_property
    def term_covariances(self) -> tuple[TermCovariance, ...]:
        """Each random term's covariance matrix, in lme4's term order."""
        from lme2sm.engine.frame_input import term_specs
        from lme2sm.engine.theta import term_correlations

        rhos = term_correlations(self.engine_fit.theta, term_specs(self.frame))
        return tuple(
            TermCovariance(t.group, t.names, cov, t.n_levels, t.structure, rho)
            for t, cov, rho in zip(self.frame.terms, self.engine_fit.covariances(), rhos)
        )

    def VarCorr(self) -> pd.DataFrame:
        """Variance components laid out as R's ``as.data.frame(VarCorr(m))``."""
        rows = []
        for grp, tc in zip(suffixed_groups(self.term_covariances), self.term_covariances):
            sd = np.sqrt(np.clip(np.diag(tc.cov), 0, None))
            for i, name in enumerate(tc.names):
                rows.append((grp, name, None, tc.cov[i, i], sd[i]))
            for j in range(len(tc.names)):
                for i in range(j + 1, len(tc.names)):
                    denom = sd[i] * sd[j]
                    corr = tc.cov[i, j] / denom if denom > 0 else float("nan")
                    rows.append((grp, tc.names[j], tc.names[i], tc.cov[i, j], corr))
        rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        frame = pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
        for col in ("grp", "var1", "var2"):  # R's NA as None, whatever pandas infers
            frame[col] = pd.Series(
                [r[("grp", "var1", "var2").index(col)] for r in rows], dtype=object
            )
        return frame

    def ngrps(self) -> pd.Series:
        """Number of levels of each grouping factor."""
        seen: dict[str, int] = {}
        for tc in self.term_covariances:
            seen.setdefault(tc.group, tc.n_levels)
        return pd.Series(seen, name="ngrps")

    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects: one DataFrame per grouping factor."""
        return {g: df.copy() for g, df in self._ranef.items()}

    @cached_property
    def _ranef(self) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for t, b in zip(self.frame.terms, self.engine_fit.b):
            frame = pd.DataFrame(np.asarray(b), index=list(t.levels), columns=list(t.names))
            # lme4 keeps repeated columns (``(1|g) + (1|g)``) side by side
            out[t.group] = pd.concat([out[t.group], frame], axis=1) if t.group in out else frame
        for group, frame in out.items():
            frame.index.name = group
        return out

    def coef(self) -> dict[str, pd.DataFrame]:
        """Fixed plus random effects per level, as lme4's ``coef()``."""
        fe = self.fixef()
        out = {}
        for group, re in self._ranef.items():
            frame = pd.DataFrame([fe.to_numpy()] * len(re), index=re.index, columns=fe.index)
            for k, col in enumerate(re.columns):
                if col not in frame.columns:
                    raise ArgumentError(
                        f"unable to align random and fixed effects: the random effect {col} of "
                        f"{group} has no fixed effect to add to (lme4's coef() refuses this "
                        "too); use fixef() and ranef() separately"
                    )
                frame[col] = frame[col] + re.iloc[:, k]
            out[group] = frame
        return out

    # --------------------------------------------------------------- likelihood

    @property
    def df(self) -> int:
        """Number of estimated parameters (fixed, variance, residual), as lme4 counts."""
        return self.frame.p + len(self.engine_fit.theta) + 1

    def logLik(self) -> float:
        """Log-likelihood (the REML criterion's for REML fits, as lme4)."""
        return -0.5 * float(self.engine_fit.deviance)

    def AIC(self) -> float:
        return -2 * self.logLik() + 2 * self.df

    def BIC(self) -> float:
        return -2 * self.logLik() + math.log(self.nobs) * self.df

    def REMLcrit(self) -> float:
        """-2 × REML log-likelihood (at these estimates)."""
        return -2 * self._loglike(reml=True)

    def deviance(self) -> float:
        """-2 × ML log-likelihood (for a REML fit: at the REML estimates, as lme4)."""
        return -2 * self._loglike(reml=False)

    def _loglike(self, reml: bool) -> float:
        """The (REML) log-likelihood at this fit's theta, beta and sigma."""
        if reml == self.REML:
            return self.logLik()
        ev = self.engine_fit.evaluation
        n, p = self.frame.n, self.frame.p
        s2 = self.sigma**2
        dev = ev.ldL2 + ev.r2 / s2 - self.profiled.cp.sum_log_w
        if reml:
            dev += ev.ldRX2 + (n - p) * (LOG_2PI + math.log(s2))
        else:
            dev += n * (LOG_2PI + math.log(s2))
        return -0.5 * dev

    def isSingular(self, tol: float = SINGULAR_TOL) -> bool:
        """lme4's ``isSingular``: a theta at its lower bound 0 (within ``tol``)."""
        theta = self.engine_fit.theta
        lower = self.profiled.lower
        on_bound = np.isfinite(lower) & (lower == 0)
        tol = arguments.nonnegative("tol", tol)
        return bool(np.any(np.abs(theta[on_bound]) < tol))

    # -------------------------------------------------------------- predictions

    def fitted(self) -> pd.Series:
        """Fitted values (fixed plus random effects and offset), for the rows used.

        For data beyond memory (Dask, polars, Parquet) a lazy series of the same kind,
        computed partition by partition."""
        f = self.frame
        if getattr(f, "lazy", False):
            from lme2sm.large.predict import lazy_fitted

            return lazy_fitted(f, self.engine_fit, "fitted")
        pred = f.X @ self.engine_fit.beta + f.offset
        for t, b in zip(f.terms, self.engine_fit.b):
            pred = pred + np.sum(t.Z * np.asarray(b)[t.codes], axis=1)
        return pd.Series(pred, index=f.data.index, name="fitted")

    def residuals(self) -> pd.Series:
        """Response minus fitted values."""
        if getattr(self.frame, "lazy", False):
            from lme2sm.large.predict import lazy_fitted

            return lazy_fitted(self.frame, self.engine_fit, "residuals")
        return pd.Series(self.frame.y, index=self.frame.data.index) - self.fitted()

    def _offset(self, data: pd.DataFrame) -> np.ndarray:
        from lme2sm.frame.model_frame import _offset

        return _offset(self.frame.parsed, data)

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        re_form: str | None = None,
        allow_new_levels: bool = False,
    ) -> pd.Series:
        """Predictions as lme4's ``predict()``.

        ``re_form=None`` includes every random effect; ``re_form="~0"`` (or ``"NA"``)
        gives the population-level prediction. New grouping levels raise a DataError
        unless ``allow_new_levels=True``, which predicts them at zero, as lme4 does.
        """
        re_form = "~0" if arguments.population(re_form) else None
        allow_new_levels = arguments.flag("allow_new_levels", allow_new_levels)
        if newdata is None:
            if re_form is None:
                return self.fitted()
            f = self.frame
            if getattr(f, "lazy", False):
                from lme2sm.large.predict import lazy_fitted

                return lazy_fitted(f, self.engine_fit, "population")
            return pd.Series(
                f.X @ self.engine_fit.beta + f.offset, index=f.data.index, name="fitted"
            )
        data = self._prepare_newdata(newdata)
        f = self.frame
        pred = design.rows(f.fixed_info, data, f.fixed_patsy_names) @ self.engine_fit.beta
        pred = pred + self._offset(data)
        if re_form is None:
            pred = pred + self._random_part(data, allow_new_levels)
        return pd.Series(pred, index=data.index, name="fitted")

    def _prepare_newdata(self, newdata: pd.DataFrame) -> pd.DataFrame:
        from lme2sm.frame import data_prep

        f = self.frame
        parsed = f.parsed
        needed = [v for v in parsed.variables() if v not in parsed.response_expr.variables()]
        data_prep.check_columns(newdata, needed, f.formula, "newdata")
        frame = newdata.loc[:, needed].copy()
        if frame.isna().any().any():
            raise DataError("newdata has missing values in the model's variables")
        for t in f.terms:
            parts = [data_prep.level_strings(frame[g]) for g in t.term.group_factors]
            combined = parts[0]
            for part in parts[1:]:
                combined = combined + ":" + part
            frame[t.column] = combined
        return frame

    def _random_part(self, data: pd.DataFrame, allow_new_levels: bool) -> np.ndarray:
        total = np.zeros(len(data))
        for t, b in zip(self.frame.terms, self.engine_fit.b):
            levels = data[t.column].astype(str)
            codes = pd.Index(list(t.levels)).get_indexer(levels)
            unknown = sorted(set(levels[codes < 0]))
            if unknown and not allow_new_levels:
                raise DataError(
                    f"newdata has levels of {t.group} the model has not seen "
                    f"({', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''}); pass "
                    "allow_new_levels=True to predict them at the population level"
                )
            Z = design.rows(t.info, data, t.patsy_names)
            values = np.where((codes >= 0)[:, None], np.asarray(b)[np.maximum(codes, 0)], 0.0)
            total += np.sum(values * Z, axis=1)
        return total

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.formula!r} logLik={self.logLik():.4f}>"


def _lme4_term_order(n_levels) -> list[int]:
    """lme4's term order; see :func:`lme2sm.frame.model_frame.lme4_term_order`."""
    return lme4_term_order(list(n_levels))


def suffixed_groups(terms: tuple[TermCovariance, ...]) -> list[str]:
    """lme4's VarCorr names: raw group names, or, when a factor has several terms,
    R's ``make.names(unique=TRUE)`` of all of them (``school.classroom``, ``Subject.1``)."""
    names = [tc.group for tc in terms]
    if len(set(names)) == len(names):
        return names
    return r_make_names(names)


def r_make_names(names: list[str]) -> list[str]:
    """R's ``make.names(names, unique=TRUE)``."""
    import re

    valid = []
    for name in names:
        fixed = re.sub(r"[^A-Za-z0-9._]", ".", name)
        if not re.match(r"^([A-Za-z]|[.](?![0-9]))", fixed):
            fixed = "X" + fixed
        valid.append(fixed)
    seen: dict[str, int] = {}
    out = []
    taken = set(valid)
    for name in valid:
        if name not in seen:
            seen[name] = 0
            out.append(name)
            continue
        k = seen[name]
        while True:
            k += 1
            candidate = f"{name}.{k}"
            if candidate not in taken:
                break
        seen[name] = k
        taken.add(candidate)
        out.append(candidate)
    return out
