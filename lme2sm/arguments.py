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

__all__ = ["choice", "count", "flag", "generator", "names", "nonnegative", "population"]
__all__ += ["probability"]


def flag(name: str, value: Any) -> bool:
    """``value`` as a bool: True, False (numpy's too) or 1/0; anything else is refused
    (``se_fit="no"`` would otherwise be true)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and value in (0, 1):
        return bool(value)
    raise ArgumentError(f"{name} must be True or False, not {value!r}")


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


def nonnegative(name: str, value: Any) -> float:
    """A tolerance: a finite number >= 0."""
    x = _real(value)
    if x is None or not math.isfinite(x) or x < 0:
        raise ArgumentError(f"{name} must be a finite number >= 0, not {value!r}")
    return x


def count(name: str, value: Any, minimum: int = 1) -> int:
    """A whole number of things (``nsim``): an integer (not a bool) >= ``minimum``."""
    whole = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if not whole or value < minimum:
        raise ArgumentError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def generator(seed: Any) -> np.random.Generator:
    """numpy's generator for ``seed``: None, an integer >= 0, a SeedSequence or a Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    whole = isinstance(seed, int | np.integer) and not isinstance(seed, bool | np.bool_)
    if seed is None or isinstance(seed, np.random.SeedSequence) or (whole and seed >= 0):
        return np.random.default_rng(seed)
    raise ArgumentError(f"seed must be None, an integer >= 0 or a numpy Generator, not {seed!r}")


def choice(name: str, value: Any, options: Sequence[str]) -> str:
    """One of ``options`` (case as given)."""
    if not isinstance(value, str) or value not in options:
        raise ArgumentError(
            f"{name} must be one of {', '.join(map(repr, options))}, not {value!r}"
        )
    return value


def names(name: str, value: Any, known: Iterable[str]) -> list[str]:
    """A name or a list of names, each one of ``known`` (``parm=``)."""
    known = list(known)
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise ArgumentError(f"{name} must be a name or a list of names, not {value!r}")
    unknown = [v for v in items if v not in known]
    if unknown:
        raise ArgumentError(
            f"{name}: {', '.join(map(repr, unknown))} not among the parameters "
            f"({', '.join(known)})"
        )
    return list(items)


_POPULATION = ("~0", "0", "NA", "~1-1", "~-1", "")


def population(re_form: Any) -> bool:
    """lme4's ``re.form`` of a prediction: None (every random effect, R's NULL) gives
    False; ``"~0"`` (or ``"NA"``, R's NA, ``"~1-1"``) the population level, True."""
    if re_form is None:
        return False
    if isinstance(re_form, float) and math.isnan(re_form):
        return True
    if isinstance(re_form, str) and re_form.replace(" ", "") in _POPULATION:
        return True
    raise ArgumentError(
        f"re_form={re_form!r}: use None (all random effects) or '~0' (none, lme4's NA)"
    )
