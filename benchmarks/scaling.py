"""How the variance-component engine scales with rows and with levels.

Table 1 (rows): synthetic crossed data ``y ~ service + (1|a) + (1|b)`` at 10k, 30k,
100k, 300k and 1M rows, with ``a`` growing like InstEval's students (n/25 levels) and
``b`` fixed at InstEval's 1,128 lecturers. Cost should be near-linear in rows: the
O(n) part is the cross-products and building the statsmodels model; the optimiser
works on a q_r x q_r matrix (q_r = levels of all terms but the largest) whose size
does not grow with n.

Table 2 (levels): 100k rows, ``b`` with 250 .. 2,000 levels: the per-evaluation
cost grows like q_r^3 and memory like q_r^2 -- the engine's limit when two factors
are both huge (see ``lme2sm.engines.vc``).

Each size runs in its own subprocess so that the peak resident memory
(``resource.getrusage(...).ru_maxrss``) belongs to that size alone; "peak MB" is the
peak of the whole process (data included), "fit +MB" how much the peak grew during
model building and fitting. Data come from ``lme2sm.datasets.make_crossed`` when it
exists, else from a small generator in this file.

Usage: ``python benchmarks/scaling.py [--max-rows N] [--no-levels]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROW_SIZES = [10_000, 30_000, 100_000, 300_000, 1_000_000]
LEVEL_SIZES = [250, 500, 1_000, 2_000]


def _make_data(n: int, n_a: int, n_b: int, seed: int) -> pd.DataFrame:
    try:
        from lme2sm.datasets import make_crossed
    except ImportError:
        make_crossed = None
    if make_crossed is not None:
        return make_crossed(n, n_a, n_b, seed=seed)
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


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(n: int, n_a: int, n_b: int, seed: int = 1) -> dict:
    """Generate, build and fit one data set (called in a subprocess)."""
    from lme2sm.engines import ScalarTerm, VarianceComponentsMixedLM

    t0 = time.perf_counter()
    df = _make_data(n, n_a, n_b, seed)
    t_gen = time.perf_counter() - t0
    rss0 = _rss_mb()

    t0 = time.perf_counter()
    terms = []
    for col in ("a", "b"):
        codes, levels = pd.factorize(df[col], sort=True)
        terms.append(ScalarTerm(col, codes.astype(np.int64), tuple(levels)))
    X = np.column_stack([np.ones(n), (df["service"].astype(str) == "1").to_numpy(float)])
    model = VarianceComponentsMixedLM.from_terms(
        df["y"].to_numpy(float), X, ["(Intercept)", "service1"], np.zeros(n, np.int64), terms
    )
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = model.fit(reml=True)
    t_fit = time.perf_counter() - t0
    pf = res.profiled_fit
    return {
        "n": n,
        "n_a": int(df["a"].nunique()),
        "n_b": int(df["b"].nunique()),
        "gen": t_gen,
        "build": t_build,
        "fit": t_fit,
        "evals": pf.n_evals,
        "llf": float(pf.llf),
        "converged": bool(pf.converged),
        "peak_mb": _rss_mb(),
        "fit_mb": _rss_mb() - rss0,
    }


def _spawn(n: int, n_a: int, n_b: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--one", str(n), str(n_a), str(n_b)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _table(title: str, results: list[dict]) -> None:
    print(f"\n{title}")
    head = (
        f"{'rows':>9s} {'a lev':>7s} {'b lev':>6s} {'build s':>8s} {'fit s':>7s} "
        f"{'total s':>8s} {'us/row':>7s} {'evals':>6s} {'s/eval':>7s} "
        f"{'peak MB':>8s} {'fit +MB':>8s}  logLik"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        tot = r["build"] + r["fit"]
        print(
            f"{r['n']:9,d} {r['n_a']:7,d} {r['n_b']:6,d} {r['build']:8.2f} {r['fit']:7.2f} "
            f"{tot:8.2f} {1e6 * tot / r['n']:7.1f} {r['evals']:6d} "
            f"{r['fit'] / r['evals']:7.3f} {r['peak_mb']:8.0f} {r['fit_mb']:8.0f}  "
            f"{r['llf']:.3f}{'' if r['converged'] else ' (not converged)'}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--max-rows", type=int, default=1_000_000)
    ap.add_argument("--no-levels", action="store_true")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(*args.one)))
        return
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    rows = [_spawn(n, max(n // 25, 2), 1_128) for n in ROW_SIZES if n <= args.max_rows]
    _table("Rows (a = rows/25 levels, b = 1,128 levels):", rows)
    if len(rows) > 1:
        r0, r1 = rows[0], rows[-1]
        t0, t1 = r0["build"] + r0["fit"], r1["build"] + r1["fit"]
        print(
            f"rows x{r1['n'] / r0['n']:.0f} -> time x{t1 / t0:.1f} "
            f"(log-log slope {np.log(t1 / t0) / np.log(r1['n'] / r0['n']):.2f})"
        )
    if not args.no_levels:
        lev = [_spawn(100_000, 4_000, nb) for nb in LEVEL_SIZES]
        _table("Levels (100k rows, a = 4,000 levels, b varies; q_r = b levels):", lev)
    print(f"load average: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
