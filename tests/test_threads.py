"""Fits in threads and processes: the same answers, and no process-global state left
changed (warning filters, BLAS thread limits)."""

from __future__ import annotations

import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import lme2sm
from lme2sm.datasets import load

MODELS = [
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
    ("strength ~ 1 + (1 | batch/cask)", "Pastes"),
    ("Yield ~ 1 + (1 | Batch)", "Dyestuff"),
]


def fit(job: tuple[str, str]) -> tuple[float, list[float]]:
    formula, name = job
    m = lme2sm.lmer(formula, load(name))
    return m.logLik(), list(m.fixef())


def blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_fits_in_a_thread_pool_agree_and_leave_no_global_state():
    serial = [fit(job) for job in MODELS]
    filters = list(warnings.filters)
    threads = blas_threads()
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(fit, MODELS * 4))
    for (ll, fe), (ll2, fe2) in zip(serial * 4, parallel):
        assert ll2 == pytest.approx(ll, abs=1e-9)
        np.testing.assert_allclose(fe2, fe, rtol=1e-9)
    assert list(warnings.filters) == filters
    assert blas_threads() == threads


def test_dropped_rows_warning_still_heard_after_threaded_fits():
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fit, MODELS * 2))
    d = load("sleepstudy").copy()
    d.loc[0, "Days"] = np.nan
    with pytest.warns(lme2sm.DroppedRowsWarning, match="dropped 1 of 180 rows"):
        lme2sm.lmer("Reaction ~ Days + (1 | Subject)", d)


def test_fits_in_a_process_pool_agree():
    serial = [fit(job) for job in MODELS[:2]]
    with ProcessPoolExecutor(max_workers=2) as pool:
        parallel = list(pool.map(fit, MODELS[:2]))
    for (ll, fe), (ll2, fe2) in zip(serial, parallel):
        assert ll2 == pytest.approx(ll, abs=1e-9)
        np.testing.assert_allclose(fe2, fe, rtol=1e-9)
