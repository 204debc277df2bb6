"""The names patsy sees for the data's columns: one rule, whatever the columns are called.

A formula names a column bare (``wpos``, ```log```, ``Q("np")``) and calls functions
(``log(wpos)``, ``factor(g)``). patsy evaluates its text in one namespace where the
data come first, so a column named ``np``, ``C`` or ``log`` would hide lme2sm's
function or module of that name (``np.log(wpos)`` then reads the column's
``.log``). lme4 has no such problem: R looks functions up apart from variables.

So the model frame never hands patsy the user's names. Every column is renamed by
:func:`safe_name`, an injective map into identifiers that no function, module or
Python keyword can spell (they all start ``_c_`` or ``_x_``), and the text patsy
evaluates is written with those names (``np.log(_c_wpos)``). Functions keep their own
names, and nothing else is in the namespace, so a column is a column wherever the
formula names it bare and a call is a call. :func:`user_text` maps the internal names
in a message back to the user's. (The text written for statsmodels renames only the
columns that would hide a name: :func:`lme2sm.formula.patsy_text.statsmodels_column`.)

>>> safe_name("Days"), safe_name("np"), safe_name("Sepal.Length")
('_c_Days', '_c_np', '_x_536570616c2e4c656e677468')
>>> user_text("could not evaluate np.log(_c_np) + _x_536570616c2e4c656e677468")
'could not evaluate np.log(np) + Sepal.Length'
"""

from __future__ import annotations

import re

from lme2sm.formula.model import Expr, LinearPart
from lme2sm.formula.patsy_text import factor_to_patsy, part_to_patsy, response_to_patsy, safe_name

__all__ = ["columns_in", "expr_text", "part_text", "response_text", "safe_name", "user_name"]
__all__ += ["user_text"]

_INTERNAL = re.compile(r"_c_[A-Za-z0-9_]+|_x_(?:[0-9a-f]{2})+(?![A-Za-z0-9_])")


def user_name(internal: str) -> str:
    """The column a :func:`safe_name` stands for (its inverse)."""
    if internal.startswith("_c_"):
        return internal[3:]
    return bytes.fromhex(internal[3:]).decode("utf-8")


def columns_in(code: str) -> list[str]:
    """The user's columns that patsy code with internal names reads, in order."""
    return [user_name(m) for m in dict.fromkeys(_INTERNAL.findall(code))]


def user_text(text: str) -> str:
    """``text`` (a patsy message or name) with every internal name read back as the user's."""
    return _INTERNAL.sub(lambda m: user_name(m.group()), text)


def expr_text(expr: Expr) -> str:
    """The patsy text of one expression (a whole factor), with internal column names."""
    return factor_to_patsy(expr, safe_name)


def part_text(part: LinearPart) -> str:
    """The patsy text of a right-hand side (``1 + _c_Days``), with internal names."""
    return part_to_patsy(part, safe_name)


def response_text(response: Expr, offsets: tuple[Expr, ...] = ()) -> str:
    """The patsy text of a response (``offsets`` subtracted), with internal names."""
    return response_to_patsy(response, offsets, names=safe_name)
