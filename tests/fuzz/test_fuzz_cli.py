"""Fuzzing the ``lme2sm`` command line, in-process (``lme2sm.cli.main``).

Hostile argv (unknown, repeated and value-less flags, ``--``, options where a formula
or a path goes, odd paths: missing, empty, a directory, ``-``, very long, with a NUL)
and hostile CSV files (headers named like keywords and functions, with quotes, blanks,
duplicates and Unicode; UTF-8 with and without BOM, UTF-16, Latin-1, raw bytes; CRLF and
CR line ends; ragged rows, header only, empty). The property: the exit status is 0 or
2, stderr never holds a Python traceback, and on 2 stderr ends with exactly one error
message (``lme2sm: error ...`` or argparse's ``lme2sm ...: error: ...``), after every
warning.
"""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from pathlib import Path

from fuzz_strategies import FORMULAS, HOSTILE_NAMES, budget, formula_for, quoted
from hypothesis import event, given
from hypothesis import strategies as st

from lme2sm import cli

ERROR_LINE = re.compile(r"^(lme2sm: error\b|lme2sm( \w+)?: error: )")
WARNING_LINE = re.compile(r"^lme2sm: warning: ")


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``lme2sm argv`` in this process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(argv)
        except SystemExit as stop:  # argparse: --help, --version, usage errors
            status = stop.code if isinstance(stop.code, int) else 2
    return status, out.getvalue(), err.getvalue()


def check_cli(argv: list[str]) -> int:
    """The CLI's property for one argv (see the module docstring); returns the status."""
    status, _out, err = run_cli(argv)
    assert status in (0, 2), (status, argv, err)
    assert "Traceback" not in err, (argv, err)
    lines = err.splitlines()
    errors = [i for i, line in enumerate(lines) if ERROR_LINE.match(line)]
    warned = [i for i, line in enumerate(lines) if WARNING_LINE.match(line)]
    if status == 0:
        assert not errors, (argv, err)
    else:
        assert len(errors) == 1, (argv, err)
        assert all(i < errors[0] for i in warned), (argv, err)
        # the message's own continuation lines (a caret, a hint) follow it, nothing else
        assert not any(line.startswith("lme2sm: ") for line in lines[errors[0] + 1 :]), err
    event(f"exit {status}")
    return status


# ------------------------------------------------------------------- CSV files

ENCODINGS = ["utf-8"] * 6 + ["utf-8-sig", "utf-16", "latin-1", "cp1252", "bytes"]
LINE_ENDS = ["\n", "\n", "\r\n", "\r"]
CELLS = ["1", "2.5", "-3", "0", "1e300", "NA", "", "nan", "Inf", "a", "b", "c", "x y",
         '"q,uoted"', "TRUE", "größe", "\u0662", "1,5", "  7 ", "#", '"', "None"]  # fmt: skip


@st.composite
def csv_files(draw, usable: bool = False) -> tuple[bytes, list[str]]:
    """A hostile CSV file's bytes and its header's names; ``usable``: mostly
    comma-separated UTF-8 tables, so that fits run on them."""
    shape = draw(st.sampled_from(["table"] * 12 + ["empty", "blank", "header only"]))
    names = draw(
        st.lists(
            st.one_of(st.sampled_from(HOSTILE_NAMES), st.sampled_from(["y", "x", "g", "h"])),
            min_size=1 if draw(st.integers(0, 4)) == 0 else 4,
            max_size=5,
            unique=draw(st.integers(0, 4)) > 0,
        )
    )
    dirty = draw(st.integers(0, 2)) == 0  # else a clean table a fit can use
    sep = "," if usable and draw(st.integers(0, 5)) else draw(st.sampled_from([",", ";", "\t"]))
    end = draw(st.sampled_from(LINE_ENDS))
    header = sep.join(f'"{n}"' if draw(st.booleans()) else n for n in names)
    rows = []
    if shape == "table":
        n_rows = draw(st.sampled_from([0, 1, 2, 3] + [12, 16, 20, 24] * 3))
        n_groups = draw(st.integers(2, 5))
        for i in range(n_rows):
            ragged = dirty and draw(st.integers(0, 9)) == 0
            width = draw(st.integers(0, 7)) if ragged else len(names)
            cells = []
            for j in range(width):
                if dirty and draw(st.integers(0, 5)) == 0:
                    cells.append(draw(st.sampled_from(CELLS)))
                elif j in (2, 3):
                    cells.append(f"g{i % n_groups}")
                else:
                    cells.append(f"{(i * 7919 + j * 104729) % 97 / 10:.1f}")
            rows.append(sep.join(cells))
    text = {"empty": "", "blank": " \n\n", "header only": header + end}.get(
        shape, end.join([header, *rows]) + end
    )
    encoding = draw(st.sampled_from(ENCODINGS[:7] if usable else ENCODINGS))
    if encoding == "bytes":
        data = draw(st.binary(max_size=64)) + text.encode("utf-8", "replace")
    else:
        data = text.encode(encoding, errors="replace")
    event(f"csv {shape} {encoding}")
    return data, names


# ------------------------------------------------------------------------ argv

FLAGS = ["--ml", "--json", "--approximate", "--family", "--weights", "--nAGQ", "--data",
         "--", "-x", "--bogus", "--json=1", "--ml=no", "-h", "--nAGQ=abc", "--family="]  # fmt: skip
VALUES = ["binomial", "poisson", "nb", "gaussian", "bogus", "1", "0", "-1", "2", "1e3", "",
          "y", "x", "g", "--ml"]  # fmt: skip


@st.composite
def argvs(draw, csv_path: str, paths: dict[str, str]):
    """A command line for ``lme2sm``: usually ``fit`` or ``translate`` with a formula on
    the CSV's columns, with hostile flags, values and paths mixed in."""
    names = draw(
        st.lists(st.sampled_from(HOSTILE_NAMES + ["y", "x", "g", "h"]), min_size=4, max_size=4)
    )
    formula = formula_for(draw(st.sampled_from(FORMULAS)), names)
    if draw(st.integers(0, 5)) == 0:
        formula = draw(st.sampled_from(["", "~", "y ~", "(1|g)", "-x", quoted("a\nb") + " ~ 1"]))
    path = csv_path if draw(st.integers(0, 3)) else draw(st.sampled_from(sorted(paths.values())))
    command = draw(st.sampled_from(["fit"] * 6 + ["translate"] * 3 + ["", "bogus", "--version"]))
    if command == "fit":
        argv = ["fit", path, formula]
    elif command == "translate":
        argv = ["translate", formula] + (["--data", path] if draw(st.booleans()) else [])
    else:
        argv = [command] if command else []
    for _ in range(draw(st.integers(0, 3))):
        flag = draw(st.sampled_from(FLAGS))
        extra = [flag]
        if flag in ("--family", "--weights", "--nAGQ", "--data") and draw(st.integers(0, 4)):
            extra.append(draw(st.sampled_from(VALUES + names)))
        at = draw(st.integers(0, len(argv)))
        argv[at:at] = extra
    return argv


def _odd_paths(root: Path) -> dict[str, str]:
    """Paths that are not a readable CSV: missing, a directory, empty, a binary file,
    too long, with a NUL, ``-``, the empty string."""
    (root / "dir").mkdir()
    (root / "empty.csv").write_bytes(b"")
    (root / "binary.csv").write_bytes(bytes(range(256)) * 4)
    return {
        "missing": str(root / "no-such.csv"),
        "dir": str(root / "dir"),
        "empty": str(root / "empty.csv"),
        "binary": str(root / "binary.csv"),
        "long": str(root / ("x" * 300 + ".csv")),
        "nul": str(root / "a\x00b.csv"),
        "dash": "-",
        "blank": "",
    }


@budget(400)
@given(case=csv_files(), data=st.data())
def test_cli(case, data):
    content, _names = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = _odd_paths(root)
        csv_path = root / "data.csv"
        csv_path.write_bytes(content)
        argv = data.draw(argvs(str(csv_path), paths), label="argv")
        check_cli(argv)


@budget(150)
@given(
    case=csv_files(usable=True),
    template=st.sampled_from(FORMULAS[:8]),
    family=st.sampled_from([None, "binomial", "poisson"]),
)
def test_cli_fit_on_the_files_columns(case, template, family):
    """``fit`` with a formula over the file's own header, so the rows are read and fitted."""
    content, names = case
    names = (names * 4)[:4]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        path.write_bytes(content)
        argv = ["fit", str(path), formula_for(template, names)]
        argv += [] if family is None else ["--family", family]
        check_cli(argv)
