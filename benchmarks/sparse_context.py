"""lme4 and today's lme2sm on issue #21's crossed data, for context beside sparse_candidates.

For each data set (``students-teachers``, ``movielens-1M`` of sparse_candidates.py), the
rows are written once to a CSV in a temporary directory, then

* lme4: ``Rscript`` reads them with data.table (not timed) and times
  ``lmer(y ~ x + (1|g1) + (1|g2), REML = FALSE)`` with ``system.time`` (elapsed), with
  the machine's R BLAS (Debian's reference BLAS) and, with ``--openblas DIR``, once more
  with ``R_LD_LIBRARY_PATH`` starting at DIR (Debian's OpenBLAS, unpacked, not installed);
* lme2sm: ``lme2sm.lmer(..., REML=False)`` in a subprocess of ``--python`` (default
  /work/venv's, which imports lme2sm from /work/main), timed around the call only.

Both report logLik, theta and evaluations. The ML deviance of sparse_system.py at
lme4's theta (through the dense Schur complement) is printed next to lme4's -2 logLik:
they must agree, which checks the deviance every candidate is scored with.

Usage: ``python benchmarks/sparse_context.py [--data NAME ...] [--openblas DIR]``; the
results are merged into ``benchmarks/out/sparse_context.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import crossed_data as cd  # noqa: E402
import sparse_system as ss  # noqa: E402
from sparse_candidates import DATASETS, OUT  # noqa: E402

RESULTS = OUT / "sparse_context.json"
FORMULA = "y ~ x + (1 | g1) + (1 | g2)"

R_SCRIPT = r"""
suppressMessages({library(lme4); library(data.table)})
d <- as.data.frame(fread(commandArgs(trailingOnly = TRUE)[1]))
d$g1 <- factor(d$g1); d$g2 <- factor(d$g2)
tm <- system.time(m <- lmer(y ~ x + (1 | g1) + (1 | g2), d, REML = FALSE))
cat(jsonlite::toJSON(list(seconds = unname(tm["elapsed"]), logLik = as.numeric(logLik(m)),
    theta = unname(getME(m, "theta")), feval = m@optinfo$feval,
    fixef = unname(fixef(m))), digits = NA, auto_unbox = TRUE))
"""

PY_SCRIPT = r"""
import json, sys, time
import pandas as pd
import lme2sm
d = pd.read_csv(sys.argv[1], dtype={"g1": str, "g2": str})
t0 = time.perf_counter()
m = lme2sm.lmer(sys.argv[2], d, REML=False)
sec = time.perf_counter() - t0
f = m.engine_fit
print(json.dumps({"seconds": sec, "logLik": float(m.logLik()), "theta": list(map(float, f.theta)),
                  "feval": int(f.n_evals), "fixef": list(map(float, f.beta)),
                  "lme2sm": lme2sm.__file__}))
"""


def write_csv(name: str, directory: str) -> tuple[str, cd.Codes]:
    c = DATASETS[name]()
    path = os.path.join(directory, f"{name}.csv")
    frame = cd.to_frame(c, ("a", "b")).rename(columns={c.names[0]: "g1", c.names[1]: "g2"})
    frame.to_csv(path, index=False)
    return path, c


def _json_run(cmd: list[str], env: dict | None = None, cwd: str | None = None) -> dict:
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return json.loads(lines[-1])


def deviance_at(c: cd.Codes, theta) -> float:
    """sparse_system's ML deviance at theta through the dense Schur complement."""
    from sparse_methods import SchurDense

    P = ss.crossed_system(c.g1, c.g2, c.x, c.y, c.n1, c.n2)
    m = SchurDense()
    m.analyse(P)
    ld, solve = m.factor(theta)
    return ss.ml_deviance(P, theta, ld, solve)[0]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", nargs="*", default=["students-teachers", "movielens-1M"])
    ap.add_argument("--python", default="/work/venv/bin/python")
    ap.add_argument("--only-lme2sm", action="store_true", help="rerun lme2sm only")
    ap.add_argument("--openblas", help="directory holding OpenBLAS's libblas.so.3")
    ap.add_argument(
        "--lme4-blas",
        choices=["ref", "openblas", "both"],
        default="both",
        help="which BLAS lme4 runs with (openblas needs --openblas)",
    )
    a = ap.parse_args(argv)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        rfile = os.path.join(tmp, "fit.R")
        Path(rfile).write_text(R_SCRIPT)
        for name in a.data:
            path, c = write_csv(name, tmp)
            rec = results.setdefault(name, {})
            if not a.only_lme2sm and a.lme4_blas != "openblas":
                rec["lme4"] = _json_run(["Rscript", rfile, path])
            if not a.only_lme2sm and a.openblas and a.lme4_blas != "ref":
                # R's ldpaths puts its own directories first unless R_LD_LIBRARY_PATH is set
                paths = f"{a.openblas}:/usr/lib/R/lib:/usr/lib/x86_64-linux-gnu"
                env = dict(os.environ, R_LD_LIBRARY_PATH=paths, OPENBLAS_NUM_THREADS="1")
                rec["lme4+openblas"] = _json_run(["Rscript", rfile, path], env)
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            # cwd: not this worktree, whose lme2sm would shadow the installed one
            rec["lme2sm"] = _json_run([a.python, "-c", PY_SCRIPT, path, FORMULA], env, tmp)
            fit = rec.get("lme4") or rec.get("lme4+openblas") or {}
            if "theta" in fit:
                rec["check"] = {
                    "lme4 -2logLik": -2 * fit["logLik"],
                    "sparse_system deviance at lme4 theta": deviance_at(c, fit["theta"]),
                }
            RESULTS.write_text(json.dumps(results, indent=1))
            print(name, json.dumps(rec, indent=1), flush=True)


if __name__ == "__main__":
    main()
