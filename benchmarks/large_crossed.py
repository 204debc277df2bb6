"""30M MovieLens-shaped rows from Parquet and from a two-worker Dask LocalCluster (#21).

``y ~ 1 + x + (1|user) + (1|item)`` by ML with ``factor="krylov"`` on the rows of
:func:`crossed_data.write_movielens_parquet` (200,000 users x 50,000 items, Zipf-like
counts). Prints wall and CPU time, peak RSS of this process (and of the workers),
evaluations, products with S, and the recovered SDs against the simulated ones.

Usage: ``python benchmarks/large_crossed.py [--rows N --users U --items I] [--dir D]
[--source parquet|dask|both]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("LME2SM_PROGRESS", "0")

from crossed_data import FIXEF, MOVIELENS_SD, add_shape_arguments, write_movielens_parquet  # noqa: E402

import lme2sm  # noqa: E402

FORMULA = "y ~ 1 + x + (1|user) + (1|item)"


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def report(label: str, m, wall: float, cpu: float, workers: str = "") -> None:
    sd = {t.group: float(np.sqrt(t.cov[0, 0])) for t in m.term_covariances}
    sd["residual"] = m.sigma
    rel = {g: sd[g] / MOVIELENS_SD[g] - 1 for g in sd}
    k = m.profiled
    print(
        f"{label}: wall {wall:.1f} s, cpu {cpu:.1f} s, peak RSS {peak_gb():.2f} GB{workers}, "
        f"evals {m.engine_fit.n_evals}, S products {k.counts['products']} "
        f"(log-det {k.counts['logdet_s']:.1f} s, solves {k.counts['solve_s']:.1f} s, "
        f"CG iterations {sum(k.cg_iterations)})\n  logLik {m.logLik():.4f} +/- "
        f"{0.5 * m.engine_fit.logdet_se:.1e}; fixef "
        f"{np.array2string(m.fixef().to_numpy(), precision=5)} (simulated {FIXEF})\n  SDs "
        + ", ".join(f"{g} {v:.4f} ({rel[g]:+.2%})" for g, v in sd.items())
        + f"  (simulated {MOVIELENS_SD})",
        flush=True,
    )


def fit(source, label: str, workers: str = "") -> None:
    t0, c0 = time.perf_counter(), time.process_time()
    m = lme2sm.lmer(FORMULA, source, REML=False, factor="krylov")
    report(label, m, time.perf_counter() - t0, time.process_time() - c0, workers)


def fit_dask(directory: str) -> None:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="3GB") as cluster:
        with Client(cluster) as client:
            frame = dd.read_parquet(directory)
            fit(frame, "dask (2 workers)", _workers(client))


def _workers(client) -> str:
    def peak():
        import resource as r

        return r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1e6

    peaks = client.run(peak)
    return ", workers' peak RSS " + ", ".join(f"{v:.2f}" for v in peaks.values()) + " GB"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_arguments(ap, 30_000_000, 200_000, 50_000)
    ap.add_argument("--dir", default="/tmp/lme2sm_large_crossed")
    ap.add_argument("--source", choices=("parquet", "dask", "both"), default="both")
    a = ap.parse_args(argv)
    if not os.path.isdir(a.dir) or not os.listdir(a.dir):
        t0 = time.perf_counter()
        write_movielens_parquet(a.dir, a.rows, a.users, a.items)
        print(f"wrote {a.rows:,} rows to {a.dir} in {time.perf_counter() - t0:.1f} s")
    print(f"{a.rows:,} rows, {a.users:,} users x {a.items:,} items; {FORMULA}, ML, krylov")
    if a.source in ("parquet", "both"):
        fit(a.dir, "parquet")
    if a.source in ("dask", "both"):
        fit_dask(a.dir)


if __name__ == "__main__":
    main()
