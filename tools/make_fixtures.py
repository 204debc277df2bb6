"""Driver for the lme4 reference fixtures (the R work is in tools/make_fixtures.R).

Run from the project root:

    python tools/make_fixtures.py                 # write schools.csv, then run the R script
    python tools/make_fixtures.py --schools-only  # only write lme2sm/datasets/schools.csv

``Rscript tools/make_fixtures.R`` calls ``--schools-only`` itself first, so either entry
point regenerates everything. Set $RSCRIPT to use another Rscript.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lme2sm.datasets.generate import make_schools  # noqa: E402

SCHOOLS_CSV = ROOT / "lme2sm" / "datasets" / "schools.csv"


def write_schools(path: Path = SCHOOLS_CSV) -> Path:
    """Write make_schools() (default seed) as CSV; the committed file must equal it."""
    df = make_schools()
    df.to_csv(path, index=False, lineterminator="\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--schools-only", action="store_true", help="only write lme2sm/datasets/schools.csv"
    )
    args = parser.parse_args(argv)
    path = write_schools()
    print(f"wrote {path.relative_to(ROOT)}")
    if args.schools_only:
        return 0
    rscript = os.environ.get("RSCRIPT", "Rscript")
    env = dict(os.environ, LME2SM_SCHOOLS_DONE="1", PYTHON=sys.executable)
    return subprocess.call([rscript, str(ROOT / "tools" / "make_fixtures.R")], cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
