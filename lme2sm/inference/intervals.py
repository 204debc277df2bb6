"""Profile-likelihood confidence intervals of lmer fits, as lme4's ``confint``.

Rows are named as ``confint(m, oldNames=FALSE)`` names them: ``sd_(Intercept)|Subject``,
``cor_Days.(Intercept)|Subject``, ``sigma``, then the fixed effects.

Profile (``method="profile"``)
    lme4 profiles the *ML* deviance, for REML fits too (the intervals of a REML fit and
    of its ML refit are the same). For each parameter the signed root
    ``zeta(x) = sign(x - x_hat) sqrt(dev(x) - dev_min)`` is computed with the other
    parameters re-optimised: the random-effect standard deviations, correlations and
    sigma are profiled in that (lme4's ``devfun2``) parametrisation with bounds
    ``sd >= 0``, ``-1 <= cor <= 1``; a fixed effect is profiled over theta with the
    remaining fixed effects and sigma profiled out exactly. The interval ends are
    the roots of ``zeta(x) = +-qnorm((1 + level) / 2)`` (``scipy.optimize.brentq``);
    when the bound of a parameter is reached first (``sd = 0``, ``cor = +-1``), the
    bound is the end, as lme4 reports it. lme4 interpolates a spline through a grid of
    profile points instead; the two agree to the spline's accuracy.

The parametric bootstrap is in :mod:`.bootstrap`, glmer profiles in :mod:`.glmer_profile`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from lme2sm import arguments
from lme2sm.errors import ArgumentError
from lme2sm.inference._design import LmmDesign, lower_tri, one_blas_thread, semidefinite_cholesky
from lme2sm.inference.parallel import resolve_n_jobs, run_tasks
from lme2sm.inference.satterthwaite import design_of

if TYPE_CHECKING:
    from lme2sm.results.lmer import LmerEstimates


def column_names(level: float) -> list[str]:
    return [f"{100 * (1 - level) / 2:.1f} %", f"{100 * (1 + level) / 2:.1f} %"]


# ------------------------------------------------------------ parametrisation


@dataclass(frozen=True)
class SigPar:
    """One random-effects parameter on lme4's sd/cor scale."""

    name: str
    kind: str
    """``"sd"``, ``"cor"`` or ``"sigma"``."""
    lower: float
    upper: float


def sig_parameters(D: LmmDesign, sigma: bool = True) -> list[SigPar]:
    """lme4's ``.sig`` parameters (then sigma, unless ``sigma=False`` as for glmer), in
    theta's order."""
    out = []
    for t in D.terms:
        for c in range(t.k):
            for r in range(c, t.k):
                if r == c:
                    out.append(SigPar(f"sd_{t.names[r]}|{t.group}", "sd", 0.0, math.inf))
                else:
                    out.append(
                        SigPar(f"cor_{t.names[r]}.{t.names[c]}|{t.group}", "cor", -1.0, 1.0)
                    )
    if sigma:
        out.append(SigPar("sigma", "sigma", 0.0, math.inf))
    return out


def theta_to_sig(D: LmmDesign, theta: np.ndarray, sigma: float | None) -> np.ndarray:
    """``(theta, sigma)`` → sds, correlations (theta's order) and sigma; ``sigma=None``
    (glmer, scale fixed at 1): sds and correlations only."""
    scale = 1.0 if sigma is None else sigma
    out = []
    for t, T in zip(D.terms, D.factors(theta)):
        cov = scale**2 * (T @ T.T)
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        for c in range(t.k):
            for r in range(c, t.k):
                if r == c:
                    out.append(sd[r])
                else:
                    denom = sd[r] * sd[c]
                    out.append(cov[r, c] / denom if denom > 0 else 0.0)
    if sigma is not None:
        out.append(sigma)
    return np.array(out)


def sig_to_theta(D: LmmDesign, rho: np.ndarray, sigma: bool = True) -> np.ndarray | None:
    """Inverse of :func:`theta_to_sig` (``sigma=False``: ``rho`` has no sigma, scale 1);
    None when the correlations are not a correlation matrix."""
    scale = float(rho[-1]) if sigma else 1.0
    parts, i = [], 0
    for t in D.terms:
        sd = np.zeros(t.k)
        R = np.eye(t.k)
        for c in range(t.k):
            for r in range(c, t.k):
                if r == c:
                    sd[r] = rho[i]
                else:
                    R[r, c] = R[c, r] = rho[i]
                i += 1
        if t.k > 1 and np.min(np.linalg.eigvalsh(R)) < -1e-10:
            return None
        cov = R * np.outer(sd, sd) / scale**2
        parts.append(lower_tri(semidefinite_cholesky(cov)))
    return np.concatenate(parts) if parts else np.zeros(0)


def variance_names(m: Any, method: str) -> list[str]:
    """The random-effects rows of ``confint(m, method)``: sds and correlations (lmer:
    then sigma; glmer's bootstrap: sigma for the families with a dispersion)."""
    glmer = hasattr(m, "family")
    names = [p.name for p in sig_parameters(m.frame, sigma=not glmer)]
    if glmer and method == "boot" and m.family.has_dispersion:
        names.append("sigma")
    return names


def selected_parm(m: Any, parm: Any, method: str) -> tuple[str, ...] | None:
    """``parm`` as the names of confint's rows (None: every row), as lme4 reads it: the
    names of rows (``"sigma"``, ``"sd_(Intercept)|Subject"``, ``"Days"``), or ``"theta_"``
    (every random-effects parameter; lmer: sigma too) and ``"beta_"`` (the fixed
    effects). Integer positions (R's 1-based? Python's 0-based?) are refused."""
    if parm is None:
        return None
    variance, fixed = variance_names(m, method), list(m.frame.fixed_names)
    items = [parm] if isinstance(parm, str) else parm
    if isinstance(items, list | tuple):
        aliases = {"theta_": variance, "beta_": fixed}
        items = [n for p in items for n in (aliases.get(p, [p]) if isinstance(p, str) else [p])]
        wrong = [p for p in items if p in variance]
        if method == "Wald" and wrong:
            raise ArgumentError(
                f"parm: method='Wald' gives the fixed effects' intervals only; "
                f"{', '.join(map(repr, wrong))} need method='profile' or 'boot'"
            )
    known = fixed if method == "Wald" else variance + fixed
    return tuple(arguments.names("parm", items, known, what=f"confint's rows ({method})"))


# ------------------------------------------------------------------- profile


def lbfgsb_minimize(polish: bool = False):
    """The inner minimiser for smooth, noise-free deviances (lmer's): L-BFGS-B with
    finite-difference gradients, optionally polished by Nelder-Mead."""

    def minimize(f, x0, bounds):
        best = optimize.minimize(
            f,
            x0,
            method="L-BFGS-B",
            bounds=bounds,
            options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 2000},
        )
        if polish and len(x0) <= 6:
            polished = optimize.minimize(
                f,
                best.x,
                method="Nelder-Mead",
                options={"xatol": 1e-8, "fatol": 1e-10, "maxfev": 2000},
            )
            if polished.fun < best.fun and _within(polished.x, bounds):
                best = polished
        return best.x, float(best.fun)

    return minimize


class DevianceProfile:
    """``zeta(x) = sign(x - x_hat) sqrt(dev(x) - dev_min)`` for each parameter of a
    deviance function, the other parameters re-minimised (lme4's ``profile.merMod``).

    ``dev`` takes the full parameter vector (lmer: sds, correlations, sigma; glmer: sds,
    correlations and fixed effects); the free parameters are minimised in units of
    ``scales`` within ``lower``/``upper`` by ``minimize(f, x0, bounds) -> (x, f(x))``,
    each profile point started from the last one's optimum.
    """

    def __init__(self, dev, x_hat, dev_min, lower, upper, scales, minimize=None):
        self.dev = dev
        self.x_hat = np.asarray(x_hat, dtype=float)
        self.dev_min = float(dev_min)
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)
        self.scales = np.asarray(scales, dtype=float)
        self.minimize = minimize or lbfgsb_minimize()

    def zeta(self, index: int):
        """``zeta(x)`` for parameter ``index``, and its state (the last optimum)."""
        free = [i for i in range(len(self.x_hat)) if i != index]
        scales = self.scales[free]
        bounds = [
            (None if math.isinf(lo) else lo / sc, None if math.isinf(hi) else hi / sc)
            for lo, hi, sc in zip(self.lower[free], self.upper[free], scales)
        ]
        state = {"x": self.x_hat[free] / scales}
        x_hat = float(self.x_hat[index])

        def zeta(x: float) -> float:
            def f(z):
                full = self.x_hat.copy()
                full[free] = z * scales
                full[index] = x
                return self.dev(full)

            best_x, best_f = self.minimize(f, state["x"], bounds)
            state["x"] = best_x
            return _signed_root(best_f - self.dev_min, x - x_hat)

        return zeta, state


class Profiler:
    """Signed-root ML deviance profiles of one model (lme4's ``profile.merMod``)."""

    def __init__(self, D: LmmDesign, theta_start: np.ndarray, polish: bool = False):
        self.D = D
        self.polish = polish
        self.pars = sig_parameters(D)
        self.theta = D.optimize(reml=False, start=theta_start)
        self.sigma = D.sigma_hat(self.theta, reml=False)
        ev = D.evaluate(self.theta)
        self.beta = ev.beta
        self.beta_se = np.sqrt(np.diag(self.sigma**2 * ev.mxx_inv))
        self.rho = theta_to_sig(D, self.theta, self.sigma)
        self.dev_min = D.profiled_deviance(self.theta, reml=False)
        lower = [p.lower if p.kind != "sigma" else 1e-6 * self.sigma for p in self.pars]
        self.profile = DevianceProfile(
            self._dev_rho,
            self.rho,
            self.dev_min,
            lower,
            [p.upper for p in self.pars],
            self._scales(),
            lbfgsb_minimize(polish),
        )

    # deviance in the sd/cor parametrisation, beta profiled
    def _dev_rho(self, rho: np.ndarray) -> float:
        if rho[-1] <= 0:
            return math.inf
        theta = sig_to_theta(self.D, rho)
        if theta is None:
            return math.inf
        try:
            return self.D.deviance_varpar(np.concatenate([theta, [rho[-1]]]), reml=False)
        except np.linalg.LinAlgError:
            return math.inf

    def _scales(self) -> np.ndarray:
        out = []
        for par, value in zip(self.pars, self.rho):
            out.append(1.0 if par.kind == "cor" else max(abs(value), 0.1 * self.sigma))
        return np.array(out)

    def sig_profile(self, index: int):
        """``zeta(x)`` for the ``index``-th sd/cor/sigma parameter."""
        return self.profile.zeta(index)

    def beta_profile(self, j: int):
        """``zeta(b)`` for fixed effect ``j`` (theta re-optimised, the rest profiled)."""
        D = self.D
        n = D.n
        lower = D.theta_lower()
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
        state = {"x": self.theta.copy()}
        b_hat = float(self.beta[j])

        def zeta(b: float) -> float:
            def f(theta):
                try:
                    ev = D.evaluate(theta)
                except np.linalg.LinAlgError:
                    return math.inf
                delta = (b - ev.beta[j]) ** 2 / ev.mxx_inv[j, j]
                return ev.ldL2 + n * (1 + math.log(2 * math.pi * (ev.r2 + delta) / n))

            best = optimize.minimize(
                f,
                state["x"],
                method="L-BFGS-B",
                bounds=bounds,
                options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 2000},
            )
            state["x"] = best.x
            return _signed_root(best.fun - self.dev_min, b - b_hat)

        return zeta, state

    def interval(self, zeta, x_hat: float, step: float, lower: float, upper: float, z: float):
        """Roots of ``zeta = -z`` and ``zeta = +z`` around ``x_hat`` within the bounds."""
        return profile_interval(zeta, zeta, x_hat, step, lower, upper, z)


def profile_interval(zeta_lo, zeta_hi, x_hat, step, lower, upper, z) -> list[float]:
    """Roots of ``zeta = -z`` (searched with ``zeta_lo``) and ``zeta = +z`` (``zeta_hi``)
    around ``x_hat`` within ``[lower, upper]``."""
    return [
        _profile_end(zeta_lo, x_hat, step, lower, -1, z),
        _profile_end(zeta_hi, x_hat, step, upper, 1, z),
    ]


def _profile_end(zeta, x_hat: float, step: float, bound: float, sign: int, z: float) -> float:
    """Where ``sign * zeta`` reaches ``z`` on ``sign``'s side of ``x_hat``, or the bound.

    The step doubles until the profile passes ``z`` (then ``brentq`` between the last
    two points) or the parameter's bound is reached first (then the bound is the end).
    """
    if x_hat == bound:
        return bound

    def target(v: float) -> float:
        return sign * zeta(v) - z

    xtol = 1e-7 * max(abs(x_hat), step)
    prev, h = x_hat, step
    for _ in range(60):
        x = x_hat + sign * h
        if sign * (x - bound) >= 0:  # stepped past the bound
            if target(bound) < 0:
                return bound
            return float(optimize.brentq(target, min(prev, bound), max(prev, bound), xtol=xtol))
        if target(x) >= 0:
            return float(optimize.brentq(target, min(prev, x), max(prev, x), xtol=xtol))
        prev, h = x, 2 * h
    return math.nan


def _within(x, bounds) -> bool:
    for v, (lo, hi) in zip(x, bounds):
        if lo is not None and v < lo:
            return False
        if hi is not None and v > hi:
            return False
    return True


def _signed_root(d: float, direction: float) -> float:
    return math.copysign(math.sqrt(max(d, 0.0)), direction) if direction != 0 else 0.0


class LmerProfileJob:
    """What one parameter's profile needs (pickled once for each worker process): the
    design and the fit's theta; each process builds its :class:`Profiler` once."""

    def __init__(self, D: LmmDesign, theta_start: np.ndarray, level: float):
        self.D, self.theta_start = D, np.asarray(theta_start, dtype=float)
        self.z = float(stats.norm.ppf((1 + level) / 2))
        self._profiler: Profiler | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_profiler": None}

    @property
    def profiler(self) -> Profiler:
        if self._profiler is None:
            self._profiler = Profiler(self.D, self.theta_start)
        return self._profiler


def profile_task(job: LmerProfileJob, task: tuple[str, int]) -> list[float]:
    """One task: the interval of sd/cor/sigma parameter ``i`` (``("sig", i)``) or of
    fixed effect ``j`` (``("beta", j)``); each profile starts from the ML fit."""
    kind, i = task
    with one_blas_thread(), np.errstate(all="ignore"):
        prof = job.profiler
        if kind == "sig":
            par, value = prof.pars[i], float(prof.rho[i])
            step = 0.1 if par.kind == "cor" else 0.25 * max(value, 0.1 * prof.sigma)
            zeta, _ = prof.sig_profile(i)
            return prof.interval(zeta, value, step, par.lower, par.upper, job.z)
        zeta, _ = prof.beta_profile(i)
        b, se = float(prof.beta[i]), float(prof.beta_se[i])
        return prof.interval(zeta, b, se, -math.inf, math.inf, job.z)


def profile_confint(
    m: LmerEstimates, level: float = 0.95, parm=None, n_jobs: int | None = 1
) -> pd.DataFrame:
    """lme4's ``confint(m, method="profile", oldNames=FALSE)``; the parameters are
    profiled independently, in ``n_jobs`` processes (-1: every core) with the same
    numbers as in one."""
    level = arguments.probability("level", level)
    parm = selected_parm(m, parm, "profile")
    resolve_n_jobs(n_jobs)
    D = design_of(m)
    job = LmerProfileJob(D, D.theta_from_result(m), level)
    names = [p.name for p in sig_parameters(D)]
    tasks = [("sig", i) for i in range(len(names))]
    names += list(D.fixed_names)
    tasks += [("beta", j) for j in range(D.p)]
    kept = [k for k, name in enumerate(names) if parm is None or name in parm]
    rows = list(run_tasks(profile_task, job, [tasks[k] for k in kept], n_jobs, len(kept)))
    return pd.DataFrame(rows, index=[names[k] for k in kept], columns=column_names(level))
