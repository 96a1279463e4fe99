"""Fully connected layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.errors import ShapeError
from gradcheck_cli.layers.base import Array, Layer, positive_int
from gradcheck_cli.layers.table import register_layer


def affine_params(rng: np.random.Generator, d: int, m: int, dtype: str) -> dict[str, Array]:
    """W (d, m) ~ N(0, 1/d) and b (m,) ~ N(0, 0.01): the initialisation of the affine layers."""
    return {
        "W": (rng.standard_normal((d, m)) / np.sqrt(d)).astype(dtype),
        "b": (0.1 * rng.standard_normal(m)).astype(dtype),
    }


@register_layer("linear")
class Linear(Layer):
    """Affine map. x: (N, n), W: (n, m), b: (m,), out: (N, m)."""

    forward_formula = "out = x·W + b"
    backward_formula = "dW = xᵀ·dout;  db = Σ_N dout;  dx = dout·Wᵀ"

    def __init__(
        self,
        input_shape: tuple[int, ...],
        rng: np.random.Generator,
        out: int,
        dtype: str = "float64",
    ) -> None:
        super().__init__()
        m = positive_int(out, "out")
        if len(input_shape) != 1:
            raise ShapeError(
                f"linear expects per-sample input of shape (features,), got {input_shape}",
                hint="flatten the input first, give the input a 2-D shape [batch, features], "
                "or use temporal_linear to apply it at every position of (batch, time, features)",
            )
        self.params = affine_params(rng, input_shape[0], m, dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    @classmethod
    def estimate(
        cls, input_shape: tuple[int, ...], **args: Any
    ) -> tuple[int, tuple[int, ...]] | None:
        """W (n, m) and b (m,) for per-sample input (n,); output (m,)."""
        m, n = args.get("out"), input_shape[0] if len(input_shape) == 1 else None
        if not isinstance(m, int) or n is None:
            return None
        return n * m + m, (m,)

    def forward(self, x: Array) -> Array:
        self.x = x
        out: Array = x @ self.params["W"] + self.params["b"]
        return out

    def backward(self, dout: Array) -> Array:
        self.grads["W"] = self.x.T @ dout
        self.grads["b"] = dout.sum(axis=0)
        dx: Array = dout @ self.params["W"].T
        return dx

    # -- engine short-cuts (exact; see gradcheck_cli/engine/numeric.py) --------------------------------
    def perturbed_columns(
        self, key: str, x: Array, out: Array, idx: Array, delta: Array
    ) -> tuple[Array, Array]:
        """Outputs with ``params[key].flat[idx[c]]`` moved by ``delta[c]``, as changed columns:
        W[i, j] += Δ changes column j by Δ·x[:, i]; b[j] += Δ shifts column j by Δ.
        Returns (cols (C,), values (C, N))."""
        d = delta if np.iscomplexobj(delta) else delta.astype(out.dtype)
        if key == "W":
            i, j = np.divmod(idx, self.params["W"].shape[1])
            return j, out[:, j].T + d[:, None] * x[:, i].T
        return idx, out[:, idx].T + d[:, None]

    def rank1_columns(
        self, x: Array, out: Array, cols: Array, values: Array
    ) -> tuple[Array, Array]:
        """Outputs for inputs equal to ``x`` except column cols[c] = values[c], as rank-1
        updates of ``out``: copy c is out + u[c] ⊗ w[c] with u = values − x[:, cols]ᵀ (C, N) and
        w = W[cols] (C, m) (see gradcheck_cli/engine/lowrank.py): the same row for every copy of
        a column (gradcheck_cli/engine/taylor.py keeps one table per column)."""
        return values - x[:, cols].T, self.params["W"][cols]

    def apply_change(self, delta: Array) -> Array:
        """The change of the output for a change ``delta`` (…, n) of the input: delta·W (one
        matrix product over all leading axes)."""
        w = self.params["W"]
        out: Array = (delta.reshape(-1, w.shape[0]) @ w).reshape(*delta.shape[:-1], w.shape[1])
        return out
