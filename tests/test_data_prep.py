"""The groups partition: the connected components of the grouping factors (property tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from lme2sm.frame.data_prep import components, r_level_order


def frames():
    n = st.integers(min_value=1, max_value=40)
    return n.flatmap(
        lambda rows: st.lists(
            st.lists(st.integers(min_value=0, max_value=6), min_size=rows, max_size=rows),
            min_size=1,
            max_size=3,
        )
    ).map(lambda cols: pd.DataFrame({f"f{i}": [f"L{v}" for v in c] for i, c in enumerate(cols)}))


@settings(max_examples=150, deadline=None)
@given(frames())
def test_every_factor_nests_in_the_partition(frame):
    n_comp, labels = components(frame, list(frame.columns))
    assert labels.min() == 0 and labels.max() == n_comp - 1
    for col in frame.columns:
        # no level of any grouping factor appears in two groups
        assert (pd.Series(labels).groupby(frame[col].to_numpy()).nunique() == 1).all()


@settings(max_examples=150, deadline=None)
@given(frames())
def test_partition_is_the_finest_one(frame):
    """Rows share a group only when a chain of shared levels links them."""
    n_comp, labels = components(frame, list(frame.columns))
    # union-find over rows, the slow obvious way
    parent = list(range(len(frame)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for col in frame.columns:
        first: dict[str, int] = {}
        for i, v in enumerate(frame[col]):
            if v in first:
                parent[find(i)] = find(first[v])
            else:
                first[v] = i
    roots = [find(i) for i in range(len(frame))]
    assert n_comp == len(set(roots))
    for i in range(len(frame)):
        for j in range(len(frame)):
            assert (labels[i] == labels[j]) == (roots[i] == roots[j])


def test_crossed_nested_and_partial_examples():
    crossed = pd.DataFrame({"a": list("xxyy"), "b": list("pqpq")})
    assert components(crossed, ["a", "b"])[0] == 1
    nested = pd.DataFrame({"school": list("AABB"), "class": ["A1", "A2", "B1", "B2"]})
    assert components(nested, ["school", "class"])[0] == 2
    partial = pd.DataFrame({"rater": ["r1", "r1", "r2", "r3"], "cls": ["c1", "c2", "c2", "c3"]})
    n, labels = components(partial, ["rater", "cls"])
    assert n == 2 and list(labels) == [0, 0, 0, 1]


def test_r_level_order_numeric_text_and_combinations():
    frame = pd.DataFrame({"n": [10, 9, 10, 1], "t": ["b", "a", "B", "a"]})
    assert r_level_order(frame, ("n",)) == ("1", "9", "10")
    assert r_level_order(frame, ("t",)) == ("B", "a", "b")
    assert r_level_order(frame, ("t", "n")) == ("B:10", "a:1", "a:9", "b:10")
    assert np.all(np.asarray(r_level_order(frame, ("n", "t"))) == ["1:a", "9:a", "10:B", "10:b"])
