"""lme4's ``check.conv.hess`` on the Hessian of the deviance at the optimum.

lme4 1.1-31's ``checkHess`` (called from ``checkConv`` with ``check.conv.hess``'s
``tol = 1e-6``, for lmer and glmer alike) takes the eigenvalues of the Hessian of the
deviance, over theta for lmer and over (theta, beta) for glmer (``deriv12``), and

* counts those below ``-tol``: "Model failed to converge: degenerate Hessian ...";
* else, any of ``|ev| < tol`` or a failed Cholesky: "Hessian is numerically singular";
* else ``max(ev) * tol > 1``: "Model is nearly unidentifiable: very large eigenvalue";
  and ``min(ev) / max(ev) < tol``: "... large eigenvalue ratio" (both can appear).

``checkConv`` skips the check (and the gradient's) on a singular fit: some theta bounded
below by 0 under ``check.conv.singular``'s ``tol = 1e-4``. This module gives the last two
messages; the first two are left to the callers' gradient checks. Models with a ``cs`` or
``ar1`` term are not checked: lme4 has no such terms, and their correlation parameter is
lme2sm's own (unbounded, flat far out), not a theta whose curvature lme4's rule measures.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "HESS_TOL",
    "SINGULAR_TOL",
    "checked",
    "is_singular",
    "unidentifiable_messages",
]

HESS_TOL = 1e-6
"""lme4's ``check.conv.hess`` tolerance."""
SINGULAR_TOL = 1e-4
"""lme4's ``check.conv.singular`` tolerance: below it, a theta bounded by 0 is at the bound."""

VERY_LARGE = "Model is nearly unidentifiable: very large eigenvalue\n - Rescale variables?"
LARGE_RATIO = "Model is nearly unidentifiable: large eigenvalue ratio\n - Rescale variables?"


def checked(specs, theta: np.ndarray, lower: np.ndarray) -> bool:
    """lme4 would run ``check.conv.hess`` here: every term is lme4's (``us`` or ``diag``)
    and the fit is not singular."""
    lme4_terms = all(getattr(s, "structure", "us") in ("us", "diag") for s in specs)
    return lme4_terms and not is_singular(theta, lower)


def is_singular(theta: np.ndarray, lower: np.ndarray) -> bool:
    """lme4's ``checkConv`` test: a theta bounded below by 0 is under ``SINGULAR_TOL``."""
    theta = np.asarray(theta, dtype=float)
    lower = np.asarray(lower, dtype=float)[: len(theta)]
    return bool(np.any(theta[lower == 0] < SINGULAR_TOL))


def unidentifiable_messages(hess: np.ndarray, tol: float = HESS_TOL) -> tuple[str, ...]:
    """lme4's "nearly unidentifiable" messages from ``checkHess``, in its order: none
    when the Hessian is empty, not finite, has an eigenvalue below ``-tol``, one under
    ``tol`` in size, or no Cholesky factor (lme4's degenerate and singular cases)."""
    hess = np.asarray(hess, dtype=float)
    if hess.size == 0 or not np.all(np.isfinite(hess)):
        return ()
    hess = (hess + hess.T) / 2
    ev = np.linalg.eigvalsh(hess)
    if np.any(ev < -tol) or np.any(np.abs(ev) < tol):
        return ()
    try:
        np.linalg.cholesky(hess)
    except np.linalg.LinAlgError:
        return ()
    big, small = float(ev.max()), float(ev.min())
    out = []
    if big * tol > 1:
        out.append(VERY_LARGE)
    if small / big < tol:
        out.append(LARGE_RATIO)
    return tuple(out)
