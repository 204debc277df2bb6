"""#21's first target, checked in one run: MovieLens-shaped crossed data, ML, lme2sm
against lme4.

``y ~ 1 + x + (1|user) + (1|item)`` by ML on :func:`crossed_data.movielens_frame`
(Zipf-like ratings per user, some users with one rating; 1,000,000 rows, 20,000 users x
5,000 items by default). The same CSV is fitted by ``lme4::lmer(REML = FALSE)`` in one
``Rscript`` (``system.time``: elapsed and CPU) and by ``lme2sm.lmer(REML=False)`` in
this process (wall and CPU). Printed: seconds, evaluations, logLik, the fixed effects'
largest relative difference, the SDs' largest difference, and lme2sm/lme4 as ratios
of wall and of CPU time. R's BLAS is printed too: Debian's default is the reference
BLAS, which lme4's dense crossed block uses; lme2sm uses numpy's OpenBLAS.

Usage: ``python benchmarks/movielens_lme4.py [--rows N --users U --items I]
[--lme4-timeout S] [--no-lme4]``. Both fit with one BLAS thread.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("LME2SM_PROGRESS", "0")

from crossed_data import FIXEF, MOVIELENS_SD, add_shape_arguments, movielens_frame  # noqa: E402

import lme2sm  # noqa: E402

FORMULA = "y ~ 1 + x + (1 | user) + (1 | item)"

R_SCRIPT = r"""
suppressMessages(library(lme4))
a <- commandArgs(trailingOnly = TRUE)
d <- read.csv(a[1], colClasses = c(y = "numeric", x = "numeric", user = "factor",
                                   item = "factor"))
t <- system.time(m <- lmer(as.formula(a[2]), d, REML = FALSE))
vc <- as.data.frame(VarCorr(m))
si <- sessionInfo()
cat(jsonlite::toJSON(list(elapsed = t[["elapsed"]], cpu = t[["user.self"]] + t[["sys.self"]],
    logLik = as.numeric(logLik(m)), fixef = unname(fixef(m)),
    sd = setNames(as.list(vc$sdcor), ifelse(is.na(vc$grp), "Residual", vc$grp)),
    evals = m@optinfo$feval, blas = si$BLAS), digits = NA, auto_unbox = TRUE))
"""


def lme4_fit(csv: Path, timeout: float) -> dict | None:
    """lme4's ML fit of the CSV, or None (no Rscript, or past ``timeout`` seconds)."""
    if not shutil.which("Rscript"):
        return None
    script = csv.with_suffix(".R")
    script.write_text(R_SCRIPT)
    try:
        out = subprocess.run(
            ["Rscript", str(script), str(csv), FORMULA],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    return json.loads(out.stdout.strip().splitlines()[-1])


def lme2sm_fit(df) -> dict:
    c0, w0 = time.process_time(), time.perf_counter()
    m = lme2sm.lmer(FORMULA, df, REML=False)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    vc = m.VarCorr()
    sds = {str(r.grp): float(r.sdcor) for r in vc.itertuples()}
    return {
        "elapsed": wall,
        "cpu": cpu,
        "logLik": float(m.logLik()),
        "fixef": [float(v) for v in m.fixef()],
        "sd": sds,
        "evals": int(m.engine_fit.n_evals),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_shape_arguments(ap)
    ap.add_argument("--lme4-timeout", type=float, default=7200.0)
    ap.add_argument("--no-lme4", action="store_true")
    args = ap.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    df = movielens_frame(args.rows, args.users, args.items)
    print(f"{len(df):,} rows, {args.users:,} users x {args.items:,} items; {FORMULA}, ML")
    ours = lme2sm_fit(df)
    theirs = None
    if not args.no_lme4:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "movielens.csv"
            df.to_csv(csv, index=False)
            theirs = lme4_fit(csv, args.lme4_timeout)
    print(
        f"\n{'':8s} {'wall s':>9s} {'CPU s':>9s} {'evals':>6s} {'logLik':>18s}  SDs (user, item, residual)"
    )
    for name, r in (("lme2sm", ours), ("lme4", theirs)):
        if r is None or "timeout" in r:
            why = "no Rscript" if r is None else f"not finished in {r['timeout']:.0f} s"
            print(f"{name:8s} {why}")
            continue
        sd = r["sd"]
        print(
            f"{name:8s} {r['elapsed']:9.1f} {r['cpu']:9.1f} {r['evals']:6d} {r['logLik']:18.6f}  "
            f"{sd['user']:.5f}, {sd['item']:.5f}, {sd['Residual']:.5f}"
        )
    print(
        f"simulated SDs {MOVIELENS_SD['user']}, {MOVIELENS_SD['item']}, "
        f"{MOVIELENS_SD['residual']}; fixef {FIXEF}"
    )
    if theirs is None or "timeout" in theirs:
        return
    fx = np.array(ours["fixef"]), np.array(theirs["fixef"])
    rel = float(np.max(np.abs(fx[0] - fx[1]) / np.maximum(np.abs(fx[1]), 1e-300)))
    dsd = max(abs(ours["sd"][k] - theirs["sd"][k]) for k in ("user", "item", "Residual"))
    print(f"R's BLAS: {theirs['blas']}")
    print(
        f"logLik lme2sm - lme4 {ours['logLik'] - theirs['logLik']:+.2e} (target >= -1e-4); "
        f"fixef max rel diff {rel:.1e} (1e-5); SDs max diff {dsd:.1e} (1e-3)"
    )
    print(
        f"ratio lme2sm / lme4: wall {ours['elapsed'] / theirs['elapsed']:.3f}, "
        f"CPU {ours['cpu'] / theirs['cpu']:.3f} (target 0.1); "
        f"load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
