"""A partially crossed design, students x teachers, side by side with lme4 (live) and mixedlm.

About 25,000 rows: 10,000 students, each with one to four teachers (a third with one),
1,300 teachers in 50 schools; a student's teachers are of the student's own school 97 %
of the time. ``y ~ x + (1 | student) + (1 | teacher)``, ML. After eliminating the
students, two teachers are coupled only through a shared student, so the crossed block
(1,300 x 1,300) is sparse: the engine factors it with :mod:`lme2sm.engine.sparse_rest`
(measured on this data: 8 ms a factor against 21 ms for the dense one).

* lme2sm: ``lme2sm.lmer`` on the data frame (median of ``--reps`` after a warm-up);
* lme4 via ``Rscript``: ``system.time(lmer(...))`` in R (median of ``--reps`` after a
  warm-up; start-up and reading the CSV not timed);
* mixedlm (PyPI's Rust port of lme4), if installed.

Usage: ``python benchmarks/students_teachers.py [--reps 3] [--within 0.97]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lme2sm  # noqa: E402

FORMULA = "y ~ x + (1 | student) + (1 | teacher)"


def students_teachers(
    n: int = 25_000,
    n_students: int = 10_000,
    n_teachers: int = 1_300,
    n_schools: int = 50,
    within: float = 0.97,
    seed: int = 2,
) -> pd.DataFrame:
    """The design of the module docstring; SDs 0.8 (students), 0.5 (teachers), 1."""
    rng = np.random.default_rng(seed)
    school_of_t = np.arange(n_teachers) % n_schools
    school_of_s = rng.integers(0, n_schools, n_students)
    per = rng.choice([1, 2, 3, 4], size=n_students, p=[0.35, 0.3, 0.2, 0.15])
    student = np.repeat(np.arange(n_students), per)
    if len(student) < n:
        student = np.concatenate([student, rng.integers(0, n_students, n - len(student))])
    student = rng.permutation(student[:n])
    by_school = [np.flatnonzero(school_of_t == s) for s in range(n_schools)]
    sizes = np.array([len(b) for b in by_school])
    school = school_of_s[student]
    pick = (rng.random(n) * sizes[school]).astype(int)
    own = np.array([by_school[s][k] for s, k in zip(school, pick)])
    teacher = np.where(rng.random(n) < within, own, rng.integers(0, n_teachers, n))
    x = rng.normal(size=n)
    y = (
        1
        + 0.5 * x
        + rng.normal(0, 0.8, n_students)[student]
        + rng.normal(0, 0.5, n_teachers)[teacher]
        + rng.normal(size=n)
    )
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "student": [f"s{i}" for i in student],
            "teacher": [f"t{i}" for i in teacher],
        }
    )


R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE)
reps <- as.integer(args[2])
m <- lmer(y ~ x + (1 | student) + (1 | teacher), d, REML = FALSE)
tm <- replicate(reps, system.time(m <- lmer(y ~ x + (1 | student) + (1 | teacher), d,
                                          REML = FALSE))["elapsed"])
cat(jsonlite::toJSON(list(seconds = median(tm), logLik = as.numeric(logLik(m))),
                     auto_unbox = TRUE, digits = NA))
"""


def run_lme4(data: pd.DataFrame, reps: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "st.csv"
        data.to_csv(csv, index=False)
        script = Path(tmp) / "fit.R"
        script.write_text(R_SCRIPT)
        out = subprocess.run(
            ["Rscript", str(script), str(csv), str(reps)], capture_output=True, text=True
        )
        if out.returncode != 0:
            return {"error": out.stderr.strip()[-200:]}
        return json.loads(out.stdout.strip().splitlines()[-1])


def run_lme2sm(data: pd.DataFrame, reps: int) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer(FORMULA, data, REML=False)
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            m = lme2sm.lmer(FORMULA, data, REML=False)
            times.append(time.perf_counter() - t)
    return {"seconds": statistics.median(times), "logLik": m.logLik()}


def run_mixedlm(data: pd.DataFrame, reps: int) -> dict | None:
    try:
        import mixedlm
    except ImportError:
        return None
    mixedlm.lmer(FORMULA, data, REML=False)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        m = mixedlm.lmer(FORMULA, data, REML=False)
        times.append(time.perf_counter() - t)
    return {"seconds": statistics.median(times), "logLik": float(m.logLik().value)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--within", type=float, default=0.97)
    args = ap.parse_args()
    data = students_teachers(within=args.within)
    print(
        f"{len(data)} rows, {data.student.nunique()} students x {data.teacher.nunique()} "
        f"teachers, {args.within:.0%} within school"
    )
    rows = {"lme2sm": run_lme2sm(data, args.reps), "lme4": run_lme4(data, args.reps)}
    try:
        rows["mixedlm"] = run_mixedlm(data, args.reps)
    except Exception as exc:  # noqa: BLE001 - report, do not stop the benchmark
        rows["mixedlm"] = {"error": f"{type(exc).__name__}: {exc}"[:120]}
    base = rows["lme4"]["seconds"] if rows["lme4"] and "seconds" in rows["lme4"] else None
    print(f"{'engine':8s} {'seconds':>8s} {'/ lme4':>7s} {'logLik':>14s}")
    for name, res in rows.items():
        if res is None:
            print(f"{name:8s} (not installed)")
        elif "error" in res:
            print(f"{name:8s} error: {res['error']}")
        else:
            ratio = f"{res['seconds'] / base:7.2f}" if base else f"{'':7s}"
            print(f"{name:8s} {res['seconds']:8.2f} {ratio} {res['logLik']:14.4f}")


if __name__ == "__main__":
    main()
