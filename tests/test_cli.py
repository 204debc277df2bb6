"""The ``lme2sm`` command line: run in-process through ``main([...])``, and once as
``python -m lme2sm example`` in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import lme2sm
from lme2sm import cli
from lme2sm.datasets import load
from lme2sm.faces import placeholder_data

ROOT = Path(__file__).resolve().parents[1]
SLEEP_FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep_csv(tmp_path_factory) -> Path:
    """sleepstudy as a CSV: Subject holds numbers (308, 309, ...) once read back."""
    path = tmp_path_factory.mktemp("data") / "sleepstudy.csv"
    load("sleepstudy").to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def sleep_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lme2sm.lmer(SLEEP_FORMULA, load("sleepstudy"))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# ----------------------------------------------------------------------------- fit


def test_fit_prints_the_lme4_summary(capsys, sleep_csv, sleep_fit):
    status, out, err = run(capsys, "fit", str(sleep_csv), SLEEP_FORMULA)
    assert status == 0
    assert "Linear mixed model fit by REML. t-tests use Satterthwaite's method" in out
    assert f"Formula: {SLEEP_FORMULA}" in out
    # Subject is numeric in the CSV, and is still one grouping factor of 18 levels
    assert "groups:  Subject, 18" in out
    fe = sleep_fit.fixef()
    assert f"{fe['(Intercept)']:.3f}" in out
    assert f"{fe['Days']:.3f}" in out
    assert "fitting" in err and "fitted in" in err
    assert "Traceback" not in out + err


def test_fit_json_matches_the_library(capsys, sleep_csv, sleep_fit):
    status, out, err = run(capsys, "fit", str(sleep_csv), SLEEP_FORMULA, "--json")
    assert status == 0
    doc = json.loads(out)
    m = sleep_fit
    assert doc["formula"] == SLEEP_FORMULA
    assert doc["REML"] is True
    assert doc["nobs"] == 180
    assert doc["logLik"] == pytest.approx(m.logLik(), abs=1e-6)
    assert doc["AIC"] == pytest.approx(m.AIC(), abs=1e-6)
    assert doc["BIC"] == pytest.approx(m.BIC(), abs=1e-6)
    assert doc["sigma"] == pytest.approx(m.sigma, rel=1e-6)
    for name, value in m.fixef().items():
        assert doc["fixef"][name] == pytest.approx(value, rel=1e-6)
    for name, value in m.se().items():
        assert doc["se"][name] == pytest.approx(value, rel=1e-6)
    vc = m.VarCorr()
    assert len(doc["varcorr"]) == len(vc)
    for row, expected in zip(doc["varcorr"], vc.itertuples(index=False)):
        assert row["grp"] == expected.grp
        assert row["vcov"] == pytest.approx(expected.vcov, rel=1e-6)
        assert row["sdcor"] == pytest.approx(expected.sdcor, rel=1e-6)
    assert doc["varcorr"][-1] == {
        "grp": "Residual",
        "var1": None,
        "var2": None,
        "vcov": pytest.approx(m.sigma**2, rel=1e-6),
        "sdcor": pytest.approx(m.sigma, rel=1e-6),
    }
    assert doc["ngrps"] == {"Subject": 18}
    assert doc["isSingular"] is False


def test_fit_ml(capsys, sleep_csv):
    status, out, _ = run(capsys, "fit", str(sleep_csv), SLEEP_FORMULA, "--ml", "--json")
    assert status == 0
    doc = json.loads(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ml = lme2sm.lmer(SLEEP_FORMULA, load("sleepstudy"), REML=False)
    assert doc["REML"] is False
    assert doc["logLik"] == pytest.approx(ml.logLik(), abs=1e-6)
    # lme4: logLik(lmer(..., REML = FALSE)) = -875.9697
    assert doc["logLik"] == pytest.approx(-875.9697, abs=1e-3)


def test_fit_reports_warnings_on_stderr(capsys, tmp_path):
    path = tmp_path / "dyes.csv"
    load("Dyestuff2").to_csv(path, index=False)
    status, out, err = run(capsys, "fit", str(path), "Yield ~ 1 + (1 | Batch)")
    assert status == 0
    assert "boundary (singular) fit" in out
    assert "lme2sm: warning: boundary (singular) fit" in err


# ---------------------------------------------------------------------------- errors


def test_csv_read_as_r_reads_it(capsys, tmp_path):
    """A level spelt "None" or "null" is a level (R's read.csv: only NA is missing), so
    the fit keeps every row and agrees with the library's on the same frame."""
    data = load("sleepstudy")
    names = ["None", "null", "nan", "n/a", "NULL", "NaN"] + [f"s{i}" for i in range(12)]
    data["Subject"] = data["Subject"].map(dict(zip(sorted(data["Subject"].unique()), names)))
    path = tmp_path / "levels.csv"
    data.to_csv(path, index=False)
    status, out, err = run(capsys, "fit", str(path), SLEEP_FORMULA, "--json")
    assert status == 0, err
    got = json.loads(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lme2sm.lmer(SLEEP_FORMULA, data)
    assert got["nobs"] == 180
    assert got["logLik"] == pytest.approx(ref.logLik(), abs=1e-9)


def test_bad_formula_shows_the_caret(capsys, sleep_csv):
    status, out, err = run(capsys, "fit", str(sleep_csv), "Reaction ~ Days + (Days | )")
    assert status == 2
    assert out == ""
    assert "FormulaError" in err
    lines = err.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip() == "Reaction ~ Days + (Days | )")
    caret = lines[i + 1]
    assert set(caret.strip()) == {"^"}
    assert caret.index("^") - lines[i].index("R") == "Reaction ~ Days + (Days | )".index(")") - 2
    assert "Traceback" not in err


def test_missing_column_is_named(capsys, sleep_csv):
    status, out, err = run(capsys, "fit", str(sleep_csv), "Reaction ~ Days + (Days | Subjct)")
    assert status == 2
    assert "DataError" in err
    assert "'Subjct'" in err and "did you mean 'Subject'" in err
    assert "Traceback" not in err


def test_not_expressible_names_term_reason_and_fix(capsys):
    status, out, err = run(capsys, "translate", "y ~ x + (x | a/b)")
    assert status == 2
    assert "NotExpressibleError" in err
    assert "(x | b:a)" in err  # the term
    assert "covariance matrix" in err  # why
    assert "(x || b:a)" in err  # what to write
    assert "--approximate" in err
    assert "Traceback" not in err


def test_missing_file(capsys, tmp_path):
    missing = tmp_path / "nope.csv"
    status, out, err = run(capsys, "fit", str(missing), "y ~ x + (1 | g)")
    assert status == 2
    assert f"no such file: {missing}" in err
    assert "Traceback" not in err
    status, _, err = run(capsys, "translate", "y ~ x + (1 | g)", "--data", str(missing))
    assert status == 2 and "no such file" in err


def test_empty_file(capsys, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    status, _, err = run(capsys, "fit", str(path), "y ~ x + (1 | g)")
    assert status == 2
    assert "is empty" in err


def test_no_command_prints_help(capsys):
    status, out, err = run(capsys)
    assert status == 2
    assert "usage: lme2sm" in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["fit"])
    assert info.value.code == 2


# ------------------------------------------------------------------------- translate


def test_translate_with_data_is_the_library_translation(capsys, sleep_csv):
    import pandas as pd

    status, out, err = run(capsys, "translate", SLEEP_FORMULA, "--data", str(sleep_csv))
    assert status == 0
    t = lme2sm.translate(SLEEP_FORMULA, pd.read_csv(sleep_csv))
    assert t.code() in out
    assert t.explain() in out
    assert "placeholder" not in out


def test_translate_without_data_says_what_it_assumed(capsys):
    status, out, err = run(capsys, "translate", SLEEP_FORMULA)
    assert status == 0
    assert "placeholder" in out
    assert "numeric columns: Reaction, Days" in out
    assert "grouping factors, as text labels: Subject" in out
    assert "--data" in out
    assert "re_formula='1 + Days'" in out
    assert "groups='Subject'" in out


def test_translate_without_data_crossed(capsys):
    status, out, _ = run(capsys, "translate", "y ~ x + (1 | rater) + (1 | item)")
    assert status == 0
    assert "are crossed" in out
    assert "re_formula='0'" in out
    assert "vc_formula=" in out


def test_translate_without_data_nested_when_crossed_cannot_be_fitted(capsys):
    status, out, _ = run(capsys, "translate", "y ~ x + (x | school) + (1 | class)")
    assert status == 0
    assert "nest in this order, outermost first: school > class" in out
    assert "groups='school'" in out
    assert "re_formula='1 + x'" in out


def test_translate_approximate(capsys):
    status, out, err = run(capsys, "translate", "y ~ x + (x | a) + (x | b:a)", "--approximate")
    assert status == 0
    assert "lme2sm: warning: fitting (x || b:a)" in err


def test_placeholder_frame_layouts():
    parsed = lme2sm.parse("y ~ log(x) + (1 | a/b) + (1 | r)")
    crossed = placeholder_data.placeholder_frame(parsed, "crossed")
    assert crossed[["a", "b", "r"]].drop_duplicates().shape[0] == 27
    # outermost first: a and r are used alone (a before r), b only inside b:a
    assert placeholder_data.grouping_columns(parsed) == ["a", "r", "b"]
    nested = placeholder_data.placeholder_frame(parsed, "nested")
    assert [nested[c].nunique() for c in ("a", "r", "b")] == [3, 9, 27]
    assert (crossed["x"] > 0).all()


# --------------------------------------------------------------------------- example


@pytest.fixture(scope="module")
def example_fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lme2sm.lmer(cli.EXAMPLE_FORMULA, load("schools"), data_name="schools")


def test_example_in_a_subprocess(example_fit):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "lme2sm", "example"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out, err = proc.stdout, proc.stderr
    assert "Traceback" not in out + err
    assert "fitting test_score ~ age + sex + (1 | province/school/classroom)" in err
    assert re.search(r"fitted in \d+\.\d s", err)

    m = example_fit
    # 1. the summary, with the library's own numbers
    assert "Formula: test_score ~ age + sex + (1 | province/school/classroom)" in out
    block = out.split("Fixed effects:")[1].split("Correlation of Fixed Effects:")[0]
    rows = [
        line for line in block.strip().splitlines()[1:] if not line.startswith(("---", "Signif"))
    ]
    # Estimate, Std. Error, df, t value (then Pr(>|t|) and stars, as lmerTest prints)
    printed = {
        line.split()[0]: [float(v) for v in line.split()[1:5]] for line in rows if line.strip()
    }
    for name, value in m.fixef().items():
        assert printed[name][0] == pytest.approx(value, rel=1e-3)
        assert printed[name][1] == pytest.approx(m.se()[name], rel=1e-3)
    for row in m.VarCorr().itertuples(index=False):
        assert row.grp in out
    assert "Number of obs: 2350" in out
    crit = re.search(r"REML criterion at convergence: ([-\d.]+)", out)
    assert crit and float(crit.group(1)) == pytest.approx(-2 * m.logLik(), abs=1.0)
    # 2. the statsmodels code, then 3. the explanation, in that order
    code = m.translation.code()
    explanation = m.translation.explain()
    assert code in out and explanation in out
    assert out.index("Fixed effects:") < out.index(code) < out.index(explanation)
