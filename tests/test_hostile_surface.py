"""The public surface: exports, module names, argument errors, the statsmodels drop-in."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.formula.api as smf

import lme2sm
from lme2sm import errors

DATA = pd.DataFrame(
    {
        "y": np.sin(np.arange(60)) + np.repeat(np.arange(6.0), 10),
        "w": np.arange(60) % 7 + 0.5,
        "g": np.repeat(np.arange(6), 10),
    }
)


def test_every_error_and_warning_class_is_exported():
    classes = [
        v
        for v in vars(errors).values()
        if isinstance(v, type) and issubclass(v, lme2sm.Lme2smError | lme2sm.Lme2smWarning)
    ]
    assert len(classes) >= 12
    for cls in classes:
        assert getattr(lme2sm, cls.__name__) is cls
        assert cls.__name__ in lme2sm.__all__


def test_translate_module_is_not_shadowed():
    module = importlib.import_module("lme2sm.faces.translation")
    assert module.translate is lme2sm.translate
    assert callable(lme2sm.translate)
    import lme2sm.faces.translation as as_module

    assert as_module is module


@pytest.mark.parametrize("name", [n for n in lme2sm.__all__ if n[0].islower()])
def test_no_public_function_shadows_a_submodule(name):
    try:
        importlib.import_module(f"lme2sm.{name}")
    except ModuleNotFoundError:
        return
    raise AssertionError(f"lme2sm.{name} is both a submodule and a public function")


@pytest.mark.parametrize("kwargs", [{"REML": "yes"}, {"approximate": 2}, {"REML": None}])
def test_translate_argument_errors(kwargs):
    with pytest.raises(lme2sm.ArgumentError):
        lme2sm.translate("y ~ w + (1 | g)", DATA, **kwargs)


def helper(values):
    return values * 2


def test_drop_in_without_lme4_terms_sees_the_callers_names_like_statsmodels():
    def squared(values):  # a local name, visible only in this frame
        return values**2

    formula = "y ~ np.log(w) + helper(w) + squared(w)"
    ours = lme2sm.mixedlm(formula, DATA, groups="g")
    # statsmodels 0.15 looks in the calling namespace by itself; 0.14 needs it spelled out
    theirs = smf.mixedlm(formula, DATA, groups="g", eval_env=patsy.EvalEnvironment.capture())
    assert ours.exog_names == theirs.exog_names
    np.testing.assert_array_equal(ours.exog, theirs.exog)
    np.testing.assert_allclose(ours.exog[0], [1, np.log(0.5), 1.0, 0.25])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert ours.fit().llf == pytest.approx(theirs.fit().llf)


def test_drop_in_eval_env_levels_count_from_the_caller():
    def outer():
        def scaled(values):
            return values * 5

        return inner()

    def inner():
        return lme2sm.mixedlm("y ~ scaled(w)", DATA, groups="g", eval_env=1)

    np.testing.assert_allclose(outer().exog[0], [1, 2.5])


def test_drop_in_with_lme4_terms_never_sees_the_callers_names():
    def system(_):  # noqa: ARG001 - would be called if the text reached patsy unchecked
        raise AssertionError("formula text was executed")

    with pytest.raises(lme2sm.FormulaError, match="unknown function system"):
        lme2sm.mixedlm("y ~ system(w) + (1 | g)", DATA)
    m = lme2sm.mixedlm("y ~ np.log(w) + (1 | g)", DATA)
    assert m.exog_names == ["Intercept", "np.log(w)"]
