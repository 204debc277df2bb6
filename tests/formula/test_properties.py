"""Hypothesis: general rules of parse() on generated formulas."""

from __future__ import annotations

import keyword

from hypothesis import given, settings
from hypothesis import strategies as st

from lme2sm import FormulaError
from lme2sm.formula import expanded_text, parse
from lme2sm.formula.syntax import R_RESERVED

names = st.from_regex(r"[a-z][a-z0-9_.]{0,6}", fullmatch=True).filter(
    lambda n: n not in R_RESERVED and not keyword.iskeyword(n) and n != "."
)
distinct = st.lists(names, min_size=1, max_size=5, unique=True)

settings.register_profile("fast", max_examples=60, deadline=None)
settings.load_profile("fast")


@given(effects=distinct, group=names)
def test_double_vert_gives_one_term_per_effect_plus_intercept(effects, group):
    if group in effects:
        effects = [e for e in effects if e != group] or ["zz"]
    p = parse(f"y ~ ({' + '.join(effects)} || {group})")
    assert len(p.random_terms) == 1 + len(effects)
    assert [t.effects for t in p.random_terms] == [(), *((e,) for e in effects)]
    assert all(t.group == group for t in p.random_terms)


@given(levels=distinct)
def test_slash_nesting_depth(levels):
    p = parse(f"y ~ (1 | {'/'.join(levels)})")
    factors = [t.group_factors for t in p.random_terms]
    assert factors == [tuple(reversed(levels[:k])) for k in range(len(levels), 0, -1)]


@given(effects=distinct, groups=distinct, double=st.booleans(), zero=st.booleans())
def test_deterministic_spans_inside_and_stable_reparse(effects, groups, double, zero):
    bar = "||" if double else "|"
    head = "0 + " if zero else ""
    rhs = " + ".join(f"({head}{e} {bar} {g})" for e, g in zip(effects, groups))
    formula = f"y ~ {' * '.join(effects)} + {rhs}"
    first, second = parse(formula), parse(formula)
    assert first == second and first.fixed == second.fixed
    for term in first.random_terms:
        start, end = term.span
        assert 0 <= start < end <= len(formula)
        assert formula[start:end] == term.source
    for t in first.fixed_part.terms:
        for factor in t.factors:
            assert 0 <= factor.span[0] < factor.span[1] <= len(formula)
    again = parse(expanded_text(first))
    assert again.random_terms == first.random_terms
    assert again.fixed_part == first.fixed_part
    assert expanded_text(again) == expanded_text(first)


@given(text=st.text(alphabet="yxg~+-*/:^|() 01,.`'ab", max_size=25))
def test_any_text_parses_or_raises_formula_error_with_span_inside(text):
    try:
        parse(text)
    except FormulaError as error:
        assert error.formula == text
        start, end = error.span
        assert 0 <= start < end <= len(text) + 1
        assert str(error)
