"""Multi-head scaled dot-product self-attention over (N, T, D) sequences (no dropout).

Row independent along the batch axis (every position attends within its own sample only).
The softmax over keys is taken with the row maximum of the real part subtracted, and the causal
mask multiplies masked weights by exactly 0, so the complex step works and masked scores get a
gradient of exactly 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.errors import ConfigError
from gradcheck_cli.layers.base import Array, Layer, positive_int
from gradcheck_cli.layers.recurrent import flag, sequence_input
from gradcheck_cli.layers.table import register_layer


def masked_softmax(s: Array, keep: Array | None) -> Array:
    """softmax over the last axis; entries where ``keep`` is False get weight exactly 0."""
    if keep is None:
        e = np.exp(s - s.real.max(axis=-1, keepdims=True))
    else:  # masked scores never reach exp (no overflow), their weights are exactly 0
        z = s - np.where(keep, s.real, -np.inf).max(axis=-1, keepdims=True)
        e = np.where(keep, np.exp(np.where(keep, z, 0)), 0)
    p: Array = e / e.sum(axis=-1, keepdims=True)
    return p


@register_layer("attention")
class SelfAttention(Layer):
    """Multi-head self-attention. x, out: (N, T, D); Wq, Wk, Wv, Wo: (D, D); bq, bk, bv, bo: (D,);
    ``heads`` divides D (head size d = D/heads); ``causal: true`` hides keys j > i from query i."""

    forward_formula = (
        "Q = x·Wq + bq, K = x·Wk + bk, V = x·Wv + bv (split into heads of size d);  "
        "P = softmax_j(Q·Kᵀ/√d, keys j > i masked if causal);  A = P·V (heads merged);  "
        "out = A·Wo + bo"
    )
    backward_formula = (
        "dWo = Σ Aᵀ·dout;  dbo = Σ dout;  dA = dout·Woᵀ;  dP = dA·Vᵀ;  dV = Pᵀ·dA;  "
        "dS = P ⊙ (dP − Σ_j dP ⊙ P) / √d;  dQ = dS·K;  dK = dSᵀ·Q;  "
        "dW• = Σ xᵀ·d•, db• = Σ d• (• = Q, K, V);  dx = dQ·Wqᵀ + dK·Wkᵀ + dV·Wvᵀ"
    )
    row_independent = True  # along the batch axis; positions within a sample interact
    complex_safe = True

    def __init__(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        heads: int = 1,
        causal: bool = False,
        dtype: str = "float64",
    ) -> None:
        super().__init__()
        _, d = sequence_input(input_shape, "attention")
        self.heads = positive_int(heads, "heads")
        if d % self.heads:
            raise ConfigError(
                f"'heads' must divide the feature size {d}, got {heads}",
                hint=f"use one of {[h for h in range(1, d + 1) if d % h == 0]}",
            )
        self.causal = flag(causal, "causal")
        self.params = {}
        for name in ("q", "k", "v", "o"):
            self.params["W" + name] = (rng.standard_normal((d, d)) / np.sqrt(d)).astype(dtype)
        for name in ("q", "k", "v", "o"):
            self.params["b" + name] = (0.1 * rng.standard_normal(d)).astype(dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    @classmethod
    def estimate(
        cls, input_shape: tuple[int, ...], **args: Any
    ) -> tuple[int, tuple[int, ...]] | None:
        """Four (D, D) weights and four (D,) biases; output (T, D)."""
        if len(input_shape) != 2:
            return None
        d = input_shape[1]
        return 4 * d * d + 4 * d, tuple(input_shape)

    def _split(self, y: Array) -> Array:
        """(N, T, D) → (N, heads, T, d)."""
        n, t, d = y.shape
        return y.reshape(n, t, self.heads, d // self.heads).transpose(0, 2, 1, 3)

    @staticmethod
    def _merge(y: Array) -> Array:
        """(N, heads, T, d) → (N, T, D)."""
        n, h, t, d = y.shape
        return y.transpose(0, 2, 1, 3).reshape(n, t, h * d)

    def forward(self, x: Array) -> Array:
        p = self.params
        q, k, v = (self._split(x @ p["W" + s] + p["b" + s]) for s in "qkv")
        t = x.shape[1]
        self.keep = np.tril(np.ones((t, t), bool)) if self.causal else None
        self.scale = 1 / np.sqrt(q.shape[-1])
        self.P = masked_softmax(q @ k.swapaxes(-1, -2) * self.scale, self.keep)
        self.A = self._merge(self.P @ v)
        self.x, self.q, self.k, self.v = x, q, k, v
        out: Array = self.A @ p["Wo"] + p["bo"]
        return out

    def score_grad(self, P: Array, dP: Array) -> Array:
        """∂L/∂S from ∂L/∂P through the softmax over keys (and the 1/√d scale); masked keys
        have P = 0, so their score gradient is exactly 0."""
        dS: Array = P * (dP - (dP * P).sum(axis=-1, keepdims=True)) * self.scale
        return dS

    def backward(self, dout: Array) -> Array:
        p, P = self.params, self.P
        grads = {"Wo": np.einsum("ntd,nte->de", self.A, dout), "bo": dout.sum(axis=(0, 1))}
        dA = self._split(dout @ p["Wo"].T)
        dP = dA @ self.v.swapaxes(-1, -2)
        dv = P.swapaxes(-1, -2) @ dA
        dS = self.score_grad(P, dP)
        dq, dk = dS @ self.k, dS.swapaxes(-1, -2) @ self.q
        dx = np.zeros(self.x.shape, np.result_type(dout, self.x))
        for s, d in zip("qkv", (dq, dk, dv), strict=True):
            dm = self._merge(d)
            grads["W" + s] = np.einsum("ntd,nte->de", self.x, dm)
            grads["b" + s] = dm.sum(axis=(0, 1))
            dx += dm @ p["W" + s].T
        self.grads = {k: grads[k] for k in p}
        return dx
