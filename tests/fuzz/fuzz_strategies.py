"""What the fuzz tests draw from: hostile formula text, column names, dtypes, weights,
and the one property every call must keep (see README.md in this directory).

The budget: ``LME2SM_FUZZ=long`` multiplies every test's examples by
``LME2SM_FUZZ_SCALE`` (default 20) and lets hypothesis pick new examples each run;
without it the examples are the same every run (derandomized) and the whole directory
takes about a minute on two cores.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import traceback
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

from lme2sm import Lme2smError
from lme2sm.formula.model import r_name

LONG = os.environ.get("LME2SM_FUZZ", "") == "long"
SCALE = float(os.environ.get("LME2SM_FUZZ_SCALE", "20")) if LONG else 1.0


def budget(examples: int) -> settings:
    """Hypothesis settings for a fuzz test worth ``examples`` examples by default."""
    return settings(
        max_examples=max(1, int(examples * SCALE)),
        deadline=None,
        derandomize=not LONG,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


# ------------------------------------------------------------------ names and text

HOSTILE_NAMES = [
    # Python keywords and built-ins, R reserved words
    "class", "lambda", "def", "None", "True", "import", "from", "not", "and", "print",
    "if", "else", "function", "TRUE", "FALSE", "NA", "NULL", "Inf", "NaN", "in", "T", "F",
    "next", "break", "repeat", "...", "..1",
    # what formula functions, modules and patsy/statsmodels call themselves
    "np", "log", "C", "I", "Q", "exp", "scale", "pd", "numpy", "math", "sum", "abs",
    "factor", "poly", "offset", "Intercept", "(Intercept)", "patsy", "os", "sys",
    "__import__", "__builtins__", "eval", "groups", "data", "weights", "Residual",
    # lme2sm's own internal names
    "_c_x", "_x_41", "_c_", "x.grp", "b:a",
    # spaces, quotes, backticks, backslashes, operators
    "my var", " lead", "trail ", "a`b", "a'b", 'a"b', "a\\b", "x y z", "x+y", "x-y",
    "x:y", "x|y", "y~x", "a(b)", "a[b]", "a,b", "a#b", "a;b", "a%in%b", "1", "2x",
    ".5", "1e3", "-x", "%", ")", "(", ",", "|", "=", "~", ".", "`",
    # Unicode: letters, digits, marks, invisible and look-alike characters
    "größe", "x\u0662", "\u0662", "\ubcc0\uc218", "\U0001d465", "e\u0301", "x\u00b2",
    "\u00a0", "a\u200bb", "a\nb", "a\tb", "\U0001f642", "\u2212x", "\uff58",
]  # fmt: skip

HOSTILE_CHARS = (
    "yxgz~+-*/:^|()[],.`'\"0123456789eLi_ #;%$@!?\\\n\t"
    "\u00a0\u200b\u2009\u3000\u2212\u00b2\u0662\u0968\uff12\u201c\u201d\u2018\u2019"
    "\u0301\u093f\ufeff\u2028\x00\x0b\r\u00e9\u4e2d"
)
"""Characters random formula text is made of: R's and look-alikes."""


def quoted(name: str) -> str:
    """``name`` as formula text (backticked and escaped as R's deparse does; ``T`` and
    ``F`` and ``.`` too, which lme2sm refuses bare)."""
    return f"`{name}`" if name in ("T", "F", ".") else r_name(name)


# ------------------------------------------------------------------ columns


def column(kind: str, n: int, rng: np.random.Generator) -> pd.Series | list:
    """A column of ``n`` values of one hostile kind."""
    makers = {
        "float": lambda: pd.Series(rng.normal(size=n)),
        "int": lambda: pd.Series(rng.integers(0, 4, size=n)),
        "count": lambda: pd.Series(rng.poisson(2.0, size=n)),
        "binary": lambda: pd.Series(rng.integers(0, 2, size=n)),
        "proportion": lambda: pd.Series(rng.integers(0, 5, size=n) / 4),
        "bool": lambda: pd.Series(rng.random(n) > 0.5),
        "text": lambda: pd.Series(rng.choice(["a", "b", "c"], size=n)),
        "unique text": lambda: pd.Series([f"s{i}" for i in range(n)]),
        "one level": lambda: pd.Series(["only"] * n),
        "category": lambda: pd.Series(rng.choice(["u", "v", "w"], size=n)).astype("category"),
        "unused category": lambda: pd.Categorical(
            rng.choice(["u", "v"], size=n), categories=["v", "u", "never"]
        ),
        "object mix": lambda: pd.Series(
            [[1, "a", 2.5, None, True, b"x"][i % 6] for i in range(n)], dtype=object
        ),
        "object numbers": lambda: pd.Series(list(rng.normal(size=n)), dtype=object),
        "all nan": lambda: pd.Series(np.full(n, np.nan)),
        "inf": lambda: pd.Series(np.where(rng.random(n) > 0.7, np.inf, rng.normal(size=n))),
        "-inf": lambda: pd.Series(np.where(rng.random(n) > 0.7, -np.inf, rng.poisson(2.0, n))),
        "nan some": lambda: pd.Series(np.where(rng.random(n) > 0.7, np.nan, rng.normal(size=n))),
        "Float64 NA": lambda: pd.Series(rng.normal(size=n)).astype("Float64").where(
            pd.Series(rng.random(n) > 0.2), pd.NA
        ),
        "Int64 NA": lambda: pd.Series(rng.integers(0, 3, n)).astype("Int64").where(
            pd.Series(rng.random(n) > 0.2), pd.NA
        ),
        "boolean NA": lambda: pd.Series(rng.random(n) > 0.5).astype("boolean"),
        "string": lambda: pd.Series(rng.choice(["p", "q"], size=n)).astype("string"),
        "huge": lambda: pd.Series(rng.choice([1e300, -1e300, 1e-300, 1.0], size=n)),
        "datetime": lambda: pd.Series(pd.date_range("2020-01-01", periods=n, tz="UTC")),
        "complex": lambda: pd.Series(rng.normal(size=n) + 1j),
        "negative": lambda: pd.Series(-rng.random(n) - 0.1),
        "zero": lambda: pd.Series(np.zeros(n)),
    }  # fmt: skip
    return makers[kind]()


COLUMN_KINDS = [
    "float", "int", "count", "binary", "proportion", "bool", "text", "unique text",
    "one level", "category", "unused category", "object mix", "object numbers", "all nan",
    "inf", "-inf", "nan some", "Float64 NA", "Int64 NA", "boolean NA", "string", "huge",
    "datetime", "complex", "negative", "zero",
]  # fmt: skip
ROWS = [0, 1, 2, 3, 5, 8, 12, 20, 30]


GOOD_KINDS = ["float", "float", "text", "text"]
"""The kinds a fit can use, by role (response, predictor, group, second group)."""
GROUPING = ["text", "int", "category", "bool", "unique text", "one level", "string"]


def _role_kind(draw, role: int, response_kinds: list[str]) -> str:
    """Usually a kind the role can take (so fits run), one time in four a hostile one."""
    if draw(st.integers(0, 3)) > 0:
        return response_kinds[0] if role == 0 else GOOD_KINDS[role]
    if role == 0:
        return draw(st.sampled_from(response_kinds))
    return draw(st.sampled_from(COLUMN_KINDS if role == 1 else GROUPING + COLUMN_KINDS))


@st.composite
def frames(draw, response_kinds: list[str], roles: int = 4) -> tuple[pd.DataFrame, list[str]]:
    """A hostile data frame and the names of its ``roles`` columns (response, predictor,
    group, second group): hostile names always, hostile kinds now and then."""
    n = draw(st.sampled_from(ROWS if draw(st.integers(0, 4)) == 0 else ROWS[-3:]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    names = draw(
        st.lists(
            st.one_of(
                st.sampled_from(HOSTILE_NAMES),
                st.text(alphabet=HOSTILE_CHARS.replace("\x00", ""), min_size=1, max_size=4),
            ),
            min_size=roles,
            max_size=roles,
            unique=True,
        )
    )
    kinds = [_role_kind(draw, role, response_kinds) for role in range(roles)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = pd.DataFrame({name: column(kind, n, rng) for name, kind in zip(names, kinds)})
    index = draw(st.sampled_from(["default", "shuffled", "strings", "duplicated"]))
    if index == "shuffled":
        data.index = rng.permutation(n) + 100
    elif index == "strings":
        data.index = [f"r{i}" for i in range(n)]
    elif index == "duplicated":
        data.index = [0] * n
    if draw(st.integers(0, 9)) == 0 and n:
        data = pd.concat([data, data.iloc[:, [1]]], axis=1)  # a duplicated column name
    return data, names


FORMULAS = [
    "{y} ~ {x} + (1 | {g})",
    "{y} ~ 1 + (1 | {g})",
    "{y} ~ {x} + ({x} | {g})",
    "{y} ~ {x} + ({x} || {g})",
    "{y} ~ {x} + (1 | {g}/{h})",
    "{y} ~ {x} + (1 | {g}) + (1 | {h})",
    "{y} ~ {x} * {h} + (1 | {g})",
    "{y} ~ log({x}) + (1 | {g})",
    "{y} ~ factor({x}) + (1 | {g})",
    "{y} ~ scale({x}) + (0 + {x} | {g})",
    "{y} ~ I({x}^2) + (1 | {g}:{h})",
    "{y} ~ poly({x}, 2) + (1 | {g})",
    "{y} ~ {x} + offset({h}) + (1 | {g})",
    "log({y}) ~ {x} + (1 | {g})",
    "{y} ~ {x} + (1 | {x})",
    "{y} ~ {x} - 1 + (1 | {g})",
    "{y} ~ sentinel({x}) + (1 | {g})",  # never run: an unknown function
]


def formula_for(template: str, names: list[str]) -> str:
    y, x, g, h = (quoted(n) for n in names[:4])
    return template.format(y=y, x=x, g=g, h=h)


@st.composite
def weights(draw, data: pd.DataFrame, names: list[str]):
    """None, a column's name, or hostile numbers: NaN, negative, zero, inf, wrong length."""
    n = len(data)
    if draw(st.integers(0, 2)) > 0:
        return None
    kind = draw(
        st.sampled_from(
            ["none", "column", "ones", "nan", "negative", "zero", "inf", "short",
             "text", "series other index", "list", "missing column"]
        )
    )  # fmt: skip
    rng = np.random.default_rng(draw(st.integers(0, 99)))
    return {
        "none": lambda: None,
        "column": lambda: names[draw(st.integers(0, len(names) - 1))],
        "ones": lambda: np.ones(n),
        "nan": lambda: np.where(rng.random(n) > 0.5, np.nan, 1.0),
        "negative": lambda: -np.ones(n),
        "zero": lambda: np.zeros(n),
        "inf": lambda: np.full(n, np.inf),
        "short": lambda: np.ones(max(n - 1, 0)),
        "text": lambda: np.array(["a"] * n),
        "series other index": lambda: pd.Series(np.ones(n), index=np.arange(n) + 7),
        "list": lambda: [1.0] * n,
        "missing column": lambda: "no such column",
    }[kind]()


# ------------------------------------------------------------------ the property


def frozen(data: pd.DataFrame) -> tuple:
    """What must not change in the caller's frame: values, dtypes, names, index."""
    return (data.copy(deep=True), list(data.columns), list(data.dtypes), data.index.copy())


def unchanged(data: pd.DataFrame, before: tuple) -> None:
    copy, columns, dtypes, index = before
    assert list(data.columns) == columns
    assert list(data.dtypes) == dtypes
    assert data.index.equals(index)
    pd.testing.assert_frame_equal(data, copy, check_exact=True)


KNOWN: set[tuple[str, str]] = set()
"""Raw exceptions already reported and pinned by an xfail test in
tests/test_hostile_regressions.py, outside the formula and frame packages: (type, the
lme2sm module that raised it). Tolerated unless ``LME2SM_FUZZ_STRICT=1``."""
STRICT = os.environ.get("LME2SM_FUZZ_STRICT", "") == "1"


def _known(error: Exception) -> bool:
    frames = [f.filename for f in traceback.extract_tb(error.__traceback__)]
    ours = [f.replace(os.sep, "/") for f in frames if f"{os.sep}lme2sm{os.sep}" in f]
    where = ours[-1][ours[-1].rindex("lme2sm/") :] if ours else ""
    return not STRICT and (type(error).__name__, where) in KNOWN


def only_lme2sm_errors(call, data: pd.DataFrame | None = None):
    """Run ``call``; it may succeed or raise an lme2sm error, nothing else, and it must
    leave ``data`` as it was. Returns the result, or the lme2sm error."""
    before = frozen(data) if data is not None else None
    with warnings.catch_warnings(), sentinel_planted() as calls:
        warnings.simplefilter("ignore")
        try:
            outcome = call()
        except Lme2smError as error:
            assert str(error)
            outcome = error
        except Exception as error:
            if not _known(error):
                raise
            outcome = error
    assert calls == []
    event(type(outcome).__name__)  # how often each outcome: --hypothesis-show-statistics
    if data is not None:
        unchanged(data, before)
    return outcome


@contextlib.contextmanager
def sentinel_planted() -> Iterator[list]:
    """Plant ``sentinel()`` in Python's builtins, reachable from any eval, for the
    duration: the calls it records must stay none (formula text is never executed)."""
    calls: list[object] = []
    missing = object()
    old = getattr(builtins, "sentinel", missing)
    builtins.sentinel = lambda *a: calls.append(a) or 1  # type: ignore[attr-defined]
    try:
        yield calls
    finally:
        if old is missing:
            del builtins.sentinel  # type: ignore[attr-defined]
        else:
            builtins.sentinel = old  # type: ignore[attr-defined]
