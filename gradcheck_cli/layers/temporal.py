"""Per-position affine map over the last axis: (N, …, D) → (N, …, out), e.g. (N, T, D) → (N, T, V)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.errors import ShapeError
from gradcheck_cli.layers.base import Array, Layer, positive_int
from gradcheck_cli.layers.linear import affine_params
from gradcheck_cli.layers.table import register_layer


@register_layer("temporal_linear")
class TemporalLinear(Layer):
    """The same affine map at every position. x: (N, …, D), W: (D, m), b: (m,),
    out: (N, …, m). ``linear`` itself takes (N, D) only; this is its sequence form."""

    forward_formula = "out[n, t] = x[n, t]·W + b"
    backward_formula = "dW = Σ_{n,t} x[n, t]ᵀ·dout[n, t];  db = Σ_{n,t} dout[n, t];  dx = dout·Wᵀ"
    row_independent = True
    complex_safe = True

    def __init__(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        out: int,
        dtype: str = "float64",
    ) -> None:
        super().__init__()
        m = positive_int(out, "out")
        if len(input_shape) < 1:
            raise ShapeError("temporal_linear needs per-sample features, got a scalar per sample")
        self.params = affine_params(rng, input_shape[-1], m, dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    @classmethod
    def estimate(
        cls, input_shape: tuple[int, ...], **args: Any
    ) -> tuple[int, tuple[int, ...]] | None:
        """W (D, m) and b (m,); output (…, m)."""
        m = args.get("out")
        if not input_shape or not isinstance(m, int) or isinstance(m, bool):
            return None
        return input_shape[-1] * m + m, (*input_shape[:-1], m)

    def forward(self, x: Array) -> Array:
        self.x = x
        out: Array = x @ self.params["W"] + self.params["b"]
        return out

    def backward(self, dout: Array) -> Array:
        d, m = self.params["W"].shape
        self.grads["W"] = self.x.reshape(-1, d).T @ dout.reshape(-1, m)
        self.grads["b"] = dout.reshape(-1, m).sum(axis=0)
        dx: Array = dout @ self.params["W"].T
        return dx
