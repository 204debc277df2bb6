"""n_jobs: the bootstrap's refits and the profiles in a pool of processes give the numbers
of one process (lmer and glmer), and the pool runs tasks in order."""

from __future__ import annotations

import math
import os
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import lme2sm
from lme2sm.datasets import load
from lme2sm.errors import ArgumentError, ConvergenceWarning, FitError
from lme2sm.inference import confint
from lme2sm.inference.bootstrap import percentile_table
from lme2sm.inference.parallel import available_cores, resolve_n_jobs, run_tasks


@cache
def sleepstudy_fit():
    return lme2sm.lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))


@cache
def cbpp_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lme2sm.glmer(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"), "binomial"
        )


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.index) == list(b.index) and list(a.columns) == list(b.columns)
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=0, atol=1e-12)


def test_lmer_bootstrap_same_intervals_in_two_processes():
    m = sleepstudy_fit()
    one = m.confint(method="boot", nsim=30, seed=11, progress=False)
    two = m.confint(method="boot", nsim=30, seed=11, progress=False, n_jobs=2)
    assert_same(one, two)
    other = m.confint(method="boot", nsim=30, seed=12, progress=False, n_jobs=2)
    assert not np.allclose(one.to_numpy(), other.to_numpy())
    samples = m.bootstrap_samples(nsim=7, seed=11, n_jobs=2, progress=False)
    assert samples.shape == (7, 6)
    # the first 7 replicates of the 30 are the 7 (responses drawn one after the other)
    np.testing.assert_array_equal(
        samples.to_numpy(), m.bootstrap_samples(nsim=30, seed=11, progress=False).iloc[:7]
    )


def test_glmer_bootstrap_same_intervals_in_two_processes():
    m = cbpp_fit()
    one = m.confint(method="boot", nsim=16, seed=3, progress=False)
    two = m.confint(method="boot", nsim=16, seed=3, progress=False, n_jobs=2)
    assert_same(one, two)
    assert list(one.index) == ["sd_(Intercept)|herd", *m.fixef().index]
    sd = math.sqrt(m.VarCorr()["vcov"].iloc[0])
    assert one.loc["sd_(Intercept)|herd", "2.5 %"] < sd < one.loc["sd_(Intercept)|herd", "97.5 %"]
    for name, b in m.fixef().items():
        assert one.loc[name, "2.5 %"] < b < one.loc[name, "97.5 %"], name


def test_glmer_gamma_bootstrap_has_sigma():
    d = pd.read_csv("tests/fixtures/glmer_gamma/data/gamma_sim.csv", dtype={"g": str})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.glmer("y_log ~ x + (1 | g)", d, "Gamma(link='log')")
    s = m.bootstrap_samples(nsim=4, seed=2, progress=False)
    assert list(s.columns) == ["sd_(Intercept)|g", "sigma", "(Intercept)", "x"]
    assert (s["sigma"] > 0).all()
    assert_same(s, m.bootstrap_samples(nsim=4, seed=2, progress=False, n_jobs=2))


def test_lmer_profile_same_intervals_in_two_processes():
    m = sleepstudy_fit()
    assert_same(confint(m), confint(m, n_jobs=2))
    assert_same(m.confint(parm=["Days", "sigma"]), m.confint(parm=["Days", "sigma"], n_jobs=-1))


def test_glmer_profile_same_intervals_in_two_processes():
    m = cbpp_fit()
    parm = ["sd_(Intercept)|herd", "period2", "period4"]
    one = m.confint(parm=parm)
    assert_same(one, m.confint(parm=parm, n_jobs=2))
    assert list(one.index) == parm


def test_profile_of_one_parameter_does_not_depend_on_the_others():
    m = cbpp_fit()
    both = m.confint(parm=["(Intercept)", "period3"])
    assert_same(both.loc[["period3"]], m.confint(parm=["period3"]))


def test_n_jobs_values():
    assert resolve_n_jobs(None) == 1
    assert resolve_n_jobs(1) == 1
    assert resolve_n_jobs(3) == 3
    assert resolve_n_jobs(-1) == available_cores()
    assert resolve_n_jobs(-1000) == 1
    assert available_cores() <= (os.cpu_count() or 1)
    m = sleepstudy_fit()
    for bad in (0, True, 1.5, "2"):
        with pytest.raises(ArgumentError, match="n_jobs"):
            m.confint(method="boot", nsim=5, n_jobs=bad, progress=False)
        with pytest.raises(ArgumentError, match="n_jobs"):
            cbpp_fit().confint(n_jobs=bad)


def square_minus(shared, task):
    return task * task - shared


def test_run_tasks_keeps_order_and_draws_lazily():
    drawn = []

    def tasks():
        for i in range(20):
            drawn.append(i)
            yield i

    out = []
    for value in run_tasks(square_minus, 3, tasks(), n_jobs=2):
        out.append(value)
        # tasks are drawn a few per worker ahead of the answers, not all at once
        assert len(drawn) <= len(out) + 4
    assert out == [i * i - 3 for i in range(20)]
    assert list(run_tasks(square_minus, 1, range(5), n_jobs=1)) == [-1, 0, 3, 8, 15]


def test_failed_refits_warn_and_all_failed_raises():
    samples = pd.DataFrame({"a": [1.0, 2.0, np.nan, 4.0], "b": [1.0, 2.0, 3.0, 4.0]})
    with pytest.warns(ConvergenceWarning, match="1 of 4 bootstrap refits failed"):
        table = percentile_table(samples, 0.9)
    assert table.attrs == {"nsim": 4, "failed": 1}
    assert table.loc["b", "5.0 %"] == pytest.approx(np.quantile([1, 2, 3, 4], 0.05))
    with pytest.raises(FitError, match="all 2 bootstrap refits failed"):
        percentile_table(pd.DataFrame({"a": [np.nan, np.nan]}), 0.95)
