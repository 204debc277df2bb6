"""A partially crossed design, students x teachers, side by side with lme4 (live) and mixedlm.

25,000 rows: 10,000 students (2,226 with one teacher), 1,300 teachers in 50 schools,
8 % of the links across schools (``crossed_data.students_teachers_frame``);
``y ~ x + (1 | student) + (1 | teacher)``, ML. After eliminating the students, two
teachers are coupled only through a shared student: with few links across schools
(``--across 0.03``) the crossed block (1,300 x 1,300) and its factor are sparse and the
engine factors it with :mod:`lme2sm.engine.sparse_rest`; at 8 % the factor fills in and
the engine keeps the dense one.

* lme2sm: ``lme2sm.lmer`` on the data frame (median of ``--reps`` after a warm-up);
* lme4 via ``Rscript``: ``system.time(lmer(...))`` in R (median of ``--reps`` after a
  warm-up; start-up and reading the CSV not timed);
* mixedlm (PyPI's Rust port of lme4), if installed.

Usage: ``python benchmarks/students_teachers.py [--reps 3] [--across 0.08] [--dense]``
(``--dense``: the engine's dense factor as well, for comparison).
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

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from crossed_data import students_teachers_frame  # noqa: E402

import lme2sm  # noqa: E402

FORMULA = "y ~ x + (1 | student) + (1 | teacher)"


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
    ap.add_argument("--across", type=float, default=0.08)
    ap.add_argument("--dense", action="store_true")
    args = ap.parse_args()
    data = students_teachers_frame(p_other_school=args.across)
    print(
        f"{len(data)} rows, {data.student.nunique()} students x {data.teacher.nunique()} "
        f"teachers, {args.across:.0%} of the links across schools"
    )
    rows = {"lme2sm": run_lme2sm(data, args.reps)}
    if args.dense:
        from lme2sm.engine import sparse_rest

        saved, sparse_rest.SPARSE_MIN_LEVELS = sparse_rest.SPARSE_MIN_LEVELS, 10**12
        rows["dense"] = run_lme2sm(data, args.reps)
        sparse_rest.SPARSE_MIN_LEVELS = saved
    rows["lme4"] = run_lme4(data, args.reps)
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
