"""Normalisation layers: layernorm (per sample) and batchnorm (batch statistics, training mode).

Both share x̂ = (x − μ)/√(σ² + eps) over some axes and its backward
dx = (1/√(σ² + eps)) · (dx̂ − mean(dx̂) − x̂ ⊙ mean(dx̂ ⊙ x̂)), means over the same axes.
"""

from __future__ import annotations

import numpy as np

from gradcheck_cli.errors import ConfigError, ShapeError
from gradcheck_cli.layers.base import Array, Layer, positive_int, real_number
from gradcheck_cli.layers.table import register_layer


def _eps(value: object) -> float:
    eps = real_number(value, "eps")
    if not eps > 0:
        raise ConfigError(f"'eps' must be positive, got {value!r}")
    return eps


def normalize(x: Array, axes: tuple[int, ...], eps: float) -> tuple[Array, Array]:
    """x̂ and 1/√(σ² + eps), with mean and (biased) variance over ``axes``."""
    xc = x - x.mean(axis=axes, keepdims=True)
    inv: Array = 1 / np.sqrt((xc**2).mean(axis=axes, keepdims=True) + eps)
    return xc * inv, inv


def normalize_backward(dxhat: Array, xhat: Array, inv: Array, axes: tuple[int, ...]) -> Array:
    """∂L/∂x from ∂L/∂x̂ (the means of x̂ and of σ² both depend on x)."""
    mean = dxhat.mean(axis=axes, keepdims=True)
    proj = (dxhat * xhat).mean(axis=axes, keepdims=True)
    dx: Array = inv * (dxhat - mean - xhat * proj)
    return dx


@register_layer("layernorm")
class LayerNorm(Layer):
    """Normalise each sample over its feature axes, then scale and shift.
    x, out: (N, d1, …); gamma, beta: (d1, …). ``dims: k`` normalises over the last k axes only
    (``dims: 1`` on (N, T, D): each position over its D features, as in a transformer)."""

    forward_formula = "x̂ = (x − μ)/√(σ² + eps) (μ, σ² per sample);  out = γ ⊙ x̂ + β"
    backward_formula = (
        "dγ = Σ_N dout ⊙ x̂;  dβ = Σ_N dout;  dx̂ = dout ⊙ γ;  "
        "dx = (dx̂ − mean(dx̂) − x̂ ⊙ mean(dx̂ ⊙ x̂)) / √(σ² + eps)"
    )

    def __init__(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        dtype: str = "float64",
        eps: float = 1e-5,
        dims: int | None = None,
    ) -> None:
        super().__init__()
        self.eps = _eps(eps)
        if len(input_shape) < 1:
            raise ShapeError("layernorm needs per-sample features, got a scalar per sample")
        self.dims = len(input_shape) if dims is None else positive_int(dims, "dims")
        if self.dims > len(input_shape):
            raise ConfigError(
                f"'dims' must be at most the {len(input_shape)} per-sample axes, got {dims!r}"
            )
        shape = tuple(input_shape[len(input_shape) - self.dims :])
        self.params = {
            "gamma": (1 + 0.1 * rng.standard_normal(shape)).astype(dtype),
            "beta": (0.1 * rng.standard_normal(shape)).astype(dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x: Array) -> Array:
        self.axes = tuple(range(x.ndim - self.dims, x.ndim))
        self.xhat, self.inv = normalize(x, self.axes, self.eps)
        out: Array = self.params["gamma"] * self.xhat + self.params["beta"]
        return out

    def backward(self, dout: Array) -> Array:
        lead = tuple(range(dout.ndim - self.dims))  # the batch axis and any not normalised
        self.grads["gamma"] = (dout * self.xhat).sum(axis=lead)
        self.grads["beta"] = dout.sum(axis=lead)
        return normalize_backward(dout * self.params["gamma"], self.xhat, self.inv, self.axes)


@register_layer("batchnorm")
class BatchNorm(Layer):
    """Batch normalisation in training mode: statistics over the batch (and spatial axes).
    x, out: (N, D) or (N, C, H, W, …); gamma, beta: (D,) or (C,)."""

    forward_formula = (
        "x̂ = (x − μ_B)/√(σ²_B + eps) (μ_B, σ²_B per feature/channel over N, H, W);  out = γ ⊙ x̂ + β"
    )
    backward_formula = (
        "dγ = Σ_{N,H,W} dout ⊙ x̂;  dβ = Σ_{N,H,W} dout;  dx̂ = dout ⊙ γ;  "
        "dx = (dx̂ − mean_B(dx̂) − x̂ ⊙ mean_B(dx̂ ⊙ x̂)) / √(σ²_B + eps)"
    )
    row_independent = False  # every output row depends on the whole batch through μ_B, σ²_B

    def __init__(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        dtype: str = "float64",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.eps = _eps(eps)
        if len(input_shape) < 1:
            raise ShapeError("batchnorm needs per-sample features (D,) or (C, H, W), got a scalar")
        c = input_shape[0]
        self.params = {
            "gamma": (1 + 0.1 * rng.standard_normal(c)).astype(dtype),
            "beta": (0.1 * rng.standard_normal(c)).astype(dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def _bcast(self, p: Array, ndim: int) -> Array:
        return p.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x: Array) -> Array:
        self.axes = (0, *range(2, x.ndim))
        self.xhat, self.inv = normalize(x, self.axes, self.eps)
        g, b = (self._bcast(self.params[k], x.ndim) for k in ("gamma", "beta"))
        out: Array = g * self.xhat + b
        return out

    def backward(self, dout: Array) -> Array:
        self.grads["gamma"] = (dout * self.xhat).sum(axis=self.axes)
        self.grads["beta"] = dout.sum(axis=self.axes)
        dxhat = dout * self._bcast(self.params["gamma"], dout.ndim)
        return normalize_backward(dxhat, self.xhat, self.inv, self.axes)
