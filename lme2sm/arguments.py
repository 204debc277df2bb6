"""Checks of the arguments users pass to lme2sm's methods, each failing as an ArgumentError.

Beside :mod:`lme2sm.errors`, below everything else: any stage may check its arguments
with these. Each check names the argument and says what it takes, so a bad value
(``level="x"``, ``seed=-1``, ``nsim=1.5``) never reaches numpy or scipy, whose own
errors ("'<' not supported between instances of 'int' and 'str'", "expected
non-negative integer") would not say which argument was wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from lme2sm.errors import ArgumentError

__all__ = ["choice", "count", "finite", "flag", "generator", "jobs", "mapping", "names"]
__all__ += ["nonnegative"]
__all__ += ["optional_flag", "population", "positive", "probability", "text"]


def flag(name: str, value: Any) -> bool:
    """``value`` as a bool: True, False (numpy's too) or 1/0; anything else is refused
    (``se_fit="no"`` would otherwise be true)."""
    if _boolean(value):
        return bool(value)
    raise ArgumentError(f"{name} must be True or False, not {value!r}")


def _boolean(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return True
    return isinstance(value, int | np.integer) and value in (0, 1)


def optional_flag(name: str, value: Any) -> bool | None:
    """None (the method's default) or a :func:`flag`."""
    if value is None:
        return None
    if _boolean(value):
        return bool(value)
    raise ArgumentError(f"{name} must be True, False or None, not {value!r}")


def _real(value: Any) -> float | None:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def probability(name: str, value: Any) -> float:
    """A confidence level: a number strictly between 0 and 1."""
    x = _real(value)
    if x is None or not 0 < x < 1:
        raise ArgumentError(f"{name} must be a number between 0 and 1, not {value!r}")
    return x


def finite(name: str, value: Any) -> float:
    """A value of a covariate: a finite number (not a bool)."""
    x = _real(value)
    if x is None or not math.isfinite(x):
        raise ArgumentError(f"{name} must be a finite number, not {value!r}")
    return x


def nonnegative(name: str, value: Any) -> float:
    """A tolerance: a finite number >= 0."""
    x = _real(value)
    if x is None or not math.isfinite(x) or x < 0:
        raise ArgumentError(f"{name} must be a finite number >= 0, not {value!r}")
    return x


def positive(name: str, value: Any) -> float:
    """A scale (glmer_nb's ``theta``): a finite number > 0."""
    x = _real(value)
    if x is None or not math.isfinite(x) or x <= 0:
        raise ArgumentError(f"{name} must be a finite positive number, not {value!r}")
    return x


def _whole(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def count(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """A whole number of things (``nsim``): an integer (not a bool) >= ``minimum`` (and
    <= ``maximum``, when given)."""
    if not _whole(value) or value < minimum or (maximum is not None and value > maximum):
        allowed = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise ArgumentError(f"{name} must be an integer {allowed}, not {value!r}")
    return int(value)


def jobs(value: Any) -> int | None:
    """``n_jobs``: None or 1 (this process), k > 1 processes, -1 every core, -k all but
    k - 1 (as joblib counts); 0, fractions and bools are refused."""
    if value is None:
        return None
    if not _whole(value) or value == 0:
        raise ArgumentError(
            f"n_jobs must be a whole number: 1 (one process), k > 1 processes or -1 "
            f"(every core), not {value!r}"
        )
    return int(value)


def generator(seed: Any) -> np.random.Generator:
    """numpy's generator for ``seed``: None, an integer >= 0, a SeedSequence or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, np.random.SeedSequence) or (_whole(seed) and seed >= 0):
        return np.random.default_rng(seed)
    raise ArgumentError(f"seed must be None, an integer >= 0 or a numpy Generator, not {seed!r}")


def choice(name: str, value: Any, options: Sequence[str], fold: bool = False) -> str:
    """One of ``options``, returned as spelt there; ``fold=True`` matches without regard
    to case (``method="wald"`` is ``"Wald"``)."""
    if isinstance(value, str):
        for option in options:
            if value == option or (fold and value.lower() == option.lower()):
                return option
    raise ArgumentError(f"{name} must be one of {', '.join(map(repr, options))}, not {value!r}")


def names(name: str, value: Any, known: Iterable[str], what: str = "the parameters") -> list[str]:
    """A name or a non-empty list of names, each one of ``known`` (``parm=``)."""
    known = list(known)
    items = [value] if isinstance(value, str) else value
    if (
        not isinstance(items, list | tuple)
        or not items
        or not all(isinstance(v, str) for v in items)
    ):
        raise ArgumentError(f"{name} must be a name or a non-empty list of names, not {value!r}")
    unknown = [v for v in items if v not in known]
    if unknown:
        raise ArgumentError(
            f"{name}: {', '.join(map(repr, unknown))} not among {what} ({', '.join(known)})"
        )
    return list(items)


def text(name: str, value: Any, optional: bool = True) -> str | None:
    """A piece of text (a data set's name for the summary); None when ``optional``."""
    if (value is None and optional) or isinstance(value, str):
        return value
    allowed = "a string or None" if optional else "a string"
    raise ArgumentError(f"{name} must be {allowed}, not {value!r}")


def mapping(name: str, value: Any) -> dict:
    """A dict (emmeans' ``at``); None is the empty one."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ArgumentError(f"{name} must be a dict of variable: values, not {value!r}")
    return dict(value)


_POPULATION = ("~0", "0", "NA", "NAN", "~1-1", "~-1", "")


def population(re_form: Any) -> bool:
    """lme4's ``re.form`` of a prediction or simulation: None (every random effect, R's
    NULL) gives False; ``"~0"`` (or ``"NA"``, R's NA, ``"~1-1"``, a float NaN) the
    population level (simulate: new random effects), True."""
    if re_form is None:
        return False
    if isinstance(re_form, float) and math.isnan(re_form):
        return True
    if isinstance(re_form, str) and re_form.replace(" ", "").upper() in _POPULATION:
        return True
    raise ArgumentError(
        f"re_form={re_form!r}: use None (all random effects) or '~0' (none, lme4's NA)"
    )
