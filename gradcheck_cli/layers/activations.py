"""Elementwise and row-wise activations. Comparisons use the real part (complex-step safe)."""

from __future__ import annotations

import numpy as np

from gradcheck_cli.layers.base import Array, Layer, real_number
from gradcheck_cli.registry import register_layer


@register_layer("relu")
class ReLU(Layer):
    """out = max(0, x). x, out: any shape."""

    shape_preserving = True

    forward_formula = "out = max(0, x)"
    backward_formula = "dx = dout ⊙ 1{x > 0}"

    def forward(self, x: Array) -> Array:
        self.mask = x.real > 0
        return np.where(self.mask, x, 0)

    def backward(self, dout: Array) -> Array:
        return np.where(self.mask, dout, 0)


@register_layer("leaky_relu")
class LeakyReLU(Layer):
    """out = x if x > 0 else slope·x. x, out: any shape."""

    shape_preserving = True

    forward_formula = "out = x if x > 0 else slope·x"
    backward_formula = "dx = dout ⊙ (1 if x > 0 else slope)"

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = real_number(slope, "slope")

    def forward(self, x: Array) -> Array:
        self.mask = x.real > 0
        return np.where(self.mask, x, self.slope * x)

    def backward(self, dout: Array) -> Array:
        return np.where(self.mask, dout, self.slope * dout)


@register_layer("sigmoid")
class Sigmoid(Layer):
    """out = 1 / (1 + e^−x), evaluated without overflow. x, out: any shape."""

    shape_preserving = True

    forward_formula = "out = σ(x) = 1 / (1 + e^−x)"
    backward_formula = "dx = dout ⊙ out ⊙ (1 − out)"

    def forward(self, x: Array) -> Array:
        pos = x.real >= 0
        e = np.exp(np.where(pos, -x, x))  # e^(−|x|): never overflows
        self.out: Array = np.where(pos, 1 / (1 + e), e / (1 + e))
        return self.out

    def backward(self, dout: Array) -> Array:
        return dout * self.out * (1 - self.out)


@register_layer("tanh")
class Tanh(Layer):
    """out = tanh(x). x, out: any shape."""

    shape_preserving = True

    forward_formula = "out = tanh(x)"
    backward_formula = "dx = dout ⊙ (1 − out²)"

    def forward(self, x: Array) -> Array:
        self.out: Array = np.tanh(x)
        return self.out

    def backward(self, dout: Array) -> Array:
        return dout * (1 - self.out**2)


@register_layer("softmax")
class Softmax(Layer):
    """Row-wise softmax over the last axis. x, out: (N, C)."""

    shape_preserving = True

    forward_formula = "out_i = exp(x_i − max x) / Σ_j exp(x_j − max x)"
    backward_formula = "dx = out ⊙ (dout − Σ_j dout_j·out_j)"

    def forward(self, x: Array) -> Array:
        e = np.exp(x - x.real.max(axis=-1, keepdims=True))
        self.out: Array = e / e.sum(axis=-1, keepdims=True)
        return self.out

    def backward(self, dout: Array) -> Array:
        p = self.out
        return p * (dout - (dout * p).sum(axis=-1, keepdims=True))
