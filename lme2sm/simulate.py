r"""Responses simulated from a fitted linear mixed model, as lme4's ``simulate(m)``.

For the model :math:`y = X\hat\beta + o + Z\Lambda_{\hat\theta} u + \varepsilon`:

* ``re_form="~0"`` (lme4's default ``re.form = NA``): new spherical random effects
  :math:`u \sim N(0, \hat\sigma^2 I)` (so each term's effects have the fitted
  covariance :math:`\hat\sigma^2 T_j T_j'`) and new residuals;
* ``re_form=None`` (lme4's ``re.form = NULL``): the fitted conditional modes
  :math:`\hat b` are kept, only the residuals are new.

Residuals are :math:`N(0, \hat\sigma^2 / w_i)` with prior weights ``w`` (lme4's
``sigma / sqrt(weights)``), the offset ``o`` is added. Draws come from numpy's
``default_rng(seed)``: random effects first (q x nsim), then residuals (n x nsim), so
the same seed gives the same responses (not R's numbers: the generators differ).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import ArgumentError

__all__ = ["simulate"]

NEW_EFFECTS = {"~0", "~ 0", "na", "nan", "~-1", "~ -1"}


def _new_effects(re_form) -> bool:
    if re_form is None:
        return False
    if isinstance(re_form, float) and math.isnan(re_form):
        return True
    if isinstance(re_form, str) and re_form.strip().lower() in NEW_EFFECTS:
        return True
    raise ArgumentError(
        f"re_form must be '~0' (new random effects, lme4's re.form = NA) or None (keep "
        f"the fitted random effects, lme4's re.form = NULL), not {re_form!r}"
    )


def simulate(
    m: Any,
    nsim: int = 1,
    seed: int | np.random.Generator | None = None,
    re_form: str | None = "~0",
) -> pd.DataFrame:
    """Simulate ``nsim`` responses from a fitted lmer model (lme4's ``simulate``).

    Parameters
    ----------
    m : LmerResult
    nsim : int
        Number of simulated responses.
    seed : int or numpy.random.Generator, optional
        Same seed, same draws.
    re_form : "~0" or None
        ``"~0"``: draw new random effects (lme4's default, ``re.form = NA``);
        ``None``: keep the fitted conditional modes (``re.form = NULL``).

    Returns
    -------
    pandas.DataFrame
        n x nsim, columns ``sim_1``, ``sim_2``, ..., rows as the model's rows.
    """
    if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 1:
        raise ArgumentError(f"nsim must be a positive integer, not {nsim!r}")
    new = _new_effects(re_form)
    frame, fit = m.frame, m.engine_fit
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = frame.n
    sigma = float(fit.sigma)
    mean = frame.X @ np.asarray(fit.beta, dtype=float) + frame.offset
    Zt = frame.Zt()
    if new:
        lam = sp.block_diag(
            [sp.kron(sp.identity(t.n_levels), T) for t, T in zip(frame.terms, fit.factors)],
            format="csr",
        )
        u = rng.standard_normal((lam.shape[0], nsim)) * sigma
        random_part = np.asarray(Zt.T @ (lam @ u))
    else:
        b = np.concatenate([np.asarray(bj, dtype=float).ravel() for bj in fit.b])
        random_part = np.repeat(np.asarray(Zt.T @ b).reshape(n, 1), nsim, axis=1)
    sd = np.full(n, sigma) if frame.weights is None else sigma / np.sqrt(frame.weights)
    resid = rng.standard_normal((n, nsim)) * sd[:, None]
    values = mean[:, None] + random_part + resid
    return pd.DataFrame(
        values, index=frame.data.index, columns=[f"sim_{i + 1}" for i in range(nsim)]
    )
