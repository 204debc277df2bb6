"""A statsmodels ``MixedLM`` whose fit uses the fast variance-component engine.

:class:`VarianceComponentsMixedLM` is a genuine ``MixedLM`` (no ``re_formula``
random effects, ``k_re = 0``; every random term a variance component), built
directly from :class:`~lme2sm.engines.terms.ScalarTerm` codes: the per-group
variance-component designs are sparse (as ``MixedLM.from_formula(...,
use_sparse=True)`` makes them) and built in O(n), never through patsy and never as an
n x q dense matrix. Its :meth:`~VarianceComponentsMixedLM.fit` runs
:func:`~lme2sm.engines.vc.fit_profiled` and returns a genuine ``MixedLMResults``
holding what plain ``MixedLM.fit`` stores at the same optimum: ``params`` (fixed
effects, then variance components divided by ``scale``), ``params_object``,
``cov_params`` (statsmodels' inverse negative Hessian), ``scale``, ``vcomp``,
``cov_re`` (0 x 0), ``fe_params``, ``llf``, ``random_effects`` (same keys and labels),
``fittedvalues``, ``converged``, ``method``.

The equivalent plain model is::

    MixedLM.from_formula(formula, data, groups=groups, re_formula="0",
                         vc_formula={t.name: "0 + C(g)" or "0 + C(g):x" ...},
                         use_sparse=True)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from statsmodels.regression.mixed_linear_model import (
    MixedLM,
    MixedLMParams,
    MixedLMResults,
    MixedLMResultsWrapper,
    VCSpec,
)
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from .terms import ScalarTerm, term_values, validate_terms
from .vc import ProfiledFit, fit_profiled

__all__ = ["VarianceComponentsMixedLM"]


class VarianceComponentsMixedLM(MixedLM):
    """``MixedLM`` with only scalar variance components, fitted by the fast engine.

    Build it with :meth:`from_terms`; the constructor is ``MixedLM``'s.
    """

    _vc_terms: tuple = ()
    _vc_present: list = []

    @classmethod
    def from_terms(
        cls,
        endog: np.ndarray,
        exog: np.ndarray,
        exog_names: Sequence[str],
        groups: np.ndarray,
        terms: Sequence[ScalarTerm],
        endog_name: str = "y",
    ) -> VarianceComponentsMixedLM:
        """Build the model from arrays and scalar terms.

        Parameters
        ----------
        endog : numpy.ndarray
            Response, length n.
        exog : numpy.ndarray
            Fixed-effects design, n x p.
        exog_names : sequence of str
            Names of the columns of ``exog``.
        groups : numpy.ndarray
            Group label per row: a partition in which every term's levels nest (each
            level occurs in one group only); may be one constant group.
        terms : sequence of ScalarTerm
            The random-effects terms; stored in sorted name order, as statsmodels
            sorts ``vc_formula``.
        endog_name : str
            Name of the response.

        Returns
        -------
        VarianceComponentsMixedLM
            The model, with ``exog_vc`` a ``VCSpec`` of sparse per-group matrices.
        """
        endog = np.asarray(endog, dtype=np.float64).ravel()
        exog = np.asarray(exog, dtype=np.float64)
        if exog.ndim == 1:
            exog = exog[:, None]
        n = endog.shape[0]
        exog_names = list(exog_names)
        if exog.shape != (n, len(exog_names)):
            raise ValueError(f"exog must be n x {len(exog_names)}, got {exog.shape}")
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise ValueError(f"groups must have shape ({n},), got {groups.shape}")
        terms = sorted(terms, key=lambda t: t.name)
        validate_terms(terms, n)

        labels, ginv = np.unique(groups, return_inverse=True)
        ginv = ginv.ravel()
        n_groups = labels.size
        order = np.argsort(ginv, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(ginv, minlength=n_groups))])

        names, colnames, mats, present_all = [], [], [], []
        for t in terms:
            codes = np.asarray(t.codes, dtype=np.int64)
            q = t.n_levels
            if n_groups > 1:  # every level must nest in one group
                owner = np.full(q, -1, dtype=np.int64)
                owner[codes] = ginv
                if np.any(owner[codes] != ginv):
                    raise ValueError(
                        f"term {t.name!r}: some levels occur in more than one group; the "
                        "groups must be a partition in which every term nests"
                    )
            vals = term_values(t, n)
            cn, mt, pr = [], [], []
            for gi in range(n_groups):
                rows = order[bounds[gi] : bounds[gi + 1]] if n_groups > 1 else slice(None)
                cg = codes[rows]
                if cg.size * 8 < q:  # small group: sort its codes
                    present, local = np.unique(cg, return_inverse=True)
                else:  # O(n + q) without sorting
                    seen = np.bincount(cg, minlength=q) > 0
                    present = np.flatnonzero(seen)
                    local = (np.cumsum(seen) - 1)[cg]
                m = cg.size
                mt.append(
                    sparse.csr_array(
                        (vals[rows], local.ravel(), np.arange(m + 1)), shape=(m, present.size)
                    )
                )
                cn.append([t.column_name(t.levels[c]) for c in present])
                pr.append(present)
            names.append(t.name)
            colnames.append(cn)
            mats.append(mt)
            present_all.append(pr)
        exog_vc = VCSpec(names, colnames, mats)

        model = cls(
            pd.Series(endog, name=endog_name),
            pd.DataFrame(exog, columns=exog_names),
            groups,
            exog_re=np.zeros((n, 0)),
            exog_vc=exog_vc,
        )
        param_names, re_names, re_names_full = model._make_param_names([])
        model.data.param_names = param_names
        model.data.exog_re_names = re_names
        model.data.exog_re_names_full = re_names_full
        model.data.vcomp_names = model.exog_vc.names
        model._vc_terms = tuple(terms)
        model._vc_present = present_all
        return model

    def fit(
        self,
        reml: bool = True,
        start_params: np.ndarray | None = None,
        *,
        threads: int | None = 1,
        variance_cov: bool = True,
        fe_cov: str = "hessian",
        maxiter: int = 500,
        **kwargs: object,
    ) -> MixedLMResultsWrapper:
        """Fit by profiled REML/ML with the fast engine; return ``MixedLMResults``.

        Parameters
        ----------
        reml : bool
            REML (default) or ML.
        start_params : numpy.ndarray or MixedLMParams, optional
            statsmodels' packed start (``sqrt(vcomp / scale)`` per component, i.e.
            ``theta``, optionally preceded by the fixed effects, which are ignored),
            or a ``MixedLMParams``.
        threads : int or None
            BLAS threads during the fit (default 1; None leaves BLAS alone).
        variance_cov : bool
            Compute statsmodels' Hessian-based ``cov_params`` including the variance
            parameters (2 extra evaluations per term). If False, the variance rows
            of ``cov_params`` are NaN and the fixed-effects block is lme4's ``vcov``.
        fe_cov : {"hessian", "vcov"}
            Fixed-effects block of ``cov_params``: statsmodels' (inverse negative
            Hessian in fixed effects and variances jointly, default, as plain
            ``MixedLM.fit``) or lme4's ``sigma^2 (X'V^-1X)^-1``. They differ slightly
            when the fixed effects and variances are correlated in the Hessian.
        maxiter : int
            Maximum optimiser iterations.
        **kwargs
            statsmodels ``fit`` options (``method``, ``gtol``...); accepted and ignored.

        Returns
        -------
        MixedLMResultsWrapper
            A genuine statsmodels ``MixedLMResults`` (wrapped); the engine's
            :class:`~lme2sm.engines.vc.ProfiledFit` is ``results.profiled_fit``.
        """
        if fe_cov not in ("hessian", "vcov"):
            raise ValueError("fe_cov must be 'hessian' or 'vcov'")
        if kwargs:
            warnings.warn(
                f"VarianceComponentsMixedLM.fit ignores {sorted(kwargs)}",
                UserWarning,
                stacklevel=2,
            )
        terms = self._vc_terms
        if not terms:
            raise ValueError("build the model with VarianceComponentsMixedLM.from_terms")
        k_vc = len(terms)
        start = None
        if isinstance(start_params, MixedLMParams):
            start = np.sqrt(np.asarray(start_params.vcomp, dtype=np.float64))
        elif start_params is not None:
            start = np.asarray(start_params, dtype=np.float64).ravel()[-k_vc:]

        pf = fit_profiled(
            self.endog,
            self.exog,
            terms,
            reml=reml,
            start=start,
            threads=threads,
            maxiter=maxiter,
            variance_cov=variance_cov,
        )
        return self._results_from(pf, fe_cov)

    def _results_from(self, pf: ProfiledFit, fe_cov: str) -> MixedLMResultsWrapper:
        """Build the statsmodels results object from the engine's fit."""
        self.reml = pf.reml
        self.cov_pen = None
        self.fe_pen = None
        self._cov_sing = 0
        self._freepat = None
        k_fe, k_vc = self.k_fe, self.k_vc
        if not pf.converged:
            warnings.warn(
                f"Gradient optimization failed, |grad| = {pf.gradient_norm:f}",
                ConvergenceWarning,
                stacklevel=3,
            )

        params = MixedLMParams.from_packed(
            np.asarray(pf.theta, dtype=np.float64), k_fe, self.k_re, use_sqrt=True, has_fe=False
        )
        params.fe_params = np.asarray(pf.beta, dtype=np.float64)
        scale = pf.scale
        cov_re_unscaled = params.cov_re
        vcomp = scale * params.vcomp

        if pf.cov_params is not None:
            pcov = np.array(pf.cov_params, dtype=np.float64)
        else:
            pcov = np.full((k_fe + k_vc, k_fe + k_vc), np.nan)
            pcov[:k_fe, :k_fe] = pf.cov_beta
        if fe_cov == "vcov":
            pcov[:k_fe, :k_fe] = pf.cov_beta

        params_packed = params.get_packed(use_sqrt=False, has_fe=True)
        results = MixedLMResults(self, params_packed, pcov / scale)
        results.params_object = params
        results.fe_params = params.fe_params
        results.cov_re = scale * cov_re_unscaled
        results.vcomp = vcomp
        results.scale = scale
        results.cov_re_unscaled = cov_re_unscaled
        results.method = "REML" if self.reml else "ML"
        results.converged = pf.converged
        results.hist = None
        results.reml = self.reml
        results.cov_pen = self.cov_pen
        results.k_fe = self.k_fe
        results.k_re = self.k_re
        results.k_re2 = self.k_re2
        results.k_vc = self.k_vc
        results.use_sqrt = self.use_sqrt
        results.freepat = self._freepat
        results.profiled_fit = pf

        # quantities statsmodels would compute lazily with dense n x q work
        cache = results.__dict__.setdefault("_cache", {})
        cache["llf"] = float(pf.llf)
        cache["random_effects"] = self._random_effects(pf)
        cache["fittedvalues"] = self._fitted(pf)
        return MixedLMResultsWrapper(results)

    def _random_effects(self, pf: ProfiledFit) -> dict:
        """``random_effects`` in plain MixedLM's layout: group -> Series of modes."""
        out = {}
        for gi, label in enumerate(self.group_labels):
            vals, idx = [], []
            for j, t in enumerate(self._vc_terms):
                present = self._vc_present[j][gi]
                vals.append(np.asarray(pf.modes[j])[present])
                idx.extend(f"{t.name}[{c}]" for c in self.exog_vc.colnames[j][gi])
            out[label] = pd.Series(np.concatenate(vals), index=idx)
        return out

    def _fitted(self, pf: ProfiledFit) -> np.ndarray:
        """Fitted values ``X beta + sum_j Z_j b_j``, O(n)."""
        fit = self.exog @ np.asarray(pf.beta)
        n = fit.shape[0]
        for j, t in enumerate(self._vc_terms):
            fit += np.asarray(pf.modes[j])[np.asarray(t.codes)] * term_values(t, n)
        return fit
