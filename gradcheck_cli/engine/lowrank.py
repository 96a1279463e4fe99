"""Perturbed copies carried in their cheapest exact form past the last dense step.

A one-entry change of a linear layer's W (or b) changes one output column; through an elementwise
activation it stays one column (``Cols``); through the next linear layer it becomes a
rank-1 update of that layer's output: copy c = ``base + u[c] ⊗ w[c]`` with u (C, N) the change of
the input column and w (C, K) the matching row of W. :class:`Rank1` stores that form (C·(N + K)
numbers instead of C·N·K). A later layer gets the dense copies (:meth:`Rank1.dense`, the same
arithmetic as the dense update, bit for bit); a built-in loss that knows the form
(``forward_rank1``) evaluates its copies without a dense (C, N, K) copy in the usual layout.
Pure NumPy; only built-in layers and losses the engine trusts produce or consume this form
(:func:`declares`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck_cli.engine import kernels
from gradcheck_cli.errors import PluginError
from gradcheck_cli.layers.base import Array


def declares(obj: Any, attr: str) -> bool:
    """True when ``obj``'s class provides ``attr`` (truthy) *and* still runs the forward of the
    class that provided it — so a subclass that overrides ``forward`` loses the short-cut."""
    cls = type(obj)
    known = _DECLARED.get((cls, attr))
    if known is None:
        owner = next((c for c in cls.__mro__ if attr in vars(c)), None)
        known = bool(owner is not None and getattr(owner, attr)) and (
            getattr(cls, "forward", None) is getattr(owner, "forward", None)
        )
        _DECLARED[(cls, attr)] = known
    return known


_DECLARED: dict[tuple[type, str], bool] = {}


@dataclass
class Cols:
    """C copies of a 2-D ``base`` (N, F), copy c equal to ``base`` except column ``cols[c]``,
    which is ``values[c]`` (N,)."""

    base: Array
    cols: Array  # (C,) int
    values: Array  # (C, N)

    def dense(self) -> Array:
        c = len(self.cols)
        out = np.empty((c, *self.base.shape), np.result_type(self.base, self.values))
        out[...] = self.base
        out[np.arange(c), :, self.cols] = self.values
        return out

    def rank1(self) -> Rank1:
        """The same copies as base + u[c] ⊗ e_cols[c]: u = the change of the column."""
        c, f = len(self.cols), self.base.shape[1]
        unit = np.zeros((c, f), self.base.dtype)
        unit[np.arange(c), self.cols] = 1
        return Rank1(self.base, self.values - self.base[:, self.cols].T, unit)


@dataclass
class Rows:
    """C copies of ``base`` (N, ...), copy c equal to ``base`` except row ``rows[c]``, which is
    ``values[c]``. Row-independent layers map it to the same form by running on the C rows."""

    base: Array
    rows: Array  # (C,) int
    values: Array  # (C, ...)

    def dense(self) -> Array:
        c = len(self.rows)
        out = np.empty((c, *self.base.shape), np.result_type(self.base, self.values))
        out[...] = self.base
        out[np.arange(c), self.rows] = self.values
        return out


@dataclass
class Rank1:
    """C copies of a 2-D ``base`` (N, K): copy c is ``base + u[c][:, None] * w[c][None, :]``."""

    base: Array  # (N, K)
    u: Array  # (C, N)
    w: Array  # (C, K)
    #: The changed input column of each copy when w[c] is that column's row of the weights of
    #: layer ``made_by`` (the same row for every copy of a column: engine/taylor.py's tables).
    cols: Array | None = None
    made_by: int = -1

    def dense(self) -> Array:
        """The copies as one (C, N, K) array."""
        dense: Array = self.u[:, :, None] * self.w[:, None, :]
        if dense.dtype != np.result_type(dense, self.base):  # a complex base
            return self.base + dense
        dense += self.base  # in place: the same numbers as base + u·w, one array less
        return dense

    def by_class(self) -> Array:
        """The copies laid out class-major, (K, C, N): reductions over the K classes then run
        over K contiguous planes instead of along a short last axis (numpy's slow case). Each
        entry is the same ``base[n, k] + u[c, n]·w[c, k]`` as in :meth:`dense`, bit for bit."""
        t: Array = self.w.T[:, :, None] * self.u[None, :, :]
        t += self.base.T[:, None, :]
        return t


@dataclass
class Shifted:
    """C copies of ``base`` (N, ...) carried as their change: copy c is ``base + d[c]``. Linear
    layers map the change alone (d·W: no bias, no base), tanh from the cached output
    (engine/changes.py); the copies themselves are made only where a layer needs them."""

    base: Array
    d: Array  # (C, N, ...)

    def dense(self) -> Array:
        out: Array = self.d + self.base
        return out


#: Largest |u|·|w| for which a rank-1 softmax CE subtracts each row's base max instead of the
#: copy's own (exp of at most e^SHIFT_SLACK then: far from overflow, and from underflow).
SHIFT_SLACK = 50.0


def softmax_ce_rank1(copies: Rank1, target: Array) -> Array:
    """Mean softmax cross-entropy of each copy in ``copies`` → (C,), as ``forward_copies`` of
    the dense copies computes it, to round-off, class-major. The log-sum-exp of a row is
    shifted by the base row's max m (precomputed, base − m laid out once) instead of the copy's
    own row max, which differs from it by at most |u|·|w| (≤ :data:`SHIFT_SLACK`, or the copy's
    max is taken): two passes fewer over the C·N·K numbers."""
    base, u, w = copies.base, copies.u, copies.w
    n = base.shape[0]
    if target.ndim == 1:  # labels: z[c, n, y_n] = base[n, y_n] + u[c, n]·w[c, y_n]
        y = target.astype(int)
        base_y, w_y = base[np.arange(n), y], w[:, y]
    else:  # rows of values: Σ_k y_nk·z_cnk = (y·base)_n + u_cn·(w_c·y_n)
        base_y, w_y = (target * base).sum(axis=1), w @ target.T
    bound = np.abs(u).max(initial=0.0) * np.abs(w).max(initial=0.0)
    if not bound <= SHIFT_SLACK:  # also NaN
        return softmax_ce_class_major(copies.by_class(), base_y + u * w_y, target)
    m = base.real.max(axis=1)  # (N,) the base rows' maxima
    # exp of (base − m) + u·w, class-major (K, C, N), as Rank1.by_class lays it out: by this
    # CPU's cheapest exact form (kernels.py; e^(u·w) by its series from exp(base − m) on AVX2)
    t = kernels.exp_shift((base - m[:, None]).T[:, None, :], w.T[:, :, None] * u[None], bound)
    log_sum = np.log(t.sum(axis=0))  # (C, N)
    if target.ndim == 1:
        losses: Array = (log_sum - ((base_y - m) + u * w_y)).sum(axis=1) / n
        return losses
    mass = target.sum(axis=1)
    losses = -((base_y - m * mass) + u * w_y - log_sum * mass).sum(axis=1) / n
    return losses


def softmax_ce_shifted(copies: Shifted, target: Array) -> Array | None:
    """Mean softmax cross-entropy of each copy base + d[c] → (C,), as ``forward_copies`` of the
    dense copies computes it, to round-off: class-major, each row's log-sum-exp shifted by the
    base row's max m (the copy's own differs from it by at most max|d|), exp(base − m + d) by
    this CPU's cheapest exact form (kernels.exp_shift: e^d by its series on AVX2). None when
    the copies are not real float64 (N, K) rows or some |d| exceeds :data:`SHIFT_SLACK`."""
    base, d = copies.base, copies.d
    if not (base.ndim == 2 and d.dtype == base.dtype == np.float64):
        return None
    limit = kernels.bound_of(d)
    if not limit <= SHIFT_SLACK:  # also NaN
        return None
    n = base.shape[0]
    m = base.max(axis=1)  # (N,)
    t = kernels.exp_shift(
        (base - m[:, None]).T[:, None, :], np.ascontiguousarray(np.moveaxis(d, 2, 0)), limit
    )
    log_sum = np.log(t.sum(axis=0))  # (C, N)
    if target.ndim == 1:  # labels: z[c, n, y_n] = base[n, y_n] + d[c, n, y_n]
        y = target.astype(int)
        rows = np.arange(n)
        losses: Array = (log_sum - ((base[rows, y] - m) + d[:, rows, y])).sum(axis=1) / n
        return losses
    mass = target.sum(axis=1)  # Σ_k y_nk·z_cnk = (y·base)_n + (d_c·y)_n
    zy = (target * base).sum(axis=1) + np.einsum("cnk,nk->cn", d, target)
    losses = -(zy - m * mass - log_sum * mass).sum(axis=1) / n
    return losses


def softmax_ce_class_major(t: Array, zy: Array, target: Array) -> Array:
    """Mean softmax cross-entropy of C copies of logits (N, K) laid out class-major, ``t``
    (K, C, N), which is overwritten: the row max subtracted, log-sum-exp per row, reduced over
    K contiguous planes instead of along a short last axis (numpy's slow case). ``zy`` (C, N)
    is each row's logit of its label (labels) or Σ_k y_nk·z_cnk (rows of values). → (C,)."""
    n = t.shape[2]
    m = t.real.max(axis=0)  # (C, N) row maxima of every copy
    t -= m
    np.exp(t, out=t)
    log_sum = np.log(t.sum(axis=0))  # (C, N)
    if target.ndim == 1:
        losses: Array = (log_sum - (zy - m)).sum(axis=1) / n
        return losses
    # Σ_k y_nk·(z − m − lse) = Σ_k y_nk·z − (m + lse)·Σ_k y_nk
    losses = -(zy - (m + log_sum) * target.sum(axis=1)).sum(axis=1) / n
    return losses


def mse_rank1(copies: Rank1, target: Array) -> Array:
    """Mean squared error of each copy → (C,): Σ (d + u⊗w)² with d = base − target, expanded as
    Σd² + 2·Σ_n u_n (d_n·w) + Σ u² · Σ w² (no dense copy at all)."""
    d = copies.base - target
    u, w = copies.u, copies.w
    cross = np.einsum("cn,cn->c", u, w @ d.T)
    total: Array = ((d * d).sum() + 2 * cross + (u * u).sum(axis=1) * (w * w).sum(axis=1)) / d.size
    return total


@dataclass
class RowSet:
    """``n_copies`` copies of ``base`` (N, ...) that differ from it in a few rows each: entry m
    is row ``rows[m]`` of copy ``copy[m]``, equal to ``values[m]``; every other row is the
    base row. Row-independent layers map it to the same form by running on the changed rows."""

    base: Array
    n_copies: int
    copy: Array  # (M,) int
    rows: Array  # (M,) int
    values: Array  # (M, ...)

    def dense(self) -> Array:
        out = np.empty((self.n_copies, *self.base.shape), np.result_type(self.base, self.values))
        out[...] = self.base
        out[self.copy, self.rows] = self.values
        return out

    def losses(self, base_terms: Array, new_terms: Array) -> Array:
        """Per-copy losses Σ_n term_n from the base rows' terms (N,) and the changed rows'
        terms (M,): the base total plus each copy's changes."""
        diff = new_terms - base_terms[self.rows]
        k = self.n_copies
        change = (
            np.bincount(self.copy, diff.real, k) + 1j * np.bincount(self.copy, diff.imag, k)
            if np.iscomplexobj(diff)
            else np.bincount(self.copy, diff, k)
        )
        total: Array = base_terms.sum() + change
        return total


#: A rank-1 form goes to changed rows only when at most this fraction of its rows change
#: (gathering rows costs about a pass over them; below it the dense rows are cheaper).
ROWS_FRACTION = 0.75


def changed_rows(copies: Rank1) -> RowSet | None:
    """The rows of each copy that differ from the base (u[c, n] ≠ 0), or None when most rows
    change or w is not finite (0·inf would not leave a row unchanged). Each row is computed as
    in :meth:`Rank1.dense`, bit for bit."""
    u, w = copies.u, copies.w
    c, n = u.shape
    nonzero = u != 0
    if nonzero.sum() > ROWS_FRACTION * c * n or not np.all(np.isfinite(w)):
        return None
    ci, ni = np.nonzero(nonzero)
    values: Array = copies.base[ni] + u[ci, ni][:, None] * w[ci]
    return RowSet(copies.base, c, ci, ni, values)


def bound(copies: Rank1) -> float:
    """max|u|·max|w| ≥ every |u[c, n]·w[c, k]| (rounding is monotonic); NaN if either holds one."""
    u, w = copies.u, copies.w
    if u.size == 0 or w.size == 0:
        return 0.0
    return float(np.abs(u).max() * np.abs(w).max())


def changed_deltas(copies: Rank1) -> tuple[Array, Array, Array] | None:
    """The changed rows of :func:`changed_rows` (same rule) as (copy, row, u[copy, row]·w[copy]):
    the change itself, for a layer that maps a change of its input (``forward_shift``); base
    row + change is each row of :meth:`Rank1.dense`, bit for bit. Its bound: :func:`bound`."""
    u, w = copies.u, copies.w
    c, n = u.shape
    nonzero = u != 0
    if nonzero.sum() > ROWS_FRACTION * c * n or not np.all(np.isfinite(w)):
        return None
    ci, ni = np.nonzero(nonzero)
    return ci, ni, u[ci, ni][:, None] * w[ci]


# -- changed rows through the engine's layers (pert: a numeric.Perturber) ------------------------
def rows_to_loss(pert: Any, i: int) -> bool:
    """Layers i… are all stackable and the loss sums per-row terms (``row_terms``)."""
    n = len(pert.net.layers)
    return declares(pert.net.loss, "row_terms") and all(pert.stackable(k) for k in range(i, n))


def run_rows(pert: Any, i: int, state: RowSet) -> Array:
    """Layer ``i`` (stackable) on the changed rows of ``state`` only."""
    rows, values, out_base = state.rows, state.values, pert.outputs[i]
    if len(rows) == 0:
        return np.empty((0, *out_base.shape[1:]), np.result_type(out_base, values))
    out = pert.layer_forward(i, values)
    if out.shape != (len(rows), *out_base.shape[1:]):
        raise PluginError(
            f"{pert.net.describe(i)} declares row_independent = True but returned shape "
            f"{out.shape} for {len(rows)} rows (expected rows of {out_base.shape})"
        )
    return out


def rank1_through(pert: Any, i: int, state: Rank1) -> RowSet | None:
    """Layer ``i`` (stackable, as every layer after it: :func:`rows_to_loss`) applied to the
    rank-1 form ``state`` (its input) as changed rows only, or None when most rows change
    (the engine goes dense). A layer that maps a change of its input (``forward_shift``:
    tanh by this CPU's cheapest exact form, kernels.py) gets the change itself."""
    layer, out_base = pert.net.layers[i], pert.outputs[i]
    if declares(layer, "forward_shift") and out_base.shape == state.base.shape:
        found = changed_deltas(state)
        if found is None:
            return None
        ci, ni, d = found
        near = layer.forward_shift(state.base, out_base, d, ni, bound(state))
        return RowSet(out_base, len(state.u), ci, ni, near)
    rows = changed_rows(state)
    if rows is None:
        return None
    return RowSet(pert.outputs[i], rows.n_copies, rows.copy, rows.rows, run_rows(pert, i, rows))


def shift_dense(pert: Any, i: int, state: Any) -> Array | None:
    """Layer ``i`` on dense copies (a :class:`Rank1`, or an array of copies of its input) from
    the change itself, when it maps one (``forward_shift``/``forward_near``: tanh by this CPU's
    cheapest exact form, kernels.py); None when it does not or the form does not apply."""
    layer, x_base, out_base = pert.net.layers[i], pert.layer_inputs[i], pert.outputs[i]
    if not declares(layer, "forward_shift") or out_base.shape != x_base.shape:
        return None
    if isinstance(state, Rank1):  # base + u⊗w: the change u⊗w is at hand
        d = state.u[:, :, None] * state.w[:, None, :]
        shifted: Array = layer.forward_shift(state.base, out_base, d, None, bound(state))
        return shifted
    if isinstance(state, np.ndarray) and state.shape[1:] == x_base.shape:
        near: Array | None = layer.forward_near(x_base, out_base, state)
        return near
    return None
