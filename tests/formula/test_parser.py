"""parse(): names, patsy spellings, patsy rendering and purity."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lme2sm
from lme2sm.formula import ParsedFormula, expanded_text, parse
from lme2sm.formula.patsy_text import part_to_patsy, response_to_patsy


def test_top_level_export():
    assert lme2sm.parse is parse
    assert isinstance(parse("y ~ x"), ParsedFormula)


def test_sleepstudy():
    p = parse("Reaction ~ Days + (Days | Subject)")
    assert p.response == "Reaction"
    assert p.fixed == "Reaction ~ Days"
    assert p.fixed_part.labels == ("Days",)
    (term,) = p.random_terms
    assert (term.effects, term.intercept, term.group, term.text) == (
        ("Days",),
        True,
        "Subject",
        "Days | Subject",
    )
    assert p.variables() == ("Reaction", "Days", "Subject")


NAMES_COME_BACK = {
    "Sepal.Length ~ Sepal.Width + (1 | Species)": ("Sepal.Length", "Sepal.Width", "Species"),
    "yield ~ class + (1 | block)": ("yield", "class", "block"),
    "`my y` ~ `my var` + (1 | `my group`)": ("my y", "my var", "my group"),
    "y ~ Q('for') + (1 | g)": ("y", "for", "g"),
}


@pytest.mark.parametrize("formula", NAMES_COME_BACK)
def test_awkward_names_come_back_unchanged(formula):
    assert parse(formula).variables() == NAMES_COME_BACK[formula]


# formula -> patsy text of "response ~ fixed part"
PATSY = {
    "y ~ x + (1 | g)": "y ~ 1 + x",
    "y ~ 0 + x": "y ~ 0 + x",
    "y ~ x - 1 + (x | g)": "y ~ 0 + x",
    "y ~ factor(cyl) + I(x^2) + log(z)": "y ~ 1 + C(cyl) + I(x ** 2) + np.log(z)",
    "y ~ (a + b + c)^2": "y ~ 1 + a + b + c + a:b + a:c + b:c",
    "y ~ a/b": "y ~ 1 + a + a:b",
    "Sepal.Length ~ Sepal.Width": 'Q("Sepal.Length") ~ 1 + Q("Sepal.Width")',
    "yield ~ class": 'Q("yield") ~ 1 + Q("class")',
    "y ~ `my var`": 'y ~ 1 + Q("my var")',
    "y ~ scale(x) + sqrt(z) + exp(w)": "y ~ 1 + standardize(x, ddof=1) + np.sqrt(z) + np.exp(w)",
    "y ~ x + offset(o)": "I(y - (o)) ~ 1 + x",
    # patsy spellings, so smf.mixedlm formulas keep working
    "y ~ C(x)": "y ~ 1 + C(x)",
    "y ~ C(x, Treatment('b'))": 'y ~ 1 + C(x, Treatment("b"))',
    "y ~ C(x, Treatment(reference='b'))": 'y ~ 1 + C(x, Treatment(reference="b"))',
    "y ~ Q('yield') + np.log(x)": 'y ~ 1 + Q("yield") + np.log(x)',
    "y ~ I(x**2)": "y ~ 1 + I(x ** 2)",
    "y ~ center(x) + standardize(z)": "y ~ 1 + center(x) + standardize(z)",
}


@pytest.mark.parametrize("formula", PATSY)
def test_fixed_part_as_patsy(formula):
    p = parse(formula)
    patsy = f"{response_to_patsy(p.response_expr, p.fixed_part.offsets)} ~ {part_to_patsy(p.fixed_part)}"
    assert patsy == PATSY[formula]


def test_patsy_text_builds_a_design_matrix():
    patsy = pytest.importorskip("patsy")
    pd = pytest.importorskip("pandas")
    data = pd.DataFrame(
        {"yield": [1.0, 2.0, 3.5, 4.0], "Sepal.Width": [1.0, 2.0, 3.0, 5.0], "f": list("abab")}
    )
    p = parse("yield ~ Sepal.Width * factor(f) + I(Sepal.Width^2) + (1 | f)")
    _, x = patsy.dmatrices(
        f"{response_to_patsy(p.response_expr)} ~ {part_to_patsy(p.fixed_part)}", data
    )
    assert x.shape == (4, 5)


def test_expanded_text_reparses_to_the_same_terms():
    p = parse("y ~ x*z + (x || a/b) + (1 | h)")
    text = expanded_text(p)
    assert text == ("y ~ x * z + (1 | b:a) + (1 | a) + (0 + x | b:a) + (0 + x | a) + (1 | h)")
    again = parse(text)
    assert again.random_terms == p.random_terms
    assert again.fixed_part == p.fixed_part


def test_parse_never_evaluates():
    with pytest.raises(lme2sm.FormulaError):
        parse("y ~ __import__('os').system('echo hi')")


def test_formula_package_imports_neither_pandas_nor_statsmodels():
    package = Path(lme2sm.__file__).parent / "formula"
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in {"pandas", "statsmodels", "numpy", "patsy"}, path
