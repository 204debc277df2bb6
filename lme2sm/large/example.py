"""Generated panel data for the large-data path's docs, tests and benchmark.

Students (nested in classes, nested in schools) crossed with teachers::

    y = 10 + 0.5 x + 1.0 [treated] + s_student + t_teacher + c_class + u_school + e

with standard deviations ``SDS`` and a residual SD of 1. Class labels repeat across
schools (``classroom`` is nested in ``school``: write ``(1 | school/classroom)``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SDS", "example_panel"]

SDS = {"student": 0.8, "teacher": 0.5, "classroom:school": 0.3, "school": 0.6, "Residual": 1.0}


def example_panel(
    n_rows: int,
    seed: int = 1,
    n_students: int | None = None,
    n_teachers: int = 200,
    n_schools: int = 40,
    classes_per_school: int = 10,
) -> pd.DataFrame:
    """``n_rows`` rows of the generated panel (pandas; build it in chunks for more).

    Each student belongs to one class of one school; every row pairs a student with a
    teacher drawn at random (teachers are crossed with students, classes and schools).
    The random effects depend only on the sizes, so chunks made with other ``seed``s
    belong to the same model.
    """
    rng = np.random.default_rng(seed)
    n_students = n_students or max(50, n_rows // 20)
    n_classes = n_schools * classes_per_school
    student = rng.integers(0, n_students, n_rows)
    teacher = rng.integers(0, n_teachers, n_rows)
    klass = student % n_classes
    school, classroom = klass // classes_per_school, klass % classes_per_school
    effects = np.random.default_rng(12345)  # the same effects for every chunk
    s = effects.normal(0, SDS["student"], n_students)
    t = effects.normal(0, SDS["teacher"], n_teachers)
    u = effects.normal(0, SDS["school"], n_schools)
    c = effects.normal(0, SDS["classroom:school"], n_classes)
    x = rng.normal(0, 1, n_rows)
    treated = rng.random(n_rows) < 0.3
    y = (
        10
        + 0.5 * x
        + 1.0 * treated
        + s[student]
        + t[teacher]
        + u[school]
        + c[klass]
        + rng.normal(0, SDS["Residual"], n_rows)
    )
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "arm": np.where(treated, "treated", "control"),
            "student": student,
            "teacher": np.char.add("T", teacher.astype(str)),
            "school": school,
            "classroom": classroom,
        }
    )
