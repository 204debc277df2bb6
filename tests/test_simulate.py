"""simulate(): lme4's simulate for lmer fits, tested by its properties.

R's random numbers cannot be reproduced, so the tests check what the draws must satisfy:
the same seed gives the same draws; over many simulations the mean and covariance of
``y`` are the model's (``X beta`` and ``Z G Z' + sigma^2 W^-1`` for new random effects,
the fitted values and ``sigma^2 W^-1`` with ``re_form=None``), within sampling error;
for glmer fits, the family's mean and variance around the fitted or simulated means.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla

from lme2sm.datasets import load
from lme2sm.engine.frame_input import frame_Zt, profiled_of
from lme2sm.errors import ArgumentError
from lme2sm.frame.model_frame import build_model_frame
from lme2sm.inference.simulate import simulate


class Fitted:
    """What simulate() reads from a result: ``frame`` and ``engine_fit``."""

    def __init__(self, formula, data, weights=None):
        self.frame = build_model_frame(formula, data, weights=weights)
        self.engine_fit = profiled_of(self.frame).fit(reml=True)


@pytest.fixture(scope="module")
def sleep():
    return Fitted("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))


@pytest.fixture(scope="module")
def weighted():
    data = load("sleepstudy").copy()
    data["w"] = np.where(data["Days"] < 5, 1.0, 4.0)
    return Fitted("Reaction ~ Days + (1 | Subject)", data, weights="w")


def implied(m):
    """Mean, marginal covariance, fitted values and residual variances of the model."""
    frame, fit = m.frame, m.engine_fit
    Z = frame_Zt(frame).toarray().T
    G = sla.block_diag(
        *[np.kron(np.eye(t.n_levels), C) for t, C in zip(frame.terms, fit.covariances())]
    )
    w = np.ones(frame.n) if frame.weights is None else frame.weights
    resid_var = fit.sigma**2 / w
    mean = frame.X @ fit.beta + frame.offset
    b = np.concatenate([bj.ravel() for bj in fit.b])
    return mean, Z @ G @ Z.T + np.diag(resid_var), mean + Z @ b, resid_var


def test_shape_names_and_index(sleep):
    out = simulate(sleep, nsim=3, seed=1)
    assert out.shape == (180, 3)
    assert list(out.columns) == ["sim_1", "sim_2", "sim_3"]
    assert out.index.equals(sleep.frame.data.index)


@pytest.mark.parametrize("re_form", ["~0", None])
def test_same_seed_same_draws(sleep, re_form):
    a = simulate(sleep, nsim=4, seed=11, re_form=re_form)
    b = simulate(sleep, nsim=4, seed=11, re_form=re_form)
    c = simulate(sleep, nsim=4, seed=12, re_form=re_form)
    assert a.equals(b)
    assert not np.allclose(a.to_numpy(), c.to_numpy())
    gen = simulate(sleep, nsim=4, seed=np.random.default_rng(11), re_form=re_form)
    assert np.array_equal(gen.to_numpy(), a.to_numpy())


def test_new_random_effects_moments(sleep):
    nsim = 4000
    y = simulate(sleep, nsim=nsim, seed=2024).to_numpy()
    mean, V, _, _ = implied(sleep)
    z = (y.mean(axis=1) - mean) / np.sqrt(np.diag(V) / nsim)
    assert np.max(np.abs(z)) < 4.5  # 180 means, each N(0, 1) under the model
    C = np.cov(y)
    # sampling sd of a covariance estimate: sqrt((V_ii V_jj + V_ij^2) / nsim)
    sd = np.sqrt((np.outer(np.diag(V), np.diag(V)) + V**2) / nsim)
    assert np.max(np.abs(C - V) / sd) < 5.5
    # within a subject, rows are correlated through the random effects
    same = sleep.frame.terms[0].codes[:, None] == sleep.frame.terms[0].codes[None, :]
    assert np.mean(C[same & ~np.eye(180, dtype=bool)]) > 500


def test_keep_fitted_random_effects(sleep):
    nsim = 4000
    y = simulate(sleep, nsim=nsim, seed=7, re_form=None).to_numpy()
    _, _, fitted, resid_var = implied(sleep)
    z = (y.mean(axis=1) - fitted) / np.sqrt(resid_var / nsim)
    assert np.max(np.abs(z)) < 4.5
    # only residuals vary: rows independent, variance sigma^2
    C = np.cov(y)
    ratio = np.diag(C) / resid_var
    assert abs(ratio.mean() - 1) < 0.01
    off = C[~np.eye(180, dtype=bool)] / sleep.engine_fit.sigma**2
    assert np.max(np.abs(off)) < 5.5 * np.sqrt(1 / nsim) * np.sqrt(2)


def test_weights_scale_the_residuals(weighted):
    nsim = 4000
    y = simulate(weighted, nsim=nsim, seed=3, re_form=None).to_numpy()
    _, _, _, resid_var = implied(weighted)
    ratio = y.var(axis=1, ddof=1) / resid_var
    heavy = weighted.frame.weights == 4.0
    # residual sd sigma / sqrt(w): both groups match their own variance
    assert abs(ratio[heavy].mean() - 1) < 0.02
    assert abs(ratio[~heavy].mean() - 1) < 0.02
    assert y.var(axis=1)[~heavy].mean() / y.var(axis=1)[heavy].mean() == pytest.approx(4, rel=0.05)


@pytest.mark.parametrize(
    "kwargs", [{"nsim": 0}, {"nsim": 1.5}, {"re_form": "~(1|Subject)"}, {"re_form": 3}]
)
def test_bad_arguments(sleep, kwargs):
    with pytest.raises(ArgumentError):
        simulate(sleep, **kwargs)


def test_na_spellings_of_re_form(sleep):
    a = simulate(sleep, nsim=2, seed=1, re_form="~0")
    for spelling in ("NA", float("nan"), "~ 0"):
        assert simulate(sleep, nsim=2, seed=1, re_form=spelling).equals(a)


# ---------------------------------------------------------------------- glmer


def glmm_data(seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(30), 12)
    x = rng.normal(size=g.size)
    b = rng.normal(scale=0.6, size=30)[g]
    trials = rng.integers(5, 16, size=g.size)
    p = 1 / (1 + np.exp(-(-0.4 + 0.5 * x + b)))
    return pd.DataFrame(
        {
            "g": g.astype(str),
            "x": x,
            "count": rng.poisson(np.exp(0.5 + 0.3 * x + b)),
            "succ": rng.binomial(trials, p),
            "trials": trials,
            "hit": rng.binomial(1, p),
        }
    )


@pytest.fixture(scope="module")
def poisson_fit():
    from lme2sm.models.glmer import glmer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return glmer("count ~ x + (1 | g)", glmm_data(), family="poisson")


@pytest.fixture(scope="module")
def binomial_fit():
    from lme2sm.models.glmer import glmer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return glmer("cbind(succ, trials - succ) ~ x + (1 | g)", glmm_data(), family="binomial")


def test_glmer_poisson_new_random_effects(poisson_fit):
    nsim = 4000
    y = simulate(poisson_fit, nsim=nsim, seed=1).to_numpy()
    assert np.all(y == np.round(y)) and np.all(y >= 0)
    # E[y] = exp(x'beta + var_b / 2) under the model (lognormal mean of the random effect)
    var_b = float(poisson_fit.engine_fit.theta[0] ** 2)
    eta = poisson_fit.frame.X @ poisson_fit.engine_fit.beta
    z = (y.mean(axis=1) - np.exp(eta + var_b / 2)) / (y.std(axis=1) / np.sqrt(nsim))
    assert np.max(np.abs(z)) < 5
    assert simulate(poisson_fit, nsim=3, seed=4).equals(poisson_fit.simulate(nsim=3, seed=4))


def test_glmer_poisson_fitted_random_effects(poisson_fit):
    nsim = 4000
    y = simulate(poisson_fit, nsim=nsim, seed=2, re_form=None).to_numpy()
    mu = poisson_fit.fitted().to_numpy()
    z = (y.mean(axis=1) - mu) / np.sqrt(mu / nsim)
    assert np.max(np.abs(z)) < 5
    assert abs(np.mean(y.var(axis=1, ddof=1) / mu) - 1) < 0.02  # Poisson: variance = mean


def test_glmer_binomial_trials(binomial_fit):
    nsim = 4000
    y = simulate(binomial_fit, nsim=nsim, seed=3, re_form=None).to_numpy()
    trials = binomial_fit.response.trials
    counts = y * trials[:, None]
    assert np.allclose(counts, np.round(counts)) and np.all((y >= 0) & (y <= 1))
    mu = binomial_fit.fitted().to_numpy()
    var = mu * (1 - mu) / trials
    z = (y.mean(axis=1) - mu) / np.sqrt(var / nsim)
    assert np.max(np.abs(z)) < 5
    assert abs(np.mean(y.var(axis=1, ddof=1) / var) - 1) < 0.02
    # new random effects spread the proportions more than the binomial alone
    y_new = simulate(binomial_fit, nsim=nsim, seed=3).to_numpy()
    assert np.mean(y_new.var(axis=1)) > 1.2 * np.mean(y.var(axis=1))
