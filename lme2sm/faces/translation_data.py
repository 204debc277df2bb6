"""The translation as data: statsmodels MixedLM's arguments and where each lme4 term went.

:class:`TranslationData` holds ``groups``, ``re_formula``, ``vc_formula``, the prepared
data and, per lme4 term, its :class:`Placement` (slot, statsmodels text, columns, why);
:class:`ParamLabel` names each statsmodels parameter as the lme4 quantity it is. The
code generator and statsmodels' fit read it; ``translate`` builds it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lme2sm.formula import ParsedFormula
from lme2sm.formula.model import RandomTerm
from lme2sm.frame import design

__all__ = ["Placement", "ParamLabel", "TranslationData"]


@dataclass(frozen=True)
class Placement:
    """Where one lme4 random term went in the statsmodels call, and why."""

    term: RandomTerm
    slot: str
    """``"re_formula"`` or ``"vc_formula"``."""
    key: str | None
    """The ``vc_formula`` key (its variance is named ``"<key> Var"``), None for re_formula."""
    statsmodels_text: str
    """The re_formula part (``"1 + Days"``) or the vc_formula value (``"0 + C(plate)"``)."""
    columns: tuple[tuple[str, str], ...]
    """``(statsmodels name, lme4 name)`` of the term's random-effect columns."""
    reason: str
    n_levels: int
    approximated_from: str | None = None
    """The user's original term text when ``approximate=True`` split it."""

    @property
    def lme4_text(self) -> str:
        return f"({self.term.text})"


@dataclass(frozen=True)
class ParamLabel:
    """One statsmodels parameter and the lme4 quantity it is."""

    statsmodels: str
    kind: str
    """``"fixed"``, ``"var"`` (a variance) or ``"cov"`` (a covariance)."""
    group: str | None = None
    """lme4 grouping factor (``Subject``, ``cask:batch``); None for fixed effects."""
    var1: str | None = None
    var2: str | None = None
    term_index: int | None = None


@dataclass(frozen=True)
class TranslationData:
    """statsmodels MixedLM arguments for an lme4 formula, and the term-by-term map.

    ``model()`` returns the unfitted MixedLM; the user-facing
    :class:`~lme2sm.faces.translation.Translation` adds ``code()`` and ``explain()``.
    """

    formula: str
    parsed: ParsedFormula
    data: pd.DataFrame
    """The rows statsmodels fits, columns named as the statsmodels text names them
    (:func:`~lme2sm.formula.patsy_text.statsmodels_column`: ``np`` is ``_c_np``)."""
    fixed_formula: str
    groups: str
    """The groups column of :attr:`data` (a statsmodels name)."""
    re_formula: str
    vc_formula: dict[str, str]
    placements: tuple[Placement, ...]
    params: tuple[ParamLabel, ...]
    fixed_names: tuple[tuple[str, str], ...]
    """``(statsmodels name, lme4 name)`` of the fixed effects, in lme4's order."""
    re_blocks: tuple[tuple[int, ...], ...]
    """Index sets of ``re_formula`` columns that share a correlation block."""
    n_groups: int
    n_dropped: int
    reml: bool = True
    use_sparse: bool = False
    group_columns: dict[str, str] = field(default_factory=dict)
    """lme4 grouping-factor name → the column holding its levels (the user's names)."""
    created_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    level_order: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """lme4 grouping-factor name → levels in R's order (rows of ``ranef``)."""
    fixed_matrices: tuple[pd.DataFrame, pd.DataFrame] | None = field(
        default=None, repr=False, compare=False
    )
    """patsy's response and fixed-effects design (built once, reused by the engine)."""
    group_kind: str = "factor"
    """How ``groups`` was found: ``"factor"`` (a grouping factor is the partition),
    ``"single"`` (one group for all rows), ``"components"`` (connected components)."""

    # ------------------------------------------------------------------ statsmodels

    @property
    def k_re(self) -> int:
        return sum(len(p.columns) for p in self.placements if p.slot == "re_formula")

    def free(self):
        """The ``fit(free=...)`` mask pinning cross-block covariances to zero, or None."""
        if len(self.re_blocks) <= 1:
            return None
        from statsmodels.regression.mixed_linear_model import MixedLMParams

        k = self.k_re
        mask = np.zeros((k, k))
        for block in self.re_blocks:
            for i in block:
                for j in block:
                    mask[i, j] = 1.0
        k_fe = len(self.fixed_names)
        return MixedLMParams.from_components(
            fe_params=np.ones(k_fe), cov_re=mask, vcomp=np.ones(len(self.vc_formula))
        )

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``statsmodels.formula.api.mixedlm`` (besides formula/data)."""
        kwargs: dict[str, Any] = {"groups": self.groups, "re_formula": self.re_formula}
        if self.vc_formula:
            kwargs["vc_formula"] = dict(self.vc_formula)
        if self.use_sparse:
            kwargs["use_sparse"] = True
        return kwargs

    def model(self):
        """The unfitted statsmodels ``MixedLM`` this translation describes."""
        import statsmodels.formula.api as smf

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            return smf.mixedlm(
                self.fixed_formula,
                self.data,
                eval_env=design.environment(),
                **self.model_kwargs(),
            )
