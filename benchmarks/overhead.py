"""lme2sm.lmer versus the same model written by hand in statsmodels, side by side.

For each model: the hand-written ``smf.mixedlm(...).fit()`` call (statsmodels' default
optimiser), lme2sm's whole pipeline (parse, translate, robust fit, relabel), and the
log-likelihood each reached against lme4's (from the committed fixtures). Prints the
time ratio lme2sm / statsmodels per model.

First, the model frame's time per fit (``build_model_frame``: checks, complete rows,
grouping columns, X, y, Z): the median of ``--frame-runs`` runs with plain columns read
by numpy (the default; wall and CPU time) and, side by side, with patsy evaluating every
factor (the path before the numpy one; ``design._plain_build`` switched off), and their
ratio. Run it with ``PYTHONPATH`` at the tree to time (from ``benchmarks/`` Python would
otherwise import the installed copy).

    python benchmarks/overhead.py [--repeat 3] [--frame-runs 300] [--frame-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path
from unittest import mock

import statsmodels.formula.api as smf

import lme2sm
from lme2sm.datasets import load
from lme2sm.frame import design
from lme2sm.frame.model_frame import build_model_frame

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "models"

MODELS = [
    "sleepstudy_corr",
    "sleepstudy_uncorr",
    "dyestuff",
    "pastes_nested",
    "penicillin",
    "orthodont",
    "machines_factor_slope",
    "oats",
    "schools_intercepts",
    "schools_slopes",
    "schools_crossed",
    "schools_polish",
]


def best_of(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def median_ms(fn, runs: int) -> tuple[float, float]:
    """The median wall and CPU (``time.process_time``) milliseconds of ``runs`` calls."""
    for _ in range(5):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3


def frame_times(runs: int) -> None:
    """The model frame per fit, numpy path versus patsy's evaluation, interleaved; each
    the best of three rounds' medians (wall; CPU for the numpy path)."""
    print(
        f"{'model frame':24} {'numpy ms':>9} {'cpu ms':>7} {'patsy ms':>9} {'ratio':>6}  formula"
    )
    for name in MODELS:
        fx = json.loads((FIXTURES / f"{name}.json").read_text())
        data = load(fx["dataset"])

        def frame(fx=fx, data=data):
            return build_model_frame(fx["formula"], data)

        def frame_patsy(fx=fx, data=data):
            with mock.patch.object(design, "_plain_build", lambda *a: None):
                return build_model_frame(fx["formula"], data)

        ours, ref = [], []
        for _ in range(3):  # interleaved rounds, so both see the same machine load
            ours.append(median_ms(frame, runs // 3))
            ref.append(median_ms(frame_patsy, runs // 3)[0])
        t_np, t_cpu = min(w for w, _ in ours), min(c for _, c in ours)
        t_patsy = min(ref)
        print(
            f"{name:24} {t_np:9.2f} {t_cpu:7.2f} {t_patsy:9.2f} {t_np / t_patsy:6.2f}  "
            f"{fx['formula']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--frame-runs", type=int, default=300)
    parser.add_argument("--frame-only", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    frame_times(args.frame_runs)
    if args.frame_only:
        return
    print()
    print(
        f"{'model':24} {'sm s':>8} {'lme2sm s':>9} {'ratio':>6} {'sm logLik':>12} "
        f"{'lme2sm logLik':>14} {'lme4 logLik':>12} engine"
    )
    for name in MODELS:
        fx = json.loads((FIXTURES / f"{name}.json").read_text())
        data = load(fx["dataset"])
        t = lme2sm.translate(fx["formula"], data, REML=fx["REML"])
        kwargs = t.model_kwargs()

        def by_hand(t=t, kwargs=kwargs, reml=fx["REML"]):
            return smf.mixedlm(t.fixed_formula, t.data, **kwargs).fit(reml=reml)

        def ours(fx=fx, data=data):
            return lme2sm.lmer(fx["formula"], data, REML=fx["REML"])

        t_sm, r_sm = best_of(by_hand, args.repeat)
        t_us, r_us = best_of(ours, args.repeat)
        print(
            f"{name:24} {t_sm:8.3f} {t_us:9.3f} {t_us / t_sm:6.2f} {r_sm.llf:12.4f} "
            f"{r_us.logLik():14.4f} {fx['logLik']:12.4f} {r_us.outcome.engine}"
        )


if __name__ == "__main__":
    main()
