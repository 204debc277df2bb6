"""Parametric-bootstrap confidence intervals, as lme4's confint(m, method = "boot") (bootMer).

``nsim`` responses are simulated from the fitted model (random effects and residuals drawn
from their fitted distributions), the model is refitted to each (REML or ML as the
original), and each parameter's interval is the percentile interval of its refitted values.

The responses are drawn in the calling process, one replicate after the other from the one
generator ``default_rng(seed)`` (random effects, then residuals); the refits run there too
or, with ``n_jobs``, in a pool of processes (:mod:`.parallel`), which sees the same
responses and so gives the same intervals. glmer fits are bootstrapped by
:mod:`.glmer_bootstrap` through the same loop
(:func:`run_bootstrap`).
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lme2sm.errors import ConvergenceWarning, FitError
from lme2sm.inference._design import LmmDesign, one_blas_thread
from lme2sm.inference.intervals import (
    column_names,
    sig_parameters,
    theta_to_sig,
)
from lme2sm.inference.parallel import resolve_n_jobs, run_tasks
from lme2sm.inference.satterthwaite import design_of

if TYPE_CHECKING:
    from lme2sm.results.lmer import LmerEstimates

CHUNK = 25
"""Most replicates a task refits (fewer when ``nsim`` is small against the workers)."""


class LmerRefits:
    """What an lmer refit needs (sent once to each worker): the design, the fit's theta."""

    def __init__(self, D: LmmDesign, theta: np.ndarray, reml: bool):
        self.D, self.theta, self.reml = D, np.asarray(theta, dtype=float), bool(reml)
        self.width = len(sig_parameters(D)) + D.p

    def refit(self, y: np.ndarray) -> np.ndarray:
        """sd/cor/sigma then the fixed effects refitted to ``y`` (NaN when the refit fails)."""
        Ds = self.D.with_response(y)
        try:
            th = Ds.optimize(self.reml, start=self.theta, polish=False)
            sg = Ds.sigma_hat(th, self.reml)
            ev = Ds.evaluate(th)
            return np.concatenate([theta_to_sig(Ds, th, sg), ev.beta])
        except (np.linalg.LinAlgError, ValueError):
            return np.full(self.width, np.nan)  # a failed refit is NA, as bootMer's


def refit_block(shared, block: np.ndarray) -> np.ndarray:
    """One task: the parameters refitted to each row of ``block`` (replicates x n)."""
    out = np.full((len(block), shared.width), np.nan)
    with one_blas_thread(), np.errstate(all="ignore"):
        for i, y in enumerate(block):
            out[i] = shared.refit(y)
    return out


def lmer_responses(m: LmerEstimates, D: LmmDesign, nsim: int, seed) -> Iterator[np.ndarray]:
    """The ``nsim`` simulated responses, one at a time, in the generator's order."""
    rng = np.random.default_rng(seed)
    theta = D.theta_from_result(m)
    sigma = m.sigma
    lam = D.lambda_matrix(theta)
    mean = D.X @ m.fixef().to_numpy()
    for _ in range(nsim):
        u = rng.standard_normal(D.q) * sigma
        b = lam * u if D.scalar else lam @ u
        yield mean + D.Z @ b + rng.standard_normal(D.n) * sigma


def blocks(responses: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The responses stacked ``size`` at a time."""
    block: list[np.ndarray] = []
    for y in responses:
        block.append(y)
        if len(block) == size:
            yield np.vstack(block)
            block = []
    if block:
        yield np.vstack(block)


def run_bootstrap(
    shared, responses, nsim: int, names: list[str], progress: bool, n_jobs
) -> pd.DataFrame:
    """Refit ``shared`` to each response (in ``n_jobs`` processes), rows in order."""
    jobs = resolve_n_jobs(n_jobs)
    size = CHUNK if jobs == 1 else max(1, min(CHUNK, math.ceil(nsim / (4 * jobs))))
    n_tasks = math.ceil(nsim / size)
    out = np.full((nsim, len(names)), np.nan)
    bar = _Progress(nsim, enabled=progress)
    done = 0
    with one_blas_thread(), np.errstate(all="ignore"):
        for rows in run_tasks(refit_block, shared, blocks(responses, size), jobs, n_tasks):
            out[done : done + len(rows)] = rows
            done += len(rows)
            bar.update(done)
    bar.close()
    return pd.DataFrame(out, columns=names)


def bootstrap_samples(
    m: LmerEstimates, nsim: int = 500, seed=None, progress: bool = True, n_jobs: int | None = 1
) -> pd.DataFrame:
    """Parameters (sd/cor/sigma then fixed effects) refitted to ``nsim`` simulated
    responses of an lmer fit (lme4's ``bootMer(m, FUN)`` with ``confint``'s ``FUN``).

    ``n_jobs``: processes for the refits (-1: every core); the same ``seed`` gives the
    same samples whatever ``n_jobs`` is.
    """
    from lme2sm.inference.interval_args import sample_arguments

    nsim, rng, progress, n_jobs = sample_arguments(nsim, seed, progress, n_jobs)
    D = design_of(m)
    shared = LmerRefits(D, D.theta_from_result(m), m.REML)
    names = [p.name for p in sig_parameters(D)] + list(D.fixed_names)
    responses = lmer_responses(m, D, nsim, rng)
    return run_bootstrap(shared, responses, nsim, names, progress, n_jobs)


def percentile_table(samples: pd.DataFrame, level: float, parm=None) -> pd.DataFrame:
    """Each column's percentile interval (R's ``confint(bootMer, type = "perc")``);
    ``attrs``: ``nsim`` and the number of ``failed`` refits."""
    nsim = len(samples)
    failed = int(samples.isna().any(axis=1).sum())
    if failed == nsim:
        raise FitError(
            f"all {nsim} bootstrap refits failed (lme4: '*all* bootstrap runs failed!')"
        )
    if failed:
        warnings.warn(
            f"{failed} of {nsim} bootstrap refits failed; the intervals are from the other "
            f"{nsim - failed} (bootstrap_samples() has the failures as NaN rows)",
            ConvergenceWarning,
            stacklevel=3,
        )
    if parm is not None:
        samples = samples[[c for c in samples.columns if c in parm]]
    a = (1 - level) / 2
    lo, hi = column_names(level)
    table = pd.DataFrame({lo: samples.quantile(a), hi: samples.quantile(1 - a)})
    table.attrs["nsim"] = nsim
    table.attrs["failed"] = failed
    return table


def boot_confint(
    m: LmerEstimates,
    level: float = 0.95,
    nsim: int = 500,
    seed=None,
    progress: bool = True,
    n_jobs: int | None = 1,
    parm=None,
) -> pd.DataFrame:
    """Percentile intervals from :func:`bootstrap_samples` (lme4's ``method="boot"``);
    every argument is checked before the first refit."""
    from lme2sm.inference.interval_args import interval_arguments

    a = interval_arguments(m, level, "boot", parm, nsim, seed, progress, n_jobs)
    level, parm, nsim, seed = a.level, a.parm, a.nsim, a.rng
    samples = bootstrap_samples(m, nsim=nsim, seed=seed, progress=progress, n_jobs=n_jobs)
    return percentile_table(samples, level, parm)


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
