"""Simulated datasets: the multilevel ``schools`` data and InstEval-shaped crossed data.

Both generators use only numpy and pandas and are deterministic given their seed
(``numpy.random.default_rng``). ``schools.csv`` in this package is exactly
``make_schools()`` written by ``tools/make_fixtures.py``; a test checks that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["make_schools", "make_crossed"]

# True parameters of make_schools(). The random intercepts of province and school are
# simulated at the centre age AGE_CENTRE (so, on raw age as lme4 fits it, intercept and
# slope are correlated, but not perfectly: the effects at ages 10 and 14 differ clearly).
SCHOOLS_TRUTH = {
    "fixef": {"(Intercept)": 40.0, "age": 2.5, "sexmale": -1.5},
    "sd": {
        "province": 10.0,
        "province.age": 0.6,
        "school": 3.0,
        "school.age": 0.6,
        "classroom": 2.5,
        "rater": 2.0,
        "exam": 1.5,
        "residual": 4.0,
    },
}

AGE_CENTRE = 12.0
N_PROVINCES = 5
SCHOOLS_PER_PROVINCE = 8
CLASSROOMS_PER_SCHOOL = 4
RATERS_PER_SCHOOL = 3
N_EXAMS = 6


def make_schools(seed: int = 20261125) -> pd.DataFrame:
    """Simulate students in classrooms in schools in provinces.

    Design: 5 provinces ("P1".."P5") x 8 schools each (unique labels "S01".."S40")
    x 4 classrooms each (labels "1".."4", reused in every school, so a classroom is
    identified only within its school: ``school:classroom``) x 12-18 students each.
    Each school has 3 raters ("S01-R1", ...) unique to it; every student is scored by
    one rater drawn at random within the school, so raters are crossed with
    classrooms inside a school and nested in schools. Each student sits one of 6
    exam versions ("E1".."E6") drawn at random nationwide, so exam is crossed with
    everything.

    ``test_score = 40 + 2.5 age - 1.5 [male] + province (intercept + slope on age - 12)
    + school (intercept + slope on age - 12) + classroom + rater + exam + noise``, with
    the standard deviations in ``SCHOOLS_TRUTH`` (all clearly non-zero).

    Returns
    -------
    pandas.DataFrame
        Columns student, age, sex, test_score, classroom, school, province, rater,
        exam. Grouping columns are strings; age and test_score are floats rounded to
        two decimals (so the CSV round-trips exactly).
    """
    rng = np.random.default_rng(seed)
    sd = SCHOOLS_TRUTH["sd"]
    fx = SCHOOLS_TRUTH["fixef"]

    n_schools = N_PROVINCES * SCHOOLS_PER_PROVINCE
    n_class = n_schools * CLASSROOMS_PER_SCHOOL
    class_sizes = rng.integers(12, 19, size=n_class)  # 12..18 students
    n = int(class_sizes.sum())

    class_idx = np.repeat(np.arange(n_class), class_sizes)  # global classroom index
    school_idx = class_idx // CLASSROOMS_PER_SCHOOL
    province_idx = school_idx // SCHOOLS_PER_PROVINCE
    classroom_in_school = class_idx % CLASSROOMS_PER_SCHOOL
    rater_in_school = rng.integers(0, RATERS_PER_SCHOOL, size=n)
    rater_idx = school_idx * RATERS_PER_SCHOOL + rater_in_school
    exam_idx = rng.integers(0, N_EXAMS, size=n)

    age = np.round(rng.uniform(10.0, 14.0, size=n), 2)
    male = rng.random(n) < 0.5

    u_prov = rng.normal(0.0, sd["province"], N_PROVINCES)
    s_prov = rng.normal(0.0, sd["province.age"], N_PROVINCES)
    u_school = rng.normal(0.0, sd["school"], n_schools)
    s_school = rng.normal(0.0, sd["school.age"], n_schools)
    u_class = rng.normal(0.0, sd["classroom"], n_class)
    u_rater = rng.normal(0.0, sd["rater"], n_schools * RATERS_PER_SCHOOL)
    u_exam = rng.normal(0.0, sd["exam"], N_EXAMS)
    noise = rng.normal(0.0, sd["residual"], n)

    score = (
        fx["(Intercept)"]
        + fx["age"] * age
        + fx["sexmale"] * male
        + u_prov[province_idx]
        + s_prov[province_idx] * (age - AGE_CENTRE)
        + u_school[school_idx]
        + s_school[school_idx] * (age - AGE_CENTRE)
        + u_class[class_idx]
        + u_rater[rater_idx]
        + u_exam[exam_idx]
        + noise
    )

    return _schools_frame(
        age, male, score, classroom_in_school, school_idx, province_idx, rater_idx, exam_idx
    )


def _schools_frame(
    age, male, score, classroom_in_school, school_idx, province_idx, rater_idx, exam_idx
) -> pd.DataFrame:
    """The simulated schools as a DataFrame of R-style labels (no random draws here)."""
    n = len(age)
    n_schools = N_PROVINCES * SCHOOLS_PER_PROVINCE
    school_labels = np.array([f"S{i + 1:02d}" for i in range(n_schools)], dtype=object)
    province_labels = np.array([f"P{i + 1}" for i in range(N_PROVINCES)], dtype=object)
    classroom_labels = np.array([str(i + 1) for i in range(CLASSROOMS_PER_SCHOOL)], dtype=object)
    rater_labels = np.array(
        [
            f"{school_labels[s]}-R{r + 1}"
            for s in range(n_schools)
            for r in range(RATERS_PER_SCHOOL)
        ],
        dtype=object,
    )
    exam_labels = np.array([f"E{i + 1}" for i in range(N_EXAMS)], dtype=object)

    return pd.DataFrame(
        {
            "student": [f"st{i + 1:04d}" for i in range(n)],
            "age": age.astype(float),
            "sex": np.where(male, "male", "female").astype(object),
            "test_score": np.round(score, 2).astype(float),
            "classroom": classroom_labels[classroom_in_school],
            "school": school_labels[school_idx],
            "province": province_labels[province_idx],
            "rater": rater_labels[rater_idx],
            "exam": exam_labels[exam_idx],
        }
    )


def _labels(prefix: str, k: int) -> np.ndarray:
    return np.array([f"{prefix}{i}" for i in range(1, k + 1)], dtype=object)


def _balanced_draw(rng: np.random.Generator, n_rows: int, k: int) -> np.ndarray:
    """Indices 0..k-1 of length n_rows, every level used at least once when n_rows >= k."""
    idx = rng.integers(0, k, size=n_rows)
    m = min(n_rows, k)
    pos = rng.choice(n_rows, size=m, replace=False)
    idx[pos] = rng.permutation(k)[:m]
    return idx


def make_crossed(
    n_rows: int, n_a: int, n_b: int, seed: int = 0, n_service: int = 2
) -> pd.DataFrame:
    """Synthetic InstEval-shaped crossed data, for benchmarks.

    Columns: ``y`` (float), ``a`` (student-like factor, ``n_a`` levels "a1".."a<n_a>"),
    ``b`` (lecturer-like factor, ``n_b`` levels "b1"..), ``service`` (``n_service``
    levels "0".."<n_service-1>"), ``dept`` (min(14, n_b) levels "dept1"..; every level
    of ``b`` belongs to exactly one dept). Each row rates a random (a, b) pair, so a and b
    are crossed. ``y = 3 + 0.1 service + a_eff + b_eff + dept_eff + noise`` with
    standard deviations 0.3 (a), 0.5 (b), 0.1 (dept) and 1.0 (noise). Every level of
    a and b occurs at least once when ``n_rows`` is at least the number of levels.
    Vectorised: 1M rows take about a second.
    """
    if n_rows < 1 or n_a < 1 or n_b < 1 or n_service < 1:
        raise ValueError("n_rows, n_a, n_b and n_service must be positive")
    rng = np.random.default_rng(seed)
    n_dept = min(14, n_b)
    a_idx = _balanced_draw(rng, n_rows, n_a)
    b_idx = _balanced_draw(rng, n_rows, n_b)
    # every dept gets at least one lecturer
    b_dept = np.concatenate([rng.permutation(n_dept), rng.integers(0, n_dept, n_b - n_dept)])
    b_dept = rng.permutation(b_dept)
    service_idx = rng.integers(0, n_service, size=n_rows)

    a_eff = rng.normal(0.0, 0.3, n_a)
    b_eff = rng.normal(0.0, 0.5, n_b)
    dept_eff = rng.normal(0.0, 0.1, n_dept)
    service_eff = 0.1 * np.arange(n_service)
    y = (
        3.0
        + service_eff[service_idx]
        + a_eff[a_idx]
        + b_eff[b_idx]
        + dept_eff[b_dept[b_idx]]
        + rng.normal(0.0, 1.0, n_rows)
    )
    return pd.DataFrame(
        {
            "y": y,
            "a": _labels("a", n_a)[a_idx],
            "b": _labels("b", n_b)[b_idx],
            "service": np.array([str(i) for i in range(n_service)], dtype=object)[service_idx],
            "dept": _labels("dept", n_dept)[b_dept[b_idx]],
        }
    )
