"""The command line and the placeholder translation under hostile input."""

from __future__ import annotations

import time
import warnings

import pytest

import lme2sm
from lme2sm import cli


@pytest.mark.parametrize("k", [7, 12, 20])
def test_translate_without_data_many_grouping_terms_is_fast(k):
    formula = "y ~ x + " + " + ".join(f"(1 | g{i})" for i in range(k))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, lines = cli._placeholder_translation(formula, False)
    assert time.perf_counter() - start < 1.5  # was 32 s and 2 GB for k = 12
    assert len(t.data) < 1000
    assert t.group_kind == "single" and len(t.vc_formula) == k
    assert any("are crossed" in line for line in lines)


def test_translate_without_data_has_enough_rows_for_lme4s_size_checks():
    formula = "y ~ x + (x + z + w | g) + (1 | a/b/c)"
    frame = cli.placeholder_frame(lme2sm.parse(formula), "nested")
    assert len(frame) > 4 * frame["g"].nunique()


@pytest.mark.parametrize(
    "formula",
    ["y ~ " + "(" * 1000 + "x" + ")" * 1000, "y ~ (a + b)^1e12", "größe ~ x + (1 | g) + 1e400"],
)
def test_cli_translate_bad_formula_exits_2_without_traceback(formula, capsys):
    status = cli.main(["translate", formula])
    err = capsys.readouterr().err
    assert status == 2
    assert "Traceback" not in err and "FormulaError" in err


def test_translate_without_data_prints_no_placeholder_numbers(capsys):
    status = cli.main(["translate", "y ~ poly(x, 5) + scale(z) + log(w) + (1 | g)"])
    out = capsys.readouterr().out
    assert status == 0
    assert "'y ~ 1 + r_poly(x, 5) + standardize(z, ddof=1) + np.log(w)'" in out
    assert "def r_poly(" in out and "def poly_coefficients(" in out
