"""Fuzzing lme2sm.parse: random token soup and grammar-made formulas.

Whatever the text, parse() returns a ParsedFormula or raises a FormulaError whose span
lies in the text and whose message prints with its caret; what it accepts, it accepts
again when written back (``expanded_text``), with the same terms; the tokens' spans
cover the text in order; and nothing in the text is ever executed.
"""

from __future__ import annotations

from fuzz_strategies import HOSTILE_CHARS, HOSTILE_NAMES, budget, quoted, sentinel_planted
from hypothesis import given
from hypothesis import strategies as st

from lme2sm import FormulaError
from lme2sm.formula import expanded_text, parse
from lme2sm.formula.tokens import tokenize

TOKENS = [
    "y", "x", "g", "h", "~", "+", "-", "*", "/", ":", "^", "**", "|", "||", "%in%", "(",
    ")", ",", "=", "1", "0", "2", ".5", "1e3", "5L", "0x10", "1i", "1e", "`a b`", "'s'",
    "I", "log", "factor", "poly", "scale", "offset", "C", "Q", "sentinel", "np.log",
    "__import__", "\u0662", "x\u0662", "\u00b2", "\u2212", "\u00a0", "\u200b", "\u201c",
    "#", "\n", ";", "\\", "$", "T", "NA", "pi", "TRUE", "function",
]  # fmt: skip
SEPARATORS = ["", " ", "  ", "\t", "\n", " # note\n", "\u3000", "\u00a0"]


def _soup() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(alphabet=HOSTILE_CHARS, max_size=40),
        st.tuples(
            st.lists(st.sampled_from(TOKENS), min_size=1, max_size=16),
            st.sampled_from(SEPARATORS),
        ).map(lambda t: t[1].join(t[0])),
    )


def _grammar() -> st.SearchStrategy[str]:
    names = st.one_of(
        st.sampled_from(["x", "z", "w", "Days", "größe", "x\u0662"]),
        st.sampled_from(HOSTILE_NAMES).map(quoted),
    )
    atoms = st.one_of(names, st.sampled_from(["1", "0", "-1", "2", ".5", "1e-3", "5L"]))
    binary = st.sampled_from(["+", "-", "*", "/", ":", "%in%", "^"])
    expr = st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.tuples(inner, binary, inner).map(" ".join),
            inner.map(lambda e: f"({e})"),
            st.tuples(st.sampled_from(["log", "I", "factor", "scale", "exp"]), inner).map(
                lambda t: f"{t[0]}({t[1]})"
            ),
            inner.map(lambda e: f"poly({e}, 2)"),
            inner.map(lambda e: f"offset({e})"),
        ),
        max_leaves=6,
    )
    groups = st.one_of(
        names,
        st.lists(names, min_size=2, max_size=4).map("/".join),
        st.lists(names, min_size=2, max_size=3).map(":".join),
    )
    bar = st.tuples(expr, st.sampled_from(["|", "||"]), groups).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    rhs = st.lists(st.one_of(expr, bar), min_size=1, max_size=5).map(" + ".join)
    response = st.one_of(names, names.map(lambda n: f"log({n})"))
    return st.tuples(response, rhs).map(lambda t: f"{t[0]} ~ {t[1]}")


def _check(formula: str):
    try:
        with sentinel_planted() as calls:
            parsed = parse(formula)
        assert calls == []
    except FormulaError as error:
        assert error.formula == formula
        start, end = error.span
        assert 0 <= start < end <= len(formula) + 1
        assert error.message in str(error) and "^" in str(error)
        return None
    return parsed


def _same_model(parsed, again) -> None:
    assert again.fixed_part.labels == parsed.fixed_part.labels
    assert again.fixed_part.intercept == parsed.fixed_part.intercept
    assert [t.text for t in again.random_terms] == [t.text for t in parsed.random_terms]
    assert again.variables() == parsed.variables()


@budget(1500)
@given(formula=_soup())
def test_token_soup_parses_or_is_a_formula_error(formula):
    parsed = _check(formula)
    if parsed is not None:
        tokens = tokenize(formula)[:-1]
        ends = [0] + [t.span[1] for t in tokens]
        assert all(t.span[0] >= e for t, e in zip(tokens, ends))  # in order, no overlap
        assert all(formula[t.span[0] : t.span[1]] == t.text for t in tokens)


@budget(1000)
@given(formula=_grammar())
def test_grammar_formulas_read_back_as_the_same_model(formula):
    parsed = _check(formula)
    if parsed is not None:
        text = expanded_text(parsed)
        again = parse(text)
        _same_model(parsed, again)
        assert expanded_text(again) == text
