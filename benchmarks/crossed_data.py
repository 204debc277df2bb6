"""Crossed designs for issue #21's benchmarks, with known parameters and a fixed seed.

Two generators, both numpy only (``numpy.random.default_rng``), deterministic given
their arguments:

* :func:`movielens_frame` — MovieLens-shaped ratings: ``n`` rows, ``n_users`` users and
  ``n_items`` items, each drawn per row with Zipf-like probabilities (a shifted power law
  ``(rank + shift) ** -exponent``), so a few users and items hold many ratings and many
  users have only one or two. Every level occurs at least once. (User, item) pairs may
  repeat, as in a design with replicates; the sparse pattern of Z'Z counts them once.
  ``y = 1 + 0.5 x + u_user + v_item + e`` with ``x ~ N(0, 1)`` and standard deviations
  :data:`MOVIELENS_SD`.
* :func:`students_teachers_frame` — a partially crossed design: about 10,000 students in
  50 schools, 1,300 teachers spread over the schools, one row per (student, teacher)
  link (25,000 rows by default). Every student has at least one teacher (about a fifth
  have exactly one), most links stay within the student's school and a few go to a
  teacher of another school, so the two factors are crossed but far from fully.
  Same model and standard deviations.

The rows come in fixed blocks of :data:`BLOCK_ROWS`, each from its own seeded stream, so
the same arguments give the same rows whether they are built whole
(:func:`movielens_frame`), in code form (:func:`movielens_codes`), or written block by
block to Parquet (:func:`write_movielens_parquet`, 30M rows without holding them in
memory).

Usage: ``python benchmarks/crossed_data.py --rows 30000000 --users 200000 --items 80000
--parquet DIR`` writes a Parquet directory; without ``--parquet`` it prints a summary.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "MOVIELENS_SD",
    "BLOCK_ROWS",
    "Codes",
    "movielens_codes",
    "movielens_blocks",
    "movielens_frame",
    "students_teachers_codes",
    "students_teachers_frame",
    "write_movielens_parquet",
    "to_frame",
    "add_shape_arguments",
]

MOVIELENS_SD = {"user": 0.8, "item": 0.5, "residual": 1.0}
"""True standard deviations of the user and item effects and of the residual."""
FIXEF = (1.0, 0.5)
"""True intercept and slope of x."""
BLOCK_ROWS = 1_000_000
"""Rows per seeded block (the unit of streaming)."""


@dataclass
class Codes:
    """A crossed data set as arrays: level codes of the two factors, x and y.

    ``g1`` holds codes 0..n1-1 of the first factor (users, students), ``g2`` codes
    0..n2-1 of the second (items, teachers); ``names`` are the two column names.
    """

    g1: np.ndarray
    g2: np.ndarray
    x: np.ndarray
    y: np.ndarray
    n1: int
    n2: int
    names: tuple[str, str]


def zipf_probabilities(k: int, exponent: float, shift: float) -> np.ndarray:
    """Probabilities ``(rank + shift) ** -exponent`` normalised, over ranks 1..k."""
    w = (np.arange(1, k + 1) + shift) ** -exponent
    return w / w.sum()


def _effects(seed: int, n1: int, n2: int) -> tuple[np.ndarray, np.ndarray]:
    """The true random effects of both factors, from their own stream."""
    rng = np.random.default_rng([seed, 0])
    return rng.normal(0.0, MOVIELENS_SD["user"], n1), rng.normal(0.0, MOVIELENS_SD["item"], n2)


def _cover(start: int, stop: int, n: int, perm: np.ndarray, draw: np.ndarray) -> None:
    """Put level ``perm[j]`` at row ``j * n // k`` for the rows of this block, so every
    one of the ``k = len(perm)`` levels occurs somewhere in the ``n`` rows."""
    k = len(perm)
    j0 = -(-start * k // n)  # first j with j*n//k >= start
    j1 = -(-stop * k // n)
    j = np.arange(j0, min(j1, k))
    draw[j * n // k - start] = perm[j]


def _sampler(k: int, exponent: float, shift: float, rng: np.random.Generator):
    """Level labels in random order (rank 1 is a random level) and their cumulative
    probabilities, for inverse-CDF draws."""
    cdf = np.cumsum(zipf_probabilities(k, exponent, shift))
    cdf[-1] = 1.0
    return rng.permutation(k), cdf


def movielens_blocks(
    n: int,
    n_users: int,
    n_items: int,
    seed: int = 21,
    user_zipf: tuple[float, float] = (1.2, 20.0),
    item_zipf: tuple[float, float] = (1.0, 50.0),
) -> Iterator[Codes]:
    """The MovieLens-shaped rows as :class:`Codes`, :data:`BLOCK_ROWS` rows at a time.

    ``user_zipf`` and ``item_zipf`` are (exponent, shift) of the Zipf-like level
    probabilities (see :func:`zipf_probabilities`).
    """
    if n < max(n_users, n_items) or min(n_users, n_items) < 1:
        raise ValueError("need n >= n_users, n_items >= 1")
    rng = np.random.default_rng([seed, 1])
    u_perm, u_cdf = _sampler(n_users, *user_zipf, rng)
    i_perm, i_cdf = _sampler(n_items, *item_zipf, rng)
    cover_u, cover_i = rng.permutation(n_users), rng.permutation(n_items)
    u_eff, i_eff = _effects(seed, n_users, n_items)
    for b, start in enumerate(range(0, n, BLOCK_ROWS)):
        stop = min(n, start + BLOCK_ROWS)
        r = np.random.default_rng([seed, 2, b])
        m = stop - start
        users = u_perm[np.searchsorted(u_cdf, r.random(m), side="right")]
        items = i_perm[np.searchsorted(i_cdf, r.random(m), side="right")]
        _cover(start, stop, n, cover_u, users)
        _cover(start, stop, n, cover_i, items)
        x = r.standard_normal(m)
        e = r.normal(0.0, MOVIELENS_SD["residual"], m)
        y = FIXEF[0] + FIXEF[1] * x + u_eff[users] + i_eff[items] + e
        yield Codes(
            users.astype(np.int32),
            items.astype(np.int32),
            x,
            y,
            n_users,
            n_items,
            ("user", "item"),
        )


def _concat(blocks: list[Codes]) -> Codes:
    first = blocks[0]
    return Codes(
        *(np.concatenate([getattr(b, f) for b in blocks]) for f in ("g1", "g2", "x", "y")),
        first.n1,
        first.n2,
        first.names,
    )


def movielens_codes(n: int, n_users: int, n_items: int, seed: int = 21, **zipf) -> Codes:
    """All rows of :func:`movielens_blocks` in one :class:`Codes`."""
    return _concat(list(movielens_blocks(n, n_users, n_items, seed, **zipf)))


def _labels(prefix: str, k: int) -> np.ndarray:
    return np.char.add(prefix, np.arange(1, k + 1).astype(str)).astype(object)


def to_frame(c: Codes, prefixes: tuple[str, str] = ("u", "i")) -> pd.DataFrame:
    """Columns y, x and the two factors as pandas categoricals (labels "u1", "i1", ...)."""
    f1 = pd.Categorical.from_codes(c.g1, categories=_labels(prefixes[0], c.n1))
    f2 = pd.Categorical.from_codes(c.g2, categories=_labels(prefixes[1], c.n2))
    return pd.DataFrame({"y": c.y, "x": c.x, c.names[0]: f1, c.names[1]: f2})


def movielens_frame(n: int, n_users: int, n_items: int, seed: int = 21, **zipf) -> pd.DataFrame:
    """MovieLens-shaped data as a DataFrame: y, x, user ("u1".."), item ("i1"..)."""
    return to_frame(movielens_codes(n, n_users, n_items, seed, **zipf))


def write_movielens_parquet(
    directory: str, n: int, n_users: int, n_items: int, seed: int = 21, **zipf
) -> list[str]:
    """Write the MovieLens-shaped rows as Parquet, one file of :data:`BLOCK_ROWS` rows per
    block (``part-00000.parquet``, ...), holding one block in memory at a time. Factor
    columns are strings (dictionary-encoded on disk). Returns the file paths."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(directory, exist_ok=True)
    users = pa.array(_labels("u", n_users).tolist(), pa.string())
    items = pa.array(_labels("i", n_items).tolist(), pa.string())
    paths = []
    for b, c in enumerate(movielens_blocks(n, n_users, n_items, seed, **zipf)):
        table = pa.table(
            {
                "y": c.y,
                "x": c.x,
                "user": users.take(pa.array(c.g1)),
                "item": items.take(pa.array(c.g2)),
            }
        )
        path = os.path.join(directory, f"part-{b:05d}.parquet")
        pq.write_table(table, path)
        paths.append(path)
    return paths


def _teacher_schools(rng: np.random.Generator, n_teachers: int, n_schools: int) -> np.ndarray:
    """School of each teacher: every school gets one, the rest uneven (Dirichlet sizes)."""
    share = rng.dirichlet(np.full(n_schools, 4.0))
    rest = rng.choice(n_schools, size=n_teachers - n_schools, p=share)
    return np.concatenate([np.arange(n_schools), rest])


def students_teachers_codes(
    n_rows: int = 25_000,
    n_students: int = 10_000,
    n_teachers: int = 1_300,
    n_schools: int = 50,
    p_other_school: float = 0.08,
    seed: int = 21,
) -> Codes:
    """Partially crossed students x teachers (see the module docstring) as :class:`Codes`.

    Each student belongs to a school (in proportion to the school's teachers) and gets
    one link, then the ``n_rows - n_students`` further links go to uniformly chosen
    students; first one per teacher (so every teacher has a student of its school), the
    rest to a random teacher of the student's school, or with ``p_other_school`` of any
    school.
    """
    if n_rows < n_students + n_teachers or n_teachers < n_schools:
        raise ValueError("need n_rows >= n_students + n_teachers, n_teachers >= n_schools")
    rng = np.random.default_rng([seed, 3])
    t_school = _teacher_schools(rng, n_teachers, n_schools)
    by_school = [np.flatnonzero(t_school == s) for s in range(n_schools)]
    sizes = np.array([len(t) for t in by_school])
    s_school = rng.choice(n_schools, size=n_students, p=sizes / sizes.sum())
    s_school[:n_schools] = np.arange(n_schools)  # no empty school
    students_of = [np.flatnonzero(s_school == s) for s in range(n_schools)]

    # one link per teacher, to a student of the teacher's school
    cov_s = np.array([rng.choice(students_of[t_school[t]]) for t in range(n_teachers)])
    cov_t = np.arange(n_teachers)
    # one teacher of the own school per student, then the remaining links
    n_more = n_rows - n_teachers
    stu = np.concatenate([np.arange(n_students), rng.integers(0, n_students, n_more - n_students)])
    school = s_school[stu]
    other = rng.random(len(stu)) < p_other_school
    school[other] = rng.choice(n_schools, size=int(other.sum()), p=sizes / sizes.sum())
    pick = np.floor(rng.random(len(stu)) * sizes[school]).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    flat = np.concatenate(by_school)
    tea = flat[offsets[school] + pick]

    g1 = np.concatenate([cov_s, stu]).astype(np.int32)
    g2 = np.concatenate([cov_t, tea]).astype(np.int32)
    order = rng.permutation(n_rows)
    g1, g2 = g1[order], g2[order]
    s_eff, t_eff = _effects(seed, n_students, n_teachers)
    x = rng.standard_normal(n_rows)
    y = FIXEF[0] + FIXEF[1] * x + s_eff[g1] + t_eff[g2]
    y = y + rng.normal(0.0, MOVIELENS_SD["residual"], n_rows)
    return Codes(g1, g2, x, y, n_students, n_teachers, ("student", "teacher"))


def students_teachers_frame(**kwargs) -> pd.DataFrame:
    """:func:`students_teachers_codes` as a DataFrame: y, x, student ("s1".."),
    teacher ("t1"..)."""
    return to_frame(students_teachers_codes(**kwargs), ("s", "t"))


def describe(c: Codes) -> str:
    """Rows, levels, singleton levels and distinct (level, level) pairs, for a summary."""
    n1 = np.bincount(c.g1, minlength=c.n1)
    n2 = np.bincount(c.g2, minlength=c.n2)
    pairs = len(np.unique(c.g1.astype(np.int64) * c.n2 + c.g2))
    return (
        f"{len(c.y):,} rows; {c.names[0]}: {c.n1:,} levels (min {n1.min()}, median "
        f"{int(np.median(n1))}, max {n1.max():,}, {int((n1 == 1).sum()):,} with one row); "
        f"{c.names[1]}: {c.n2:,} levels (min {n2.min()}, median {int(np.median(n2))}, "
        f"max {n2.max():,}, {int((n2 == 1).sum()):,} with one row); {pairs:,} distinct pairs"
    )


def add_shape_arguments(
    ap: argparse.ArgumentParser, rows: int = 1_000_000, users: int = 20_000, items: int = 5_000
) -> None:
    """The MovieLens shape's ``--rows``, ``--users`` and ``--items`` (every benchmark on
    these data takes them)."""
    ap.add_argument("--rows", type=int, default=rows)
    ap.add_argument("--users", type=int, default=users)
    ap.add_argument("--items", type=int, default=items)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_shape_arguments(ap)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--parquet", help="write a Parquet directory here instead")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    if a.parquet:
        paths = write_movielens_parquet(a.parquet, a.rows, a.users, a.items, a.seed)
        print(f"wrote {len(paths)} files to {a.parquet} in {time.perf_counter() - t0:.1f} s")
        return
    print("students x teachers:", describe(students_teachers_codes(seed=a.seed)))
    c = movielens_codes(a.rows, a.users, a.items, a.seed)
    print(f"MovieLens-shaped ({time.perf_counter() - t0:.1f} s):", describe(c))


if __name__ == "__main__":
    sys.exit(main())
