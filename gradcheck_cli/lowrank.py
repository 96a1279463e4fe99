"""Perturbed copies carried in their cheapest exact form past the last dense step.

A one-entry change of a linear layer's W (or b) changes one output column; through an elementwise
activation it stays one column (``numeric._Cols``); through the next linear layer it becomes a
rank-1 update of that layer's output: copy c = ``base + u[c] ⊗ w[c]`` with u (C, N) the change of
the input column and w (C, K) the matching row of W. :class:`Rank1` stores that form (C·(N + K)
numbers instead of C·N·K). A later layer gets the dense copies (:meth:`Rank1.dense`, the same
arithmetic as the dense update, bit for bit); a built-in loss that knows the form
(``forward_rank1``) evaluates its copies without a dense (C, N, K) copy in the usual layout.
Pure NumPy; only built-in layers and losses the engine trusts produce or consume this form
(``numeric._declares``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcheck_cli.layers.base import Array


@dataclass
class Rank1:
    """C copies of a 2-D ``base`` (N, K): copy c is ``base + u[c][:, None] * w[c][None, :]``."""

    base: Array  # (N, K)
    u: Array  # (C, N)
    w: Array  # (C, K)

    def dense(self) -> Array:
        """The copies as one (C, N, K) array."""
        dense: Array = self.base + self.u[:, :, None] * self.w[:, None, :]
        return dense

    def by_class(self) -> Array:
        """The copies laid out class-major, (K, C, N): reductions over the K classes then run
        over K contiguous planes instead of along a short last axis (numpy's slow case). Each
        entry is the same ``base[n, k] + u[c, n]·w[c, k]`` as in :meth:`dense`, bit for bit."""
        t: Array = self.w.T[:, :, None] * self.u[None, :, :]
        t += self.base.T[:, None, :]
        return t


def softmax_ce_rank1(copies: Rank1, target: Array) -> Array:
    """Mean softmax cross-entropy of each copy in ``copies`` → (C,), as ``forward_copies`` of
    the dense copies computes it (row max subtracted, log-sum-exp per row), class-major."""
    base, u, w = copies.base, copies.u, copies.w
    n = base.shape[0]
    t = copies.by_class()
    m = t.real.max(axis=0)  # (C, N) row maxima of every copy
    t -= m
    np.exp(t, out=t)
    log_sum = np.log(t.sum(axis=0))  # (C, N)
    if target.ndim == 1:  # labels: z[c, n, y_n] = base[n, y_n] + u[c, n]·w[c, y_n]
        y = target.astype(int)
        picked = (base[np.arange(n), y] + u * w[:, y]) - m
        losses: Array = (log_sum - picked).sum(axis=1) / n
        return losses
    # rows of values: Σ_k y_nk·z_cnk = (y·base)_n + u_cn·(w_c·y_n), then Σ_k y_nk·(z − m − lse)
    yz = (target * base).sum(axis=1) + u * (w @ target.T)
    losses = -(yz - (m + log_sum) * target.sum(axis=1)).sum(axis=1) / n
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


def changed_deltas(copies: Rank1, limit: float) -> tuple[Array, Array, Array] | None:
    """The changed rows as (copy, row, u[copy, row]·w[copy]) — the change itself, for a layer
    that maps a change of its input exactly (``forward_delta``) — under the same rule as
    :func:`changed_rows`; None also when some |u·w| may reach ``limit``."""
    u, w = copies.u, copies.w
    nonzero = u != 0
    if nonzero.sum() > ROWS_FRACTION * u.size or not np.all(np.isfinite(w)):
        return None
    if np.abs(u).max(initial=0.0) * np.abs(w).max(initial=0.0) >= limit:
        return None
    ci, ni = np.nonzero(nonzero)
    return ci, ni, u[ci, ni][:, None] * w[ci]
