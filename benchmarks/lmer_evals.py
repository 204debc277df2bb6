"""lmer's deviance evaluations on every fixture model: this tree against a commit.

Evaluations of the profiled deviance are deterministic (the same data, the same
arithmetic), so their count compares two optimisers without the noise of timings on a
shared machine. The commit given with ``--against`` (default ``main``) is exported into
a temporary directory; one subprocess per tree fits every model of
``tests/fixtures/models`` and ``lmer_extra`` with that tree's ``lme2sm.lmer`` on the
same data (this tree's ``tests/conftest.py`` loads it). ``--set FitDriver.NAME=value``
(repeatable) changes a class attribute of this tree's engine before its fits, to
measure a setting without editing it. Printed: per model each tree's evaluations and
logLik, the difference of both; then the totals, the models that changed and the
largest logLik difference. ``--covstruct``: the Gaussian models of
``tests/fixtures/covstruct`` (``cs``/``ar1``/``diag`` terms, glmmTMB's) instead.

    python benchmarks/lmer_evals.py [--against main] [--only a,b] [--all] [--covstruct]
        [--set FitDriver.MOMENT_START=False]
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _apply(settings: str) -> None:
    """``Class.NAME=value;...`` on the classes of ``lme2sm.engine.driver``/``lmm``."""
    from lme2sm.engine import driver, lmm

    for item in filter(None, settings.split(";")):
        target, value = item.split("=", 1)
        cls_name, attr = target.split(".")
        cls = getattr(driver, cls_name, None) or getattr(lmm, cls_name)
        setattr(cls, attr, ast.literal_eval(value))


def _covstruct_names() -> list[str]:
    """``covstruct/NAME`` of each Gaussian lmer fixture of ``tests/fixtures/covstruct``."""
    names = []
    for path in sorted((ROOT / "tests" / "fixtures" / "covstruct").glob("*.json")):
        fx = json.loads(path.read_text())
        lmer = fx.get("kind", "lmer") == "lmer" and fx.get("family", "gaussian") == "gaussian"
        if not path.stem.startswith("_") and lmer:
            names.append(f"covstruct/{path.stem}")
    return names


def child(tree: str, names: str, settings: str) -> None:
    """In a subprocess: fit each model with the lme2sm of ``tree``; print JSON."""
    sys.path.insert(0, tree)
    import lme2sm

    assert Path(lme2sm.__file__).resolve().is_relative_to(Path(tree).resolve()), lme2sm.__file__
    sys.path.insert(1, str(ROOT / "tests"))
    from conftest import fixture_data, lme4_answer

    _apply(settings)
    out = {}
    for name in names.split(","):
        if name.startswith("covstruct/"):
            from feature_fixtures import data, load

            fx = load("covstruct", name.split("/", 1)[1])
            frame = data(fx["data_path"], tuple(fx["factors"]))
        else:
            fx = lme4_answer(name)
            frame = fixture_data(fx)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = lme2sm.lmer(fx["formula"], frame, REML=fx["REML"], weights=fx.get("weights"))
        out[name] = {"evals": int(m.engine_fit.n_evals), "logLik": float(m.logLik())}
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="main")
    parser.add_argument("--only", default=None)
    parser.add_argument("--all", action="store_true", help="print unchanged models too")
    parser.add_argument(
        "--covstruct", action="store_true", help="the lmer models of tests/fixtures/covstruct"
    )
    parser.add_argument("--set", action="append", default=[], dest="settings")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import ALL_NAMES

    names = args.only.split(",") if args.only else list(ALL_NAMES)
    if args.covstruct:
        names = _covstruct_names()
    import glmer_overhead as overhead  # a sibling script: benchmarks/ is sys.path[0]

    with tempfile.TemporaryDirectory() as tmp:
        that = overhead.export(args.against, Path(tmp))
        before = overhead.child_json(__file__, that, ",".join(names), "")
        after = overhead.child_json(__file__, ROOT, ",".join(names), ";".join(args.settings))
    label = "this" + (" (" + "; ".join(args.settings) + ")" if args.settings else "")
    print(f"deviance evaluations per fixture model: {args.against} -> {label}")
    print(f"{'model':32s} {'before':>7s} {'after':>7s} {'change':>7s}  {'dlogLik':>9s}")
    worst = 0.0
    changed = 0
    for name in names:
        b, a = before[name], after[name]
        dl = a["logLik"] - b["logLik"]
        worst = max(worst, abs(dl))
        diff = a["evals"] - b["evals"]
        changed += diff != 0
        if diff or args.all or abs(dl) > 1e-8:
            print(f"{name:32s} {b['evals']:7d} {a['evals']:7d} {diff:+7d}  {dl:+9.1e}")
    total_b = sum(before[n]["evals"] for n in names)
    total_a = sum(after[n]["evals"] for n in names)
    print(
        f"total over {len(names)} models: {total_b} -> {total_a} ({total_a - total_b:+d}); "
        f"{changed} changed; largest |dlogLik| {worst:.1e}"
    )


if __name__ == "__main__":
    main()
