"""lme4-named results for a fitted translation.

:class:`LmerResult` wraps the statsmodels ``MixedLMResults`` (kept whole in
``.statsmodels``) and answers with lme4's names and layouts: ``fixef()``,
``ranef()``, ``coef()``, ``VarCorr()`` (as R's ``as.data.frame(VarCorr(m))``),
``sigma``, ``logLik()``, ``AIC()``, ... Every statsmodels parameter is relabelled
through the map the translation built (:class:`~lme2sm.translate.ParamLabel`), never
by its position.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import patsy
from scipy import stats

from .errors import ArgumentError, DataError, SingularFitWarning
from .fit import SINGULAR_TOL, FitOutcome
from .formula.patsy_text import part_to_patsy
from .naming import column_name_pairs, patsy_env
from .translation import Placement, Translation


@dataclass(frozen=True)
class TermCovariance:
    """One lme4 random term's covariance matrix, on the data scale."""

    group: str
    """lme4 grouping factor (``Subject``, ``cask:batch``)."""
    names: tuple[str, ...]
    """lme4 column names (``(Intercept)``, ``Days``)."""
    cov: np.ndarray
    n_levels: int
    placement: Placement


class LmerResult:
    """A fitted linear mixed model with lme4's accessors.

    Built by :func:`lme2sm.lmer`; ``.statsmodels`` is the ``MixedLMResults`` and
    ``.translation`` the :class:`~lme2sm.Translation` it came from.
    """

    def __init__(
        self,
        translation: Translation,
        outcome: FitOutcome,
        reml: bool,
        data_name: str | None = None,
    ):
        self.translation = translation
        self.outcome = outcome
        self.statsmodels = outcome.result
        self.REML = reml
        self.data_name = data_name
        self._params = pd.Series(
            np.asarray(self.statsmodels.params),
            index=list(self.statsmodels.model.data.param_names),
        )
        if self.isSingular():
            warnings.warn(
                "boundary (singular) fit: see help('isSingular')", SingularFitWarning, stacklevel=3
            )

    # ------------------------------------------------------------------ basics

    @property
    def formula(self) -> str:
        return self.translation.formula

    @property
    def nobs(self) -> int:
        return int(self.statsmodels.model.nobs)

    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        return math.sqrt(float(self.statsmodels.scale))

    @property
    def converged(self) -> bool:
        return not self.outcome.messages

    def fixef(self) -> pd.Series:
        """Fixed effects, named as lme4 names them."""
        fe = self.statsmodels.fe_params
        return pd.Series(
            [float(fe[sm]) for sm, _ in self.translation.fixed_names],
            index=[r for _, r in self.translation.fixed_names],
            name="fixef",
        )

    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed effects: sigma^2 (X' V^-1 X)^-1, as lme4."""
        names = [sm for sm, _ in self.translation.fixed_names]
        cov = fe_covariance(self.statsmodels)
        if cov is None:  # fall back on statsmodels' Hessian-based block
            cov = self.statsmodels.cov_params().loc[names, names]
        else:
            order = [list(self.statsmodels.model.exog_names).index(n) for n in names]
            cov = cov[np.ix_(order, order)]
        labels = [r for _, r in self.translation.fixed_names]
        return pd.DataFrame(np.asarray(cov, dtype=float), index=labels, columns=labels)

    def se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov().to_numpy())), index=self.fixef().index)

    # ------------------------------------------------------------ random part

    @cached_property
    def term_covariances(self) -> tuple[TermCovariance, ...]:
        """Each random term's covariance matrix, in lme4's term order."""
        scale = float(self.statsmodels.scale)
        out = []
        labels = self.translation.params
        for index in _lme4_term_order(self.translation.placements):
            p = self.translation.placements[index]
            names = tuple(r for _, r in p.columns)
            k = len(names)
            cov = np.zeros((k, k))
            for lab in labels:
                if lab.term_index != index:
                    continue
                value = float(self._params[lab.statsmodels]) * scale
                i = names.index(lab.var1)
                j = names.index(lab.var2) if lab.var2 is not None else i
                cov[i, j] = cov[j, i] = value
            out.append(TermCovariance(p.term.group, names, cov, p.n_levels, p))
        return tuple(out)

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
        rows.append(("Residual", None, None, float(self.statsmodels.scale), self.sigma))
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
        t = self.translation
        re = self.statsmodels.random_effects
        per_term: dict[int, pd.DataFrame] = {}
        for index, p in enumerate(t.placements):
            col = t.group_columns[p.term.group]
            names = [r for _, r in p.columns]
            values: dict[str, list[float]] = {}
            if p.slot == "re_formula":
                for g, series in re.items():
                    values[str(g)] = [float(series[sm]) for sm, _ in p.columns]
            else:
                prefix = f"{p.key}["
                for series in re.values():
                    for label, value in series.items():
                        if label.startswith(prefix):
                            values[_vc_level(label[len(prefix) : -1], col)] = [float(value)]
            per_term[index] = pd.DataFrame.from_dict(values, orient="index", columns=names)
        out: dict[str, pd.DataFrame] = {}
        for index in _lme4_term_order(t.placements):
            group = t.placements[index].term.group
            frame = per_term[index]
            # lme4 keeps repeated columns (``(1|g) + (1|g)``) side by side
            out[group] = pd.concat([out[group], frame], axis=1) if group in out else frame
        for group, frame in out.items():
            frame = frame.loc[[lv for lv in t.level_order[group] if lv in frame.index]]
            frame.index.name = group
            out[group] = frame.fillna(0.0)
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
        n_var = sum(1 for lab in self.translation.params if lab.kind in ("var", "cov"))
        return len(self.translation.fixed_names) + n_var + 1

    def logLik(self) -> float:
        """Log-likelihood (the REML criterion's for REML fits, as lme4)."""
        return float(self.statsmodels.llf)

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
        if reml == self.REML:
            return self.logLik()
        model = self.statsmodels.model
        old = model.reml
        try:
            model.reml = reml
            return float(model.loglike(self.statsmodels.params_object, profile_fe=False))
        finally:
            model.reml = old

    def isSingular(self, tol: float = SINGULAR_TOL) -> bool:
        """True when a variance is (near) zero or a correlation (near) ±1, as lme4 judges."""
        scale = float(self.statsmodels.scale)
        for tc in self.term_covariances:
            rel = tc.cov / scale
            if rel.shape == (1, 1):
                if math.sqrt(max(rel[0, 0], 0.0)) < tol:
                    return True
                continue
            try:
                chol = np.linalg.cholesky(rel)
            except np.linalg.LinAlgError:
                return True
            if np.min(np.abs(np.diag(chol))) < tol:
                return True
        return False

    # -------------------------------------------------------------- predictions

    def fitted(self) -> pd.Series:
        """Fitted values (fixed plus random effects), for the rows used in the fit."""
        return self.predict()

    def residuals(self) -> pd.Series:
        """Response minus fitted values."""
        y = pd.Series(np.asarray(self.statsmodels.model.endog), index=self.translation.data.index)
        offset = self._offset(self.translation.data)
        return y + offset - self.fitted()

    def _offset(self, data: pd.DataFrame) -> np.ndarray:
        offsets = self.translation.parsed.fixed_part.offsets
        if not offsets:
            return np.zeros(len(data))
        from .formula.patsy_text import to_patsy

        text = " + ".join(f"I({to_patsy(o)})" for o in offsets)
        return np.asarray(patsy.dmatrix("0 + " + text, data, eval_env=patsy_env())).sum(axis=1)

    @cached_property
    def _fixed_info(self) -> patsy.DesignInfo:
        return self.translation.fixed_matrices[1].design_info

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
        t = self.translation
        data = t.data if newdata is None else self._prepare_newdata(newdata)
        sm_names = [sm for sm, _ in t.fixed_names]
        (X,) = _design_for_newdata(self._fixed_info, data)
        fe = self.statsmodels.fe_params
        pred = X[sm_names].to_numpy() @ np.array([fe[n] for n in sm_names])
        pred = pred + self._offset(data)
        if re_form is not None and re_form.replace(" ", "") not in ("", "~0", "0", "NA", "~1-1"):
            raise ArgumentError(
                f"re_form={re_form!r}: use None (all random effects) or '~0' (none)"
            )
        if re_form is None:
            pred = pred + self._random_part(data, allow_new_levels)
        return pd.Series(pred, index=data.index, name="fitted")

    def _prepare_newdata(self, newdata: pd.DataFrame) -> pd.DataFrame:
        from . import data_prep

        t = self.translation
        needed = [v for v in t.parsed.variables() if v not in t.parsed.response_expr.variables()]
        data_prep.check_columns(newdata, needed, t.formula)
        frame = newdata.loc[:, needed].copy()
        if frame.isna().any().any():
            raise DataError("newdata has missing values in the model's variables")
        for group, col in t.group_columns.items():
            term = next(p.term for p in t.placements if p.term.group == group)
            parts = [data_prep.level_strings(frame[f]) for f in term.group_factors]
            combined = parts[0]
            for p in parts[1:]:
                combined = combined + ":" + p
            frame[col] = combined
        return frame

    def _random_part(self, data: pd.DataFrame, allow_new_levels: bool) -> np.ndarray:
        t = self.translation
        total = np.zeros(len(data))
        for group, re in self._ranef.items():
            col = t.group_columns[group]
            levels = data[col].astype(str)
            unknown = sorted(set(levels) - set(re.index))
            if unknown and not allow_new_levels:
                raise DataError(
                    f"newdata has levels of {group} the model has not seen ({', '.join(unknown[:5])}"
                    f"{', ...' if len(unknown) > 5 else ''}); pass allow_new_levels=True to "
                    "predict them at the population level"
                )
            values = re.reindex(levels).fillna(0.0).to_numpy()
            design = self._group_design(group, data)
            total += np.sum(values * design, axis=1)
        return total

    def _group_design(self, group: str, data: pd.DataFrame) -> np.ndarray:
        """Random-effect model-matrix columns of ``group``'s terms, in ranef's order."""
        t = self.translation
        columns = {}
        for p in t.placements:
            if p.term.group != group:
                continue
            info = patsy.incr_dbuilder(
                part_to_patsy(p.term.effects_part), lambda: iter([t.data]), eval_env=patsy_env()
            )
            (Z,) = _design_for_newdata(info, data)

            for sm, r in column_name_pairs(p.term.effects_part, info):
                columns[r] = Z[sm].to_numpy()
        return np.column_stack([columns[c] for c in self._ranef[group].columns])

    # ------------------------------------------------------------------ intervals

    def confint(self, level: float = 0.95, method: str = "Wald", **kwargs) -> pd.DataFrame:
        """Confidence intervals, rows named as lme4's ``confint(m, oldNames=FALSE)``.

        ``method="Wald"``: the fixed effects' normal intervals. ``"profile"``:
        likelihood-ratio profile intervals for every parameter; ``"boot"``: parametric
        bootstrap (keywords ``nsim``, ``seed``, ``progress``); see
        :func:`lme2sm.inference.confint`.
        """
        if method.lower() != "wald":
            from . import inference

            return inference.confint(self, level=level, method=method, **kwargs)
        z = stats.norm.ppf(0.5 + level / 2)
        fe, se = self.fixef(), self.se()
        lo, hi = f"{100 * (1 - level) / 2:.1f} %", f"{100 * (1 + level) / 2:.1f} %"
        return pd.DataFrame({lo: fe - z * se, hi: fe + z * se})

    def anova(self, type: int | str = 3) -> pd.DataFrame:
        """Type III F tests with Satterthwaite's df, as lmerTest's ``anova(m)``."""
        from . import inference

        return inference.anova(self, type=type)

    # --------------------------------------------------------------------- print

    def summary(self, ddf: str | None = "auto", correlation: bool | None = None) -> str:
        """The text of ``summary(lmer(...))``, by default as lmerTest prints it.

        ``ddf="Satterthwaite"`` adds lmerTest's df and ``Pr(>|t|)`` columns;
        ``ddf=None`` prints lme4's own summary (t values only). The default
        ``"auto"`` is Satterthwaite unless the model has more than
        :data:`lme2sm.summary.AUTO_DDF_MAX_RE` random effects, where those numerical
        derivatives get slow; the summary then says so.
        """
        from .summary import format_summary

        return format_summary(self, correlation=correlation, ddf=ddf)

    def __repr__(self) -> str:
        return f"<LmerResult {self.formula!r} logLik={self.logLik():.4f}>"

    def __str__(self) -> str:
        return self.summary()


def _design_for_newdata(info: patsy.DesignInfo, data: pd.DataFrame):
    """patsy's design for new rows; a level the model never saw is a DataError."""
    try:
        with np.errstate(all="ignore"):
            return patsy.build_design_matrices(
                [info], data, return_type="dataframe", NA_action="raise"
            )
    except patsy.PatsyError as exc:
        text = exc.message
        if "does not match any of the expected levels" in text:
            text = (
                "newdata has a factor level the model was not fitted with: "
                + text.split("categorical: ", 1)[-1]
            )
        raise DataError(text) from None


def _lme4_term_order(placements: tuple[Placement, ...]) -> list[int]:
    """lme4's term order (``mkReTrms``): unless the numbers of levels already decrease,
    ``rev(order(nl))`` — decreasing levels, ties in reverse formula order."""
    nl = [p.n_levels for p in placements]
    if any(b > a for a, b in zip(nl, nl[1:])):
        return sorted(range(len(nl)), key=lambda i: nl[i])[::-1]
    return list(range(len(nl)))


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


def _vc_level(label: str, col: str) -> str:
    """The level in a vc column label ``C(col)[level]`` or ``C(col)[level]:x``."""
    from .formula.patsy_text import name_to_patsy

    head = f"C({name_to_patsy(col)})["
    rest = label[len(head) :] if label.startswith(head) else label
    close = rest.rfind("]")
    return rest[:close]


def fe_covariance(result) -> np.ndarray | None:
    """``scale * (sum_i X_i' (I + Z_i Psi Z_i')^-1 X_i)^-1`` from a MixedLMResults.

    This is lme4's ``vcov()``: the fixed effects' covariance conditional on the
    variance estimates. statsmodels' ``cov_params`` inverts the full Hessian instead,
    which differs when fixed effects and variances are not orthogonal in the sample.
    Engine results carry the exact matrix already (``_lme2sm_cov_fe``).
    """
    exact = getattr(result, "_lme2sm_cov_fe", None)
    if exact is not None:
        return np.asarray(exact)
    from statsmodels.regression.mixed_linear_model import _smw_solver

    model = result.model
    params = result.params_object
    try:
        cov_re_inv = np.linalg.pinv(params.cov_re) if model.k_re > 0 else None
        xtvx = np.zeros((model.k_fe, model.k_fe))
        with np.errstate(divide="ignore"):
            for i, _group in enumerate(model.group_labels):
                vc_var = model._expand_vcomp(params.vcomp, i)
                if np.any(vc_var <= 0):
                    return None
                solver = _smw_solver(
                    1.0, model._aex_r[i], model._aex_r2[i], cov_re_inv, 1 / vc_var
                )
                x = model.exog_li[i]
                xtvx += x.T @ solver(x)
        return float(result.scale) * np.linalg.inv(xtvx)
    except (np.linalg.LinAlgError, AttributeError, ValueError):
        return None
