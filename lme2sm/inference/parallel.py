"""Independent fits in a pool of processes, with the same numbers whatever ``n_jobs`` is.

The parametric bootstrap's refits and a profile's parameters are independent computations:
given its input (a block of simulated responses, drawn in order from the one seeded
generator in the calling process; or a parameter's index) each task is deterministic. So
:func:`run_tasks` may hand them to ``n_jobs`` worker processes
(:class:`concurrent.futures.ProcessPoolExecutor`) and collect the answers in the tasks'
order: the results are those of the loop in one process, to the last bit.

What every task needs (the model's design, the fit) is pickled once and sent once to each
worker (the pool's initializer), not with every task. Tasks are submitted a few per
worker at a time, so a generator of tasks (simulated responses) is not drawn all at once.
On Linux the workers are forked (no re-import of lme2sm, ~20 ms a worker); elsewhere they
are spawned.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from lme2sm import arguments
from lme2sm.errors import FitError

__all__ = ["resolve_n_jobs", "run_tasks"]

IN_FLIGHT = 2
"""Tasks waiting or running per worker: enough to keep each busy, few enough that a
generator of simulated responses is drawn only a little ahead of the fits."""

_SHARED: Any = None
"""In a worker process: the shared object, unpickled once by :func:`_init_worker`."""


def available_cores() -> int:
    """The cores this process may run on (its affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_n_jobs(n_jobs: int | None) -> int:
    """The number of processes for ``n_jobs``: None or 1 one (no pool), -1 every core,
    -2 all but one (as joblib counts), k > 1 that many."""
    n_jobs = arguments.jobs(n_jobs)
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, available_cores() + 1 + n_jobs)
    return n_jobs


def _init_worker(blob: bytes) -> None:
    global _SHARED
    _SHARED = pickle.loads(blob)


def _call(worker: Callable[[Any, Any], Any], task: Any) -> Any:
    return worker(_SHARED, task)


def _context():
    if sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def run_tasks(
    worker: Callable[[Any, Any], Any],
    shared: Any,
    tasks: Iterable[Any],
    n_jobs: int | None = 1,
    n_tasks: int | None = None,
) -> Iterator[Any]:
    """``worker(shared, task)`` for each task, yielded in the tasks' order.

    ``worker`` must be a module-level function (workers find it by name) and ``shared``
    picklable. With one process (``n_jobs=1``, or a single task) the tasks run here, in
    order, with ``shared`` itself. ``n_tasks`` (when known) caps the pool's size.
    """
    jobs = resolve_n_jobs(n_jobs)
    if n_tasks is not None:
        jobs = min(jobs, max(1, n_tasks))
    if jobs == 1:
        for task in tasks:
            yield worker(shared, task)
        return
    blob = pickle.dumps(shared, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns of fork() in a process with (idle BLAS) threads
            warnings.simplefilter("ignore", DeprecationWarning)
            pool = ProcessPoolExecutor(
                max_workers=jobs, mp_context=_context(), initializer=_init_worker, initargs=(blob,)
            )
        with pool:
            pending: deque = deque()
            for task in tasks:
                pending.append(pool.submit(_call, worker, task))
                if len(pending) >= IN_FLIGHT * jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    except BrokenProcessPool as exc:
        raise FitError(
            f"a worker process of the pool (n_jobs={n_jobs}) stopped before its fits were "
            "done (out of memory?); use n_jobs=1 to run them in this process"
        ) from exc
