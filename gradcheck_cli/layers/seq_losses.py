"""Losses over sequences: softmax cross-entropy per position with an ignored target value."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.errors import ConfigError, ShapeError
from gradcheck_cli.layers.base import Array, Loss
from gradcheck_cli.layers.table import register_loss


@register_loss("sequence_cross_entropy")
class SequenceCrossEntropy(Loss):
    """Softmax cross-entropy at every position, averaged over the positions whose target is not
    ``ignore_index`` (default −100). pred: (N, T, C) logits (any (N, …, C)); target: (N, T)
    integer classes (pred's shape without the last axis). Masked positions do not enter L at all,
    so their logits get a gradient of exactly 0."""

    forward_formula = (
        "L = −(1/M) Σ_{(n,t): y_nt ≠ ignore} log softmax(z_nt)[y_nt],  "
        "M = number of positions with y_nt ≠ ignore"
    )
    backward_formula = "dz_nt = (p_nt − onehot(y_nt)) / M where y_nt ≠ ignore, else 0"
    target_kinds = ("classes",)
    complex_safe = True
    #: The network builds one class label per position (pred's shape without the class axis).
    per_position_targets = True

    def __init__(self, ignore_index: int = -100) -> None:
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise ConfigError(f"'ignore_index' must be an integer, got {ignore_index!r}")
        self.ignore_index = int(ignore_index)

    def _token_losses(self, pred: Array, target: Array) -> Array:
        """−log softmax(z)[y] per position of pred (…, C) (target broadcast to pred's leading
        axes); exactly 0 where the target is ignore_index."""
        keep = target != self.ignore_index
        y = np.where(keep, target, 0).astype(np.int64)
        z = pred - pred.real.max(axis=-1, keepdims=True)
        log_sum = np.log(np.exp(z).sum(axis=-1))
        idx = np.broadcast_to(y[..., None], (*pred.shape[:-1], 1))
        picked = np.take_along_axis(z, idx, axis=-1)[..., 0]
        losses: Array = np.where(np.broadcast_to(keep, picked.shape), log_sum - picked, 0)
        return losses

    def _count(self, pred: Array, target: Array) -> int:
        if target.shape != pred.shape[:-1]:
            raise ShapeError(
                f"sequence_cross_entropy needs one class per position: target shape "
                f"{pred.shape[:-1]} for logits {pred.shape}, got {target.shape}"
            )
        m = int((target != self.ignore_index).sum())
        if m == 0:
            raise ConfigError(
                f"every target equals ignore_index ({self.ignore_index}): the mean over no "
                "positions is undefined and no gradient can be checked",
                hint="leave at least one position unmasked",
            )
        return m

    def forward(self, pred: Array, target: Array) -> Any:
        self.m = self._count(pred, target)
        self.keep = target != self.ignore_index
        z = pred - pred.real.max(axis=-1, keepdims=True)
        self.p: Array = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
        self.y = np.where(self.keep, target, 0).astype(np.int64)
        return self._token_losses(pred, target).sum() / self.m

    def backward(self) -> Array:
        onehot = np.zeros(self.p.shape)
        np.put_along_axis(onehot, self.y[..., None], 1.0, axis=-1)
        dz: Array = np.where(self.keep[..., None], self.p - onehot, 0) / self.m
        return dz

    def forward_rows(self, pred: Array, rows: Array, new: Array, target: Array) -> Array:
        """``forward`` of copies of pred with sample rows[c] replaced by new[c] → (C,)."""
        m = self._count(pred, target)
        base = self._token_losses(pred, target).reshape(len(pred), -1).sum(axis=1)
        changed = self._token_losses(new, target[rows]).reshape(len(new), -1).sum(axis=1)
        losses: Array = (base.sum() - base[rows] + changed) / m
        return losses

    def forward_copies(self, pred: Array, target: Array) -> Array:
        """``forward`` of each copy pred[c] (C, N, …, K) → (C,)."""
        m = self._count(pred[0], target)
        losses: Array = self._token_losses(pred, target).reshape(len(pred), -1).sum(axis=1) / m
        return losses
