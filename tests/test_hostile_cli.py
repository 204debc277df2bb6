"""The command line and the placeholder translation under hostile input."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

import lme2sm
from lme2sm import cli
from lme2sm.faces import placeholder_data


@pytest.mark.parametrize("k", [7, 12, 20])
def test_translate_without_data_many_grouping_terms_is_fast(k):
    formula = "y ~ x + " + " + ".join(f"(1 | g{i})" for i in range(k))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t, lines = placeholder_data.placeholder_translation(formula, False)
    assert time.perf_counter() - start < 1.5  # was 32 s and 2 GB for k = 12
    assert len(t.data) < 1000
    assert t.group_kind == "single" and len(t.vc_formula) == k
    assert any("are crossed" in line for line in lines)


def test_translate_without_data_has_enough_rows_for_lme4s_size_checks():
    formula = "y ~ x + (x + z + w | g) + (1 | a/b/c)"
    frame = placeholder_data.placeholder_frame(lme2sm.parse(formula), "nested")
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


# ------------------------------------------------- warnings before an error (issue 23)

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
DROPPED = "dropped 2 of {n} rows with missing values in: {col} (2)"
RANK = "fixed-effect model matrix is rank deficient so dropping 1 column / coefficient (x2)"


def _csv(tmp_path, name: str, n: int = 60, **extra) -> str:
    """Rows with y missing in rows 0 and 5, x2 = 2 x, six subjects g, crossed h."""
    rng = np.random.default_rng(23)
    g = np.array([f"s{i % 6}" for i in range(n)])
    x = rng.normal(size=n).round(4)
    y = (1 + x + rng.normal(size=n) + rng.normal(size=6)[np.arange(n) % 6]).round(4)
    d = pd.DataFrame(
        {"y": y, "x": x, "x2": 2 * x, "g": g, "h": np.array(list("abc"))[np.arange(n) % 3]}
    )
    d.loc[[0, 5], "y"] = np.nan
    for col, values in extra.items():
        d[col] = values
    path = tmp_path / f"{name}.csv"
    d.to_csv(path, index=False)
    return str(path)


def _run(*args: str):
    env = dict(__import__("os").environ)
    env["PYTHONPATH"] = str(ROOT) + ":" + env.get("PYTHONPATH", "")
    proc = __import__("subprocess").run(
        [__import__("sys").executable, "-m", "lme2sm", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stdout + proc.stderr
    return proc


def _warnings(stderr: str) -> list[str]:
    return [line.split("warning: ", 1)[1] for line in stderr.splitlines() if "warning: " in line]


CASES = {
    "one level left": (
        ["fit", "{one}", "y ~ x + (1 | k)"],
        [DROPPED.format(n=60, col="y")],
        "DataError): the grouping factor 'k' has only 1 level",
    ),
    "not expressible": (
        ["translate", "y ~ x + (x | g) + (x | h)", "--data", "{na}"],
        [DROPPED.format(n=60, col="y")],
        "NotExpressibleError): statsmodels MixedLM cannot fit the term (x | g)",
    ),
    "rank, then too few rows": (
        ["fit", "{small}", "y ~ x + x2 + (x | g)"],
        [DROPPED.format(n=14, col="y"), RANK],
        "DataError): number of observations (=12) <= number of random effects (=12)",
    ),
    "translate, too few rows": (
        ["translate", "y ~ x + x2 + (x | g)", "--data", "{small}"],
        [DROPPED.format(n=14, col="y")],
        "DataError): number of observations (=12) <= number of random effects (=12)",
    ),
    "glmer response": (
        ["fit", "{na}", "y ~ x + (1 | g)", "--family", "poisson"],
        [DROPPED.format(n=60, col="y")],
        "DataError): negative counts in the Poisson response y",
    ),
}


@pytest.fixture(scope="module")
def csvs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli_warnings")
    one = np.where(np.isin(np.arange(60), [0, 5]), "other", "only")
    return {
        "na": _csv(tmp, "na"),
        "one": _csv(tmp, "one", k=one),
        "small": _csv(tmp, "small", n=14),
    }


@pytest.mark.parametrize("case", list(CASES))
def test_warnings_raised_before_an_error_are_printed_before_it(case, csvs):
    args, expected, error = CASES[case]
    proc = _run(*(a.format(**csvs) for a in args))
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("lme2sm: error")]
    assert len(errors) == 1 and error in lines[errors[0]]
    warned = [i for i, line in enumerate(lines) if line.startswith("lme2sm: warning: ")]
    assert _warnings(proc.stderr) == expected  # all of them, once each, in order
    assert max(warned) < errors[0]
    assert proc.stdout == ""


def test_warnings_on_success_once_each_in_order_and_in_the_json(csvs):
    proc = _run("fit", csvs["na"], "y ~ x + x2 + (1 | g)")
    assert proc.returncode == 0
    assert _warnings(proc.stderr) == [DROPPED.format(n=60, col="y"), RANK]
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("lme2sm: fitting") and lines[-1].startswith("lme2sm: fitted in")
    assert "Fixed effects:" in proc.stdout
    proc = _run("fit", csvs["na"], "y ~ x + x2 + (1 | g)", "--json")
    assert __import__("json").loads(proc.stdout)["warnings"] == _warnings(proc.stderr)
    proc = _run("translate", "y ~ x + (x | g) + (x | h)", "--data", csvs["na"], "--approximate")
    assert proc.returncode == 0 and "model = smf.mixedlm(" in proc.stdout
    texts = _warnings(proc.stderr)
    assert texts[0] == DROPPED.format(n=60, col="y") and len(texts) == len(set(texts)) == 2
    assert texts[1].startswith("fitting (x || g) instead of (x | g)")


def test_printing_warnings_prints_each_text_once_as_raised(capsys):
    with cli.printing_warnings() as printed:
        warnings.warn("first", lme2sm.DroppedRowsWarning, stacklevel=1)
        warnings.warn("second", UserWarning, stacklevel=1)
        warnings.warn("first", lme2sm.DroppedRowsWarning, stacklevel=1)
        assert printed == ["first", "second"]
        assert capsys.readouterr().err == "lme2sm: warning: first\nlme2sm: warning: second\n"
    with pytest.warns(UserWarning, match="after"):  # the caller's handling is back
        warnings.warn("after", UserWarning, stacklevel=1)
    assert "lme2sm: warning" not in capsys.readouterr().err


@pytest.mark.parametrize(("sep", "word"), [(";", "semicolons"), ("\t", "tabs")])
def test_cli_fit_of_a_file_with_another_separator_says_which(sep, word, tmp_path, capsys):
    path = tmp_path / "data.csv"
    rows = ["y", "x", "g"], ["1.5", "2", "a"], ["2.5", "3", "b"]
    path.write_text("\n".join(sep.join(r) for r in rows) + "\n")
    status = cli.main(["fit", str(path), "y ~ x + (1 | g)"])
    err = capsys.readouterr().err
    assert status != 0 and "Traceback" not in err
    assert f"looks separated by {word}, not commas" in err
    assert "column 'y' that the data do not have" not in err
