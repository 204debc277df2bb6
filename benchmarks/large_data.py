"""lmer on data beyond memory: Parquet and a two-worker Dask cluster against pandas.

    python benchmarks/large_data.py                  # 30 million rows (the issue's size)
    python benchmarks/large_data.py --rows 10e6      # smaller
    python benchmarks/large_data.py --rows 10e6 --skip-dask

Generates the panel of :func:`lme2sm.large.example_panel` (students nested in classes
in schools, crossed with teachers) as Parquet files of ``--file-rows`` rows each, then
fits ``y ~ x + arm + (1|student) + (1|teacher) + (1|school/classroom)``:

* from the Parquet files (streamed with ``ParquetFile.iter_batches`` in this process);
* from ``dask.dataframe.read_parquet`` on a ``LocalCluster`` of two worker processes;
* in memory (pandas, :func:`lme2sm.frame.model_frame.build_model_frame` and the same engine)
  on ``--memory-rows`` rows, for the time per million rows.

Each fit runs in a fresh Python process so that its peak memory (``ru_maxrss`` of
``resource.getrusage``: the calling process, not the Dask workers) is its own. Prints
the peak, the time per million rows, the recovered standard deviations beside the
simulated ones, and what pandas would need to hold all rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from lme2sm.engine.frame_input import profiled_of

FORMULA = "y ~ x + arm + (1 | student) + (1 | teacher) + (1 | school/classroom)"
SIZES = dict(n_students=20_000, n_teachers=50, n_schools=50, classes_per_school=8)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(root: Path, rows: int, file_rows: int) -> float:
    """Write the Parquet files; return pandas' bytes per row for this data."""
    from lme2sm.large import example_panel

    root.mkdir(parents=True, exist_ok=True)
    per_row = 0.0
    for i, start in enumerate(range(0, rows, file_rows)):
        n = min(file_rows, rows - start)
        df = example_panel(n, seed=1000 + i, **SIZES)
        if i == 0:
            per_row = df.memory_usage(deep=True).sum() / len(df)
        df.to_parquet(root / f"part-{i:04d}.parquet", row_group_size=250_000)
        sys.stderr.write(f"\rgenerated {start + n:,} rows")
    sys.stderr.write("\n")
    return per_row


def sds(fit, frame) -> dict:
    import numpy as np

    out = {t.group: float(np.sqrt(c[0, 0])) for t, c in zip(frame.terms, fit.covariances())}
    out["Residual"] = float(fit.sigma)
    return out


def run_part(args) -> dict:
    """One fit in this process; a JSON line with time, peak memory and the SDs."""
    warnings.simplefilter("ignore")
    from lme2sm.large import fit_large

    t0 = time.perf_counter()
    if args.part == "parquet":
        large = fit_large(FORMULA, str(args.data), progress=True)
        frame, fit, n = large.frame, large.engine_fit, large.frame.n
    elif args.part == "dask":
        import dask.dataframe as dd
        from distributed import Client, LocalCluster

        with (
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
            Client(cluster),
        ):
            t0 = time.perf_counter()
            ddf = dd.read_parquet(str(args.data))
            large = fit_large(FORMULA, ddf, progress=True)
        frame, fit, n = large.frame, large.engine_fit, large.frame.n
    else:  # pandas in memory
        import pandas as pd

        from lme2sm.frame.model_frame import build_model_frame

        frames, have = [], 0
        for f in sorted(Path(args.data).glob("*.parquet")):  # only the files needed
            if have >= args.memory_rows:
                break
            frames.append(pd.read_parquet(f))
            have += len(frames[-1])
        df = pd.concat(frames, ignore_index=True).iloc[: args.memory_rows]
        t0 = time.perf_counter()
        frame = build_model_frame(FORMULA, df)
        fit = profiled_of(frame).fit()
        n = frame.n
    seconds = time.perf_counter() - t0
    return {
        "part": args.part,
        "rows": n,
        "seconds": seconds,
        "engine_seconds": fit.seconds,
        "evaluations": fit.n_evals,
        "peak_mb": peak_mb(),
        "logLik": fit.logLik,
        "sds": sds(fit, frame),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=float, default=30e6)
    p.add_argument("--file-rows", type=float, default=1e6)
    p.add_argument("--memory-rows", type=float, default=2e6)
    p.add_argument("--dir", type=Path, default=None, help="keep the Parquet files here")
    p.add_argument("--skip-dask", action="store_true")
    p.add_argument(
        "--only", choices=["parquet", "dask", "memory"], help="run one of the three fits"
    )
    p.add_argument("--part", choices=["parquet", "dask", "memory"], help=argparse.SUPPRESS)
    p.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.memory_rows = int(args.memory_rows)
    if args.part:
        print(json.dumps(run_part(args)))
        return
    from lme2sm.large import SDS

    rows = int(args.rows)
    tmp = None
    if args.dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="lme2sm-large-")
        args.dir = Path(tmp.name)
    data = args.dir / f"panel-{rows}"
    if not data.exists():
        per_row = generate(data, rows, int(args.file_rows))
    else:
        import pandas as pd

        first = sorted(data.glob("*.parquet"))[0]
        df = pd.read_parquet(first)
        per_row = df.memory_usage(deep=True).sum() / len(df)
    parts = ["parquet"] + ([] if args.skip_dask else ["dask"]) + ["memory"]
    if args.only:
        parts = [args.only]
    results = []
    for part in parts:
        cmd = [sys.executable, __file__, "--part", part, "--data", str(data)]
        cmd += ["--memory-rows", str(args.memory_rows)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"\n{FORMULA}\n{rows:,} rows; the pandas frame alone: {per_row * rows / 1e9:.1f} GB")
    mem = [r for r in results if r["part"] == "memory"]
    if mem:
        per_m = mem[0]["peak_mb"] / (mem[0]["rows"] / 1e6)
        print(f"the in-memory path's peak scaled to {rows:,} rows: {per_m * rows / 1e9:.1f} GB")
    print(f"{'source':<10}{'rows':>12}{'s/million':>11}{'engine s':>10}{'peak MB':>9}")
    for r in results:
        per_m = r["seconds"] / (r["rows"] / 1e6)
        print(
            f"{r['part']:<10}{r['rows']:>12,}{per_m:>11.1f}{r['engine_seconds']:>10.1f}"
            f"{r['peak_mb']:>9.0f}"
        )
    print(f"\n{'SD':<18}{'simulated':>10}" + "".join(f"{r['part']:>10}" for r in results))
    for name, sd in SDS.items():
        cells = "".join(f"{r['sds'].get(name, float('nan')):>10.4f}" for r in results)
        print(f"{name:<18}{sd:>10.4f}{cells}")
    big = [r for r in results if r["part"] != "memory"]
    if len(big) == 2:
        print(f"\nlogLik parquet - dask: {big[0]['logLik'] - big[1]['logLik']:.2e}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
