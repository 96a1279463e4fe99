"""Elementwise and row-wise activations. Comparisons use the real part (complex-step safe)."""

from __future__ import annotations

import math

import numpy as np

from gradcheck_cli.engine import kernels
from gradcheck_cli.errors import ConfigError
from gradcheck_cli.layers.base import Array, Layer, real_number
from gradcheck_cli.layers.table import register_layer


@register_layer("relu")
class ReLU(Layer):
    """out = max(0, x). x, out: any shape."""

    shape_preserving = True

    forward_formula = "out = max(0, x)"
    backward_formula = "dx = dout ⊙ 1{x > 0}"
    elementwise = True  # out[..., j] depends on x[..., j] only (engine short-cut)

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
    elementwise = True  # out[..., j] depends on x[..., j] only (engine short-cut)

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
    elementwise = True  # out[..., j] depends on x[..., j] only (engine short-cut)

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
    elementwise = True  # out[..., j] depends on x[..., j] only (engine short-cut)

    def forward(self, x: Array) -> Array:
        self.out: Array = np.tanh(x)
        return self.out

    def backward(self, dout: Array) -> Array:
        return dout * (1 - self.out**2)

    @staticmethod
    def forward_shift(
        x: Array, out: Array, d: Array, rows: Array | None = None, bound: float | None = None
    ) -> Array:
        """tanh(x + d) from the cached out = tanh(x), for the engine's perturbed copies (d is
        the change itself, |d| ≤ bound when given; with ``rows``, of x[rows]): this CPU's
        cheapest exact form (gradcheck_cli/engine/kernels.py)."""
        return kernels.tanh_shift(x, out, d, rows, bound)

    @staticmethod
    def forward_near(x: Array, out: Array, x_new: Array) -> Array | None:
        """tanh(x_new) for copies x_new near x, when a form cheaper than ``np.tanh`` applies
        on this CPU (kernels.py); None otherwise (the engine then calls forward)."""
        return kernels.tanh_near(x, out, x_new)

    #: The engine may carry a change through tanh by its Taylor series from the cached output
    #: (c_k = (1 − t²)·P_k(t)/k!: gradcheck_cli/engine/taylor.py).
    shift_series = True


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


# -- helpers shared by the smooth activations (complex-step safe) ---------------------------------


def sigmoid(x: Array) -> Array:
    """σ(x) without overflow: e^(−|x|) only, branch chosen on the real part."""
    pos = x.real >= 0
    e = np.exp(np.where(pos, -x, x))
    out: Array = np.where(pos, 1 / (1 + e), e / (1 + e))
    return out


def _erf(x: Array) -> Array:
    """erf elementwise: math.erf on the real part (correctly rounded to ~1 ulp).

    For complex x = a + ib (complex step, b tiny) it returns erf(a) + i·b·erf'(a), the first-order
    expansion, which is all Im f(a + ib)/b needs (the error is O(b²), like the method itself).
    """
    a = np.asarray(x.real)
    real = np.frompyfunc(math.erf, 1, 1)(a).astype(a.dtype)
    if not np.iscomplexobj(x):
        out: Array = real
        return out
    return real + 1j * x.imag * (2 / math.sqrt(math.pi)) * np.exp(-(a**2))


_GELU_K = math.sqrt(2 / math.pi)
_GELU_C = 0.044715


@register_layer("gelu")
class GELU(Layer):
    """out = x·Φ(x) (exact, erf) or its tanh approximation. x, out: any shape."""

    shape_preserving = True

    forward_formula = (
        "exact: out = x·Φ(x), Φ(x) = ½(1 + erf(x/√2));  "
        "tanh: out = ½x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³)"
    )
    backward_formula = (
        "exact: dx = dout ⊙ (Φ(x) + x·φ(x));  "
        "tanh: dx = dout ⊙ (½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)), t = tanh(u)"
    )

    elementwise = True  # out[..., j] depends on x[..., j] only (engine short-cut)

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ConfigError(
                f"'approximate' must be 'none' (exact, erf) or 'tanh', got {approximate!r}"
            )
        self.approximate = approximate

    def forward(self, x: Array) -> Array:
        self.x = x
        if self.approximate == "tanh":
            self.t: Array = np.tanh(_GELU_K * (x + _GELU_C * x**3))
            out: Array = 0.5 * x * (1 + self.t)
            return out
        self.cdf: Array = 0.5 * (1 + _erf(x / math.sqrt(2)))
        return x * self.cdf

    def backward(self, dout: Array) -> Array:
        x = self.x
        if self.approximate == "tanh":
            du = _GELU_K * (1 + 3 * _GELU_C * x**2)
            return dout * (0.5 * (1 + self.t) + 0.5 * x * (1 - self.t**2) * du)
        pdf = np.exp(-(x**2) / 2) / math.sqrt(2 * math.pi)
        return dout * (self.cdf + x * pdf)


@register_layer("elu")
class ELU(Layer):
    """out = x if x > 0 else α(eˣ − 1). x, out: any shape."""

    shape_preserving = True

    forward_formula = "out = x if x > 0 else α(eˣ − 1)"
    backward_formula = "dx = dout ⊙ (1 if x > 0 else out + α)"

    elementwise = True  # out[..., j] depends on x[..., j] only (engine short-cut)

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = real_number(alpha, "alpha")

    def forward(self, x: Array) -> Array:
        self.mask = x.real > 0
        self.out: Array = np.where(self.mask, x, self.alpha * np.expm1(np.where(self.mask, 0, x)))
        return self.out

    def backward(self, dout: Array) -> Array:
        return np.where(self.mask, dout, dout * (self.out + self.alpha))


@register_layer("softplus")
class Softplus(Layer):
    """out = log(1 + eˣ), evaluated as max(x, 0) + log(1 + e^−|x|). x, out: any shape."""

    shape_preserving = True

    forward_formula = "out = log(1 + eˣ) = max(x, 0) + log(1 + e^−|x|)"
    backward_formula = "dx = dout ⊙ σ(x)"

    elementwise = True  # out[..., j] depends on x[..., j] only (engine short-cut)

    def forward(self, x: Array) -> Array:
        self.x = x
        pos = x.real >= 0
        out: Array = np.where(pos, x, 0) + np.log1p(np.exp(np.where(pos, -x, x)))
        return out

    def backward(self, dout: Array) -> Array:
        return dout * sigmoid(self.x)


@register_layer("silu")
class SiLU(Layer):
    """out = x·σ(x) (a.k.a. swish). x, out: any shape."""

    shape_preserving = True

    forward_formula = "out = x·σ(x)"
    backward_formula = "dx = dout ⊙ (σ(x) + x·σ(x)(1 − σ(x)))"

    elementwise = True  # out[..., j] depends on x[..., j] only (engine short-cut)

    def forward(self, x: Array) -> Array:
        self.x = x
        self.s = sigmoid(x)
        out: Array = x * self.s
        return out

    def backward(self, dout: Array) -> Array:
        s = self.s
        return dout * (s + self.x * s * (1 - s))


@register_layer("log_softmax")
class LogSoftmax(Layer):
    """Row-wise log-softmax over the last axis. x, out: (N, C)."""

    shape_preserving = True

    forward_formula = "out_i = x_i − max x − log Σ_j exp(x_j − max x)"
    backward_formula = "dx = dout − exp(out) ⊙ Σ_j dout_j"

    def forward(self, x: Array) -> Array:
        z = x - x.real.max(axis=-1, keepdims=True)
        self.out: Array = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        return self.out

    def backward(self, dout: Array) -> Array:
        return dout - np.exp(self.out) * dout.sum(axis=-1, keepdims=True)
