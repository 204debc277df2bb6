"""The arguments of ``confint`` and of the parametric bootstrap, checked before any
profile or refit runs, and the Wald intervals that need nothing else.

Each argument goes through its checker in :mod:`lme2sm.arguments` (an ArgumentError that
names it), so a bad ``parm`` or ``seed`` fails at once, not after 500 refits. ``parm`` is
lme4's (:func:`lme2sm.inference.intervals.selected_parm`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from lme2sm import arguments
from lme2sm.inference.intervals import column_names, selected_parm

__all__ = ["IntervalArguments", "interval_arguments", "sample_arguments", "wald_confint"]

METHODS = ("profile", "boot", "Wald")


@dataclass(frozen=True)
class IntervalArguments:
    """confint's arguments, checked: ``rng`` is the generator ``seed`` gives."""

    level: float
    method: str
    parm: tuple[str, ...] | None
    nsim: int
    rng: np.random.Generator
    progress: bool
    n_jobs: int | None


def interval_arguments(
    m: Any,
    level: Any = 0.95,
    method: Any = "profile",
    parm: Any = None,
    nsim: Any = 500,
    seed: Any = None,
    progress: Any = True,
    n_jobs: Any = 1,
) -> IntervalArguments:
    """confint's arguments checked, each an ArgumentError naming it when it is wrong."""
    level = arguments.probability("level", level)
    method = arguments.choice("method", method, METHODS, fold=True)
    return IntervalArguments(
        level=level,
        method=method,
        parm=selected_parm(m, parm, method),
        nsim=arguments.count("nsim", nsim, minimum=2 if method == "boot" else 1),
        rng=arguments.generator(seed),
        progress=arguments.flag("progress", progress),
        n_jobs=arguments.jobs(n_jobs),
    )


def sample_arguments(nsim: Any, seed: Any, progress: Any, n_jobs: Any):
    """``bootstrap_samples``' arguments checked: ``(nsim, generator, progress, n_jobs)``."""
    return (
        arguments.count("nsim", nsim),
        arguments.generator(seed),
        arguments.flag("progress", progress),
        arguments.jobs(n_jobs),
    )


def wald_confint(m: Any, level: float, parm: tuple[str, ...] | None) -> pd.DataFrame:
    """The fixed effects' normal intervals, ``estimate -+ z se`` (lme4's ``"Wald"``)."""
    z = stats.norm.ppf(0.5 + level / 2)
    fe, se = m.fixef(), m.se()
    lo, hi = column_names(level)
    out = pd.DataFrame({lo: fe - z * se, hi: fe + z * se})
    return out if parm is None else out.loc[[p for p in out.index if p in parm]]
