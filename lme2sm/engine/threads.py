"""Limit BLAS threads around the optimiser (threadpoolctl is optional).

Measured on the 2-core machine this was written on (OpenBLAS, q = 1,128): a dense
Cholesky (``dpotrf``) took 16 ms with one thread and 108 ms with two; the inverse from
it (``dpotri``) 36 ms against 800 ms. The matrices the engine factorises are small
enough that threading overhead dominates, so the engine runs with one BLAS thread
by default.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["blas_threads", "HAVE_THREADPOOLCTL"]

try:  # optional dependency
    from threadpoolctl import threadpool_limits as _threadpool_limits

    HAVE_THREADPOOLCTL = True
except ImportError:  # pragma: no cover - depends on the environment
    _threadpool_limits = None
    HAVE_THREADPOOLCTL = False


_LOCK = threading.Lock()
_ACTIVE = 0
_SAVED = None
_CONTROLLER = None


def _limit(limit: int):
    """Cap BLAS at ``limit`` threads; returns the limiter (``restore_original_limits``).

    threadpoolctl finds the loaded BLAS libraries by reading the process's memory map,
    4 ms each time; one ``ThreadpoolController`` made on first use does it once."""
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl < 3
        return _threadpool_limits(limits=int(limit), user_api="blas")
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=int(limit), user_api="blas")


@contextlib.contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    """Context manager that caps BLAS threads at ``limit`` while any fit runs.

    BLAS thread pools belong to the process, so the cap is shared: the first fit to
    enter sets it, the last to leave restores what was there before, whatever the
    order in which threads enter and leave (a plain nested ``threadpool_limits``
    would restore out of order and leave BLAS pinned). While lme2sm fits run in
    some threads, BLAS calls in other threads of the process also see the cap.

    Parameters
    ----------
    limit : int or None
        Maximum number of BLAS threads; ``None`` leaves the BLAS alone. Without
        threadpoolctl installed this does nothing.
    """
    global _ACTIVE, _SAVED
    if limit is None or _threadpool_limits is None:
        yield
        return
    with _LOCK:
        if _ACTIVE == 0:
            _SAVED = _limit(limit)
        _ACTIVE += 1
    try:
        yield
    finally:
        with _LOCK:
            _ACTIVE -= 1
            if _ACTIVE == 0 and _SAVED is not None:
                _SAVED.restore_original_limits()
                _SAVED = None
