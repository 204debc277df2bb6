"""R's ``poly()`` for patsy formula text, and the whole-column numbers R computes first.

The helpers' source is kept as text (:data:`SOURCE`) so that :meth:`Translation.code`
prints exactly the functions the fit used, and the printed code needs only numpy.

``poly(x, k)`` is R's orthogonal polynomial basis. R builds it from the whole column
(``alpha`` and ``norm2``, the three-term recurrence's coefficients) and evaluates new
data with the same coefficients (``predict.poly``); lme2sm writes the coefficients
into the patsy text, so the design, predictions and the printed code all agree:

>>> import numpy as np
>>> alpha, norm2 = poly_coefficients(np.array([1.0, 2.0, 3.0, 4.0]), 2)
>>> np.round(r_poly(np.array([1.0, 2.0, 3.0, 4.0]), alpha, norm2), 4).tolist()
[[-0.6708, 0.5], [-0.2236, -0.5], [0.2236, -0.5], [0.6708, 0.5]]
"""

from __future__ import annotations

import numpy as np

SOURCE = '''\
def r_poly(x, alpha, norm2=None):
    """R's poly(x, k) basis from the coefficients of the whole column (predict.poly);
    r_poly(x, k) computes the coefficients from x itself."""
    x = np.asarray(x, dtype=float)
    if norm2 is None:
        alpha, norm2 = poly_coefficients(x, int(alpha))
    degree = len(alpha)
    z = np.ones((len(x), degree + 1))
    z[:, 1] = x - alpha[0]
    for i in range(1, degree):
        z[:, i + 1] = (x - alpha[i]) * z[:, i] - (norm2[i + 1] / norm2[i]) * z[:, i - 1]
    return z[:, 1:] / np.sqrt(np.asarray(norm2[2:], dtype=float))


def poly_coefficients(x, degree):
    """alpha and norm2 of R's poly(x, degree): centre, QR of the powers, recurrence."""
    x = np.asarray(x, dtype=float)
    if degree >= len(np.unique(x)):
        raise ValueError("'degree' must be less than number of unique points")
    xbar = float(np.mean(x))
    centred = x - xbar
    q, r = np.linalg.qr(np.vander(centred, degree + 1, increasing=True))
    z = q * np.diag(r)
    norm2 = np.sum(z**2, axis=0)
    alpha = (np.sum(centred[:, None] * z**2, axis=0) / norm2 + xbar)[:degree]
    return [float(a) for a in alpha], [1.0, *(float(n) for n in norm2)]


def r_poly_raw(x, degree):
    """R's poly(x, k, raw = TRUE): the columns x, x^2, ..., x^k."""
    x = np.asarray(x, dtype=float)
    return np.column_stack([x**k for k in range(1, degree + 1)])
'''

_namespace: dict = {"np": np}
exec(compile(SOURCE, "<lme2sm.frame.rfunctions>", "exec"), _namespace)  # our own text, no input
r_poly = _namespace["r_poly"]
r_poly_raw = _namespace["r_poly_raw"]

HELPERS = {
    "r_poly": r_poly,
    "r_poly_raw": r_poly_raw,
    "poly_coefficients": _namespace["poly_coefficients"],
}
"""The names the patsy environment provides besides ``np``."""


def poly_coefficients(x: np.ndarray, degree: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``alpha`` and ``norm2`` of R's ``poly(x, degree)`` (R's own algorithm: centre,
    QR of the powers, then the recurrence's coefficients).

    Raises ValueError, worded as R, when ``degree`` is not below the number of
    distinct values.
    """
    alpha, norm2 = _namespace["poly_coefficients"](x, degree)
    return tuple(alpha), tuple(norm2)


def scale_numbers(x: np.ndarray, center: bool, scale: bool) -> tuple[float, float]:
    """R's ``scale(x, center, scale)``: the centre and the divisor (the n-1 sd after
    centring, or the root mean square when not centred), over the non-missing values."""
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    centre = float(np.mean(x)) if center else 0.0
    if not scale:
        return centre, 1.0
    spread = float(np.sqrt(np.sum((x - centre) ** 2) / (len(x) - 1))) if len(x) > 1 else np.nan
    return centre, spread
