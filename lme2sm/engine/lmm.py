r"""Profiled REML/ML deviance of any linear mixed model, by a blocked Cholesky.

lme4's formulation (Bates, Maechler, Bolker & Walker 2015, J. Stat. Softw. 67(1), sec. 3;
``/work/shared/ENGINE.md``): :math:`y = X\beta + Z\Lambda_\theta u + \varepsilon`,
:math:`u \sim N(0, \sigma^2 I)`, :math:`\varepsilon \sim N(0, \sigma^2 W^{-1})`.
Term ``j`` has ``q_j`` levels, ``k_j`` columns and
:math:`\Lambda_j = I_{q_j} \otimes T_j`, ``T_j`` lower triangular (``theta`` lists its
lower triangle column by column; a ``diagonal`` term has only the diagonal).

For each ``theta`` the lower Cholesky factor of

.. math::

    \Omega = \begin{pmatrix} \Lambda'Z'Z\Lambda + I & \Lambda'Z'X & \Lambda'Z'y \\
    \cdot & X'X & X'y \\ \cdot & \cdot & y'y \end{pmatrix}

gives everything: :math:`\log|L_\theta|^2` from the random-effect diagonal blocks,
:math:`R_X` and ``r`` (the penalised residual norm) from the last block, and
:math:`\hat\beta`, :math:`\hat u` by back-substitution. Then

.. math::

    d_{REML} = \log|L_\theta|^2 + \log|R_X|^2 + (n-p)[1 + \log(2\pi r^2/(n-p))] - \sum\log w,

    d_{ML} = \log|L_\theta|^2 + n[1 + \log(2\pi r^2/n)] - \sum\log w.

Blocks (MixedModels.jl's ``updateL!``): terms are taken in decreasing number of levels.
The first term's diagonal block is block diagonal (one k x k block per level, since each
row has one level). Every later term into which all the earlier *prefix* terms nest
(each of their levels sits in one level of it: classrooms in schools in provinces)
keeps a block-diagonal diagonal block after elimination, and joins the prefix: its
blocks below the diagonal have one k x k block per column. The prefix is eliminated
with batched k x k Cholesky factors, so nested models cost what one factor costs. The
remaining terms (crossed with the prefix) form one dense block with ``[X y]``, factored
by LAPACK. Nothing n-sized is touched: everything comes from :class:`CrossProducts`.

Pieces: :mod:`.theta` (the parameters), :mod:`.structure` (which terms nest),
:mod:`.small_models` and :mod:`.blocked` (the factor at one ``theta``), :mod:`.driver`
(the optimisation), :mod:`.record` (what an evaluation and a fit give).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.linalg import lapack

from lme2sm.engine.blocked import BlockedCholesky
from lme2sm.engine.crossprod import CrossProducts
from lme2sm.engine.driver import FitDriver
from lme2sm.engine.fill import (
    MAX_PAIR_NNZ,
    CrossedFill,
    crossed_fill,
    heavy_levels,
    level_counts,
)
from lme2sm.engine.record import LOG_2PI, Evaluation, LmmFit, profiled_criteria
from lme2sm.engine.small_models import DenseSystem, SmallModels
from lme2sm.engine.sparse_rest import sparse_rest_plan
from lme2sm.engine.structure import (
    block_diag_index,
    level_pattern,
    nested_parents,
    off_block,
    reduce_plan,
)
from lme2sm.engine.theta import TermSpec, pack_theta, theta_lower, theta_start, unpack_theta

__all__ = [
    "LOG_2PI",
    "MAX_DENSE",
    "Evaluation",
    "LmmFit",
    "ProfiledLMM",
    "TermSpec",
    "pack_theta",
    "theta_lower",
    "theta_start",
    "unpack_theta",
]

MAX_DENSE = 20_000
"""Largest dense block (random effects of the terms crossed with the first one)."""


class ProfiledLMM(FitDriver, BlockedCholesky, SmallModels):
    """The profiled deviance of one model, ready to evaluate at any ``theta``.

    Parameters
    ----------
    cp : CrossProducts
        Sums over rows (:func:`~lme2sm.engine.crossprod.cross_products`), terms in
        the caller's order (lme4's), which is also ``theta``'s order.
    specs : sequence of TermSpec
        One per term, same order.
    dense : bool, optional
        Evaluate Omega whole (:class:`DenseSystem`) or by blocks; by default whole
        when the model has at most :attr:`DENSE_UP_TO` random effects.
    """

    def __init__(self, cp: CrossProducts, specs: Sequence[TermSpec], *, dense: bool | None = None):
        self.specs = tuple(specs)
        self._dense_choice = dense
        self._sparse_rest_pattern: tuple | None = None
        self.lower = theta_lower(self.specs)
        self.n_theta = len(self.lower)
        self.cp = cp
        self._analyse()
        self._load(cp)

    def with_crossprods(self, cp: CrossProducts) -> ProfiledLMM:
        """The same structure (same levels and pattern) with other sums over rows:
        another response, other weights (PIRLS), more rows of the same levels."""
        new = object.__new__(ProfiledLMM)
        new.__dict__.update(self.__dict__)
        new.cp = cp
        new._load(cp)
        return new

    def loaded_blocks(self) -> dict[str, object]:
        """The blocks :meth:`_load` made that an evaluation reads, by name: each of their
        entries is one entry of the cross-products, moved (see :mod:`.reweight`)."""
        if self._dense is not None:  # a small model reads Omega whole
            return {"dense_A": self._dense.A, "xy": self.cp.xy}
        return {
            "A_pp": self.A_pp,
            "AX": self.AX,
            "A_rp": self.A_rp,
            "A_rr": self.A_rr,
            "A_xr": self.A_xr,
            "rr_vals": None if self._scatter is None else self._scatter[3],
            "diag": self.cp.diag,
            "xy": self.cp.xy,
        }

    def with_loaded(self, blocks: dict[str, object], n: int) -> ProfiledLMM:
        """The same structure with other blocks (laid out as :meth:`loaded_blocks`'s) of
        ``n`` rows, unweighted sums of logs: for evaluations only (no further load)."""
        new = object.__new__(ProfiledLMM)
        new.__dict__.update(self.__dict__)
        cp = self.cp
        new.cp = CrossProducts(cp.q, cp.k, blocks.get("diag"), {}, [], blocks["xy"], n, 0.0)
        new.n = n
        for name in ("A_pp", "AX", "A_rp", "A_rr", "A_xr"):
            setattr(new, name, blocks.get(name))
        if new.AX is not None:  # views: only the one-term deviance without modes reads them
            new._AXt = {i: np.transpose(a, (0, 2, 1)) for i, a in new.AX.items()}
        if self._scatter is not None:
            new._scatter = (*self._scatter[:3], blocks["rr_vals"], self._scatter[4])
        if self._dense is not None:  # a copy with A replaced (dataclasses.replace: 3 us)
            new._dense = object.__new__(DenseSystem)
            new._dense.__dict__.update(self._dense.__dict__, A=blocks["dense_A"])
        if self.kfill is not None:  # products of entries: computed again
            i = self.prefix[0]
            A, k = new.A_rp[i].tocsc(), self.specs[i].k
            new.kfill = crossed_fill(A, self.m_rest, k, self.kfill.heavy)
        return new

    # ------------------------------------------------------------------ set-up

    def _analyse(self) -> None:
        cp, specs = self.cp, self.specs
        m = len(specs)
        by_size = sorted(range(m), key=lambda j: (-specs[j].n_levels * specs[j].k, j))
        prefix: list[int] = []
        rest: list[int] = []
        parents: dict[tuple[int, int], np.ndarray] = {}
        for j in by_size:
            if not prefix:
                prefix.append(j)
                continue
            found = {}
            for h in prefix:
                par = nested_parents(level_pattern(cp, j, h))
                if par is None:
                    break
                found[h] = par
            else:
                prefix.append(j)
                for h, par in found.items():
                    parents[(j, h)] = par
                continue
            rest.append(j)
        self.prefix = prefix
        self.rest = rest
        self.parents = parents
        # rest layout (dense block)
        offsets = {}
        pos = 0
        for j in rest:
            offsets[j] = pos
            pos += specs[j].n_levels * specs[j].k
        self.rest_offsets = offsets
        self.m_rest = pos
        if self.m_rest > MAX_DENSE:
            raise MemoryError(
                f"the terms crossed with the largest one have {self.m_rest} random effects "
                f"together; the engine's dense block allows {MAX_DENSE}"
            )
        self._templates()

    def _load(self, cp: CrossProducts) -> None:
        """The blocks of Omega (before Lambda) from the cross-products."""
        specs, prefix, parents = self.specs, self.prefix, self.parents
        self.n = cp.n
        self.p = cp.p
        self._upper = np.triu_indices(self.p, 1)
        # A blocks between prefix terms: (q_h, k_i, k_h) at (parent(a), a)
        self.A_pp: dict[tuple[int, int], np.ndarray] = {}
        for (i, h), (r, c) in self._pp_index.items():
            shape = (specs[h].n_levels, specs[i].k, specs[h].k)
            self.A_pp[(i, h)] = np.asarray(off_block(cp, i, h)[r, c]).reshape(shape)
        # [X y]'Z_i per level, (q_i, p + 1, k_i); aggregation of levels of h into i
        self.AX = {i: np.ascontiguousarray(np.transpose(cp.zxy[i], (1, 0, 2))) for i in prefix}
        self._agg_plan = {
            key: reduce_plan(par, specs[key[0]].n_levels) for key, par in parents.items()
        }
        # [X y]'Z_i per level as (q_i, k_i, p + 1), and the one term's width (one-term path)
        self._AXt = {i: np.ascontiguousarray(np.transpose(self.AX[i], (0, 2, 1))) for i in prefix}
        self._one_k = specs[prefix[0]].k if len(prefix) == 1 else 0
        self._load_rest(cp)
        self._dense = DenseSystem.build(cp, specs) if self._use_dense() else None

    def _load_rest(self, cp: CrossProducts) -> None:
        """The crossed rest's blocks: ``A[R, i]`` per prefix term (dense or sparse,
        whichever is cheaper), ``A[R, R]``, ``A[X y, R]``, and the fill plan when one
        prefix term is crossed with the rest."""
        specs, prefix, rest = self.specs, self.prefix, self.rest
        offsets, m_r = self.rest_offsets, self.m_rest
        self.A_rp: dict[int, object] = {}
        self.rest_dense: dict[int, bool] = {}
        self.A_rr = np.zeros((m_r, m_r))
        self.A_xr = np.zeros((self.p + 1, 0))
        for i in prefix if rest else ():
            block = sp.vstack([off_block(cp, j, i) for j in rest]).tocsc()
            qk = block.shape[1]
            nnz_col = np.diff(block.indptr).astype(float)
            dense_cost = float(m_r) * m_r * qk
            sparse_cost = 30.0 * float(np.sum(nnz_col**2)) + 2e5
            dense = dense_cost <= sparse_cost and m_r * qk <= 5e7
            self.rest_dense[i] = dense
            if dense:
                arr = block.toarray().reshape(m_r, specs[i].n_levels, specs[i].k)
                self.A_rp[i] = np.ascontiguousarray(np.transpose(arr, (1, 0, 2)))
            else:
                self.A_rp[i] = block.tocsr()
        for j in rest:
            o, s = offsets[j], specs[j]
            blocks = cp.diag[j]
            size = s.n_levels * s.k
            self.A_rr[o : o + size, o : o + size] = (
                sla.block_diag(*blocks) if s.k > 1 else (np.diag(blocks[:, 0, 0]))
            )
            for j2 in rest:
                if j2 != j:
                    o2, s2 = offsets[j2], specs[j2]
                    self.A_rr[o : o + size, o2 : o2 + s2.n_levels * s2.k] = off_block(
                        cp, j, j2
                    ).toarray()
        if rest:
            self.A_xr = np.concatenate([cp.zxy[j].reshape(self.p + 1, -1) for j in rest], axis=1)
        # one term crossed with the rest: its fill is K @ vec(M) and heavy levels' W W'
        self.kfill = None
        self._scatter = None
        self._sparse_rest = None
        if rest and len(prefix) == 1 and not self.rest_dense[prefix[0]]:
            self._plan_fill(self.A_rp[prefix[0]].tocsc(), specs[prefix[0]].k)

    def _plan_fill(self, A: sp.csc_matrix, k: int) -> None:
        """The fill's plan (:mod:`.fill`) and where A_RR's lower triangle and the fill go
        in Omega (F order): factored sparse when every pair fits ``K`` and the pattern
        pays (:mod:`.sparse_rest`), else dense with heavy levels as rank updates."""
        m_r = self.m_rest
        counts = level_counts(A, m_r, k)
        scalar = all(self.specs[j].k == 1 for j in self.rest)
        if scalar and int(np.sum(counts * (counts + 1) // 2)) * k * k <= MAX_PAIR_NNZ:
            self._set_fill(crossed_fill(A, m_r, k, np.zeros(0, dtype=np.int64)))
            self._sparse_rest = self._sparse_plan_for(
                (*self._scatter[1:3], self.kfill.rows, self.kfill.cols)
            )
            if self._sparse_rest is not None:
                return
        heavy = heavy_levels(counts, m_r, k)  # None: too many for dense columns
        if heavy is not None and (self.kfill is None or len(heavy)):
            self._set_fill(crossed_fill(A, m_r, k, heavy))

    def _set_fill(self, fill: CrossedFill) -> None:
        width = self.m_rest + self.p + 1
        rr_r, rr_c = np.nonzero(np.tril(self.A_rr))
        self.kfill = fill
        self._scatter = (
            rr_c * width + rr_r,
            rr_r,
            rr_c,
            self.A_rr[rr_r, rr_c],
            fill.cols * width + fill.rows,
        )

    def _sparse_plan_for(self, pattern: tuple[np.ndarray, ...]):
        """The crossed block's sparse plan (or None: dense) for this pattern of A_RR's
        and the fill's entries; analysed once, reused while the pattern is the same
        (:meth:`with_crossprods` with other weights or rows of the same levels)."""
        cached = self._sparse_rest_pattern
        if cached is not None and all(
            np.array_equal(a, b) for a, b in zip(cached[0], pattern, strict=True)
        ):
            return cached[1]
        rr_r, rr_c, kr, kc = pattern
        plan = sparse_rest_plan(self.m_rest, (rr_r, rr_c), (kr, kc))
        self._sparse_rest_pattern = (pattern, plan)
        return plan

    DENSE_UP_TO = 100
    """Largest number of random effects evaluated as one dense system (see
    :class:`DenseSystem`)."""

    def _use_dense(self) -> bool:
        if self._dense_choice is not None:
            return self._dense_choice
        return sum(s.n_levels * s.k for s in self.specs) <= self.DENSE_UP_TO

    def _templates(self) -> None:
        """COO index templates for block-structured sparse matrices."""
        specs, prefix, parents = self.specs, self.prefix, self.parents
        self._bd_index = {}
        for i in prefix:
            s = specs[i]
            q, k = s.n_levels, s.k
            self._bd_index[i] = block_diag_index(q, k)
        self._pp_index = {}
        for (i, h), par in parents.items():
            ki, kh = specs[i].k, specs[h].k
            qh = specs[h].n_levels
            r = (par[:, None, None] * ki + np.arange(ki)[None, :, None]) + 0 * np.arange(kh)[
                None, None, :
            ]
            c = (np.arange(qh)[:, None, None] * kh + np.arange(kh)[None, None, :]) + 0 * np.arange(
                ki
            )[None, :, None]
            self._pp_index[(i, h)] = (r.ravel(), c.ravel())

    def evaluate(self, theta: np.ndarray, modes: bool = False) -> Evaluation:
        """Factor Omega at ``theta``; raises ``np.linalg.LinAlgError`` if it is not PD."""
        theta = np.asarray(theta, dtype=float)
        return self._evaluate(theta, unpack_theta(theta, self.specs), modes)

    def _finish(self, theta, ldL2: float, Lf: np.ndarray, diag: np.ndarray, m: int):
        """The deviance's pieces from the factor of the dense block (``m`` rest random
        effects, then [X y]); also beta before the response's shift (for the modes)."""
        cp, p = self.cp, self.p
        ldL2 += 2.0 * float(np.sum(np.log(diag[:m])))
        ldRX2 = 2.0 * float(np.sum(np.log(diag[m : m + p])))
        r = float(diag[-1])
        r2 = r * r
        RXt = Lf[m : m + p, m : m + p].copy()
        RXt[self._upper] = 0.0  # potrf left the input there
        ly = Lf[-1, m : m + p]
        if p:
            beta, info = lapack.dtrtrs(RXt, ly, lower=1, trans=1)
            if info != 0:
                raise np.linalg.LinAlgError("singular R_X")
        else:
            beta = np.zeros(0)
        dev_reml, dev_ml = self._criteria(ldL2, ldRX2, r2)
        shifted = beta if cp.beta_shift is None else beta + cp.beta_shift
        ev = Evaluation(theta, ldL2, ldRX2, r2, shifted, RXt.T.copy(), dev_reml, dev_ml)
        return ev, beta

    def _criteria(self, ldL2: float, ldRX2: float, r2: float) -> tuple[float, float]:
        """The REML and ML deviances from the log-determinants and ``r^2``."""
        return profiled_criteria(ldL2, ldRX2, r2, self.n, self.p, self.cp.sum_log_w)

    def deviance(self, theta: np.ndarray, reml: bool = True) -> float:
        """The profiled deviance at ``theta`` (``inf`` where Omega is not PD)."""
        theta = np.asarray(theta, dtype=float)
        return self.deviance_of_factors(unpack_theta(theta, self.specs), reml)

    def deviance_of_factors(self, factors: list[np.ndarray], reml: bool = True) -> float:
        """The profiled deviance with term covariances ``sigma^2 F_j F_j'`` (any square
        ``F_j``, not only lme4's lower-triangular ``T_j``; ``inf`` where Omega is not PD)."""
        try:
            if self._dense is not None:
                return self._dense_deviance(factors, reml)
            return self._evaluate(None, factors, False).deviance(reml)
        except np.linalg.LinAlgError:
            return np.inf
