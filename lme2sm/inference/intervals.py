"""Profile-likelihood and parametric-bootstrap confidence intervals, as lme4's ``confint``.

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

Bootstrap (``method="boot"``)
    Parametric bootstrap as lme4's ``bootMer``: ``nsim`` responses are simulated from
    the fitted model (random effects and residuals drawn from their fitted
    distributions), the model is refitted to each (REML or ML as the original), and
    each parameter's interval is the percentile interval of its refitted values.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..errors import ArgumentError
from ._design import LmmDesign, lower_tri, one_blas_thread, semidefinite_cholesky
from .satterthwaite import design_of

if TYPE_CHECKING:
    from ..results import LmerResult


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


def sig_parameters(D: LmmDesign) -> list[SigPar]:
    """lme4's ``.sig`` parameters (then sigma), in theta's order."""
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
    out.append(SigPar("sigma", "sigma", 0.0, math.inf))
    return out


def theta_to_sig(D: LmmDesign, theta: np.ndarray, sigma: float) -> np.ndarray:
    """``(theta, sigma)`` → sds, correlations (theta's order) and sigma."""
    out = []
    for t, T in zip(D.terms, D.factors(theta)):
        cov = sigma**2 * (T @ T.T)
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        for c in range(t.k):
            for r in range(c, t.k):
                if r == c:
                    out.append(sd[r])
                else:
                    denom = sd[r] * sd[c]
                    out.append(cov[r, c] / denom if denom > 0 else 0.0)
    out.append(sigma)
    return np.array(out)


def sig_to_theta(D: LmmDesign, rho: np.ndarray) -> np.ndarray | None:
    """Inverse of :func:`theta_to_sig`; None when the correlations are not a correlation matrix."""
    sigma = float(rho[-1])
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
        cov = R * np.outer(sd, sd) / sigma**2
        parts.append(lower_tri(semidefinite_cholesky(cov)))
    return np.concatenate(parts) if parts else np.zeros(0)


# ------------------------------------------------------------------- profile


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
        free = [i for i in range(len(self.pars)) if i != index]
        scales = self._scales()[free]
        bounds = []
        for i in free:
            par = self.pars[i]
            lo = par.lower if par.kind != "sigma" else 1e-6 * self.sigma
            lo = lo / scales[free.index(i)] if par.kind != "cor" else lo
            hi = par.upper / scales[free.index(i)] if par.kind != "cor" else par.upper
            bounds.append((lo, None if math.isinf(hi) else hi))
        state = {"x": self.rho[free] / scales}
        x_hat = float(self.rho[index])

        def zeta(x: float) -> float:
            def f(z):
                rho = self.rho.copy()
                rho[free] = z * scales
                rho[index] = x
                return self._dev_rho(rho)

            best = optimize.minimize(
                f,
                state["x"],
                method="L-BFGS-B",
                bounds=bounds,
                options={"ftol": 1e-13, "gtol": 1e-7, "maxiter": 2000},
            )
            if self.polish and len(free) <= 6:
                polish = optimize.minimize(
                    f,
                    best.x,
                    method="Nelder-Mead",
                    options={"xatol": 1e-8, "fatol": 1e-10, "maxfev": 2000},
                )
                if polish.fun < best.fun and _within(polish.x, bounds):
                    best = polish
            state["x"] = best.x
            return _signed_root(best.fun - self.dev_min, x - x_hat)

        return zeta, state

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
        return [
            _profile_end(zeta, x_hat, step, lower, -1, z),
            _profile_end(zeta, x_hat, step, upper, 1, z),
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


def profile_confint(m: LmerResult, level: float = 0.95, parm=None) -> pd.DataFrame:
    """lme4's ``confint(m, method="profile", oldNames=FALSE)``."""
    D = design_of(m)
    z = float(stats.norm.ppf((1 + level) / 2))
    with one_blas_thread(), np.errstate(all="ignore"):
        prof = Profiler(D, D.theta_from_result(m))
        rows, names = [], []
        for i, par in enumerate(prof.pars):
            if parm is not None and par.name not in parm:
                continue
            zeta, _ = prof.sig_profile(i)
            value = float(prof.rho[i])
            if par.kind == "cor":
                step = 0.1
            else:
                step = 0.25 * max(value, 0.1 * prof.sigma)
            upper = par.upper
            rows.append(prof.interval(zeta, value, step, par.lower, upper, z))
            names.append(par.name)
        for j, name in enumerate(D.fixed_names):
            if parm is not None and name not in parm:
                continue
            zeta, _ = prof.beta_profile(j)
            rows.append(
                prof.interval(
                    zeta, float(prof.beta[j]), float(prof.beta_se[j]), -math.inf, math.inf, z
                )
            )
            names.append(name)
    return pd.DataFrame(rows, index=names, columns=column_names(level))


# ----------------------------------------------------------------- bootstrap


def bootstrap_samples(
    m: LmerResult, nsim: int = 500, seed=None, progress: bool = True
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
    m: LmerResult, level: float = 0.95, nsim: int = 500, seed=None, progress: bool = True
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
