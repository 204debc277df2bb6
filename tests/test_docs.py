"""The README and docs/*.md run: every ```python block is executed.

Each file's ``python`` blocks run in order in one namespace (so later blocks use
earlier ones' names), from the project root. A ``python`` block followed directly by
an ``output`` block must print exactly that text. ``sh`` blocks are not run; the
README's two commands for a new user are checked to appear verbatim. The Rosetta
stone table in docs/rosetta.md is rebuilt from :func:`lme2sm.translate`.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import textwrap
import time
import warnings
from pathlib import Path

import pytest

import lme2sm
from lme2sm.datasets import load

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
FILES = [ROOT / "README.md", *DOCS]

INSTALL_AND_RUN = "python -m venv .venv && . .venv/bin/activate && pip install . && lme2sm example"
INSTALL_AND_TEST = 'pip install ".[test]" && python -m pytest'

FENCE = re.compile(r"^[ \t]*```([A-Za-z0-9_-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)


def blocks(path: Path) -> list[tuple[str, str, int, int, int]]:
    """``(lang, body, line, start, end)`` of every fenced block in the file."""
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        body = textwrap.dedent(m.group(2))
        out.append((m.group(1).lower(), body, line, m.start(), m.end()))
    return out


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def run_file(path: Path) -> None:
    found = blocks(path)
    text = path.read_text()
    namespace: dict = {"__name__": f"docs_{path.stem.replace('-', '_')}"}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for i, (lang, body, line, _start, end) in enumerate(found):
            if lang != "python":
                continue
            expected = None
            if i + 1 < len(found):
                nxt_lang, nxt_body, _l, nxt_start, _e = found[i + 1]
                if nxt_lang == "output" and text[end:nxt_start].strip() == "":
                    expected = nxt_body
            buffer = io.StringIO()
            try:
                with contextlib.redirect_stdout(buffer), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    exec(compile(body, f"{path.name}:{line}", "exec"), namespace)
            except Exception as exc:  # noqa: BLE001 - report which block failed
                raise AssertionError(
                    f"{path.name}, python block at line {line} raised {type(exc).__name__}: {exc}"
                ) from exc
            if expected is not None:
                assert _normalise(buffer.getvalue()) == _normalise(expected), (
                    f"{path.name}, block at line {line}: printed output differs from the "
                    f"output block after it.\n--- printed ---\n{buffer.getvalue()}"
                )
    finally:
        os.chdir(cwd)


def test_there_are_docs():
    names = {p.name for p in DOCS}
    for needed in (
        "index.md",
        "getting-started.md",
        "migrating-from-lme4.md",
        "rosetta.md",
        "model-families.md",
        "limitations.md",
    ):
        assert needed in names


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_python_blocks_run(path):
    start = time.perf_counter()
    run_file(path)
    assert time.perf_counter() - start < 60, f"{path.name} takes too long for the docs test"


def test_readme_commands_are_verbatim():
    shell = [body for lang, body, *_ in blocks(ROOT / "README.md") if lang in ("sh", "bash")]
    lines = {line.strip() for body in shell for line in body.splitlines()}
    assert INSTALL_AND_RUN in lines
    assert INSTALL_AND_TEST in lines


def test_readme_has_a_performance_section():
    assert "\n## Performance\n" in (ROOT / "README.md").read_text()


LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_relative_links_resolve(path):
    for target, _anchor in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        assert (path.parent / target).exists(), f"{path.name} links to missing {target}"


def test_index_links_every_doc():
    index = (ROOT / "docs" / "index.md").read_text()
    for p in DOCS:
        if p.name != "index.md":
            assert f"({p.name})" in index, f"docs/index.md does not link {p.name}"


# ----------------------------------------------------------------------- Rosetta stone


def _cells(line: str) -> list[str]:
    parts = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [p.strip().replace("\\|", "|") for p in parts]


def _code(cell: str) -> str:
    m = re.fullmatch(r"`([^`]*)`", cell)
    assert m, f"expected one `code` span, got {cell!r}"
    return m.group(1)


def rosetta_rows() -> list[list[str]]:
    text = (ROOT / "docs" / "rosetta.md").read_text()
    start = text.index("<!-- rosetta-table -->")
    end = text.index("<!-- /rosetta-table -->")
    lines = [ln for ln in text[start:end].splitlines() if ln.startswith("|")]
    return [_cells(ln) for ln in lines[2:]]


def groups_cell(t) -> str:
    if t.group_kind == "factor":
        return f"`{t.groups}`"
    if t.group_kind == "single":
        return "one group (all rows)"
    return f"{t.n_groups} connected components"


def vc_cell(t) -> str:
    if not t.vc_formula:
        return "—"
    return "<br>".join(f"`{k}: {v}`" for k, v in t.vc_formula.items())


def test_rosetta_table_is_what_translate_gives():
    rows = rosetta_rows()
    assert len(rows) >= 9
    for shape, dataset, formula, groups, re_formula, vc in rows:
        data = load(_code(dataset))
        t = lme2sm.translate(_code(formula), data)
        assert groups == groups_cell(t), (shape, groups, groups_cell(t))
        assert _code(re_formula) == t.re_formula, (shape, re_formula, t.re_formula)
        assert vc == vc_cell(t), (shape, vc, vc_cell(t))
