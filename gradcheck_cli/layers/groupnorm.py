"""Group normalisation: statistics per sample over groups of channels (and all spatial axes)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.errors import ConfigError, ShapeError
from gradcheck_cli.layers.base import Array, Layer, positive_int
from gradcheck_cli.layers.norm import _eps, normalize, normalize_backward
from gradcheck_cli.layers.table import register_layer


@register_layer("groupnorm")
class GroupNorm(Layer):
    """Split the C channels into ``groups`` groups; normalise each sample's group (its channels
    and spatial positions), then scale and shift per channel. x, out: (N, C, …);
    gamma, beta: (C,)."""

    forward_formula = (
        "x̂ = (x − μ_g)/√(σ²_g + eps) (μ_g, σ²_g per sample and group over its channels and "
        "positions);  out = γ_c ⊙ x̂ + β_c"
    )
    backward_formula = (
        "dγ = Σ_{N,…} dout ⊙ x̂;  dβ = Σ_{N,…} dout;  dx̂ = dout ⊙ γ;  "
        "dx = (dx̂ − mean_g(dx̂) − x̂ ⊙ mean_g(dx̂ ⊙ x̂)) / √(σ²_g + eps)"
    )
    row_independent = True  # statistics are per sample, never over the batch
    complex_safe = True

    def __init__(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        groups: int,
        dtype: str = "float64",
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.groups = positive_int(groups, "groups")
        self.eps = _eps(eps)
        if len(input_shape) < 1:
            raise ShapeError("groupnorm needs per-sample channels (C,) or (C, L, …), got a scalar")
        c = input_shape[0]
        if c % self.groups:
            raise ConfigError(
                f"'groups' must divide the {c} channels, got {groups}",
                hint=f"use one of {[g for g in range(1, c + 1) if c % g == 0]}",
            )
        self.params = {
            "gamma": (1 + 0.1 * rng.standard_normal(c)).astype(dtype),
            "beta": (0.1 * rng.standard_normal(c)).astype(dtype),
        }
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    @classmethod
    def estimate(
        cls, input_shape: tuple[int, ...], **args: Any
    ) -> tuple[int, tuple[int, ...]] | None:
        """gamma, beta (C,); output shape = input shape."""
        return (2 * input_shape[0], tuple(input_shape)) if input_shape else None

    def _channel(self, p: Array, ndim: int) -> Array:
        return p.reshape((1, -1) + (1,) * (ndim - 2))

    def forward(self, x: Array) -> Array:
        n = x.shape[0]
        grouped = x.reshape(n, self.groups, -1)  # (N, G, C/G · positions)
        xhat, self.inv = normalize(grouped, (2,), self.eps)
        self.xhat = xhat.reshape(x.shape)
        g, b = (self._channel(self.params[k], x.ndim) for k in ("gamma", "beta"))
        out: Array = g * self.xhat + b
        return out

    def backward(self, dout: Array) -> Array:
        axes = (0, *range(2, dout.ndim))
        self.grads["gamma"] = (dout * self.xhat).sum(axis=axes)
        self.grads["beta"] = dout.sum(axis=axes)
        n = dout.shape[0]
        dxhat = (dout * self._channel(self.params["gamma"], dout.ndim)).reshape(n, self.groups, -1)
        dx = normalize_backward(dxhat, self.xhat.reshape(n, self.groups, -1), self.inv, (2,))
        return dx.reshape(dout.shape)
