"""Every fixture model, fitted side by side by lme2sm, lme4 (live) and mixedlm, in one run.

For each model in ``tests/fixtures/models`` (and ``tests/fixtures/lmer_extra`` when
present) this times, on the same CSV data:

* ``lme2sm.lmer`` (the whole pipeline: model frame, engine, lme4's checks; median of
  ``--reps`` runs after one warm-up);
* lme4's ``lmer`` in an ``Rscript`` process started for each model just before
  lme2sm's timing of it (the same formula on the same CSV, factor columns as factors;
  ``system.time`` of each call, median of ``--reps`` after a warm-up; R's start-up is
  not timed), when R with lme4 is installed;
* ``mixedlm.lmer`` (PyPI's Rust port of lme4), when it is installed.

It prints a table (seconds, ratio lme2sm / lme4, logLik difference) and the median and
worst ratios. Usage: ``python benchmarks/lme4_side_by_side.py [--reps 5] [--only NAME]``.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lme2sm  # noqa: E402
from lme2sm.datasets import FACTORS  # noqa: E402

FIXTURE_DIRS = [ROOT / "tests" / "fixtures" / "models", ROOT / "tests" / "fixtures" / "lmer_extra"]

R_SCRIPT = r"""
suppressMessages(library(lme4))
spec <- jsonlite::fromJSON(commandArgs(trailingOnly = TRUE)[1], simplifyVector = FALSE)
reps <- spec$reps
out <- list()
for (m in spec$models) {
  d <- read.csv(m$csv, stringsAsFactors = FALSE)
  for (f in unlist(m$factors)) if (f %in% names(d)) d[[f]] <- factor(d[[f]])
  w <- if (is.null(m$weights)) NULL else d[[m$weights]]
  fit <- function() {
    if (is.null(w)) lmer(as.formula(m$formula), d, REML = m$REML)
    else lmer(as.formula(m$formula), d, REML = m$REML, weights = w)
  }
  fm <- suppressWarnings(suppressMessages(fit()))
  times <- sapply(seq_len(reps), function(i)
    system.time(suppressWarnings(suppressMessages(fit())))[["elapsed"]])
  out[[m$name]] <- list(seconds = median(times), logLik = as.numeric(logLik(fm)))
}
cat(jsonlite::toJSON(out, digits = NA, auto_unbox = TRUE))
"""


def fixtures(only: str | None, dirs: list[Path]) -> list[dict]:
    out = []
    for folder in dirs:
        for path in sorted(folder.glob("*.json")):
            if path.stem.startswith("_"):
                continue
            fx = json.loads(path.read_text())
            if "formula" not in fx or (only and only not in path.stem):
                continue
            out.append(fx | {"name": path.stem, "_dir": folder})
    return out


def dataset(fx: dict):
    """The fixture's data frame, CSV path and factor columns (as the tests read them)."""
    import pandas as pd

    from lme2sm.datasets import load

    rel = fx.get("data_path")
    if rel and (ROOT / rel).exists():
        factors = list(fx.get("factors") or [])
        path = ROOT / rel
        frame = pd.read_csv(path, dtype={f: str for f in factors})
        return frame, path, factors
    name = fx["dataset"]
    path = ROOT / "lme2sm" / "datasets" / f"{name}.csv"
    return load(name), path, list(FACTORS.get(name, ()))


def time_lme2sm(fx: dict, data, reps: int) -> tuple[float, float]:
    kwargs = {"REML": fx["REML"]}
    if fx.get("weights"):
        kwargs["weights"] = fx["weights"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer(fx["formula"], data, **kwargs)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            lme2sm.lmer(fx["formula"], data, **kwargs)
            times.append(time.perf_counter() - t0)
    return statistics.median(times), m.logLik()


def time_mixedlm(fx: dict, data, reps: int) -> float | None:
    try:
        import mixedlm
    except ImportError:
        return None
    if fx.get("weights"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mixedlm.lmer(fx["formula"], data, REML=fx["REML"])
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                mixedlm.lmer(fx["formula"], data, REML=fx["REML"])
                times.append(time.perf_counter() - t0)
        return statistics.median(times)
    except Exception:  # noqa: BLE001 - a model mixedlm cannot fit is reported as such
        return float("nan")


def time_lme4(models: list[dict], reps: int) -> dict:
    if shutil.which("Rscript") is None:
        return {}
    spec = {"reps": reps, "models": models}
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT)
        run = subprocess.run(
            ["Rscript", str(script), str(spec_path)], capture_output=True, text=True
        )
    if run.returncode != 0:
        print("lme4 run failed:", run.stderr[-2000:], file=sys.stderr)
        return {}
    return json.loads(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--only", default=None)
    parser.add_argument("--dirs", nargs="*", type=Path, default=FIXTURE_DIRS)
    args = parser.parse_args()
    rows = []
    lme4 = {}
    for fx in fixtures(args.only, args.dirs):
        data, path, factors = dataset(fx)
        model = {
            "name": fx["name"],
            "csv": str(path),
            "factors": factors,
            "formula": fx["formula"],
            "REML": fx["REML"],
            "weights": fx.get("weights"),
        }
        # model by model, lme4 right before lme2sm: a shared machine's load drifts over
        # minutes, and a ratio should compare the two at the same moment
        lme4.update(time_lme4([model], args.reps))
        seconds, loglik = time_lme2sm(fx, data, args.reps)
        rows.append((fx, seconds, loglik, time_mixedlm(fx, data, args.reps)))
    print(
        f"{'model':30s} {'lme2sm':>8s} {'lme4':>8s} {'mixedlm':>8s} {'lme2sm/lme4':>11s} "
        f"{'dlogLik':>9s}"
    )
    ratios = []
    for fx, seconds, loglik, mx in rows:
        r = lme4.get(fx["name"])
        r_s = f"{r['seconds']:8.3f}" if r else "       -"
        ratio = seconds / r["seconds"] if r and r["seconds"] > 0 else float("nan")
        if r and r["seconds"] > 0:
            ratios.append(ratio)
        dll = f"{loglik - r['logLik']:+9.1e}" if r else "        -"
        mx_s = f"{mx:8.3f}" if mx is not None else "       -"
        print(f"{fx['name']:30s} {seconds:8.3f} {r_s} {mx_s} {ratio:11.2f} {dll}")
    if ratios:
        print(
            f"\nlme2sm / lme4 time: median {statistics.median(ratios):.2f}, "
            f"worst {max(ratios):.2f}, best {min(ratios):.2f} over {len(ratios)} models"
        )


if __name__ == "__main__":
    main()
