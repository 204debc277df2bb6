"""Progress of long fits on stderr: evaluations, best deviance, elapsed seconds.

One :class:`FitProgress` per fit, made by the entry point (``lmer``, ``glmer``,
``glmer_nb``, ``lmer_large``) and passed down to the optimiser, which calls
:meth:`FitProgress.tick` with each deviance it evaluates. Nothing is printed for a fit
that ends within :data:`AFTER_SECONDS`; after that, one line every
:data:`EVERY_SECONDS` (never one per evaluation), and one final line when the fit
ends::

    lme2sm: glmer stage 2: 1,212 evaluations, best deviance 184.052674, 5.0 s
    lme2sm: glmer done: 2,407 evaluations, deviance 184.052674, 9.6 s

``progress=False`` or the environment variable ``LME2SM_PROGRESS=0`` silences it
(:func:`fit_progress` returns None, and the optimiser then does no bookkeeping at all).
When it is on but quiet, each evaluation costs one clock reading and two comparisons.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO, TypeVar

__all__ = ["FitProgress", "fit_progress", "progress_enabled", "watched"]

AFTER_SECONDS = 5.0
"""No line before a fit has run this long (a quick fit prints nothing)."""
EVERY_SECONDS = 5.0
"""At most one line per this many seconds."""
ENVIRONMENT = "LME2SM_PROGRESS"
"""``LME2SM_PROGRESS=0`` (or ``false``, ``no``, ``off``) silences every progress line."""
_OFF = ("0", "false", "no", "off")
Objective = TypeVar("Objective", bound=Callable[..., float])


def progress_enabled(progress: bool = True) -> bool:
    """``progress``, unless the environment says :data:`ENVIRONMENT` = 0."""
    return bool(progress) and os.environ.get(ENVIRONMENT, "").strip().lower() not in _OFF


class FitProgress:
    """The reporter of one fit: counts evaluations, keeps the best deviance of the model
    under way, and writes a line to ``stream`` (stderr, by default) when ``clock`` says
    one is due."""

    def __init__(
        self,
        label: str,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.label = label
        """What is fitted: ``"lmer REML"``, ``"glmer"``; the line's first words."""
        self.stage = ""
        """The part of the fit under way (``"stage 1"``, ``"Hessian"``), set by the fit."""
        self.evals = 0
        self.best = math.inf
        self.printed = False
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._next = self._start + AFTER_SECONDS

    def set_stage(self, stage: str) -> None:
        """A new stage of the same model (glmer's stage 1, stage 2, Hessian: one Laplace
        deviance, so the best one carries over)."""
        self.stage = stage

    def set_model(self, label: str) -> None:
        """Another model under the same fit (glmer_nb's fit at each NB theta): its own
        best deviance; the evaluations go on counting."""
        self.label = label
        self.best = math.inf

    def tick(self, deviance: float) -> None:
        """One evaluation of the deviance; a line if one is due."""
        self.evals += 1
        if deviance < self.best:
            self.best = deviance
        now = self._clock()
        if now >= self._next:
            self._next = now + EVERY_SECONDS
            self._write(f"{_evaluations(self.evals)}, best deviance {self.best:.12g}", now)

    def finish(self, deviance: float) -> None:
        """The fit's end: a final line with the result's deviance (-2 logLik) if any line
        was printed (a quick fit stays silent)."""
        if self.printed:
            self.stage = "done"
            now = self._clock()
            self._write(f"{_evaluations(self.evals)}, deviance {deviance:.12g}", now)

    def _write(self, text: str, now: float) -> None:
        head = f"{self.label} {self.stage}" if self.stage else self.label
        stream = self._stream or sys.stderr
        stream.write(f"lme2sm: {head}: {text}, {now - self._start:.1f} s\n")
        stream.flush()
        self.printed = True


def _evaluations(n: int) -> str:
    return f"{n:,} evaluation{'' if n == 1 else 's'}"


def fit_progress(label: str, progress: bool = True) -> FitProgress | None:
    """A reporter for a fit of ``label``, or None when progress is off (``progress``
    False or ``LME2SM_PROGRESS=0``)."""
    return FitProgress(label) if progress_enabled(progress) else None


def watched(progress: FitProgress | None) -> Callable[[Objective], Objective]:
    """A decorator: the objective reporting each value it returns to ``progress``
    (the objective itself, unwrapped, when ``progress`` is None)."""

    def wrap(fun: Objective) -> Objective:
        if progress is None:
            return fun
        tick = progress.tick

        def reported(*args):
            value = fun(*args)
            tick(value)
            return value

        return reported

    return wrap
