"""Losses: scalar functions of the network output. Complex-step safe (real-part comparisons)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.layers.base import Array, Loss
from gradcheck_cli.registry import register_loss


@register_loss("softmax_cross_entropy")
class SoftmaxCrossEntropy(Loss):
    """Mean cross-entropy of softmax(logits). pred: (N, C); target: (N,) labels or (N, C) rows."""

    forward_formula = "L = −(1/N) Σ_n Σ_c y_nc · log softmax(z_n)_c"
    backward_formula = "dz = (p − y) / N"
    target_kinds = ("classes", "values")

    def forward(self, pred: Array, target: Array) -> Any:
        n, c = pred.shape
        if target.ndim == 1:
            self.y: Array = np.zeros((n, c))
            self.y[np.arange(n), target.astype(int)] = 1.0
        else:
            self.y = target
        z = pred - pred.real.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        self.p: Array = np.exp(logp)
        self.n = n
        return -(self.y * logp).sum() / n

    def backward(self) -> Array:
        return (self.p - self.y) / self.n

    def forward_rows(self, pred: Array, rows: Array, new: Array, target: Array) -> Array:
        """``forward`` of C copies of pred (N, K), copy c with row rows[c] replaced by new[c]:
        the batch mean from the unperturbed per-row terms. → (C,)."""
        base = self._row_losses(pred, target)
        changed = self._row_losses(new, target[rows])
        losses: Array = (base.sum() - base[rows] + changed) / pred.shape[0]
        return losses

    @staticmethod
    def _row_losses(pred: Array, target: Array) -> Array:
        z = pred - pred.real.max(axis=1, keepdims=True)
        log_sum = np.log(np.exp(z).sum(axis=1))
        if target.ndim == 1:
            picked: Array = log_sum - z[np.arange(len(z)), target.astype(int)]
            return picked
        row: Array = -(target * (z - log_sum[:, None])).sum(axis=1)
        return row

    def forward_copies(self, pred: Array, target: Array) -> Array:
        """``forward`` of each copy pred[c] (C, N, K) → (C,), without touching the caches."""
        c, n, _ = pred.shape
        z = pred - pred.real.max(axis=2, keepdims=True)
        log_sum = np.log(np.exp(z).sum(axis=2))  # (C, N)
        if target.ndim == 1:  # labels: pick z[n, y_n] instead of multiplying by a one-hot
            picked = z[:, np.arange(n), target.astype(int)]
            losses: Array = (log_sum - picked).sum(axis=1) / n
        else:
            losses = -(target * (z - log_sum[:, :, None])).reshape(c, -1).sum(axis=1) / n
        return losses


@register_loss("mse")
class MSE(Loss):
    """Mean squared error over all elements. pred, target: same shape."""

    forward_formula = "L = (1/n) Σ (pred − y)²"
    backward_formula = "dpred = 2 (pred − y) / n"

    def forward(self, pred: Array, target: Array) -> Any:
        self.diff: Array = pred - target
        return (self.diff**2).sum() / self.diff.size

    def backward(self) -> Array:
        return 2 * self.diff / self.diff.size

    def forward_rows(self, pred: Array, rows: Array, new: Array, target: Array) -> Array:
        """``forward`` of copies of pred with row rows[c] replaced by new[c] → (C,)."""
        base = ((pred - target) ** 2).reshape(len(pred), -1).sum(axis=1)
        changed = ((new - target[rows]) ** 2).reshape(len(new), -1).sum(axis=1)
        losses: Array = (base.sum() - base[rows] + changed) / pred.size
        return losses

    def forward_copies(self, pred: Array, target: Array) -> Array:
        """``forward`` of each copy pred[c] → (C,)."""
        diff = (pred - target).reshape(pred.shape[0], -1)
        losses: Array = (diff**2).sum(axis=1) / diff.shape[1]
        return losses


class WeightedSum(Loss):
    """L = Σ out ⊙ g for a fixed random g: lets any network or layer be checked without a loss."""

    forward_formula = "L = Σ out ⊙ g   (g fixed, drawn from the seed)"
    backward_formula = "dout = g"
    target_kinds = ("none",)

    def __init__(self, g: Array) -> None:
        self.g = g

    def forward(self, pred: Array, target: Array) -> Any:
        return (pred * self.g).sum()

    def backward(self) -> Array:
        return self.g.copy()

    def forward_rows(self, pred: Array, rows: Array, new: Array, target: Array) -> Array:
        """``forward`` of copies of pred with row rows[c] replaced by new[c] → (C,)."""
        base = (pred * self.g).reshape(len(pred), -1).sum(axis=1)
        changed = (new * self.g[rows]).reshape(len(new), -1).sum(axis=1)
        losses: Array = base.sum() - base[rows] + changed
        return losses

    def forward_copies(self, pred: Array, target: Array) -> Array:
        """``forward`` of each copy pred[c] → (C,)."""
        losses: Array = (pred * self.g).reshape(pred.shape[0], -1).sum(axis=1)
        return losses
