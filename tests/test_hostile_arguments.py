"""Bad argument values to result methods fail as ArgumentErrors that name the argument."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lme2sm
from lme2sm import arguments
from lme2sm.datasets import load
from lme2sm.errors import ArgumentError


@pytest.fixture(scope="module")
def sleep_fit():
    return lme2sm.lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))


@pytest.mark.parametrize("value", ["no", 2, None, 0.5])
def test_allow_new_levels_must_be_a_flag(sleep_fit, value):
    with pytest.raises(ArgumentError, match="allow_new_levels must be True or False"):
        sleep_fit.predict(load("sleepstudy").head(3), allow_new_levels=value)


@pytest.mark.parametrize("value", ["~x", 1, "Days"])
def test_re_form_other_than_none_or_zero_is_refused(sleep_fit, value):
    with pytest.raises(ArgumentError, match="re_form="):
        sleep_fit.predict(re_form=value)


@pytest.mark.parametrize("value", ["~0", "NA", " ~ 1 - 1", math.nan])
def test_population_level_spellings_agree(sleep_fit, value):
    expected = sleep_fit.predict(re_form="~0")
    np.testing.assert_array_equal(sleep_fit.predict(re_form=value), expected)


@pytest.mark.parametrize("value", [-1e-4, "small", math.inf, math.nan])
def test_singularity_tolerance_must_be_a_finite_nonnegative_number(sleep_fit, value):
    with pytest.raises(ArgumentError, match="tol must be a finite number >= 0"):
        sleep_fit.isSingular(tol=value)


def test_the_checks_return_the_value_they_accept():
    assert arguments.flag("f", np.True_) is True
    assert arguments.probability("level", 0.9) == 0.9
    assert arguments.count("nsim", np.int64(3)) == 3
    assert arguments.names("parm", "a", ["a", "b"]) == ["a"]
    with pytest.raises(ArgumentError, match="level must be a number between 0 and 1"):
        arguments.probability("level", 1.0)
    with pytest.raises(ArgumentError, match="nsim must be an integer >= 1"):
        arguments.count("nsim", True)
    with pytest.raises(ArgumentError, match="'c' not among the parameters"):
        arguments.names("parm", ["a", "c"], ["a", "b"])
    with pytest.raises(ArgumentError, match="seed must be None"):
        arguments.generator(-1)
