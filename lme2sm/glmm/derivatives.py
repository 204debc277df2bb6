"""lme4's ``calc.derivs`` for glmer: the gradient and Hessian of the deviance in
``(theta, beta)`` by central differences (lme4's ``deriv12``, step 1e-4), the cross terms
from two points per pair instead of four (:func:`hessian`)."""

from __future__ import annotations

import numpy as np

__all__ = [
    "DELTA",
    "COMPACT_HESSIAN",
    "deriv12",
    "hessian",
    "held_hessian",
    "gradient",
    "central_gradient",
]

COMPACT_HESSIAN = True
"""Cross terms of the Hessian from two points per pair, not deriv12's four (:func:`hessian`)."""
DELTA = 1e-4


def deriv12(fun, x: np.ndarray, delta: float = DELTA) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference gradient and Hessian, as lme4's ``deriv12``."""
    x = np.asarray(x, dtype=float)
    nx = len(x)
    fx = fun(x)
    H = np.zeros((nx, nx))
    g = np.zeros(nx)
    xadd = x.copy()
    xsub = x.copy()
    for j in range(nx):
        xadd[j] = x[j] + delta
        xsub[j] = x[j] - delta
        fadd, fsub = fun(xadd), fun(xsub)
        H[j, j] = (fadd - 2 * fx + fsub) / delta**2
        g[j] = (fadd - fsub) / (2 * delta)
        for i in range(j):
            xaa, xas, xsa, xss = xadd.copy(), xadd.copy(), xsub.copy(), xsub.copy()
            xaa[i] = x[i] + delta
            xas[i] = x[i] - delta
            xsa[i] = x[i] + delta
            xss[i] = x[i] - delta
            H[i, j] = H[j, i] = (fun(xaa) - fun(xas) - fun(xsa) + fun(xss)) / (4 * delta**2)
        xadd[j] = xsub[j] = x[j]
    return g, H


def hessian(
    devfun_u, x: np.ndarray, fx: float, u0: np.ndarray, delta: float = DELTA, compact=None
):
    """:func:`deriv12`'s gradient and Hessian, each PIRLS started from the modes predicted
    to first order: ``devfun_u(x, start)`` returns the deviance and the modes at ``x``;
    ``fx``, ``u0`` are those at ``x``. The modes at ``x + delta e_j`` give the Jacobian of
    the modes in ``x``, and every cross point starts within O(delta^2) of its modes: one
    or two Newton steps instead of three or four.

    ``compact`` (default :data:`COMPACT_HESSIAN`): the cross terms from the two points
    ``x +- delta (e_i + e_j)`` and the axis points deriv12 evaluates anyway,
    ``(f(++) + f(--) - f(+i) - f(-i) - f(+j) - f(-j) + 2 f(x)) / (2 delta^2)``, instead of
    deriv12's four points ``(f(++) - f(+-) - f(-+) + f(--)) / (4 delta^2)``: half the
    evaluations, the same O(delta^2) error (on the fixtures the standard errors equal
    deriv12's to 5e-6)."""
    x = np.asarray(x, dtype=float)
    nx = len(x)
    H = np.zeros((nx, nx))
    g = np.zeros(nx)
    J = np.zeros((len(u0), nx))
    fpm = np.zeros(nx)  # f(x + delta e_j) + f(x - delta e_j)
    for j in range(nx):
        xadd, xsub = x.copy(), x.copy()
        xadd[j] += delta
        xsub[j] -= delta
        fadd, uadd = devfun_u(xadd, u0)
        fsub, usub = devfun_u(xsub, u0 if uadd is None else 2.0 * u0 - uadd)
        H[j, j] = (fadd - 2 * fx + fsub) / delta**2
        g[j] = (fadd - fsub) / (2 * delta)
        fpm[j] = fadd + fsub
        if uadd is not None and usub is not None:
            J[:, j] = (uadd - usub) / (2 * delta)
    if compact is None:
        compact = COMPACT_HESSIAN
    for j in range(nx):
        for i in range(j):
            if compact:
                ff = []
                for sg in (1, -1):
                    xs = x.copy()
                    xs[i] += sg * delta
                    xs[j] += sg * delta
                    ff.append(devfun_u(xs, u0 + sg * delta * (J[:, i] + J[:, j]))[0])
                num = ff[0] + ff[1] - fpm[i] - fpm[j] + 2 * fx
                H[i, j] = H[j, i] = num / (2 * delta**2)
                continue
            f = []
            for si, sj in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
                xs = x.copy()
                xs[i] += si * delta
                xs[j] += sj * delta
                f.append(devfun_u(xs, u0 + delta * (si * J[:, i] + sj * J[:, j]))[0])
            H[i, j] = H[j, i] = (f[0] - f[1] - f[2] + f[3]) / (4 * delta**2)
    return g, H


def held_hessian(devfun_u, x: np.ndarray, fx: float, u0: np.ndarray, held: np.ndarray):
    """:func:`hessian` over the entries of ``x`` not ``held`` (a correlation at the end of
    its range, where its parameter is infinite to rounding and a difference in it
    measures nothing). A held entry's gradient is 0 and its row and column of the Hessian
    the identity's: the inverse's other block is the free entries' Hessian's inverse."""
    held = np.asarray(held, dtype=bool)
    if not held.any():
        return hessian(devfun_u, x, fx, u0)
    x = np.asarray(x, dtype=float)
    free = ~held

    def sub(z, start=None):
        full = x.copy()
        full[free] = z
        return devfun_u(full, start)

    g_free, H_free = hessian(sub, x[free], fx, u0)
    g, H = np.zeros(len(x)), np.eye(len(x))
    g[free] = g_free
    H[np.ix_(free, free)] = H_free
    return g, H


def central_gradient(fun, x: np.ndarray, steps: np.ndarray, idx) -> np.ndarray:
    """Central-difference gradient of ``fun`` at ``x`` over the entries ``idx``, entry
    ``idx[a]`` stepped by ``steps[a]``: lme4's check at a point the Hessian was not
    measured at (the final Newton step's landing), for glmer and lmer alike."""
    x = np.asarray(x, dtype=float)
    g = np.zeros(len(idx))
    for a, j in enumerate(idx):
        e = np.zeros_like(x)
        e[j] = steps[a]
        g[a] = (fun(x + e) - fun(x - e)) / (2 * steps[a])
    return g


def gradient(devfun_u, x: np.ndarray, u0: np.ndarray, held=None, delta: float = DELTA):
    """:func:`deriv12`'s gradient (:func:`central_gradient`, step ``delta``), each PIRLS
    started from the modes ``u0`` at ``x``; ``held`` entries get 0 (as
    :func:`held_hessian`'s)."""
    x = np.asarray(x, dtype=float)
    held = np.zeros(len(x), dtype=bool) if held is None else np.asarray(held, dtype=bool)
    idx = np.flatnonzero(~held)
    g = np.zeros(len(x))
    g[idx] = central_gradient(lambda z: devfun_u(z, u0)[0], x, np.full(len(idx), delta), idx)
    return g
