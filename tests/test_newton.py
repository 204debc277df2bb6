"""The engine's end of a fit (lme2sm.engine.newton): one Newton step from the optimiser's
stop, trusted only where its quadratic model predicted its own gain."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from feature_fixtures import sweep, sweep_data

import lme2sm
from lme2sm.engine import driver
from lme2sm.engine.coordinates import ThetaCoordinates
from lme2sm.engine.frame_input import profiled_of
from lme2sm.engine.newton import at_bound, newton_step
from lme2sm.engine.optimize import XTOL_REL, OptimResult
from lme2sm.frame.model_frame import build_model_frame


def _stop(x, f):
    x = np.asarray(x, dtype=float)
    return OptimResult(x, float(f(x)), 7, True, "stop", "bobyqa")


def test_a_quadratic_is_finished_in_one_verified_step():
    centre = np.array([0.8, -0.3, 1.7])
    H = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 2.0]])

    def f(x):
        d = x - centre
        return 10.0 + 0.5 * d @ H @ d

    lower = np.array([0.0, -np.inf, 0.0])
    stepped, (free, grad, hess, at), verified = newton_step(f, _stop([1.0, 0.0, 1.5], f), lower)
    assert verified
    np.testing.assert_allclose(stepped.x, centre, atol=1e-6)
    np.testing.assert_allclose(hess, H, atol=1e-5)  # rounding: eps f / h^2
    assert stepped.fun == pytest.approx(10.0, abs=1e-10)
    assert stepped.n_evals == 7 + 2 * 3 + 3 + 1  # central gradient, forward Hessian, step
    assert list(free) == [0, 1, 2] and np.array_equal(at, [1.0, 0.0, 1.5])


def test_a_step_whose_gain_the_model_missed_is_not_verified():
    def f(x):  # quartic: far from its minimum the quadratic model misses
        return float(np.sum((x - 1.0) ** 4) + np.sum((x - 1.0) ** 2))

    stepped, _, verified = newton_step(f, _stop([3.0, 2.5], f), np.array([0.0, 0.0]))
    assert stepped.fun < f(np.array([3.0, 2.5]))  # kept: it went down
    assert not verified
    # near the minimum the same function is all but quadratic: verified
    near = _stop([1.001, 0.999], f)
    assert newton_step(f, near, np.array([0.0, 0.0]))[2]


def test_an_entry_at_its_bound_is_never_verified():
    def f(x):
        return float((x[0] - 0.5) ** 2 + (x[1] + 0.2) ** 2)

    lower = np.array([0.0, 0.0])
    stop = _stop([0.49, 0.0], f)
    assert at_bound(stop.x, lower)
    stepped, (free, *_), verified = newton_step(f, stop, lower)
    assert list(free) == [0] and not verified
    assert stepped.x[1] == 0.0 and stepped.x[0] == pytest.approx(0.5, abs=1e-8)


def test_a_stop_at_zero_is_optimised_again_at_the_fine_tolerance(monkeypatch):
    """``(conc || Plant)`` on CO2: the slope's relative SD is 3.9e-4 (conc in ml/L),
    and BOBYQA at the coarse tolerance stopped with it at 0, 0.093 below lme4's logLik
    (-267.520987, tests/fixtures/lmer_sweep). The bound rule sends it on to the fine
    tolerance: the same optimum as BOBYQA at 1e-4 from the start."""
    fx = sweep("lmer_sweep")["co2_uncorr"]
    data = sweep_data("lmer_sweep", fx)
    formula = "uptake ~ conc + Type * Treatment + (conc || Plant)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coarse = lme2sm.lmer(formula, data)
        monkeypatch.setattr(driver, "COARSE_XTOL_REL", XTOL_REL)
        fine = lme2sm.lmer(formula, data)
    assert coarse.logLik() == pytest.approx(fine.logLik(), abs=1e-9)
    assert coarse.logLik() > -267.520987 - 1e-8
    assert coarse.theta[1] == pytest.approx(3.946e-4, rel=1e-3)


def test_the_moments_first_step_shrinks_with_a_terms_levels(monkeypatch):
    """A term of q > 300 levels starts with steps sqrt(300 / q) of the others'."""
    rng = np.random.default_rng(5)
    n = 6000
    big, small = rng.integers(0, 1200, n), rng.integers(0, 12, n)
    y = rng.normal(size=1200)[big] * 0.5 + rng.normal(size=12)[small] + rng.normal(size=n)
    data = pd.DataFrame({"y": y, "big": big.astype(str), "small": small.astype(str)})
    model = profiled_of(build_model_frame("y ~ 1 + (1 | big) + (1 | small)", data))
    coords = ThetaCoordinates.from_blocks(model.specs, model.cp.diag, model.n)
    phi, step = model._start(coords)
    levels = [s.n_levels for s in model.specs]
    relative = step / np.maximum(np.abs(phi), 1e-12)
    i_big, i_small = int(np.argmax(levels)), int(np.argmin(levels))
    shrink = np.sqrt(300 / levels[i_big])
    assert levels[i_big] > 1100 and levels[i_small] == 12
    assert relative[i_big] / relative[i_small] == pytest.approx(shrink, rel=1e-9)
    monkeypatch.setattr(driver.FitDriver, "MOMENT_LEVELS", 0.0)
    _, unscaled = model._start(coords)
    assert unscaled[i_big] == pytest.approx(step[i_big] / shrink, rel=1e-9)
    assert unscaled[i_small] == step[i_small]
