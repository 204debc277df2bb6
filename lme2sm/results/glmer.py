"""lme4-named results of a glmer fit, computed from the model frame and the fit record.

Names and layouts follow lme4: ``fixef``, ``vcov`` (from the Hessian of the deviance
in ``(theta, beta)``, lme4's default), ``ranef``, ``coef``, ``VarCorr`` (as
``as.data.frame(VarCorr(m))``, no residual row: the scale is fixed at 1), ``logLik``
(every constant included; with ``nAGQ > 1`` relative to the saturated model, as lme4),
``deviance`` (sum of squared deviance residuals, lme4's ``deviance()``), ``predict``,
``fitted``, ``residuals`` and ``isSingular``.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.linalg as sla
from scipy import stats

from lme2sm import arguments
from lme2sm.engine.frame_input import term_specs
from lme2sm.engine.theta import term_correlations, unpack_theta
from lme2sm.errors import ArgumentError, DataError
from lme2sm.frame import data_prep, design
from lme2sm.frame.model_frame import ModelFrame
from lme2sm.glmm.family import Family
from lme2sm.glmm.fit import GlmmFit
from lme2sm.glmm.pirls import GlmmProblem
from lme2sm.glmm.response import GlmResponse
from lme2sm.results.lmer import TermCovariance, r_make_names

__all__ = ["GlmerEstimates", "anova"]

SINGULAR_TOL = 1e-4


class GlmerEstimates:
    """A glmer fit's lme4-named estimates and predictions (the user-facing
    :class:`lme2sm.models.glmer.GlmerEstimates` adds the faces and inference)."""

    def __init__(
        self,
        frame: ModelFrame,
        response: GlmResponse,
        family: Family,
        problem: GlmmProblem,
        fit: GlmmFit,
        data_name: str = "data",
    ):
        self.frame = frame
        self.response = response
        self.family = family
        self.problem = problem
        self.engine_fit = fit
        self.data_name = data_name

    # ------------------------------------------------------------ basics

    @property
    def formula(self) -> str:
        return self.frame.formula

    @property
    def nAGQ(self) -> int:
        return self.engine_fit.nAGQ

    def nobs(self) -> int:
        """Rows used (not trials), as lme4's ``nobs()``."""
        return self.frame.n

    @property
    def theta(self) -> np.ndarray:
        return self.engine_fit.theta.copy()

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.engine_fit.warnings

    @property
    def sigma(self) -> float:
        """lme4's ``sigma(m)``: 1 for binomial and Poisson; for Gamma and the inverse
        Gaussian sqrt((Pearson chi-square + ||u||^2) / n), lme4's ``sigmaML``."""
        if not self.family.has_dispersion:
            return 1.0
        st, r = self.engine_fit.state, self.response
        wrss = float(np.sum(r.weights * (r.y - st.mu) ** 2 / self.family.variance(st.mu)))
        ussq = float(sum(np.sum(np.asarray(u) ** 2) for u in st.u))
        return math.sqrt((wrss + ussq) / self.frame.n)

    def fixef(self) -> pd.Series:
        return pd.Series(self.engine_fit.beta, index=list(self.frame.fixed_names), name="fixef")

    @cached_property
    def _vcov(self) -> np.ndarray:
        fit = self.engine_fit
        nth = len(fit.theta)
        H = fit.hessian
        if H.size:
            try:
                np.linalg.cholesky(H)
                inv = np.linalg.inv(H)
                V = inv[nth:, nth:]
                return V + V.T
            except np.linalg.LinAlgError:
                pass
        return self._vcov_rx()

    def _vcov_rx(self) -> np.ndarray:
        """lme4's ``use.hessian = FALSE``: (R_X'R_X)^-1 at the final working weights."""
        pr, st = self.problem, self.engine_fit.state
        if not pr.p:
            return np.zeros((0, 0))
        R = pr.rx(st)
        R_inv = sla.solve_triangular(R, np.eye(pr.p))
        return self.sigma**2 * (R_inv @ R_inv.T)  # lme4: sigma^2 unsc()

    def vcov(self) -> pd.DataFrame:
        names = list(self.frame.fixed_names)
        return pd.DataFrame(self._vcov, index=names, columns=names)

    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._vcov)), index=list(self.frame.fixed_names))

    # ------------------------------------------------------------ random part

    @cached_property
    def _factors(self) -> list[np.ndarray]:
        return unpack_theta(self.engine_fit.theta, term_specs(self.frame))

    def _covariances(self) -> list[np.ndarray]:
        return [T @ T.T for T in self._factors]

    def _group_names(self) -> list[str]:
        names = [t.group for t in self.frame.terms]
        return names if len(set(names)) == len(names) else r_make_names(names)

    @cached_property
    def term_covariances(self) -> tuple[TermCovariance, ...]:
        """Each random term's covariance matrix (times sigma^2 for Gamma and the inverse
        Gaussian, as ``VarCorr``), its structure (``us``, ``diag``, ``cs``, ``ar1``) and
        the correlation of a ``cs``/``ar1`` term, in lme4's term order."""
        scale = self.sigma**2
        rhos = term_correlations(self.engine_fit.theta, term_specs(self.frame))
        return tuple(
            TermCovariance(t.group, t.names, scale * cov, t.n_levels, t.structure, rho)
            for t, cov, rho in zip(self.frame.terms, self._covariances(), rhos)
        )

    def VarCorr(self) -> pd.DataFrame:
        """Variance components as R's ``as.data.frame(VarCorr(m))``: no residual row for
        binomial and Poisson; for Gamma and the inverse Gaussian, as lme4, every term's
        covariance times sigma^2 and a ``Residual`` row (sigma^2, sigma). A structured
        term has every row too (a ``diag()`` term's correlations 0, a ``cs()`` term's all
        equal); ``term_covariances`` says which structure it is."""
        rows = []
        for grp, tc in zip(self._group_names(), self.term_covariances):
            cov, names = tc.cov, tc.names
            sd = np.sqrt(np.clip(np.diag(cov), 0, None))
            for i, name in enumerate(names):
                rows.append((grp, name, None, cov[i, i], sd[i]))
            for j in range(len(names)):
                for i in range(j + 1, len(names)):
                    denom = sd[i] * sd[j]
                    corr = cov[i, j] / denom if denom else np.nan
                    rows.append((grp, names[j], names[i], cov[i, j], corr))
        if self.family.has_dispersion:
            rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        out = pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
        for c, col in enumerate(("grp", "var1", "var2")):
            out[col] = pd.Series([r[c] for r in rows], dtype=object)
        return out

    def ngrps(self) -> pd.Series:
        seen: dict[str, int] = {}
        for t in self.frame.terms:
            seen.setdefault(t.group, t.n_levels)
        return pd.Series(seen, name="ngrps")

    @cached_property
    def _ranef(self) -> dict[str, pd.DataFrame]:
        out: dict[str, pd.DataFrame] = {}
        for t, T, u in zip(self.frame.terms, self._factors, self.engine_fit.state.u):
            frame = pd.DataFrame(u @ T.T, index=list(t.levels), columns=list(t.names))
            out[t.group] = pd.concat([out[t.group], frame], axis=1) if t.group in out else frame
        for group, frame in out.items():
            frame.index.name = group
        return out

    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects, one DataFrame per grouping factor."""
        return {g: df.copy() for g, df in self._ranef.items()}

    def coef(self) -> dict[str, pd.DataFrame]:
        """Fixed plus random effects per level, as lme4's ``coef()``."""
        fe = self.fixef()
        out = {}
        for group, re in self._ranef.items():
            frame = pd.DataFrame([fe.to_numpy()] * len(re), index=re.index, columns=fe.index)
            for k, col in enumerate(re.columns):
                if col not in frame.columns:
                    raise ArgumentError(
                        f"unable to align random and fixed effects: {col} of {group} has no "
                        "fixed effect (lme4's coef() refuses this too)"
                    )
                frame[col] = frame[col] + re.iloc[:, k]
            out[group] = frame
        return out

    def isSingular(self, tol: float = SINGULAR_TOL) -> bool:
        """A variance at zero or a correlation at +-1 (lme4's ``isSingular``)."""
        from lme2sm.engine.theta import theta_lower

        lower = theta_lower(term_specs(self.frame))
        tol = arguments.nonnegative("tol", tol)
        return bool(np.any((lower == 0) & (self.engine_fit.theta < tol)))

    # ------------------------------------------------------------ likelihood

    def df(self) -> int:
        """Parameters: fixed effects, theta and (Gamma, inverse Gaussian) sigma."""
        return self.frame.p + len(self.engine_fit.theta) + int(self.family.has_dispersion)

    def logLik(self) -> float:
        return -0.5 * self.engine_fit.deviance

    def AIC(self) -> float:
        return -2 * self.logLik() + 2 * self.df()

    def BIC(self) -> float:
        return -2 * self.logLik() + math.log(self.nobs()) * self.df()

    def deviance(self) -> float:
        """Sum of squared deviance residuals at the conditional modes (lme4's ``deviance()``)."""
        return float(self.engine_fit.state.dev_resid.sum())

    def df_resid(self) -> int:
        return self.nobs() - self.df()

    # ------------------------------------------------------------ fitted values

    def _index(self) -> pd.Index:
        return self.frame.data.index

    def fitted(self) -> pd.Series:
        """Fitted means (random effects and offset included), as lme4's ``fitted()``."""
        return pd.Series(self.engine_fit.state.mu, index=self._index(), name="fitted")

    def residuals(self, type: str = "deviance") -> pd.Series:
        """Residuals: ``"deviance"`` (lme4's default), ``"pearson"``, ``"response"``, ``"working"``."""
        st, r = self.engine_fit.state, self.response
        mu = st.mu
        if type == "response":
            values = r.y - mu
        elif type == "pearson":
            values = (r.y - mu) * np.sqrt(r.weights) / np.sqrt(self.family.variance(mu))
        elif type == "working":
            values = (r.y - mu) / self.family.link.mu_eta(st.eta)
        elif type == "deviance":
            values = np.sign(r.y - mu) * np.sqrt(np.clip(st.dev_resid, 0, None))
        else:
            raise ArgumentError(
                f"type={type!r}: use 'deviance', 'pearson', 'response' or 'working' (lme4's types)"
            )
        return pd.Series(values, index=self._index(), name="residuals")

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        type: str = "link",
        re_form: str | None = None,
        allow_new_levels: bool = False,
    ) -> pd.Series:
        """Predictions as lme4's ``predict()``: ``type="link"`` or ``"response"``;
        ``re_form=None`` includes every random effect, ``"~0"`` (or ``"NA"``) none;
        unseen levels raise a DataError unless ``allow_new_levels=True`` (predicted at 0).
        Offsets are included."""
        if type not in ("link", "response"):
            raise ArgumentError(f"type={type!r}: use 'link' or 'response'")
        re_form = "~0" if arguments.population(re_form) else None
        allow_new_levels = arguments.flag("allow_new_levels", allow_new_levels)
        fe = self.engine_fit.beta
        if newdata is None:
            data = self.frame.data
            eta = self.frame.offset + self.frame.X @ fe
            if re_form is None:
                eta = eta + self.problem.random_part(
                    self.engine_fit.theta, self.engine_fit.state.u
                )
        else:
            data = self._prepare_newdata(newdata)
            X = design.rows(self.frame.fixed_info, data, self.frame.fixed_patsy_names)
            eta = X @ fe + self._offset(data)
            if re_form is None:
                eta = eta + self._random_part(data, allow_new_levels)
        values = eta if type == "link" else self.family.link.inverse(eta)
        return pd.Series(values, index=data.index, name="fit")

    def _offset(self, data: pd.DataFrame) -> np.ndarray:
        offsets = self.frame.parsed.fixed_part.offsets
        if not offsets:
            return np.zeros(len(data))
        return sum(design.evaluate(o, data, "the offset").sum(axis=1) for o in offsets)

    def _prepare_newdata(self, newdata: pd.DataFrame) -> pd.DataFrame:
        parsed = self.frame.parsed
        needed = [v for v in parsed.variables() if v not in parsed.response_expr.variables()]
        data_prep.check_columns(newdata, needed, parsed.formula, "newdata")
        frame = newdata.loc[:, list(dict.fromkeys(needed))].copy()
        if frame.isna().any().any():
            raise DataError("newdata has missing values in the model's variables")
        return frame

    def _random_part(self, data: pd.DataFrame, allow_new_levels: bool) -> np.ndarray:
        total = np.zeros(len(data))
        for t, T, u in zip(self.frame.terms, self._factors, self.engine_fit.state.u):
            parts = [data_prep.level_strings(data[f]) for f in t.term.group_factors]
            levels = parts[0]
            for p in parts[1:]:
                levels = levels + ":" + p
            index = {lev: i for i, lev in enumerate(t.levels)}
            codes = levels.map(index)
            unknown = sorted(set(levels[codes.isna()]))
            if unknown and not allow_new_levels:
                raise DataError(
                    f"newdata has levels of {t.group} the model has not seen "
                    f"({', '.join(unknown[:5])}{', ...' if len(unknown) > 5 else ''}); pass "
                    "allow_new_levels=True to predict them at the population level"
                )
            Zm = design.rows(t.info, data, t.patsy_names)
            b = u @ T.T
            ok = codes.notna().to_numpy()
            idx = codes.fillna(0).astype(int).to_numpy()
            total += np.where(ok, np.einsum("nk,nk->n", Zm, b[idx]), 0.0)
        return total

    # ------------------------------------------------------------ inference

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value (``t value`` for Gamma and the inverse Gaussian,
        as lme4 names it), Pr(>|z|)."""
        fe, se = self.fixef(), self.se()
        z = fe / se
        return pd.DataFrame(
            {
                "Estimate": fe,
                "Std. Error": se,
                "t value" if self.family.has_dispersion else "z value": z,
                "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z)),
            }
        )

    def anova(self, *others: GlmerEstimates) -> pd.DataFrame:
        """Likelihood-ratio tests against other fits (see :func:`anova`)."""
        return anova(self, *others)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.formula!r} {self.family} logLik={self.logLik():.4f}>"


def anova(*models: GlmerEstimates) -> pd.DataFrame:
    """Likelihood-ratio tests between nested glmer fits, as lme4's ``anova(m1, m2)``.

    Rows (``m1``, ``m2``, ... in the order given, as :func:`lme2sm.anova` names lmer
    fits) are ordered by the number of parameters; ``Chisq`` is twice the gain in
    log-likelihood from the row above, on the difference in parameters.
    """
    if len(models) < 2:
        raise ArgumentError("anova() compares two or more glmer fits: anova(m1, m2)")
    for i, m in enumerate(models):
        if not isinstance(m, GlmerEstimates):
            raise ArgumentError(
                f"anova() compares glmer fits with glmer fits; m{i + 1} is {type(m).__name__}"
            )
    n = {m.nobs() for m in models}
    if len(n) > 1:
        raise ArgumentError(
            f"models were not all fitted to the same size of dataset ({sorted(n)} rows)"
        )
    if len({m.nAGQ > 1 for m in models}) > 1:
        raise ArgumentError(
            "Laplace and adaptive Gauss-Hermite log-likelihoods are on different scales "
            "(AGQ is relative to the saturated model); compare fits with the same nAGQ"
        )
    order = sorted(range(len(models)), key=lambda i: models[i].df())
    rows = []
    prev = None
    for i in order:
        m = models[i]
        row = {
            "npar": m.df(),
            "AIC": m.AIC(),
            "BIC": m.BIC(),
            "logLik": m.logLik(),
            "deviance": -2 * m.logLik(),
            "Chisq": np.nan,
            "Df": np.nan,
            "Pr(>Chisq)": np.nan,
        }
        if prev is not None:
            chisq = max(0.0, 2 * (m.logLik() - prev.logLik()))
            df = m.df() - prev.df()
            row["Chisq"], row["Df"] = chisq, df
            row["Pr(>Chisq)"] = float(stats.chi2.sf(chisq, df)) if df > 0 else np.nan
        rows.append(row)
        prev = m
    return pd.DataFrame(rows, index=[f"m{i + 1}" for i in order])
