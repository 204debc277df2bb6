"""Parametric bootstrap and profiles with n_jobs=1 and n_jobs=2, side by side in one run.

Each job is timed with ``n_jobs=1`` and then ``n_jobs=2`` (alternating, best of
``--repeat`` runs each), the intervals are checked to be identical, and the line shows
both times and the speed-up (n_jobs=1 time / n_jobs=2 time). The pool's start-up (forking
the workers, sending each the pickled design) is inside the n_jobs=2 time.

Jobs: lmer ``Reaction ~ Days + (Days | Subject)`` (sleepstudy) bootstrap, 400 refits, and
its profile (6 parameters); glmer cbpp bootstrap, 100 refits, and its profile (5
parameters). Usage: ``python benchmarks/bootstrap_parallel.py [--repeat N] [--nsim-scale F]``.
On a machine shared with other work the speed-up is noisy (the load average before the
run is printed: with a load of 2 on 2 cores there is no second core to use); two cores
give at most 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lme2sm  # noqa: E402
from lme2sm.datasets import load  # noqa: E402
from lme2sm.inference.parallel import available_cores  # noqa: E402


def jobs(scale: float):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lme2sm.lmer("Reaction ~ Days + (Days | Subject)", load("sleepstudy"))
        g = lme2sm.glmer(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"), "binomial"
        )
    n_lmer, n_glmer = max(2, int(400 * scale)), max(2, int(100 * scale))
    return [
        (
            f"lmer sleepstudy boot nsim={n_lmer}",
            lambda j: m.confint(method="boot", nsim=n_lmer, seed=1, progress=False, n_jobs=j),
        ),
        ("lmer sleepstudy profile", lambda j: m.confint(n_jobs=j)),
        (
            f"glmer cbpp boot nsim={n_glmer}",
            lambda j: g.confint(method="boot", nsim=n_glmer, seed=1, progress=False, n_jobs=j),
        ),
        ("glmer cbpp profile", lambda j: g.confint(n_jobs=j)),
    ]


def timed(fn, n_jobs: int):
    t0 = time.perf_counter()
    out = fn(n_jobs)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--nsim-scale", type=float, default=1.0)
    args = ap.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    # other work on the machine takes the second core: the load says how much there was
    print(f"cores available: {available_cores()}, load average before: {load}")
    print(f"{'job':34s} {'n_jobs=1':>10s} {'n_jobs=2':>10s} {'speed-up':>9s}  same")
    for name, fn in jobs(args.nsim_scale):
        best1 = best2 = float("inf")
        same = True
        for _ in range(args.repeat):
            t1, a = timed(fn, 1)
            t2, b = timed(fn, 2)
            best1, best2 = min(best1, t1), min(best2, t2)
            same = same and np.array_equal(a.to_numpy(), b.to_numpy(), equal_nan=True)
        print(f"{name:34s} {best1:9.2f}s {best2:9.2f}s {best1 / best2:8.2f}x  {same}")


if __name__ == "__main__":
    main()
