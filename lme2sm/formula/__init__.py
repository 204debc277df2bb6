"""lme4 formula text → plain data (pure text: imports neither pandas nor statsmodels).

>>> from lme2sm.formula import parse
>>> [t.text for t in parse("y ~ x + (x || g)").random_terms]
['1 | g', '0 + x | g']
"""

from lme2sm.formula.model import (
    BinOp,
    Call,
    Expr,
    Keyword,
    LinearPart,
    Name,
    Number,
    Paren,
    ParsedFormula,
    RandomTerm,
    String,
    Term,
    UnaryOp,
)
from lme2sm.formula.parser import expanded_text, parse

__all__ = [
    "BinOp",
    "Call",
    "Expr",
    "Keyword",
    "LinearPart",
    "Name",
    "Number",
    "Paren",
    "ParsedFormula",
    "RandomTerm",
    "String",
    "Term",
    "UnaryOp",
    "expanded_text",
    "parse",
]
