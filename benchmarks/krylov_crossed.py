"""Exact against Krylov (``lmer(..., factor="krylov")``) on MovieLens-shaped data (#21).

``y ~ 1 + x + (1|user) + (1|item)`` by ML on :func:`crossed_data.movielens_frame`
(Zipf-like counts per level; 1,000,000 rows, 20,000 users x 5,000 items by default).
Prints, for each fit, CPU seconds (``time.process_time``, one run each: a fit takes
minutes, so no best of 5), evaluations, logLik, theta, fixed effects, sigma and the
recovered SDs against the simulated ones; then the Krylov fit's differences from the
exact fit; then how the log-determinant's error falls with the number of probes (with
and without the deflation subspace, three probe seeds each) at the exact optimum, where
the exact deviance is known.

Usage: ``python benchmarks/krylov_crossed.py [--rows N --users U --items I]
[--skip-exact] [--no-sweep]``. Needs the 1M-row exact fit's ~3 GB (dense 5,000^2 block).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("LME2SM_PROGRESS", "0")

from crossed_data import FIXEF, MOVIELENS_SD, add_shape_arguments, movielens_frame  # noqa: E402

import lme2sm  # noqa: E402
from lme2sm.engine.frame_input import frame_crossprods, term_specs  # noqa: E402
from lme2sm.engine.krylov import KrylovLMM  # noqa: E402
from lme2sm.frame.model_frame import build_model_frame  # noqa: E402

FORMULA = "y ~ 1 + x + (1|user) + (1|item)"


def fit(df, factor: str):
    t0 = time.process_time()
    m = lme2sm.lmer(FORMULA, df, REML=False, factor=factor)
    seconds = time.process_time() - t0
    print(
        f"{factor:7s} cpu {seconds:8.1f} s  evals {m.engine_fit.n_evals:3d}  "
        f"logLik {m.logLik():.6f}  theta {np.array2string(m.theta, precision=7)}  "
        f"fixef {np.array2string(m.fixef().to_numpy(), precision=7)}  sigma {m.sigma:.7f}",
        flush=True,
    )
    print(f"        SDs recovered: {_sds(m)}  (simulated {MOVIELENS_SD}, fixef {FIXEF})")
    return m, seconds


def _sds(m) -> str:
    sd = {t.group: float(np.sqrt(t.cov[0, 0])) for t in m.term_covariances}
    sd["residual"] = m.sigma
    return ", ".join(f"{k} {v:.4f}" for k, v in sd.items())


def compare(exact, krylov) -> None:
    fe, fk = exact.fixef().to_numpy(), krylov.fixef().to_numpy()
    print(
        f"krylov - exact: logLik {krylov.logLik() - exact.logLik():+.2e} "
        f"(stated +/- {0.5 * krylov.engine_fit.logdet_se:.1e}), "
        f"theta max rel {np.max(np.abs(krylov.theta / exact.theta - 1)):.1e}, "
        f"fixef max rel {np.max(np.abs(fk / fe - 1)):.1e}, "
        f"sigma rel {krylov.sigma / exact.sigma - 1:+.1e}"
    )


def sweep(df, theta, exact_deviance: float) -> None:
    """The ML deviance's error at ``theta`` by probes and deflation, three seeds each."""
    frame = build_model_frame(FORMULA, df)
    cp, specs = frame_crossprods(frame), term_specs(frame)
    print("deviance error (= -2 x logLik error) at the exact optimum, three probe seeds:")
    head = ("deflate", "probes", "errors (3 seeds)", "mean |err|", "SE(dev)", "cpu s")
    print(" ".join(h.rjust(w) for h, w in zip(head, (7, 6, 30, 10, 8, 6))))
    for deflate in (0, 16):
        for probes in (8, 32, 128):
            errs, ses, secs = [], [], []
            for seed in (1, 2, 3):
                k = KrylovLMM(cp, specs, probes=probes, deflate=deflate, seed=seed)
                t0 = time.process_time()
                errs.append(k.evaluate(theta).deviance_ml - exact_deviance)
                secs.append(time.process_time() - t0)
                ses.append(k.last_logdet_se)
            cells = " ".join(f"{e:+.4f}" for e in errs)
            print(
                f"{deflate:7d} {probes:6d} {cells:>30s} {np.mean(np.abs(errs)):10.4f} "
                f"{np.mean(ses):8.4f} {min(secs):6.2f}",
                flush=True,
            )


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_arguments(ap)
    ap.add_argument("--skip-exact", action="store_true")
    ap.add_argument("--no-sweep", action="store_true")
    args = ap.parse_args(argv)
    df = movielens_frame(args.rows, args.users, args.items)
    print(f"{args.rows:,} rows, {args.users:,} users x {args.items:,} items; {FORMULA}, ML")
    krylov, _ = fit(df, "krylov")
    if args.skip_exact:
        return
    exact, _ = fit(df, "exact")
    compare(exact, krylov)
    if not args.no_sweep:
        sweep(df, exact.theta, exact.deviance())


if __name__ == "__main__":
    main()
