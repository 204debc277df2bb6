"""How time and memory grow with rows and levels, lme2sm and lme4 side by side.

Two designs, generated here with a fixed seed and written to CSV so both programs read
the same data:

* crossed: ``y ~ service + (1|a) + (1|b)``; ``a`` grows with the rows (rows/25 levels,
  like InstEval's students), ``b`` fixed at 1,128 levels (InstEval's lecturers); then
  100k rows with ``b`` growing (the engine's dense block is ``b``'s levels).
* nested: ``y ~ x + (x | school) + (1 | school:class)``, 20 rows a class, 10 classes a
  school; the number of schools grows with the rows. Nested terms stay block diagonal,
  so cost should be linear in rows.
* MovieLens-shaped (``--movielens``): ``y ~ x + (1|user) + (1|item)``, users = rows/50,
  items = rows/200, Zipf-skewed ratings per user (a few users rate most items: the
  engine's heavy levels, :mod:`lme2sm.engine.fill`).

Each lme2sm fit runs in its own subprocess, so the peak resident memory
(``ru_maxrss``) belongs to that fit alone (data included). lme4 runs in one ``Rscript``
per size (``system.time`` of ``lmer``, and R's ``gc()`` "max used" memory).

Usage: ``python benchmarks/scaling.py [--max-rows N] [--no-lme4] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CROSSED = "y ~ service + (1 | a) + (1 | b)"
NESTED = "y ~ x + (x | school) + (1 | school:class)"
MOVIELENS = "y ~ x + (1 | user) + (1 | item)"
ROW_SIZES = [10_000, 30_000, 100_000, 300_000, 1_000_000]
LEVEL_SIZES = [250, 500, 1_000, 2_000]

R_SCRIPT = r"""
suppressMessages(library(lme4))
a <- commandArgs(trailingOnly = TRUE)
d <- read.csv(a[1], colClasses = "character")
for (v in c("y", "x")) if (v %in% names(d)) d[[v]] <- as.numeric(d[[v]])
invisible(gc(reset = TRUE))
t <- system.time(m <- suppressWarnings(suppressMessages(lmer(as.formula(a[2]), d))))
g <- gc()
cat(jsonlite::toJSON(list(seconds = t[["elapsed"]], logLik = as.numeric(logLik(m)),
    mb = sum(g[, 6])), digits = NA, auto_unbox = TRUE))
"""


def crossed_data(n: int, n_a: int, n_b: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n_a, n)
    b = rng.integers(0, n_b, n)
    service = rng.integers(0, 2, n)
    y = (
        3.0
        + 0.1 * service
        + rng.normal(0, 0.3, n_a)[a]
        + rng.normal(0, 0.5, n_b)[b]
        + rng.normal(0, 1.0, n)
    )
    return pd.DataFrame(
        {"y": y, "a": a.astype(str), "b": b.astype(str), "service": service.astype(str)}
    )


def nested_data(n: int, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_class = max(n // 20, 4)
    n_school = max(n_class // 10, 2)
    cls = rng.integers(0, n_class, n)
    school = cls % n_school
    x = rng.normal(size=n)
    u0 = rng.normal(0, 1.0, n_school)
    u1 = rng.normal(0, 0.4, n_school)
    v = rng.normal(0, 0.7, n_class)
    y = 1 + 0.5 * x + u0[school] + u1[school] * x + v[cls] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "school": school.astype(str), "class": cls.astype(str)})


def run_one(path: str, formula: str) -> dict:
    """Fit one CSV with lme2sm (called in a subprocess)."""
    import warnings

    import lme2sm

    data = pd.read_csv(
        path, dtype={c: str for c in ("a", "b", "service", "school", "class", "user", "item")}
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer(formula, data)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "logLik": m.logLik(),
        "evals": m.engine_fit.n_evals,
        "mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def lme2sm_run(path: Path, formula: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", str(path), formula],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def lme4_run(path: Path, formula: str, script: Path) -> dict | None:
    if script is None:
        return None
    out = subprocess.run(
        ["Rscript", str(script), str(path), formula], capture_output=True, text=True
    )
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


HEAD = (
    f"{'size':>22s} {'lme2sm s':>9s} {'lme4 s':>8s} {'ratio':>6s} {'lme2sm MB':>10s} "
    f"{'lme4 MB':>8s} {'evals':>6s} {'dlogLik':>9s}"
)


def header(title: str) -> None:
    print(f"\n{title}\n{HEAD}\n{'-' * len(HEAD)}", flush=True)


def row(label: str, ours: dict, theirs: dict | None) -> None:
    """One measured size, printed as soon as it is done."""
    if theirs:
        extra = (
            f"{theirs['seconds']:8.2f} {ours['seconds'] / theirs['seconds']:6.2f} "
            f"{ours['mb']:10.0f} {theirs['mb']:8.0f} {ours['evals']:6d} "
            f"{ours['logLik'] - theirs['logLik']:+9.1e}"
        )
    else:
        extra = f"{'-':>8s} {'-':>6s} {ours['mb']:10.0f} {'-':>8s} {ours['evals']:6d}"
    print(f"{label:>22s} {ours['seconds']:9.2f} {extra}", flush=True)


def movielens_table(tmp: Path, sizes: list[int], script: Path | None) -> None:
    from crossed_data import movielens_frame

    header("MovieLens-shaped, rows growing (users = rows/50, items = rows/200):")
    for n in sizes:
        path = tmp / f"movielens_{n}.csv"
        movielens_frame(n, n // 50, n // 200).to_csv(path, index=False)
        row(f"{n:,} rows", lme2sm_run(path, MOVIELENS), lme4_run(path, MOVIELENS, script))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--max-rows", type=int, default=1_000_000)
    ap.add_argument("--no-lme4", action="store_true")
    ap.add_argument("--quick", action="store_true", help="two sizes of each table")
    ap.add_argument("--movielens", action="store_true", help="only the MovieLens table")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return
    sizes = [n for n in ROW_SIZES if n <= args.max_rows]
    levels = LEVEL_SIZES
    if args.quick:
        sizes, levels = sizes[:2], levels[:2]
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        script = None
        if not args.no_lme4 and shutil.which("Rscript"):
            script = tmp / "fit.R"
            script.write_text(R_SCRIPT)
        if args.movielens:
            movielens_table(tmp, [n for n in sizes if n >= 100_000] or sizes, script)
            print(f"\nratio = lme2sm / lme4 seconds; load average: {os.getloadavg()[0]:.2f}")
            return
        header("Crossed, rows growing (a = rows/25 levels, b = 1,128):")
        for n in sizes:
            path = tmp / f"crossed_{n}.csv"
            crossed_data(n, max(n // 25, 2), 1_128).to_csv(path, index=False)
            row(f"{n:,} rows", lme2sm_run(path, CROSSED), lme4_run(path, CROSSED, script))
        header("Nested, rows growing (classes of 20 rows, schools of 10 classes):")
        for n in sizes:
            path = tmp / f"nested_{n}.csv"
            nested_data(n).to_csv(path, index=False)
            row(f"{n:,} rows", lme2sm_run(path, NESTED), lme4_run(path, NESTED, script))
        header("Crossed, 100k rows, a = 4,000 levels, b growing:")
        for nb in levels:
            path = tmp / f"levels_{nb}.csv"
            crossed_data(100_000, 4_000, nb).to_csv(path, index=False)
            row(f"b = {nb:,} levels", lme2sm_run(path, CROSSED), lme4_run(path, CROSSED, script))
    print(f"\nratio = lme2sm / lme4 seconds; load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
