"""Which sparse factorisation for crossed designs at scale? Issue #21's measurement.

For the scalar crossed model ``y ~ x + (1|g1) + (1|g2)`` the PLS system is
A = Lambda'Z'Z Lambda + I (sparse_system.py). This script builds Z'Z for three data
sets (crossed_data.py):

* ``students-teachers``: 25,000 rows, 10,000 students x 1,300 teachers, partially crossed;
* ``students-teachers-10x``: the same design ten times larger (13,000 teachers, 500
  schools), where the Schur complement is large but stays sparse;
* ``movielens-1M``: 1M rows, 20,000 users x 5,000 items, Zipf-like counts;
* ``movielens-5M``: 5M rows, 100,000 users x 30,000 items;

and times every candidate of sparse_methods.py / sparse_krylov.py on it, each in its own
subprocess (so ``ru_maxrss`` is that candidate's; the subprocess loads only the
cross-products, never the rows): the analysis once, then the numeric factorisation and
log|A| at each theta of :data:`THETAS` (median reported), a solve of A on Lambda'Z'[X y],
and the ML deviance from them. Agreement is against the data set's reference (numpy's
dense Cholesky of A where it fits, else the dense Schur complement, which is the same
algebra through LAPACK), in log|A| and in logLik = -deviance/2, the largest over the
thetas. BLAS runs on one thread in every subprocess (the machine's two cores are
shared; see SPARSE_CANDIDATES.md for the two-thread numbers).

A candidate name with ``+openblas`` runs with ``LD_LIBRARY_PATH`` pointing at Debian's
OpenBLAS unpacked in ``--openblas`` (not installed: the system's CHOLMOD otherwise links
the reference BLAS, which is what Debian's R and lme4 use too).

Usage: ``python benchmarks/sparse_candidates.py [--data NAME ...] [--only CAND ...]``;
results are merged into ``benchmarks/out/sparse_candidates.json`` and printed as a table.
Run with a Python that has the optional libraries (a separate venv); those missing fail
their row only.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import crossed_data as cd  # noqa: E402
import sparse_system as ss  # noqa: E402

OUT = HERE / "out"
RESULTS = OUT / "sparse_candidates.json"
THETAS = [(0.8, 0.5), (0.3, 0.2), (1.5, 1.0), (0.1, 0.9), (2.5, 0.3)]
DATASETS = {
    "students-teachers": lambda: cd.students_teachers_codes(),
    "students-teachers-10x": lambda: cd.students_teachers_codes(
        n_rows=250_000, n_students=100_000, n_teachers=13_000, n_schools=500
    ),
    "movielens-1M": lambda: cd.movielens_codes(1_000_000, 20_000, 5_000),
    "movielens-5M": lambda: cd.movielens_codes(5_000_000, 100_000, 30_000),
}
REFERENCE = {
    "students-teachers": "dense",
    "students-teachers-10x": "schur-dense",
    "movielens-1M": "schur-dense",
    "movielens-5M": "schur-dense",
}
COMMON = [
    "splu:NATURAL",
    "splu:MMD_AT_PLUS_A",
    "splu:COLAMD",
    "schur-dense",
    "schur-sparse:cholmod",
    "schur-sparse:qdldl",
    "schur-sparse:splu",
    "cholmod:amd",
    "cholmod:metis",
    "cholmod:natural",
    "cholmod:amd+openblas",
    "cholmod:natural+openblas",
    "sksparse-minimal",
    "cholespy",
    "qdldl",
    "krylov:32:40:1e-4",
    "krylov:128:40:1e-4",
    "krylov:32:40:1e-8",
]
PLAN = {
    "students-teachers": ["dense", "splu:MMD_ATA", *COMMON],
    "students-teachers-10x": [
        "schur-dense",
        "schur-sparse:cholmod",
        "schur-sparse:qdldl",
        "schur-sparse:splu",
        "splu:MMD_AT_PLUS_A",
        "cholmod:amd",
        "cholmod:amd+openblas",
        "cholmod:metis",
        "sksparse-minimal",
        "qdldl",
        "krylov:32:40:1e-4",
        "krylov:32:40:1e-8",
    ],
    "movielens-1M": COMMON,
    "movielens-5M": [
        "schur-dense",
        "cholmod:amd+openblas",
        "cholmod:natural+openblas",
        "krylov:32:40:1e-4",
        "krylov:128:40:1e-4",
        "krylov:32:40:1e-8",
    ],
}
MEMORY_LIMIT = 14 << 30
"""Address-space limit of each subprocess (the machine has 24 GB, shared)."""


def cache_path(name: str) -> Path:
    return OUT / "sparse" / f"{name}.npz"


def write_cache(name: str) -> Path:
    """Z'Z's pieces and the cross-products of a data set, for the subprocesses."""
    path = cache_path(name)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    c = DATASETS[name]()
    P = ss.crossed_system(c.g1, c.g2, c.x, c.y, c.n1, c.n2)
    np.savez(
        path,
        d1=P.d1,
        d2=P.d2,
        indptr=P.N.indptr,
        indices=P.N.indices,
        data=P.N.data,
        zx1=P.zx1,
        zx2=P.zx2,
        xy=P.xy,
        n=P.n,
    )
    return path


def load_cache(name: str) -> ss.Crossed:
    import scipy.sparse as sp

    z = np.load(cache_path(name))
    N = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=(len(z["d1"]), len(z["d2"])))
    return ss.Crossed(z["d1"], z["d2"], N, z["zx1"], z["zx2"], z["xy"], int(z["n"]))


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_child(dataset: str, candidate: str, budget: float) -> dict:
    """Time one candidate on one data set (in this process); returns the record."""
    import tracemalloc

    from sparse_methods import make_candidate

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    P = load_cache(dataset)
    base = _maxrss_mb()
    tracemalloc.start()
    m = make_candidate(candidate.split("+")[0])
    t0 = time.perf_counter()
    m.analyse(P)
    rec: dict = {"analyse": time.perf_counter() - t0, "factor": [], "solve": [], "logdet": []}
    rec["deviance"] = []
    start = time.perf_counter()
    for theta in THETAS:
        t0 = time.perf_counter()
        ld, solve = m.factor(theta)
        t1 = time.perf_counter()
        dev, _ = ss.ml_deviance(P, theta, ld, solve)
        rec["factor"].append(t1 - t0)
        rec["solve"].append(time.perf_counter() - t1)
        rec["logdet"].append(ld)
        rec["deviance"].append(dev)
        if time.perf_counter() - start > budget:
            break
    rec["py_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    rec["rss_mb"] = _maxrss_mb() - base
    rec["fill"] = m.fill()
    if hasattr(m, "iterations"):
        rec["cg_iterations"] = m.iterations
    return rec


def spawn(dataset: str, candidate: str, budget: float, timeout: float, openblas: str) -> dict:
    """Run :func:`run_child` in a fresh interpreter with one BLAS thread."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    if candidate.endswith("+openblas"):
        env["LD_LIBRARY_PATH"] = openblas
    cmd = [sys.executable, __file__, "--child", dataset, candidate, str(budget)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f} s"}
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or [f"exit {p.returncode}"])[-1]
        return {"error": tail[:160]}
    return json.loads(lines[-1])


def agreement(rec: dict, ref: dict) -> dict:
    """Largest |log|A| - ref| and |logLik - ref| over the thetas both ran."""
    k = min(len(rec["logdet"]), len(ref["logdet"]))
    ld = np.abs(np.subtract(rec["logdet"][:k], ref["logdet"][:k]))
    dd = np.subtract(rec["deviance"][:k], ref["deviance"][:k])
    solves = np.abs(dd - np.subtract(rec["logdet"][:k], ref["logdet"][:k])) / 2.0
    return {
        "logdet_err": float(np.max(ld)),
        "loglik_err": float(np.max(np.abs(dd) / 2.0)),
        "solve_err": float(np.max(solves)),
    }


def _fmt(x, spec: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def table(results: dict) -> str:
    """The results as a Markdown table, one row per (data set, candidate)."""
    head = (
        "| data | candidate | analyse s | factor s (median) | solve s | fill (nnz L) "
        "| peak MB | max abs dlog|A| | max abs dlogLik | of which solves |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = [head]
    for data, recs in results.items():
        ref = recs.get(REFERENCE[data])
        for cand, r in recs.items():
            if "error" in r:
                rows.append(f"| {data} | {cand} | failed: {r['error']} ||||||||")
                continue
            a = agreement(r, ref) if ref and "error" not in ref else {}
            fill = r.get("fill")
            rows.append(
                f"| {data} | {cand} | {r['analyse']:.3f} | {np.median(r['factor']):.3f}"
                f" ({len(r['factor'])}) | {np.median(r['solve']):.3f} | "
                f"{_fmt(fill, ',')} | {max(r['rss_mb'], r['py_peak_mb']):,.0f} | "
                f"{_fmt(a.get('logdet_err'), '.1e')} | {_fmt(a.get('loglik_err'), '.1e')} | "
                f"{_fmt(a.get('solve_err'), '.1e')} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=3, metavar=("DATA", "CANDIDATE", "BUDGET"))
    ap.add_argument("--data", nargs="*", default=list(DATASETS))
    ap.add_argument("--only", nargs="*", help="candidates to (re)run; default: the plan")
    ap.add_argument("--budget", type=float, default=120.0, help="seconds before fewer thetas")
    ap.add_argument("--timeout", type=float, default=1500.0)
    ap.add_argument(
        "--openblas", default="/work/openblas-private/usr/lib/x86_64-linux-gnu/openblas-pthread"
    )
    ap.add_argument("--table", action="store_true", help="print the stored table only")
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps(run_child(a.child[0], a.child[1], float(a.child[2]))))
        return
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not a.table:
        for data in a.data:
            write_cache(data)
            recs = results.setdefault(data, {})
            for cand in a.only or PLAN[data]:
                t0 = time.perf_counter()
                recs[cand] = spawn(data, cand, a.budget, a.timeout, a.openblas)
                print(f"{data} {cand}: {time.perf_counter() - t0:.1f} s", flush=True)
                RESULTS.write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
