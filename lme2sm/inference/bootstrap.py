"""Parametric-bootstrap confidence intervals, as lme4's confint(m, method = "boot") (bootMer).

``nsim`` responses are simulated from the fitted model (random effects and residuals drawn
from their fitted distributions), the model is refitted to each (REML or ML as the
original), and each parameter's interval is the percentile interval of its refitted values.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lme2sm.errors import ArgumentError
from lme2sm.inference._design import one_blas_thread
from lme2sm.inference.intervals import (
    column_names,
    sig_parameters,
    theta_to_sig,
)
from lme2sm.inference.satterthwaite import design_of

if TYPE_CHECKING:
    from lme2sm.results.lmer import LmerEstimates


def bootstrap_samples(
    m: LmerEstimates, nsim: int = 500, seed=None, progress: bool = True
) -> pd.DataFrame:
    """Parameters (sd/cor/sigma then fixed effects) refitted to ``nsim`` simulated responses."""
    D = design_of(m)
    rng = np.random.default_rng(seed)
    theta = D.theta_from_result(m)
    sigma = m.sigma
    beta = m.fixef().to_numpy()
    lam = D.lambda_matrix(theta)
    mean = D.X @ beta
    names = [p.name for p in sig_parameters(D)] + list(D.fixed_names)
    out = np.full((nsim, len(names)), np.nan)
    bar = _Progress(nsim, enabled=progress)
    with one_blas_thread(), np.errstate(all="ignore"):
        for s in range(nsim):
            u = rng.standard_normal(D.q) * sigma
            b = lam * u if D.scalar else lam @ u
            y = mean + D.Z @ b + rng.standard_normal(D.n) * sigma
            Ds = D.with_response(y)
            try:
                th = Ds.optimize(m.REML, start=theta, polish=False)
                sg = Ds.sigma_hat(th, m.REML)
                ev = Ds.evaluate(th)
                out[s] = np.concatenate([theta_to_sig(Ds, th, sg), ev.beta])
            except (np.linalg.LinAlgError, ValueError):
                pass  # a failed refit stays NaN, as bootMer's failures are NA
            bar.update(s + 1)
    bar.close()
    return pd.DataFrame(out, columns=names)


def boot_confint(
    m: LmerEstimates, level: float = 0.95, nsim: int = 500, seed=None, progress: bool = True
) -> pd.DataFrame:
    """Percentile intervals from :func:`bootstrap_samples` (lme4's ``method="boot"``)."""
    if nsim < 2:
        raise ArgumentError("nsim must be at least 2")
    samples = bootstrap_samples(m, nsim=nsim, seed=seed, progress=progress)
    a = (1 - level) / 2
    lo = samples.quantile(a)
    hi = samples.quantile(1 - a)
    table = pd.DataFrame({column_names(level)[0]: lo, column_names(level)[1]: hi})
    table.attrs["nsim"] = nsim
    table.attrs["failed"] = int(samples.isna().any(axis=1).sum())
    return table


class _Progress:
    """A one-line text progress bar on stderr."""

    def __init__(self, total: int, enabled: bool = True, width: int = 40):
        self.total, self.enabled, self.width = total, enabled, width
        self._last = -1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        filled = int(self.width * done / self.total)
        if filled == self._last and done != self.total:
            return
        self._last = filled
        bar = "=" * filled + " " * (self.width - filled)
        sys.stderr.write(f"\r|{bar}| {done}/{self.total}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
