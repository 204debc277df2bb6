"""Richardson-extrapolated numerical derivatives, as R's numDeriv computes them.

lmerTest takes its Hessian (``numDeriv::hessian``) and Jacobian
(``numDeriv::jacobian``) with numDeriv's defaults; the same steps and extrapolation
here give the same numbers (to rounding), so degrees of freedom agree with lmerTest
even where the deviance surface is awkward.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_ZERO_TOL = float(np.sqrt(np.finfo(float).eps / 7e-7))


def _steps(x: np.ndarray, d: float, eps: float) -> np.ndarray:
    return np.abs(d * x) + eps * (np.abs(x) < _ZERO_TOL)


def _richardson(a: np.ndarray, r: int) -> np.ndarray:
    """Extrapolate along axis 0 (successive halvings of the step)."""
    a = np.array(a, dtype=float)
    for m in range(1, r):
        a = (a[1 : r + 1 - m] * 4**m - a[: r - m]) / (4**m - 1)
    return a[0]


def hessian(
    func: Callable[[np.ndarray], float],
    x: np.ndarray,
    d: float = 0.1,
    eps: float = 1e-4,
    r: int = 4,
) -> np.ndarray:
    """``numDeriv::hessian(func, x)`` (method "Richardson", v = 2)."""
    x = np.asarray(x, dtype=float)
    n = x.size
    f0 = func(x)
    h0 = _steps(x, d, eps)
    hdiag = np.zeros(n)
    for i in range(n):
        h = h0.copy()
        approx = []
        for _ in range(r):
            e = np.zeros(n)
            e[i] = h[i]
            f1, f2 = func(x + e), func(x - e)
            approx.append((f1 - 2 * f0 + f2) / h[i] ** 2)
            h = h / 2
        hdiag[i] = _richardson(np.array(approx), r)
    H = np.diag(hdiag)
    for i in range(n):
        for j in range(i):
            h = h0.copy()
            approx = []
            for _ in range(r):
                e = np.zeros(n)
                e[i] += h[i]
                e[j] += h[j]
                f1, f2 = func(x + e), func(x - e)
                approx.append(
                    (f1 - 2 * f0 + f2 - hdiag[i] * h[i] ** 2 - hdiag[j] * h[j] ** 2)
                    / (2 * h[i] * h[j])
                )
                h = h / 2
            H[i, j] = H[j, i] = _richardson(np.array(approx), r)
    return H


def jacobian(
    func: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    d: float = 1e-4,
    eps: float = 1e-4,
    r: int = 4,
) -> np.ndarray:
    """``numDeriv::jacobian(func, x)`` (Richardson): shape (len(func(x).ravel()), len(x))."""
    x = np.asarray(x, dtype=float)
    n = x.size
    h = _steps(x, d, eps)
    cols = []
    for i in range(n):
        approx = []
        hi = h[i]
        for _ in range(r):
            e = np.zeros(n)
            e[i] = hi
            diff = np.ravel(func(x + e)) - np.ravel(func(x - e))
            approx.append(diff / (2 * hi))
            hi = hi / 2
        cols.append(_richardson(np.array(approx), r))
    return np.column_stack(cols)
