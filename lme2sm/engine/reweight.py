r"""The engine for many weighted solves on the same rows: PIRLS's penalised weighted
least squares, one :class:`~lme2sm.engine.lmm.ProfiledLMM` refilled per step.

Each PIRLS step solves the LMM problem of working weights ``w`` and working response
``r`` on fixed rows, so everything the engine derives from the design's *structure*
(which terms nest, the blocks' layout, index templates, the crossed block's sparse plan)
is the same at every step; only the numbers change. Two facts make the refill cheap:

* every entry of the :class:`~lme2sm.engine.crossprod.CrossProducts` is a sum over rows
  of ``w_i`` times a product of two of row ``i``'s values (of ``Z_j``, ``X``, ``r``),
  and which entry a row's product adds to is fixed by the design: one ``bincount``
  per block with positions found once (:class:`RowSums`);
* :meth:`ProfiledLMM._load` only *moves* entries of the cross-products into the
  engine's blocks (no arithmetic), so where each block's entries come from is found
  once, by loading cross-products whose entries are their own positions; a step's
  blocks are then gathers from the flat vector of sums (:class:`_Gather`).

What the load computes from products of entries (the crossed block's fill ``K``) is
recomputed from the refilled blocks.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from lme2sm.engine.crossprod import CrossProducts, TermRows, cross_products, term_matrix
from lme2sm.engine.lmm import ProfiledLMM
from lme2sm.engine.record import Evaluation
from lme2sm.engine.theta import TermSpec, unpack_theta

__all__ = ["PLSSteps", "RowSums", "WeightedPLS"]

DENSE_ROWS_FLOPS = 2_000_000
"""Largest ``n (Q + p + 1)^2`` for which a small model's Omega is one dense product of
its rows (cheaper than the sums and gathers below that: Python's overhead per call)."""


SCALAR_SUMS = 10_000
"""Largest ``n (p + 1)`` with X for which scalar terms' ``Z_j'W[X r]`` are ``p + 1``
bincounts each rather than one sparse product, whose overhead is per call (grouseticks,
403 x 5: 81 us a step against 108; VerbAgg, 7,584 x 7: 582 against 449). Without X
(``p = 0``) one bincount is always the cheaper."""


class RowSums:
    """The cross-products' entries as one flat vector, for any weights and response on
    fixed rows: positions found once, a ``bincount`` per block after that.

    The vector's layout, block after block: ``diag[j]`` (``q_j k_j k_j``), the data of
    ``off[(i, j)]`` for i > j in the CSR order of :attr:`off_structure`, ``zxy[j]``
    (``(p + 1) q_j k_j``), ``xy`` (``(p + 1)^2``)."""

    def __init__(self, rows: Sequence[TermRows], X: np.ndarray):
        self.rows = list(rows)
        self.X = np.asarray(X, dtype=float)
        self.n, self.p = self.X.shape
        self.q = tuple(t.n_levels for t in self.rows)
        self.k = tuple(t.k for t in self.rows)
        self._diag_keys = [_level_keys(t.codes, t.k, t.k) for t in self.rows]
        self.off_structure: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, tuple]] = {}
        self._off_pos: dict[tuple[int, int], np.ndarray] = {}
        for i in range(len(self.rows)):
            for j in range(i):
                self._off_pattern(i, j)
        self._zt = [term_matrix(t).T.tocsr() for t in self.rows]  # Z_j', fixed
        self._XrT = np.empty((self.p + 1, self.n))  # work arrays of sums()
        self._XrT[: self.p] = self.X.T
        self._wXrT = np.empty_like(self._XrT)
        self._wXr = np.empty((self.n, self.p + 1))
        self._wz = [np.empty_like(t.Z, dtype=float) for t in self.rows]
        # scalar terms (without X, or with a narrow one): bincounts of vectors, and an
        # intercept's column of ones not multiplied at all (1 * w is w)
        self._scalar = all(k == 1 for k in self.k) and (
            self.p == 0 or self.n * (self.p + 1) <= SCALAR_SUMS
        )
        self._z0 = [np.ascontiguousarray(t.Z[:, 0], dtype=float) for t in self.rows]
        self._ones = [bool(np.all(z == 1.0)) for z in self._z0]
        p1 = self.p + 1
        sizes = [q * k * k for q, k in zip(self.q, self.k)]
        sizes += [len(self.off_structure[key][0]) for key in self._off_pos]
        sizes += [p1 * q * k for q, k in zip(self.q, self.k)]
        sizes.append(p1 * p1)
        self.bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.size = int(self.bounds[-1])

    def _off_pattern(self, i: int, j: int) -> None:
        ti, tj = self.rows[i], self.rows[j]
        ki, kj = ti.k, tj.k
        n_cols = tj.n_levels * kj
        r = ti.codes[:, None] * ki + np.arange(ki)[None, :]  # (n, ki)
        c = tj.codes[:, None] * kj + np.arange(kj)[None, :]  # (n, kj)
        keys = (r[:, :, None].astype(np.int64) * n_cols + c[:, None, :]).ravel()
        uniq, pos = np.unique(keys, return_inverse=True)
        rows_of = uniq // n_cols
        indptr = np.searchsorted(rows_of, np.arange(ti.n_levels * ki + 1)).astype(np.int64)
        shape = (ti.n_levels * ki, n_cols)
        self.off_structure[(i, j)] = ((uniq % n_cols).astype(np.int64), indptr, shape)
        self._off_pos[(i, j)] = pos.ravel()

    def sums(self, w: np.ndarray, r: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The flat vector of every cross-product of ``[Z X r]`` weighted by ``w``,
        written into ``out`` when given. Not for concurrent calls on one instance: the
        work arrays are kept (fresh arrays of n rows cost page faults at every step)."""
        out = np.empty(self.size) if out is None else out
        if self._scalar:
            return self._scalar_sums(w, r, out)
        b = self.bounds
        m = len(self.rows)
        for j, t in enumerate(self.rows):
            wz = np.multiply(t.Z, w[:, None], out=self._wz[j])
            vals = wz[:, 0] * t.Z[:, 0] if t.k == 1 else _row_products(wz, t.Z)
            out[b[j] : b[j + 1]] = np.bincount(
                self._diag_keys[j], vals, minlength=int(b[j + 1] - b[j])
            )
        s = m
        for (i, j), pos in self._off_pos.items():
            vals = _row_products(self._wz[i], self.rows[j].Z)
            out[b[s] : b[s + 1]] = np.bincount(pos, vals, minlength=int(b[s + 1] - b[s]))
            s += 1
        p1 = self.p + 1
        XrT, wXrT, wXr = self._XrT, self._wXrT, self._wXr  # [X r]', W[X r]', W[X r]
        XrT[self.p] = r
        np.multiply(XrT, w, out=wXrT)
        for a in range(p1):  # column by column: np.copyto(wXr, wXrT.T) took 5x as long
            wXr[:, a] = wXrT[a]
        for zt in self._zt:
            # Z_j'W[X r] (q_j k_j, p + 1) in zxy's layout (p + 1, q_j, k_j); one sparse
            # product (p + 1 bincounts took 1.5x as long at p = 6)
            out[b[s] : b[s + 1]].reshape(p1, -1)[...] = np.asarray(zt @ wXr).T
            s += 1
        self._xy_sums(out[b[s] :])
        return out

    def _scalar_sums(self, w: np.ndarray, r: np.ndarray, out: np.ndarray) -> np.ndarray:
        """:meth:`sums` for scalar terms by bincounts of vectors: the same products of the
        same numbers in the same order (``(z w) z``, ``z (w x)``), so the same sums bit for
        bit; grouseticks' second stage 67 -> 34 us a step, binary_20000's 5.6 -> 4.4 ms."""
        b, m, z0, ones = self.bounds, len(self.rows), self._z0, self._ones
        wz = [w if ones[j] else z0[j] * w for j in range(m)]
        for j in range(m):
            vals = wz[j] if ones[j] else wz[j] * z0[j]
            out[b[j] : b[j + 1]] = np.bincount(
                self._diag_keys[j], vals, minlength=int(b[j + 1] - b[j])
            )
        s = m
        for (i, j), pos in self._off_pos.items():
            vals = wz[i] if ones[j] else wz[i] * z0[j]
            out[b[s] : b[s + 1]] = np.bincount(pos, vals, minlength=int(b[s + 1] - b[s]))
            s += 1
        p1 = self.p + 1
        XrT, wXrT = self._XrT, self._wXrT  # [X r]', W[X r]'
        XrT[self.p] = r
        np.multiply(XrT, w, out=wXrT)
        for j in range(m):  # zxy: (p + 1, q_j, 1), one level per row
            q = self.q[j]
            block = out[b[s] : b[s + 1]].reshape(p1, q)
            for a in range(p1):
                vals = wXrT[a] if ones[j] else z0[j] * wXrT[a]
                block[a] = np.bincount(self._diag_keys[j], vals, minlength=q)
            s += 1
        self._xy_sums(out[b[s] :])
        return out

    def _xy_sums(self, tail: np.ndarray) -> None:
        """``[X r]'W[X r]`` into ``tail`` from the work rows :meth:`sums` filled, by dot
        products of rows: BLAS's gemm with an inner dimension of n and outer ones of
        p + 1 took 4x as long (n = 100,000, p = 2)."""
        p1 = self.p + 1
        xy = tail.reshape(p1, p1)
        for a in range(p1):
            for c in range(a + 1):
                xy[a, c] = xy[c, a] = np.dot(self._wXrT[a], self._XrT[c])

    def crossprods(self, flat: np.ndarray) -> CrossProducts:
        """The :class:`CrossProducts` whose entries are ``flat`` (any vector of
        :attr:`size`: sums, or the positions :class:`WeightedPLS` loads)."""
        b, m, p1 = self.bounds, len(self.rows), self.p + 1
        diag = [
            flat[b[j] : b[j + 1]].reshape(q, k, k) for j, (q, k) in enumerate(zip(self.q, self.k))
        ]
        off = {}
        for s, (key, (indices, indptr, shape)) in enumerate(self.off_structure.items(), m):
            off[key] = sp.csr_matrix((flat[b[s] : b[s + 1]], indices, indptr), shape=shape)
        s = m + len(off)
        zxy = [
            flat[b[s + j] : b[s + j + 1]].reshape(p1, q, k)
            for j, (q, k) in enumerate(zip(self.q, self.k))
        ]
        xy = flat[b[-2] :].reshape(p1, p1)
        return CrossProducts(self.q, self.k, diag, off, zxy, xy, self.n)


def _level_keys(codes: np.ndarray, ka: int, kb: int) -> np.ndarray:
    """For every row's ``ka x kb`` products, their place in ``(q, ka, kb)`` blocks."""
    cell = np.arange(ka)[:, None] * kb + np.arange(kb)[None, :]
    return (codes[:, None, None].astype(np.int64) * (ka * kb) + cell[None, :, :]).ravel()


def _row_products(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each row's outer product ``a_i b_i'``, raveled row after row."""
    return (a[:, :, None] * b[:, None, :]).ravel()


class WeightedPLS:
    """Penalised weighted least squares on fixed rows through the LMM engine: for
    weights ``w`` and response ``r``, :meth:`evaluate` is the engine's factor of
    ``Omega`` at ``theta`` (log|L|^2, the modes, beta and R_X), lme4's ``merPredD``
    step. ``X`` with no columns: beta fixed (lme4's second stage; ``r`` then holds the
    fixed part's residual)."""

    def __init__(self, rows: Sequence[TermRows], specs: Sequence[TermSpec], X: np.ndarray):
        X = np.asarray(X, dtype=float)
        self.n, self.p = n, p = X.shape
        self._lock = threading.Lock()
        base = ProfiledLMM(cross_products(rows, X, np.zeros(n), np.ones(n)), specs)
        Q = sum(s.n_levels * s.k for s in specs)
        width = Q + p + 1
        if base._dense is not None and n * width * width <= DENSE_ROWS_FLOPS:
            # a small model on few rows: Omega before Lambda is [Z X r]'W[Z X r], one
            # product of a dense n x (Q + p + 1) matrix (cbpp: 56 x 20), no sums to move;
            # the engine's DenseSystem gives only where Lambda goes (no values, no
            # structural zeros): the unit weights' engine is the template
            M = np.zeros((n, width))
            M[:, :Q] = sp.hstack([term_matrix(t) for t in rows]).toarray()
            M[:, Q:-1] = X
            self._dense_rows = M
            self._dense_w = np.empty_like(M.T)  # W M', laid out as M.T * w lays it out
            self.template = base
            return
        self._dense_rows = None
        self.sums = RowSums(rows, X)
        positions = np.arange(1, self.sums.size + 1, dtype=float)
        # the structure refilled is the one of the positions' load (a structural zero of
        # the sums at unit weights is still a place the sums of other weights fill)
        self.template = base.with_crossprods(self.sums.crossprods(positions))
        self._gather = _Gather(self.template.loaded_blocks())
        self._flat = np.zeros(self.sums.size + 1)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]  # a lock does not pickle (results go to worker processes)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def engine(self, w: np.ndarray, r: np.ndarray) -> ProfiledLMM:
        """The engine at weights ``w`` and response ``r`` (structure shared, blocks
        gathered from the sums)."""
        if self._dense_rows is not None:
            with self._lock:  # M's last column and W M' are work arrays; A is new
                M = self._dense_rows
                M[:, -1] = r
                A = np.multiply(M.T, w, out=self._dense_w) @ M
            p1 = self.p + 1
            return self.template.with_loaded({"dense_A": A, "xy": A[-p1:, -p1:]}, self.n)
        with self._lock:  # the sums' work arrays are shared; the gather copies out
            self.sums.sums(w, r, self._flat[1:])  # _flat[0] = 0: a structural zero
            blocks = self._gather(self._flat)
        return self.template.with_loaded(blocks, self.n)

    def evaluate(self, theta: np.ndarray, w: np.ndarray, r: np.ndarray) -> Evaluation:
        """The factor at ``theta`` with the modes (raises ``LinAlgError`` if singular)."""
        return self.engine(w, r).evaluate(theta, modes=True)

    def at(self, theta: np.ndarray) -> PLSSteps:
        """PIRLS's steps at one ``theta``: what depends on ``theta`` alone made once (the
        terms' factors; a small model's Lambda), each step then only its weights' part."""
        return PLSSteps(self, np.asarray(theta, dtype=float))


class PLSSteps:
    """The steps of :class:`WeightedPLS` at one ``theta``: ``steps(w, r)`` is
    ``(log|L|^2, u, beta)`` of :meth:`WeightedPLS.evaluate` (``u`` flat, terms one
    after another), the same numbers bit for bit, without the record. PIRLS solves
    three or four times at each ``theta``; unpacking it, and for a small model scaling
    by Lambda's outer product, once instead of at each step is a fifth of cbpp's fit."""

    def __init__(self, pls: WeightedPLS, theta: np.ndarray):
        self.pls = pls
        self.theta = theta
        self.factors = unpack_theta(theta, pls.template.specs)
        self._scale = None
        if pls._dense_rows is not None:  # the engine's DenseSystem: Lambda's part once
            self._system = pls.template._dense
            self._scale = self._system.lambda_scale(self.factors)

    def __call__(self, w: np.ndarray, r: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """``(log|L|^2, u, beta)`` at weights ``w`` and response ``r`` (raises
        ``LinAlgError`` where the engine's factor does not exist)."""
        pls = self.pls
        if self._scale is None:
            ev = pls.engine(w, r)._evaluate(self.theta, self.factors, True)
            return ev.ldL2, np.concatenate([a.ravel() for a in ev.u]), ev.beta
        with pls._lock:  # M's last column and W M' are work arrays; A is new
            M = pls._dense_rows
            M[:, -1] = r
            A = np.multiply(M.T, w, out=pls._dense_w) @ M
        return self._dense_step(A)

    def _dense_step(self, A: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """The engine's small-model factor (:meth:`DenseSystem.factor`) with Lambda's
        part made at ``theta``, read as ``_finish`` and ``_evaluate_dense`` read it."""
        d, p = self._system, self.pls.p
        Q = d.Q
        Lf = d.factor(A, self._scale)
        ldL2 = 2.0 * float(np.sum(np.log(np.diagonal(Lf)[:Q])))
        beta = np.zeros(0)
        if p:  # dtrtrs reads the lower triangle only (potrf left the input above it)
            beta, info = lapack.dtrtrs(
                Lf[Q : Q + p, Q : Q + p], Lf[-1, Q : Q + p], lower=1, trans=1
            )
            if info != 0:
                raise np.linalg.LinAlgError("singular R_X")
        return ldL2, d.modes(Lf, beta), beta


class _Gather:
    """Where every entry of the loaded blocks comes from in the flat vector of sums:
    one index vector for all of them (one gather a step) and how to cut the gathered
    values back into the blocks (arrays, CSR matrices with fixed structure, the dicts
    and tuples holding them). Built from the blocks of the positions' load, whose
    entries are their positions in that vector (0: a structural zero)."""

    def __init__(self, blocks):
        self._parts: list[np.ndarray] = []
        self._size = 0
        self._plan = self._compile(blocks)
        self._index = np.concatenate(self._parts) if self._parts else np.zeros(0, np.int64)

    def _take(self, values: np.ndarray) -> tuple[int, int]:
        index = np.rint(values).astype(np.int64).ravel()
        self._parts.append(index)
        self._size += len(index)
        return self._size - len(index), self._size

    def _compile(self, block):
        if isinstance(block, dict):
            return ("dict", [(key, self._compile(v)) for key, v in block.items()])
        if isinstance(block, list | tuple):
            return ("seq", type(block), [self._compile(v) for v in block])
        if block is None:
            return ("none",)
        if sp.issparse(block):
            csr = block.tocsr()
            return ("csr", self._take(csr.data), csr.indices, csr.indptr, csr.shape)
        block = np.asarray(block)
        return ("array", self._take(block), block.shape)

    def __call__(self, flat: np.ndarray):
        return _build(self._plan, flat[self._index])


def _build(plan, values: np.ndarray):
    kind = plan[0]
    if kind == "array":
        (a, b), shape = plan[1], plan[2]
        return values[a:b].reshape(shape)
    if kind == "dict":
        return {key: _build(sub, values) for key, sub in plan[1]}
    if kind == "seq":
        return plan[1](_build(sub, values) for sub in plan[2])
    if kind == "csr":
        (a, b), indices, indptr, shape = plan[1:]
        return sp.csr_matrix((values[a:b], indices, indptr), shape=shape)
    return None
