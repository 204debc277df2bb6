"""Inference's deviance function for a fit on data beyond memory.

:class:`lme2sm.inference._design.LmmDesign` (Satterthwaite's degrees of freedom, profile
intervals) needs only ``Z'Z``, ``Z'[X y]`` and ``[X y]'[X y]`` once it is built; here
they come from the summed cross-products instead of the rows. ``Z'Z`` is dense (q x q,
q = number of random effects), as it is in memory, so this suits models with up to a
few thousand random effects. The rows themselves (``X``, ``y``, ``Z``) are absent: a
parametric bootstrap (``with_response``) raises :class:`RowsNotInMemoryError`.
"""

from __future__ import annotations

import numpy as np

from lme2sm.large.frame import LazyModelFrame, RowsNotInMemoryError

__all__ = ["lmm_design", "MAX_Q"]

MAX_Q = 20_000
"""Largest number of random effects whose dense Z'Z is built (3.2 GB)."""


def _dense_ztz(cp) -> np.ndarray:
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


class _NoRows:
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


def lmm_design(frame: LazyModelFrame):
    """An ``LmmDesign`` built from ``frame.crossprods`` (terms in lme4's order)."""
    from lme2sm.inference._design import LmmDesign, TermBlock

    cp = frame.crossprods.unshifted()
    q_total = sum(q * k for q, k in zip(cp.q, cp.k))
    if q_total > MAX_Q:
        raise RowsNotInMemoryError(
            f"this model has {q_total} random effects; inference that needs the dense "
            f"Z'Z (Satterthwaite, profile) is offered up to {MAX_Q}"
        )
    design = object.__new__(LmmDesign)
    blocks, offset = [], 0
    for t in frame.terms:
        blocks.append(TermBlock(t.group, t.names, t.n_levels, offset))
        offset += t.n_levels * t.k
    design.X, design.y, design.Z = _NoRows("X"), _NoRows("y"), _NoRows("Z")
    design.terms = tuple(blocks)
    design.fixed_names = tuple(frame.fixed_names)
    design.n, design.p, design.q = cp.n, cp.p, q_total
    design.ZtZ = _dense_ztz(cp)
    design.ZtXy = np.concatenate([z.reshape(cp.p + 1, -1) for z in cp.zxy], axis=1).T
    design.XytXy = np.asarray(cp.xy)
    design.scalar = all(t.k == 1 for t in blocks)
    design.n_theta = sum(t.n_theta for t in blocks)
    design._eye = np.eye(q_total)
    design._lambda_template = None if design.scalar else design._template()

    def no_rows(y):
        raise RowsNotInMemoryError(
            "this model was fitted to data beyond memory: a parametric bootstrap needs a "
            "new response for every row; fit a sample in memory for that"
        )

    design.with_response = no_rows
    return design
