r"""Responses simulated from a fitted linear mixed model, as lme4's ``simulate(m)``.

For the model :math:`y = X\hat\beta + o + Z\Lambda_{\hat\theta} u + \varepsilon`:

* ``re_form="~0"`` (lme4's default ``re.form = NA``): new spherical random effects
  :math:`u \sim N(0, \hat\sigma^2 I)` (so each term's effects have the fitted
  covariance :math:`\hat\sigma^2 T_j T_j'`) and new residuals;
* ``re_form=None`` (lme4's ``re.form = NULL``): the fitted conditional modes
  :math:`\hat b` are kept, only the residuals are new.

Residuals are :math:`N(0, \hat\sigma^2 / w_i)` with prior weights ``w`` (lme4's
``sigma / sqrt(weights)``), the offset ``o`` is added. Draws come from numpy's
``default_rng(seed)``: random effects first (q x nsim), then residuals (n x nsim), so
the same seed gives the same responses (not R's numbers: the generators differ).

glmer fits (lme4's ``simulate`` with the family's ``simulate``): the random effects are
:math:`\Lambda_{\hat\theta} u`, :math:`u \sim N(0, I)` (no scale), the means
:math:`\mu = g^{-1}(\eta)`, then binomial draws ``Binomial(w, mu) / w`` with ``w`` the
prior weights times the trials (R's ``prior.weights``: 1 for a 0/1 or factor response,
the trials of ``cbind(successes, failures)``), Poisson draws ``Poisson(mu)``, Gamma
draws with lme4's ``Gamma_simfun`` parameters (shape ``sigma(m) * w``, rate ``shape /
mu``: lme4 takes sigma itself as the shape, not 1/sigma^2, and so does this module),
inverse Gaussian draws with mean ``mu`` and shape ``w / sigma(m)`` (lme4's, through
statmod's ``rinvgauss``). Binomial
columns are proportions of successes (the 0/1 response itself for Bernoulli rows;
multiply by ``m.response.trials`` for the counts lme4 returns as ``cbind`` matrices).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lme2sm import arguments
from lme2sm.engine.frame_input import frame_Zt, term_specs
from lme2sm.errors import ArgumentError

__all__ = ["simulate"]


def simulate(
    m: Any,
    nsim: int = 1,
    seed: int | np.random.Generator | None = None,
    re_form: str | None = "~0",
) -> pd.DataFrame:
    """Simulate ``nsim`` responses from a fitted lmer model (lme4's ``simulate``).

    Parameters
    ----------
    m : LmerResult
    nsim : int
        Number of simulated responses.
    seed : int or numpy.random.Generator, optional
        Same seed, same draws.
    re_form : "~0" or None
        ``"~0"`` (or ``"NA"``, ``"~1-1"``, a float NaN): draw new random effects
        (lme4's default, ``re.form = NA``); ``None``: keep the fitted conditional modes
        (``re.form = NULL``).

    Returns
    -------
    pandas.DataFrame
        n x nsim, columns ``sim_1``, ``sim_2``, ..., rows as the model's rows.
    """
    nsim = arguments.count("nsim", nsim)
    new = arguments.population(re_form)
    rng = arguments.generator(seed)
    if hasattr(m, "family"):
        return _simulate_glmm(m, nsim, rng, new)
    frame, fit = m.frame, m.engine_fit
    n = frame.n
    sigma = float(fit.sigma)
    mean = frame.X @ np.asarray(fit.beta, dtype=float) + frame.offset
    Zt = frame_Zt(frame)
    if new:
        lam = _lambda(frame, fit.factors)
        u = rng.standard_normal((lam.shape[0], nsim)) * sigma
        random_part = np.asarray(Zt.T @ (lam @ u))
    else:
        b = np.concatenate([np.asarray(bj, dtype=float).ravel() for bj in fit.b])
        random_part = np.repeat(np.asarray(Zt.T @ b).reshape(n, 1), nsim, axis=1)
    sd = np.full(n, sigma) if frame.weights is None else sigma / np.sqrt(frame.weights)
    resid = rng.standard_normal((n, nsim)) * sd[:, None]
    values = mean[:, None] + random_part + resid
    return pd.DataFrame(
        values, index=frame.data.index, columns=[f"sim_{i + 1}" for i in range(nsim)]
    )


def _lambda(frame, factors) -> sp.csr_matrix:
    return sp.block_diag(
        [sp.kron(sp.identity(t.n_levels), T) for t, T in zip(frame.terms, factors)],
        format="csr",
    )


def _simulate_glmm(m: Any, nsim: int, rng: np.random.Generator, new: bool) -> pd.DataFrame:
    """glmer: new (or fitted) random effects, the family's draws around the means."""
    from lme2sm.engine.theta import unpack_theta

    frame, fit = m.frame, m.engine_fit
    n = frame.n
    if new:
        lam = _lambda(frame, unpack_theta(np.asarray(fit.theta), term_specs(frame)))
        u = rng.standard_normal((lam.shape[0], nsim))
        eta = (frame.X @ np.asarray(fit.beta) + frame.offset)[:, None] + np.asarray(
            frame_Zt(frame).T @ (lam @ u)
        )
        mu = m.family.link.inverse(eta)
    else:
        mu = np.repeat(np.asarray(fit.state.mu, dtype=float).reshape(n, 1), nsim, axis=1)
    if m.family.name == "binomial":
        size = np.asarray(m.response.weights, dtype=float)
        if np.any(np.abs(size - np.round(size)) > 1e-7):
            raise ArgumentError("cannot simulate from non-integer prior weights (R refuses too)")
        size = np.round(size).astype(np.int64)
        values = rng.binomial(size[:, None], np.clip(mu, 0.0, 1.0)) / size[:, None]
    elif m.family.name == "poisson":
        values = rng.poisson(mu).astype(float)
    elif m.family.name == "Gamma":
        # lme4's Gamma_simfun, as it is: shape = sigma(m) * weights, rate = shape / mu
        # (so the draws' variance is mu^2 / (sigma w), not sigma^2 mu^2)
        shape = (m.sigma * np.asarray(m.response.prior, dtype=float))[:, None]
        values = rng.gamma(np.broadcast_to(shape, mu.shape), mu / shape)
    elif m.family.name == "inverse.gaussian":
        # lme4's inverse.gaussian_simfun: statmod::rinvgauss(mean = mu, shape = w / sigma)
        lam = (np.asarray(m.response.prior, dtype=float) / m.sigma)[:, None]
        values = rng.wald(mu, np.broadcast_to(lam, mu.shape))
    else:  # pragma: no cover - glmer has the four families above
        raise ArgumentError(f"simulate() does not know the {m.family.name} family")
    return pd.DataFrame(
        values, index=frame.data.index, columns=[f"sim_{i + 1}" for i in range(nsim)]
    )
