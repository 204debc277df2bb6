"""Limit BLAS threads around the optimiser (threadpoolctl is optional).

Measured on the 2-core machine this was written on (OpenBLAS, q = 1,128): a dense
Cholesky (``dpotrf``) took 16 ms with one thread and 108 ms with two; the inverse from
it (``dpotri``) 36 ms against 800 ms. The matrices the engine factorises are small
enough that threading overhead dominates, so the engine runs with one BLAS thread
by default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["blas_threads", "HAVE_THREADPOOLCTL"]

try:  # optional dependency
    from threadpoolctl import threadpool_limits as _threadpool_limits

    HAVE_THREADPOOLCTL = True
except ImportError:  # pragma: no cover - depends on the environment
    _threadpool_limits = None
    HAVE_THREADPOOLCTL = False


@contextlib.contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    """Context manager that caps BLAS threads at ``limit``.

    Parameters
    ----------
    limit : int or None
        Maximum number of BLAS threads; ``None`` leaves the BLAS alone. Without
        threadpoolctl installed this does nothing.
    """
    if limit is None or _threadpool_limits is None:
        yield
        return
    with _threadpool_limits(limits=int(limit), user_api="blas"):
        yield
