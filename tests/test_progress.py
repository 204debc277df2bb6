"""Progress of long fits on stderr (lme2sm.engine.progress): the lines, their numbers,
silence for quick fits, ``progress=False`` and ``LME2SM_PROGRESS=0``, and results that do
not depend on it."""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import lme2sm
from lme2sm import ArgumentError
from lme2sm.datasets import load
from lme2sm.engine import progress as progress_module
from lme2sm.engine.progress import FitProgress
from lme2sm.models.lmer import lmer_large

SLEEP = "Reaction ~ Days + (Days | Subject)"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
LINE = re.compile(
    r"^lme2sm: (?P<head>.+?): (?P<evals>[\d,]+) evaluations?, (?P<best>best )?deviance "
    r"(?P<dev>\S+), (?P<secs>\d+\.\d) s$"
)


@pytest.fixture
def every_evaluation(monkeypatch):
    """Threshold and interval at 0: a line at every evaluation."""
    monkeypatch.setattr(progress_module, "AFTER_SECONDS", 0.0)
    monkeypatch.setattr(progress_module, "EVERY_SECONDS", 0.0)
    monkeypatch.delenv(progress_module.ENVIRONMENT, raising=False)


def parsed(err: str) -> list[dict]:
    lines = err.splitlines()
    out = []
    for line in lines:
        match = LINE.match(line)
        assert match, line
        d = match.groupdict()
        d["evals"] = int(d["evals"].replace(",", ""))
        d["dev"] = float(d["dev"])
        out.append(d)
    return out


def nb_data() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(12), 15)
    x = rng.normal(size=len(g))
    mu = np.exp(1.0 + 0.4 * x + rng.normal(0, 0.5, 12)[g])
    y = rng.negative_binomial(3.0, 3.0 / (3.0 + mu))
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})


def test_lmer_prints_every_evaluation_and_the_result(capsys, every_evaluation):
    m = lme2sm.lmer(SLEEP, load("sleepstudy"))
    lines = parsed(capsys.readouterr().err)
    *steps, last = lines
    assert {d["head"] for d in steps} == {"lmer REML"}
    assert [d["evals"] for d in steps] == list(range(1, len(steps) + 1))
    best = [d["dev"] for d in steps]
    assert all(b <= a for a, b in zip(best, best[1:]))  # the best so far never rises
    assert best[0] > best[-1] + 0.01  # the moments' start is near it (1743.674 vs 1743.628)
    assert last["head"] == "lmer REML done" and last["best"] is None
    assert last["evals"] == len(steps) == m.engine_fit.n_evals
    assert last["dev"] == pytest.approx(-2 * m.logLik(), abs=1e-8)
    assert best[-1] == pytest.approx(last["dev"], abs=1e-8)


def test_lmer_ml_is_labelled(capsys, every_evaluation):
    m = lme2sm.lmer(SLEEP, load("sleepstudy"), REML=False)
    lines = parsed(capsys.readouterr().err)
    assert lines[0]["head"] == "lmer ML"
    assert lines[-1]["dev"] == pytest.approx(-2 * m.logLik(), abs=1e-8)


def test_glmer_prints_its_stages_in_order(capsys, every_evaluation):
    m = lme2sm.glmer(CBPP, load("cbpp"), "binomial")
    lines = parsed(capsys.readouterr().err)
    heads = [d["head"] for d in lines]
    order = ["glmer stage 1", "glmer stage 2", "glmer Hessian", "glmer done"]
    assert [h for i, h in enumerate(heads) if i == 0 or heads[i - 1] != h] == order
    n1, n2 = m.engine_fit.stage_evals
    assert heads.count("glmer stage 1") == n1 and heads.count("glmer stage 2") == n2
    assert [d["evals"] for d in lines[:-1]] == list(range(1, len(lines)))
    assert lines[-1]["evals"] == len(lines) - 1  # the Hessian's evaluations counted too
    assert lines[-1]["dev"] == pytest.approx(-2 * m.logLik(), abs=1e-8)
    assert lines[n1 + n2 - 1]["dev"] == pytest.approx(-2 * m.logLik(), abs=1e-6)


def test_glmer_nb_names_the_theta_under_way(capsys, every_evaluation):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.glmer_nb("y ~ x + (1 | g)", nb_data())
    lines = parsed(capsys.readouterr().err)
    heads = [d["head"] for d in lines]
    assert heads[0] == "glmer_nb (Poisson start) stage 1"
    assert any(re.fullmatch(r"glmer_nb \(theta [\d.]+\) stage 2", h) for h in heads)
    assert heads[-1] == "glmer_nb done"
    assert lines[-1]["dev"] == pytest.approx(-2 * m.logLik(), abs=1e-8)


def test_lmer_large_reports_the_optimisation(capsys, every_evaluation, tmp_path):
    path = tmp_path / "sleep.parquet"
    load("sleepstudy").to_parquet(path)
    m = lmer_large(SLEEP, path)
    err = capsys.readouterr().err
    # the passes' lines (rewritten in place with \r) first, then the optimiser's
    passes, _, rest = err.rpartition("\n" + "lme2sm: lmer REML:")
    assert "lme2sm: cross-products" in passes
    lines = parsed("lme2sm: lmer REML:" + rest)
    assert lines[-1]["head"] == "lmer REML done"
    assert lines[-1]["dev"] == pytest.approx(-2 * m.logLik(), abs=1e-8)


FITS = {
    "lmer": lambda **kw: lme2sm.lmer(SLEEP, load("sleepstudy"), **kw),
    "glmer": lambda **kw: lme2sm.glmer(CBPP, load("cbpp"), "binomial", **kw),
}


@pytest.mark.parametrize("name", FITS)
def test_progress_false_prints_nothing(capsys, every_evaluation, name):
    FITS[name](progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("value", ["0", "false", "off", " No "])
@pytest.mark.parametrize("name", FITS)
def test_the_environment_silences_everything(capsys, every_evaluation, monkeypatch, name, value):
    monkeypatch.setenv("LME2SM_PROGRESS", value)
    FITS[name]()
    assert capsys.readouterr().err == ""


def test_the_environment_silences_lmer_large_passes(capsys, monkeypatch, tmp_path):
    path = tmp_path / "sleep.parquet"
    load("sleepstudy").to_parquet(path)
    monkeypatch.setenv("LME2SM_PROGRESS", "0")
    lmer_large(SLEEP, path)
    assert capsys.readouterr().err == ""


def test_other_environment_values_leave_it_on(capsys, every_evaluation, monkeypatch):
    monkeypatch.setenv("LME2SM_PROGRESS", "1")
    FITS["lmer"]()
    assert "lmer REML done" in capsys.readouterr().err


@pytest.mark.parametrize("name", FITS)
def test_a_quick_fit_prints_nothing_by_default(capsys, monkeypatch, name):
    monkeypatch.delenv(progress_module.ENVIRONMENT, raising=False)
    FITS[name]()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", FITS)
def test_results_do_not_depend_on_progress(capsys, every_evaluation, name):
    quiet = FITS[name](progress=False)
    loud = FITS[name](progress=True)
    assert capsys.readouterr().err
    assert np.array_equal(quiet.theta, loud.theta)
    assert quiet.logLik() == loud.logLik()
    assert np.array_equal(np.asarray(quiet.fixef()), np.asarray(loud.fixef()))


BAD = ["yes", None, 2, 0.5, "False"]


@pytest.mark.parametrize("value", BAD)
@pytest.mark.parametrize(
    "fit",
    [
        lambda v: lme2sm.lmer(SLEEP, load("sleepstudy"), progress=v),
        lambda v: lme2sm.glmer(CBPP, load("cbpp"), "binomial", progress=v),
        lambda v: lme2sm.glmer_nb("y ~ x + (1 | g)", nb_data(), progress=v),
        lambda v: lmer_large(SLEEP, "no/such/dir", progress=v),
    ],
    ids=["lmer", "glmer", "glmer_nb", "lmer_large"],
)
def test_bad_progress_values_are_argument_errors(fit, value):
    with pytest.raises(ArgumentError, match=r"^progress must be True or False, not "):
        fit(value)


def test_lines_are_rate_limited():
    """A fake clock: nothing before 5 s, then one line per 5 s however many evaluations."""
    steps = [0]
    stream = io.StringIO()
    p = FitProgress("lmer REML", stream=stream, clock=lambda: 100 + steps[0] / 50)
    for i in range(1000):  # 0.02 s per evaluation: 20 s in all
        p.tick(1000.0 - i)
        steps[0] += 1
    p.finish(1.5)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "lme2sm: lmer REML: 251 evaluations, best deviance 750, 5.0 s",
        "lme2sm: lmer REML: 501 evaluations, best deviance 500, 10.0 s",
        "lme2sm: lmer REML: 751 evaluations, best deviance 250, 15.0 s",
        "lme2sm: lmer REML done: 1,000 evaluations, deviance 1.5, 20.0 s",
    ]


def test_a_fit_within_the_threshold_writes_nothing():
    now = [0.0]
    stream = io.StringIO()
    p = FitProgress("glmer", stream=stream, clock=lambda: now[0])
    p.set_stage("stage 1")
    for _ in range(100):
        p.tick(3.0)
        now[0] += 0.049
    p.finish(3.0)
    assert stream.getvalue() == ""


def test_cli_quiet_prints_no_progress(capsys, tmp_path, every_evaluation):
    from lme2sm.cli import main

    path = tmp_path / "sleep.csv"
    load("sleepstudy").to_csv(path, index=False)
    assert main(["fit", str(path), SLEEP, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "REML criterion at convergence" in captured.out
    assert main(["fit", str(path), SLEEP]) == 0
    err = capsys.readouterr().err
    assert "lme2sm: fitting" in err and "lme2sm: lmer REML done" in err
    path = tmp_path / "cbpp.csv"
    load("cbpp").to_csv(path, index=False)
    assert main(["fit", str(path), CBPP, "--family", "binomial", "--quiet"]) == 0
    assert capsys.readouterr().err == ""
