"""lmer's fit time on every fixture model against earlier commits, in one run (issue #20).

The lmer counterpart of ``benchmarks/glmer_overhead.py`` (whose :func:`export` it uses):
each commit given with ``--against`` is exported into a temporary directory, and one
subprocess per tree and round fits every model of ``tests/fixtures/models`` (and
``lmer_extra``) with that tree's ``lme2sm.lmer`` on the same data (this tree's
``tests/conftest.py`` loads it): one warm-up fit, then the least CPU time
(``time.process_time``) of ``--fits`` fits (default 5: one fit of a 10 ms model moved
by 20 % from run to run). The trees take turns, ``--rounds`` rounds (default 3), and
each model's best time per tree is kept. Printed per model: each tree's CPU
milliseconds, optimiser evaluations and logLik, and this tree's time over each other's
(below 1: faster now); then the median and worst ratios.

    python benchmarks/lmer_overhead.py [--against 75647b8] [--rounds 3] [--fits 5]
        [--only a,b]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _glmer_overhead():
    """``benchmarks/glmer_overhead.py``: a sibling script (benchmarks/ is sys.path[0])."""
    import glmer_overhead

    return glmer_overhead


def child(tree: str, names: str, fits: str) -> None:
    """In a subprocess: fit each model with the lme2sm of ``tree``; print JSON."""
    sys.path.insert(0, tree)
    import lme2sm

    assert Path(lme2sm.__file__).resolve().is_relative_to(Path(tree).resolve()), lme2sm.__file__
    sys.path.insert(1, str(ROOT / "tests"))
    from conftest import fixture_data, lme4_answer

    out = {}
    for name in names.split(","):
        fx = lme4_answer(name)
        data = fixture_data(fx)
        args = dict(REML=fx["REML"], weights=fx.get("weights"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lme2sm.lmer(fx["formula"], data, **args)  # warm-up: caches, imports
            cpu = float("inf")
            for _ in range(int(fits)):
                start = time.process_time()
                m = lme2sm.lmer(fx["formula"], data, **args)
                cpu = min(cpu, time.process_time() - start)
        out[name] = {"cpu": cpu, "evals": int(m.engine_fit.n_evals), "logLik": float(m.logLik())}
    print(json.dumps(out))


def run(tree: Path, names: list[str], fits: int) -> dict:
    return _glmer_overhead().child_json(__file__, tree, ",".join(names), str(fits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", action="append", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fits", type=int, default=5)
    parser.add_argument("--only", default=None)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import ALL_NAMES

    names = args.only.split(",") if args.only else list(ALL_NAMES)
    revs = args.against or ["75647b8"]
    best: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {rev: _glmer_overhead().export(rev, Path(tmp)) for rev in revs}
        trees["this"] = ROOT
        for _ in range(args.rounds):
            for label, tree in trees.items():
                for name, res in run(tree, names, args.fits).items():
                    kept = best.setdefault(label, {}).get(name)
                    if kept is None or res["cpu"] < kept["cpu"]:
                        best[label][name] = res
    print(f"CPU ms, best of {args.rounds} interleaved rounds x {args.fits} fits (1 warm-up)")
    print(f"{'model':32s} " + " ".join(f"{lb:>16s}" for lb in trees) + "   this/that")
    ratios: dict[str, list[float]] = {rev: [] for rev in revs}
    for name in names:
        cells = []
        for label in trees:
            res = best[label][name]
            cells.append(f"{1e3 * res['cpu']:8.1f} ms {res['evals']:4d}")
        this = best["this"][name]["cpu"]
        line = []
        for rev in revs:
            ratios[rev].append(this / best[rev][name]["cpu"])
            dl = best["this"][name]["logLik"] - best[rev][name]["logLik"]
            line.append(f"{ratios[rev][-1]:.3f} (dlogLik {dl:+.1e})")
        print(f"{name:32s} " + " ".join(cells) + "   " + "  ".join(line))
    for rev in revs:
        r = ratios[rev]
        worst = max(range(len(r)), key=r.__getitem__)
        print(
            f"this/{rev}: median {statistics.median(r):.3f}, worst {r[worst]:.3f} "
            f"({names[worst]}), best {min(r):.3f}"
        )


if __name__ == "__main__":
    main()
