"""Malformed formulas: a FormulaError with the exact span (marked «» in the table)."""

from __future__ import annotations

import pytest

from lme2sm import FormulaError
from lme2sm.formula import parse

# marked formula -> words the message must contain
ERRORS = {
    "y ~ x + (x «| )»": ["no grouping factor", "write (x | g)"],
    "y ~ x + «( |» g)": ["nothing before", "write (1 | g)"],
    "y ~ x + «(»x | g": ["unmatched (", "add the missing )"],
    "y ~ x + x | g«)»": ["unmatched )"],
    "y ~ log«(»x": ["unmatched ("],
    "y ~ x «|» g": ["inside parentheses", "write (x | g)"],
    "y ~ a + x «|» g": ["inside parentheses"],
    "«y + x»": ["no ~", "write response ~ terms"],
    "«»": ["empty"],
    "«~» x + (1 | g)": ["no response", "write y ~"],
    "y ~ (1 | «g + h»)": ["grouping factor", "write (1 | g:h)"],
    "y ~ (1 | «g * h»)": ["grouping factor", "(1 | g) + (1 | h)"],
    "y ~ (1 | «factor(g)»)": ["grouping factor", "write the column itself"],
    "y ~ (1 | «(a/b)»)": ["grouping factor", "without parentheses"],
    "y ~ (1 | «a:b»/c)": ["single variable", "write (1 | a:b) + (1 | c:a:b)"],
    "y ~ «foo»(x)": ["unknown function foo()", "log()", "factor()"],
    "y ~ I(«system»(x))": ["unknown function system()"],
    "y ~ «__import__»('os')": ["cannot start with _"],
    "y ~ «`__import__`»('os')": ["unknown function __import__()"],
    "y ~ «sin(x, 2)»": ["sin() takes 1 argument"],
    "y ~ «Q(x)»": ['Q("my column")'],
    "y ~ «C(x, foo)»": ["contrast"],
    "y ~ x + «.»": ["not supported", "list the columns"],
    "y ~ x «$» z": ["unexpected character '$'"],
    "y ~ x «@» z": ["unexpected character '@'"],
    "y ~ x «z»": ["unexpected z", "x + z"],
    "y ~ x + «,» z": ["unexpected ,"],
    "y ~ x +«» ": ["ends after +", "a term is missing"],
    "y ~«»": ["a term is missing"],
    "y ~ x «~» z": ["exactly one ~"],
    "(y «~» x)": ["top of the formula"],
    "y ~ log(x«|»g)": ["cannot be inside log()"],
    "y ~ I(a«:»b)": ["not arithmetic"],
    "y ~ x * «(1 | g)»": ["added to the model with +"],
    "y ~ x - «(1 | g)»": ["cannot be subtracted"],
    "y ~ («x | g» | h)": ["cannot contain another |"],
    "y ~ («0» | g)": ["no effects", "write (1 | g)"],
    "y ~ x + «2»": ["number 2", "I(2 * x)"],
    "y ~ x + «'a'»": ["string"],
    "y ~ x^«z»": ["power"],
    "«x + y» ~ z": ["response", "log(y)"],
    "y ~ «TRUE» + x": ["reserved word", "`TRUE`"],
    "y ~ «()»": ["empty parentheses"],
    "y ~ «`x»": ["unterminated backticked name"],
    "y ~ «2x»": ["backticks"],
    "y ~ x «%o%» z": ["only %in%"],
}


def unmark(marked: str) -> tuple[str, tuple[int, int]]:
    start = marked.index("«")
    end = marked.index("»") - 1
    return marked.replace("«", "").replace("»", ""), (start, end)


@pytest.mark.parametrize("marked", ERRORS)
def test_error_span_and_message(marked):
    formula, span = unmark(marked)
    with pytest.raises(FormulaError) as info:
        parse(formula)
    error = info.value
    if span[0] == span[1]:  # an empty mark: the caret goes at the end of the text
        span = (span[0], span[0] + 1)
    assert error.span == span
    assert error.formula == formula
    for words in ERRORS[marked]:
        assert words in error.message


def test_error_is_a_value_error_and_draws_a_caret():
    with pytest.raises(ValueError) as info:
        parse("y ~ x + (x | )")
    lines = str(info.value).splitlines()
    assert lines[1] == "    y ~ x + (x | )"
    assert lines[2] == "               ^^^"
