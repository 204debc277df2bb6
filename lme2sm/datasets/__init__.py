"""Example datasets bundled with lme2sm, and generators for simulated data.

The CSV files in this package are written by ``tools/make_fixtures.R`` (R's own copies
of lme4/nlme/datasets data; ``schools.csv`` comes from :func:`make_schools`), and the
lme4 reference fits in ``tests/fixtures/models`` were computed on these exact files.

>>> from lme2sm import datasets
>>> sleep = datasets.load("sleepstudy")
>>> datasets.names()[:3]
['Dyestuff', 'Dyestuff2', 'Machines']

Factor columns (grouping factors included, even when their labels look like numbers,
e.g. ``Subject`` = "308" in sleepstudy) come back as strings; measurements as int or
float.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from lme2sm.datasets.generate import make_crossed, make_schools
from lme2sm.errors import DataError

__all__ = ["load", "names", "describe", "make_schools", "make_crossed", "FACTORS"]

#: For every bundled dataset, the columns that are factors (read as strings).
FACTORS: dict[str, tuple[str, ...]] = {
    "sleepstudy": ("Subject",),
    "Dyestuff": ("Batch",),
    "Dyestuff2": ("Batch",),
    "Penicillin": ("plate", "sample"),
    "Pastes": ("batch", "cask", "sample"),
    "cake": ("replicate", "recipe"),
    "Oats": ("Block", "Variety"),
    "Orthodont": ("Subject", "Sex"),
    "Machines": ("Worker", "Machine"),
    "iris": ("Species",),
    "insteval_small": ("s", "d", "dept", "service"),
    "schools": ("student", "sex", "classroom", "school", "province", "rater", "exam"),
    "IGF": ("Lot",),
    "Early": ("id", "trt"),
    "Exam": ("school", "schgend", "vr", "intake", "sex", "type", "student"),
    "Hsb82": ("school", "minrty", "sx", "sector"),
    "carrots": ("Consumer", "Frequency", "Gender", "Age", "Homesize", "Work", "Income", "Product"),
    "cbpp": ("herd", "period"),
    "grouseticks": ("INDEX", "BROOD", "YEAR", "LOCATION"),
    "VerbAgg": ("Gender", "item", "resp", "id", "btype", "situ", "mode", "r2"),
}

_DESCRIPTIONS: dict[str, str] = {
    "sleepstudy": "lme4: reaction times (Reaction, ms) over Days of sleep deprivation, 18 Subjects.",
    "Dyestuff": "lme4: Yield of dyestuff from 6 Batches, 5 preparations each.",
    "Dyestuff2": "lme4: simulated Dyestuff-like data whose batch variance is estimated as 0.",
    "Penicillin": "lme4: diameter of growth inhibition; 24 plates crossed with 6 samples.",
    "Pastes": "lme4: paste strength; casks (a, b, c) nested in 10 batches (sample = batch:cask).",
    "cake": "lme4: breakage angle of chocolate cakes; 3 recipes x 6 temps (temp), 15 replicates.",
    "Oats": "nlme: yield of 3 oat Varieties at 4 nitro levels in 6 Blocks (split plot).",
    "Orthodont": "nlme: orthodontic distance at age 8-14 for 27 Subjects (Sex).",
    "Machines": "nlme: productivity score of 6 Workers on 3 Machines, 3 replicates.",
    "iris": "R datasets: Fisher's iris measurements (R column names, e.g. Sepal.Length).",
    "insteval_small": (
        "lme4::InstEval subset: the 4 smallest departments (7, 1, 15, 5) and students "
        "s <= 600; ratings y of lecturers d by students s, crossed."
    ),
    "schools": "simulated by make_schools(): students in classrooms in schools in provinces.",
    "IGF": "nlme: IGF-I tracer concentration (conc) over age in 10 Lots.",
    "Early": "mlmRev: cognitive score (cog) of 103 children (id) at ages 1-2, treatment trt.",
    "Exam": "mlmRev: normalised exam scores of 4,059 students in 65 London schools.",
    "Hsb82": "mlmRev: High School and Beyond, math achievement (mAch) in 160 schools.",
    "carrots": "lmerTest: carrot Preference of 103 Consumers for 12 Products (sens2 etc.).",
    "cbpp": "lme4: contagious bovine pleuropneumonia incidence out of size, 15 herds, 4 periods.",
    "grouseticks": "lme4: TICKS on red grouse chicks, by BROOD, INDEX, LOCATION and YEAR.",
    "VerbAgg": "lme4: verbal aggression items answered by 316 persons (id) x 24 items (r2 Y/N).",
}


def names() -> list[str]:
    """Names of the bundled datasets, sorted."""
    return sorted(FACTORS)


def describe(name: str) -> str:
    """One-line description of a bundled dataset."""
    return _DESCRIPTIONS[_canonical(name)]


def _canonical(name: str) -> str:
    if name in FACTORS:
        return name
    folded = {k.lower(): k for k in FACTORS}
    key = str(name).lower()
    if key.endswith(".csv"):
        key = key[:-4]
    if key in folded:
        return folded[key]
    raise DataError(f"no bundled dataset named {name!r}; available: {', '.join(names())}")


def load(name: str) -> pd.DataFrame:
    """Read a bundled dataset.

    Parameters
    ----------
    name : str
        One of :func:`names` (case-insensitive).

    Returns
    -------
    pandas.DataFrame
        Factor columns as strings (never ``Categorical``), numeric columns as int/float.

    Raises
    ------
    lme2sm.errors.DataError
        For an unknown name; the message lists the available names.
    """
    canonical = _canonical(name)
    factors = FACTORS[canonical]
    ref = resources.files(__name__).joinpath(f"{canonical}.csv")
    with resources.as_file(ref) as path:
        # empty cells are R's NA (as read.csv writes and reads them); "NA" stays text
        df = pd.read_csv(
            path, dtype={col: str for col in factors}, keep_default_na=False, na_values=[""]
        )
    return df
