"""glmer's fit time against earlier commits, side by side in one run (issue #20).

Each commit given with ``--against`` is exported (``git archive``) into a temporary
directory; every fit runs in a fresh subprocess with that tree first on ``sys.path``
(this working tree's too), one warm-up fit and then one timed fit of
``lme2sm.glmer`` (CPU time, ``time.process_time``). The trees take turns, ``--rounds``
rounds (default 5), and the best time of each is kept: the machine's other load falls
on all of them alike. Printed per model: each tree's best CPU seconds, logLik,
optimiser evaluations and PLS solves, and the ratio of this tree's time to each
other's (below 1: faster now). ``benchmarks/glmer.py --against REV`` prints the same
fits (:func:`export`, :func:`best_of`) beside lme4's.

    python benchmarks/glmer_overhead.py [--against 75647b8] [--against main]
        [--rounds 5] [--only cbpp,verbagg]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("cbpp", "grouseticks", "verbagg", "verbagg_corr", "binary_20000")


def child(tree: str, name: str) -> None:
    """In a subprocess: fit ``name`` with the lme2sm of ``tree``; print JSON."""
    sys.path.insert(0, tree)
    import lme2sm

    assert Path(lme2sm.__file__).resolve().is_relative_to(Path(tree).resolve()), lme2sm.__file__
    import glmer as bench  # a sibling script: benchmarks/ is sys.path[0]

    dataset, formula, family, nagq = bench.MODELS[name]
    data = bench.load(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lme2sm.glmer(formula, data, family, nAGQ=nagq)  # warm-up: imports, caches
        start = time.process_time()
        m = lme2sm.glmer(formula, data, family, nAGQ=nagq)
        cpu = time.process_time() - start
    out = {
        "cpu": cpu,
        "logLik": float(m.logLik()),
        "evals": int(m.engine_fit.n_evals),
        "pls": int(m.problem.evaluations),
    }
    print(json.dumps(out))


def export(rev: str, into: Path) -> Path:
    """The tree of commit ``rev`` under ``into``."""
    target = into / rev.replace("/", "_")
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "lme2sm"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def child_json(script: str, tree: Path, *args: str):
    """``script --child tree args...`` in a fresh subprocess run in ``tree``: the JSON
    of its last line (its stderr's tail in the error if it fails)."""
    out = subprocess.run(
        [sys.executable, script, "--child", str(tree), *args],
        capture_output=True,
        text=True,
        cwd=tree,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{tree} {' '.join(args)}: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(tree: Path, name: str) -> dict:
    return child_json(__file__, tree, name)


def best_of(trees: dict[str, Path], name: str, rounds: int) -> dict[str, dict]:
    """Each tree's fit of ``name`` with the least CPU time over ``rounds`` rounds, the
    trees taking turns (one fresh subprocess per fit, :func:`run`)."""
    best: dict[str, dict] = {}
    for _ in range(rounds):
        for label, tree in trees.items():
            res = run(tree, name)
            if label not in best or res["cpu"] < best[label]["cpu"]:
                best[label] = res
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", action="append", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default=None)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    revs = args.against or ["75647b8"]
    names = args.only.split(",") if args.only else list(MODELS)
    print(f"CPU seconds, best of {args.rounds} interleaved rounds (1 warm-up fit each)")
    header = f"{'model':14s} {'tree':10s} {'cpu':>7s} {'logLik':>14s} {'evals':>6s} {'pls':>6s}"
    print(header + "  this/that")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {rev: export(rev, Path(tmp)) for rev in revs}
        trees["this"] = ROOT
        for name in names:
            best = best_of(trees, name, args.rounds)
            this = best["this"]["cpu"]
            for label, res in best.items():
                ratio = "" if label == "this" else f"  {this / res['cpu']:.3f}"
                print(
                    f"{name:14s} {label:10s} {res['cpu']:7.3f} {res['logLik']:14.6f} "
                    f"{res['evals']:6d} {res['pls']:6d}{ratio}"
                )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
