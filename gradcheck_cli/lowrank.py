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
