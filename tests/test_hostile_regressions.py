"""One named test per failure class the fuzz suite (tests/fuzz) found, each the smallest
case that failed before #23's fixes: a raw exception escaped, a wrong column was read,
or lme2sm's own text of a formula did not read back."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lme2sm
from lme2sm import DataError
from lme2sm.formula import expanded_text, parse
from lme2sm.formula.model import r_name
from lme2sm.formula.patsy_text import name_to_patsy


def _data(n: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "b": rng.integers(0, 2, n),
            "g": np.tile(["a", "b", "c"], n // 3),
        }
    )


def _quiet(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


@pytest.mark.parametrize(
    "weights, words",
    [
        (np.array([]), "weights has 0 values for 12 rows"),  # was pandas' ValueError
        (np.ones((12, 2)), "one value per row"),
        (np.ones(12) + 1j, "real numbers"),
    ],
)
def test_weights_of_the_wrong_shape_or_type_are_data_errors(weights, words):
    for fit in (lme2sm.lmer, lme2sm.glmer):
        response = "y" if fit is lme2sm.lmer else "b"
        with pytest.raises(DataError, match=words):
            _quiet(lambda fit=fit, r=response: fit(f"{r} ~ x + (1 | g)", _data(), weights=weights))


def test_a_column_name_with_a_line_break_fits():
    """patsy's tokenizer failed an assertion on Q("a<newline>b") with a raw line break."""
    data = _data().rename(columns={"x": "a\nb", "g": "g\th"})
    assert name_to_patsy("a\nb") == 'Q("a\\nb")'
    model = _quiet(lambda: lme2sm.lmer("y ~ `a\\nb` + (1 | `g\\th`)", data))
    assert list(model.fixef().index) == ["(Intercept)", "`a\\nb`"]


def test_a_full_width_name_is_not_read_as_its_ascii_twin():
    """Python reads the identifier ｘ as x (NFKC), so statsmodels' formula read column x."""
    data = _data().assign(**{"\uff58": np.arange(12.0)})
    assert name_to_patsy("\uff58") == 'Q("\uff58")'
    t = _quiet(lambda: lme2sm.translate("y ~ \uff58 + (1 | g)", data))
    fitted = _quiet(lambda: t.model().fit())
    ours = _quiet(lambda: lme2sm.lmer("y ~ \uff58 + (1 | g)", data))
    assert fitted.params['Q("\uff58")'] == pytest.approx(ours.fixef()["\uff58"], abs=1e-3)


def test_reml_with_as_many_fixed_effects_as_rows_is_a_data_error():
    """It divided by n - p = 0 (ZeroDivisionError); lme4 fails too ("objective in x0
    returns NA"); ML fits, as lme4's does."""
    data = _data().assign(x=[f"v{i}" for i in range(12)])
    with pytest.raises(DataError, match="REML needs more observations than fixed effects"):
        _quiet(lambda: lme2sm.lmer("y ~ x + (1 | g)", data))


def test_a_backticked_parenthesis_is_a_name():
    """`)` after | was taken for the closing parenthesis: 'no grouping factor after |'."""
    parsed = parse("y ~ x + (1 | `)`:`(`) + (1 | `,`)")
    assert [t.group_factors for t in parsed.random_terms] == [(")", "("), (",",)]
    assert parse("y ~ f + `(`").fixed_part.labels == ("f", "`(`")


@pytest.mark.parametrize("name", ["T", "F", ".", "a\\b", "a`b", "a\nb", "a\x01b"])
def test_formula_text_reads_back_as_the_same_formula(name):
    """lme2sm wrote T, F and . bare (refused when read back) and a\\b unescaped."""
    parsed = parse(f"y ~ {r_name(name)} + (1 | {r_name(name)})")
    again = parse(expanded_text(parsed))
    assert again.fixed_part.variables() == (name,)
    assert again.random_terms[0].group == name


def test_a_covariate_too_large_to_square_is_a_data_error():
    """1e300 made the engine's triangular solve raise ValueError (infs or NaNs)."""
    data = _data().assign(x=np.tile([-1e300, 1.0, 1e-300, 1e300], 3))
    for formula in ("y ~ x + (1 | g)", "y ~ 1 + (x | g)"):
        with pytest.raises(DataError, match="x.* reaches 1e\\+300"):
            _quiet(lambda f=formula: lme2sm.lmer(f, data, REML=False))
    with pytest.raises(DataError, match="x reaches 1e\\+300"):
        _quiet(lambda: lme2sm.glmer("b ~ x + (1 | g)", data))


def test_saturated_glmer_is_a_fit_error():
    data = pd.DataFrame(
        {
            "y": [1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1],
            "x": [1.3, 0.94, -0.7, -1.26, -0.62, 0.04, -2.3, -0.2, -1.24, -0.73, -0.54, -0.31],
            "g": list("aabbbaaaacbb"),
        }
    )
    with pytest.raises(lme2sm.errors.FitError, match="Downdated VtV is not positive definite"):
        _quiet(lambda: lme2sm.glmer("y ~ factor(x) + (1 | g)", data, family="poisson"))
