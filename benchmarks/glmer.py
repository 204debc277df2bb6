"""glmer side by side: lme2sm, lme4 (through Rscript) and mixedlm (if installed).

Models: lme4's cbpp (cbind, nAGQ 1 and 9), grouseticks (Poisson, three terms), VerbAgg
(7,584 binary answers, persons x items crossed) and a generated binary model with 20,000
subjects (random intercepts, 5 answers each).

* lme2sm: ``lme2sm.glmer`` on the data frame (model frame, both stages, Hessian).
* lme4 via ``Rscript``: ``system.time(glmer(...))`` inside R with lme4's defaults
  (which include its Hessian); R start-up and reading the CSV are not counted.
* mixedlm (PyPI, a Rust port of lme4), if installed: ``mixedlm.glmer`` (a ``cbind``
  response as the proportion with ``weights=`` the trials; its nAGQ = 9 logLik on cbpp
  is -91.98 where lme4's is -50.01, a different scale, not checked further).

Each line shows the fit time, logLik and the optimiser's deviance evaluations (lme2sm:
both stages, the Hessian's not counted; lme4: ``optinfo$feval``, its second stage only)
and lme2sm's PLS solves (PIRLS iterations, the Hessian's included). Usage: ``python benchmarks/glmer.py
[--skip-r] [--skip-mixedlm] [--only NAME] [--against REV ...] [--rounds 3]``.

``--against REV`` (repeatable): lme2sm's fit of each model before and after, one line
for commit ``REV``'s tree and one for this tree (``lme2sm@REV``, ``lme2sm@this``), each
the least CPU time (``time.process_time``, one warm-up fit first) of ``--rounds``
interleaved fresh subprocesses, by ``benchmarks/glmer_overhead.py``'s mechanism
(``export``, ``best_of``); without it, one fit's wall time in this process.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
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
from lme2sm import datasets  # noqa: E402


def _overhead():
    """``benchmarks/glmer_overhead.py`` as a module (its export and child fits)."""
    import glmer_overhead  # a sibling script: benchmarks/ is sys.path[0]

    return glmer_overhead


MODELS = {
    "cbpp": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial", 1),
    "cbpp_agq9": (
        "cbpp",
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "binomial",
        9,
    ),
    "grouseticks": (
        "grouseticks",
        "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
        "poisson",
        1,
    ),
    "verbagg": (
        "VerbAgg",
        "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
        "binomial",
        1,
    ),
    "verbagg_corr": (
        "VerbAgg",
        "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 + Gender | item)",
        "binomial",
        1,
    ),
    "binary_20000": ("binary_20000", "y ~ x + (1 | subject)", "binomial", 1),
}


def binary_20000(seed: int = 20000) -> pd.DataFrame:
    """20,000 subjects, 5 binary answers each, random intercepts (sd 1)."""
    rng = np.random.default_rng(seed)
    n_sub, per = 20_000, 5
    subject = np.repeat(np.arange(n_sub), per)
    x = rng.normal(size=n_sub * per)
    eta = -0.5 + 0.7 * x + rng.normal(size=n_sub)[subject]
    y = (rng.random(n_sub * per) < 1 / (1 + np.exp(-eta))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "subject": [f"s{i:05d}" for i in subject]})


def load(name: str) -> pd.DataFrame:
    return binary_20000() if name == "binary_20000" else datasets.load(name)


R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
spec <- jsonlite::fromJSON(args[1])
d <- read.csv(spec$csv, stringsAsFactors = TRUE)
for (f in spec$factors) d[[f]] <- factor(d[[f]])
fam <- get(spec$family)()
tm <- system.time(m <- suppressWarnings(glmer(as.formula(spec$formula), d, fam,
                                              nAGQ = spec$nAGQ)))
cat(jsonlite::toJSON(list(seconds = unname(tm["elapsed"]), logLik = as.numeric(logLik(m)),
                          evals = m@optinfo$feval), auto_unbox = TRUE, digits = NA))
"""


def run_lme4(name: str, data: pd.DataFrame, formula: str, family: str, nagq: int):
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / f"{name}.csv"
        data.to_csv(csv, index=False)
        factors = [
            c for c in data.columns if data[c].dtype == object or str(data[c].dtype) == "str"
        ]
        spec = {
            "csv": str(csv),
            "formula": formula,
            "family": family,
            "nAGQ": nagq,
            "factors": factors,
        }
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec))
        script = Path(tmp) / "fit.R"
        script.write_text(R_SCRIPT)
        out = subprocess.run(
            ["Rscript", str(script), str(spec_file)], capture_output=True, text=True, timeout=3600
        )
        if out.returncode != 0:
            return {"error": out.stderr.strip().splitlines()[-1:] or ["failed"]}
        return json.loads(out.stdout.strip().splitlines()[-1])


def run_mixedlm(data, formula, family, nagq):
    try:
        import mixedlm
    except ImportError:
        return None
    fam = mixedlm.families.Binomial() if family == "binomial" else mixedlm.families.Poisson()
    weights = None
    match = re.match(r"\s*cbind\((\w+),\s*(.+?)\)\s*~(.*)", formula)
    if match:  # mixedlm reads no cbind(): the proportion with the trials as weights
        succ = data.eval(match.group(1)).to_numpy(float)
        trials = succ + data.eval(match.group(2)).to_numpy(float)
        data = data.assign(prop_=succ / trials)
        formula, weights = "prop_ ~" + match.group(3), trials
    t = time.perf_counter()
    try:
        r = mixedlm.glmer(formula, data, family=fam, nAGQ=nagq, weights=weights)
    except Exception as exc:  # noqa: BLE001 - report, do not stop the benchmark
        return {"error": [type(exc).__name__ + ": " + str(exc)[:80]]}
    seconds = time.perf_counter() - t
    ll = r.logLik()
    return {"seconds": seconds, "logLik": float(getattr(ll, "value", ll))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-r", action="store_true")
    parser.add_argument("--skip-mixedlm", action="store_true")
    parser.add_argument("--only", default=None)
    parser.add_argument("--against", action="append", default=[], metavar="REV")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overhead = _overhead() if args.against else None
        trees = _trees(overhead, args.against, Path(tmp))
        print(
            f"{'model':14s} {'engine':15s} {'seconds':>8s} {'logLik':>14s} {'evals':>6s} {'pls':>6s}"
        )
        for name, (dataset, formula, family, nagq) in MODELS.items():
            if args.only and name != args.only:
                continue
            data = load(dataset)
            rows = _lme2sm_rows(overhead, name, data, trees, args.rounds)
            if not args.skip_r:
                rows.append(("lme4", run_lme4(name, data, formula, family, nagq)))
            if not args.skip_mixedlm:
                rows.append(("mixedlm", run_mixedlm(data, formula, family, nagq)))
            _print_rows(name, rows)


def _trees(overhead, revs: list[str], into: Path) -> dict[str, Path]:
    """``{label: tree}`` of each commit in ``revs`` and this tree, exported as
    ``benchmarks/glmer_overhead.py`` exports them; empty without ``revs``."""
    if not revs:
        return {}
    trees = {rev: overhead.export(rev, into) for rev in revs}
    trees["this"] = ROOT
    return trees


def _lme2sm_rows(overhead, name: str, data, trees: dict[str, Path], rounds: int) -> list:
    """lme2sm's lines for one model: each tree's best CPU time (``trees``), else one fit's
    wall time here."""
    if trees:
        best = overhead.best_of(trees, name, rounds)
        return [(f"lme2sm@{label}", {**res, "seconds": res["cpu"]}) for label, res in best.items()]
    dataset, formula, family, nagq = MODELS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        m = lme2sm.glmer(formula, data, family, nAGQ=nagq)
        seconds = time.perf_counter() - t
    res = {
        "seconds": seconds,
        "logLik": m.logLik(),
        "evals": m.engine_fit.n_evals,
        "pls": m.problem.evaluations,
    }
    return [("lme2sm", res)]


def _print_rows(name: str, rows: list) -> None:
    for engine, res in rows:
        if res is None:
            print(f"{name:14s} {engine:15s} {'(not installed)':>23s}")
        elif "error" in res:
            print(f"{name:14s} {engine:15s} error: {res['error'][0]}")
        else:
            evals = f"{res['evals']:6d}" if "evals" in res else f"{'':6s}"
            pls = f"{res['pls']:6d}" if "pls" in res else ""
            print(
                f"{name:14s} {engine:15s} {res['seconds']:8.3f} {res['logLik']:14.6f} "
                f"{evals} {pls}"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
