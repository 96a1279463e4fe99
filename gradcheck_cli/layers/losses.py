"""Losses: scalar functions of the network output. Complex-step safe (real-part comparisons)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.engine.lowrank import (
    Rank1,
    Shifted,
    mse_rank1,
    softmax_ce_class_major,
    softmax_ce_rank1,
    softmax_ce_shifted,
)
from gradcheck_cli.errors import ConfigError
from gradcheck_cli.layers.activations import sigmoid
from gradcheck_cli.layers.base import Array, Loss, real_number
from gradcheck_cli.layers.table import register_loss


@register_loss("softmax_cross_entropy")
class SoftmaxCrossEntropy(Loss):
    """Mean cross-entropy of softmax(logits). pred: (N, C); target: (N,) labels or (N, C) rows."""

    forward_formula = "L = −(1/N) Σ_n Σ_c y_nc · log softmax(z_n)_c"
    backward_formula = "dz = (p·Σ_c y − y) / N   (= (p − y)/N when each target row sums to 1)"
    target_kinds = ("classes", "values")

    @staticmethod
    def random_target(rng: np.random.Generator, shape: tuple[int, ...]) -> Array:
        """A random target of kind values: each row a probability distribution (softmax of
        normal draws), the kind of target this loss is meant for."""
        z = rng.standard_normal(shape)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        rows: Array = e / e.sum(axis=-1, keepdims=True)
        return rows

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
        # ∂/∂z of −Σ_c y_c log p_c is p·Σ_c y_c − y: the familiar p − y assumes Σ_c y_c = 1
        mass = self.y.sum(axis=1, keepdims=True)
        return (self.p * mass - self.y) / self.n

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
        n = pred.shape[1]
        if target.ndim == 1:  # labels: pick z[n, y_n] instead of multiplying by a one-hot
            zy = pred[:, np.arange(n), target.astype(int)]
        else:
            zy = np.einsum("cnk,nk->cn", pred, target)
        return softmax_ce_class_major(np.moveaxis(pred, 2, 0).copy(), zy, target)

    def forward_rank1(self, copies: Rank1, target: Array) -> Array:
        """``forward`` of each copy base + u[c] ⊗ w[c] → (C,) (gradcheck_cli/engine/lowrank.py)."""
        return softmax_ce_rank1(copies, target)

    def forward_shifted(self, copies: Shifted, target: Array) -> Array:
        """``forward`` of each copy base + d[c] → (C,) (gradcheck_cli/engine/lowrank.py; the
        dense copies where that form does not apply)."""
        got = softmax_ce_shifted(copies, target)
        return self.forward_copies(copies.dense(), target) if got is None else got

    def row_terms(self, shape: tuple[int, ...], rows: Array, values: Array, target: Array) -> Array:
        """Terms of rows ``rows`` (equal to ``values``) of a pred of ``shape``: L = Σ_n term_n."""
        terms: Array = self._row_losses(values, target[rows]) / shape[0]
        return terms


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

    def forward_rank1(self, copies: Rank1, target: Array) -> Array:
        """``forward`` of each copy base + u[c] ⊗ w[c] → (C,) (gradcheck_cli/engine/lowrank.py)."""
        return mse_rank1(copies, target)

    def row_terms(self, shape: tuple[int, ...], rows: Array, values: Array, target: Array) -> Array:
        """Terms of rows ``rows`` (equal to ``values``) of a pred of ``shape``: L = Σ_n term_n."""
        sq = ((values - target[rows]) ** 2).reshape(len(values), -1).sum(axis=1)
        terms: Array = sq / np.prod(shape)
        return terms


def _one_hot(target: Array, shape: tuple[int, ...]) -> Array:
    """(N,) class labels → (N, C) one-hot rows; (N, C) rows are returned as they are."""
    if target.ndim == 1:
        y: Array = np.zeros(shape)
        y[np.arange(shape[0]), target.astype(int)] = 1.0
        return y
    return target


@register_loss("bce_with_logits")
class BCEWithLogits(Loss):
    """Mean binary cross-entropy of σ(z), computed from the logits z without overflow.
    pred: (N, C) or any shape; target: same shape (values, used as given) or (N,) class labels
    (one-hot: class c of sample n is the positive label of output column c)."""

    forward_formula = (
        "L = (1/n) Σ max(z, 0) − z·y + log(1 + e^−|z|)   (= −y log σ(z) − (1−y) log(1−σ(z)))"
    )
    backward_formula = "dz = (σ(z) − y) / n"
    target_kinds = ("values", "classes")

    def forward(self, pred: Array, target: Array) -> Any:
        self.y = _one_hot(target, pred.shape) if target.ndim == 1 and pred.ndim == 2 else target
        pos = pred.real >= 0
        abs_z = np.where(pos, pred, -pred)  # |z| with the sign taken from the real part
        self.s: Array = sigmoid(pred)
        self.n = pred.size
        return (np.where(pos, pred, 0) - pred * self.y + np.log1p(np.exp(-abs_z))).sum() / self.n

    def backward(self) -> Array:
        dz: Array = (self.s - self.y) / self.n
        return dz


@register_loss("huber")
class Huber(Loss):
    """Mean Huber loss of the residual r = pred − y (quadratic inside ±delta, linear outside).
    pred, target: same shape."""

    forward_formula = "L = (1/n) Σ (½r² if |r| ≤ δ else δ(|r| − ½δ)),  r = pred − y"
    backward_formula = "dpred = (r if |r| ≤ δ else δ·sign(r)) / n"

    def __init__(self, delta: float = 1.0) -> None:
        self.delta = real_number(delta, "delta")
        if not self.delta > 0:
            raise ConfigError(f"'delta' must be positive, got {delta!r}")

    def forward(self, pred: Array, target: Array) -> Any:
        self.r: Array = pred - target
        self.sign = np.sign(self.r.real)
        self.inner = np.abs(self.r.real) <= self.delta  # branch chosen on the real part
        abs_r = self.r * self.sign  # |r|, complex-step safe
        d = self.delta
        return np.where(self.inner, 0.5 * self.r**2, d * (abs_r - 0.5 * d)).sum() / self.r.size

    def backward(self) -> Array:
        dr: Array = np.where(self.inner, self.r, self.delta * self.sign) / self.r.size
        return dr


@register_loss("l1")
class L1(Loss):
    """Mean absolute error. pred, target: same shape. Kink at r = 0, where the gradient is 0."""

    forward_formula = "L = (1/n) Σ |pred − y|"
    backward_formula = "dpred = sign(pred − y) / n   (0 at pred = y)"

    def forward(self, pred: Array, target: Array) -> Any:
        r = pred - target
        self.sign = np.sign(r.real)
        self.n = r.size
        return (r * self.sign).sum() / self.n

    def backward(self) -> Array:
        dpred: Array = self.sign / self.n
        return dpred


@register_loss("nll")
class NLL(Loss):
    """Mean negative log-likelihood of log-probabilities (e.g. after log_softmax).
    pred: (N, C) log-probabilities; target: (N,) class labels."""

    forward_formula = "L = −(1/N) Σ_n pred[n, y_n]"
    backward_formula = "dpred[n, c] = −1{c = y_n} / N"
    target_kinds = ("classes",)

    def forward(self, pred: Array, target: Array) -> Any:
        self.y = _one_hot(target, pred.shape)
        self.n = pred.shape[0]
        return -(self.y * pred).sum() / self.n

    def backward(self) -> Array:
        dpred: Array = -self.y / self.n
        return dpred


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
