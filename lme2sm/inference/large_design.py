"""The pieces of inference's deviance function for a fit on data beyond memory.

:class:`lme2sm.inference._design.LmmDesign` (Satterthwaite's degrees of freedom, profile
intervals) needs only ``Z'Z``, ``Z'[X y]`` and ``[X y]'[X y]`` once it is built; for a
lazy frame (:meth:`LmmDesign.from_lazy_frame`) they come from the summed cross-products
instead of the rows. ``Z'Z`` is dense (q x q,
q = number of random effects), as it is in memory, so this suits models with up to a
few thousand random effects. The rows themselves (``X``, ``y``, ``Z``) are absent: a
parametric bootstrap (``with_response``) raises :class:`RowsNotInMemoryError`.
"""

from __future__ import annotations

import numpy as np

from lme2sm.errors import RowsNotInMemoryError

__all__ = ["MAX_Q", "NoRows", "dense_ztz", "refuse_new_response"]

MAX_Q = 20_000
"""Largest number of random effects whose dense Z'Z is built (3.2 GB)."""


def dense_ztz(cp) -> np.ndarray:
    """Z'Z as one dense q x q matrix from the summed cross-products (terms in order)."""
    sizes = [q * k for q, k in zip(cp.q, cp.k)]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    Q = int(starts[-1])
    out = np.zeros((Q, Q))
    for j, (q, k) in enumerate(zip(cp.q, cp.k)):
        s = starts[j]
        for level in range(q):
            a = s + level * k
            out[a : a + k, a : a + k] = cp.diag[j][level]
    for (i, j), block in cp.off.items():
        dense = block.toarray()
        out[starts[i] : starts[i + 1], starts[j] : starts[j + 1]] = dense
        out[starts[j] : starts[j + 1], starts[i] : starts[i + 1]] = dense.T
    return out


class NoRows:
    """Stands for ``X``, ``Z`` and ``y``: any use says the rows are not here."""

    def __init__(self, name: str):
        self.name = name

    def _refuse(self, *args, **kwargs):
        raise RowsNotInMemoryError(
            f"this model was fitted to data beyond memory: {self.name} has one row per data "
            "row and is not kept (a parametric bootstrap or simulation needs it); fit a "
            "sample in memory with lme2sm.lmer(formula, pandas_frame) for that"
        )

    __matmul__ = __rmatmul__ = __getitem__ = __array__ = __len__ = _refuse

    @property
    def shape(self):
        self._refuse()

    @property
    def T(self):  # noqa: N802 - numpy's name
        self._refuse()


def refuse_new_response(y):
    """A parametric bootstrap needs a new response for every row: refused here."""
    raise RowsNotInMemoryError(
        "this model was fitted to data beyond memory: a parametric bootstrap needs a "
        "new response for every row; fit a sample in memory for that"
    )
