"""Progress lines on stderr for the passes over partitions (silenceable: ``enabled=False``
or the environment variable ``LME2SM_PROGRESS=0``; the optimiser's own lines come from
:mod:`lme2sm.engine.progress`)."""

from __future__ import annotations

import sys
import time

from lme2sm.engine.progress import progress_enabled

__all__ = ["Progress"]


class Progress:
    """``label: done/total parts, rows, elapsed`` on one stderr line, rewritten in place."""

    def __init__(self, label: str, total: int | None = None, enabled: bool = True):
        self.label, self.total = label, total
        self.enabled = progress_enabled(enabled)
        self.done = 0
        self.rows = 0
        self._start = time.perf_counter()
        self._shown = 0.0
        self._shown_done = -1

    def update(self, parts: int = 1, rows: int = 0) -> None:
        self.done += parts
        self.rows += rows
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._shown < 0.2 and (self.total is None or self.done < self.total):
            return
        self._shown, self._shown_done = now, self.done
        of = f"/{self.total}" if self.total is not None else ""
        rows = f", {self.rows:,} rows" if self.rows else ""
        sys.stderr.write(
            f"\r{self.label}: {self.done}{of} partitions{rows}, {now - self._start:.1f} s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.done:
            if self._shown_done != self.done:
                self._shown = 0.0
                self.done -= 1
                self.update(1)
            sys.stderr.write("\n")
            sys.stderr.flush()
