"""Crossed random effects at scale: full InstEval with lme2sm's engine, lme4 and mixedlm.

Runs, in one process and one after the other, for ``y ~ service + (1|s) + (1|d)`` and
``y ~ service + (1|s) + (1|d) + (1|dept:service)`` (REML):

* lme2sm: ``lme2sm.lmer`` on the data frame, the whole pipeline (model frame, engine,
  lme4's convergence check).
* lme4 via ``Rscript``: "fit" is ``system.time(lmer(...))`` inside R; "total" is the
  wall time of the whole ``Rscript`` call (R start-up, loading lme4, reading the CSV).
* ``mixedlm`` (PyPI, a Rust port of lme4), if installed: "fit" is ``mixedlm.lmer``.

Data: ``benchmarks/data/InstEval.csv`` (gitignored). If it is missing it is exported
from lme4 with Rscript; without R it falls back to a synthetic data set of the same
shape (``lme2sm.datasets.make_crossed``), and lme4 is skipped.

Usage: ``python benchmarks/crossed.py [--skip-mixedlm]``.
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
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


DATA = ROOT / "benchmarks" / "data" / "InstEval.csv"
MODELS = {
    "(1|s)+(1|d)": ["s", "d"],
    "(1|s)+(1|d)+(1|dept:service)": ["s", "d", "dept:service"],
}

R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(s = "factor", d = "factor", dept = "factor",
                                      service = "factor"))
out <- list()
for (f in c("y ~ service + (1|s) + (1|d)",
            "y ~ service + (1|s) + (1|d) + (1|dept:service)")) {
  tm <- system.time(m <- lmer(as.formula(f), d, REML = TRUE))
  out[[f]] <- list(seconds = unname(tm["elapsed"]), logLik = as.numeric(logLik(m)),
                   theta = unname(getME(m, "theta")), fixef = unname(fixef(m)),
                   feval = m@optinfo$feval)
}
cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE))
"""


def load_data() -> tuple[pd.DataFrame, str]:
    """InstEval as a data frame, exporting it with R if needed; else synthetic."""
    if not DATA.exists() and shutil.which("Rscript"):
        DATA.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "Rscript",
                "-e",
                f'library(lme4); write.csv(InstEval, "{DATA}", row.names=FALSE)',
            ],
            check=True,
            capture_output=True,
        )
    if DATA.exists():
        df = pd.read_csv(DATA, dtype={"s": str, "d": str, "dept": str, "service": str})
        return df, "InstEval (lme4)"
    from lme2sm.datasets import make_crossed

    df = make_crossed(73421, 2972, 1128, seed=1).rename(columns={"a": "s", "b": "d"})
    return df, "synthetic InstEval-shaped (make_crossed)"


def lmer_fit(df: pd.DataFrame, factors: list[str]) -> dict:
    """The whole user-facing pipeline: ``lme2sm.lmer`` (parse, translate, engine, relabel)."""
    import warnings

    import lme2sm

    data = df[["y", "s", "d", "dept", "service"]].copy()
    for c in ("s", "d", "dept", "service"):
        data[c] = data[c].astype(str)
    formula = "y ~ service + " + " + ".join(f"(1 | {f})" for f in factors)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer(formula, data)
    t1 = time.perf_counter()
    vc = m.VarCorr().set_index("grp")["sdcor"]
    return {
        "fit": t1 - t0,
        "total": t1 - t0,
        "logLik": m.logLik(),
        "theta": [float(vc[f] / m.sigma) for f in factors],
        "evals": m.engine_fit.n_evals,
    }


def lme4_fit() -> dict | None:
    """Both models in one Rscript run; None without R."""
    if not (shutil.which("Rscript") and DATA.exists()):
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as fh:
        fh.write(R_SCRIPT)
        script = fh.name
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["Rscript", script, str(DATA)], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    os.unlink(script)
    if proc.returncode != 0:
        print("lme4 failed:", proc.stderr[-2000:])
        return None
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    res = {}
    for key, formula in zip(MODELS, out):
        r = out[formula]
        res[key] = {
            "fit": r["seconds"],
            "logLik": r["logLik"],
            "theta": r["theta"],
            "evals": r["feval"],
        }
    res["_wall"] = wall
    return res


def mixedlm_fit(df: pd.DataFrame, factors: list[str]) -> dict | None:
    """The PyPI ``mixedlm`` package (Rust lme4 port), if importable."""
    try:
        import mixedlm
    except ImportError:
        return None
    data = df[["y", "s", "d", "dept", "service"]].copy()
    for c in ("s", "d", "dept", "service"):
        data[c] = data[c].astype(str).astype("category")
    formula = "y ~ service + " + " + ".join(f"(1|{f})" for f in factors)
    t0 = time.perf_counter()
    r = mixedlm.lmer(formula, data, REML=True)
    t1 = time.perf_counter()
    ll = r.logLik()
    return {
        "fit": t1 - t0,
        "total": t1 - t0,
        "logLik": float(getattr(ll, "value", ll)),
        "theta": [float(x) for x in np.ravel(r.theta)],
        "evals": getattr(r, "function_evals", None),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-mixedlm", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    df, source = load_data()
    print(
        f"data: {source}: {len(df):,} rows, s {df['s'].nunique():,} x d "
        f"{df['d'].nunique():,} levels (read in {time.perf_counter() - t0:.2f} s)"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    rows: list[tuple] = []
    lme4 = lme4_fit()
    if lme4 is None:
        print("lme4: Rscript or the InstEval CSV not available, skipped")
    for key, factors in MODELS.items():
        ref = lme4.get(key) if lme4 else None
        runs = [("lme2sm.lmer (whole pipeline)", lmer_fit(df, factors))]
        if ref is not None:
            runs.append(("lme4 (Rscript)", {**ref, "total": lme4["_wall"]}))
        if not args.skip_mixedlm:
            mres = mixedlm_fit(df, factors)
            if mres is None:
                print("mixedlm: not installed (pip install mixedlm), skipped")
            else:
                runs.append(("mixedlm (PyPI, Rust)", mres))
        for name, r in runs:
            rows.append((key, name, r, ref))

    print()
    head = (
        f"{'model':31s} {'implementation':30s} {'fit s':>8s} {'total s':>8s} "
        f"{'logLik':>15s} {'- lme4':>10s} {'lme4/this':>9s} {'evals':>6s}  theta"
    )
    print(head)
    print("-" * len(head))
    for key, name, r, ref in rows:
        d = f"{r['logLik'] - ref['logLik']:+.2e}" if ref else "n/a"
        ratio = f"{ref['fit'] / r['fit']:.1f}x" if ref else "n/a"
        theta = ", ".join(f"{t:.5f}" for t in r["theta"])
        print(
            f"{key:31s} {name:30s} {r['fit']:8.2f} {r['total']:8.2f} "
            f"{r['logLik']:15.5f} {d:>10s} {ratio:>9s} {str(r['evals']):>6s}  {theta}"
        )
    if lme4:
        print(
            f"\nlme4 'total' is the wall time of one Rscript run fitting both models "
            f"({lme4['_wall']:.1f} s, includes R start-up and reading the CSV)."
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
