"""Embedding lookup: integer ids → rows of a learnable table."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.errors import ShapeError
from gradcheck_cli.layers.base import Array, Layer, positive_int
from gradcheck_cli.layers.table import register_layer


@register_layer("embedding")
class Embedding(Layer):
    """out = W[ids]. ids: (N, …) integers in [0, vocab), W: (vocab, dim), out: (N, …, dim).

    The input is discrete, so only W is checked; backward returns zeros for the ids.
    """

    #: The input is integer ids: a check never differentiates it.
    takes_ids = True
    forward_formula = "out[n, t] = W[ids[n, t]]"
    backward_formula = (
        "dW[v] = Σ_{(n,t): ids[n,t] = v} dout[n, t];  (no gradient for the integer ids)"
    )

    def __init__(
        self, rng: np.random.Generator, vocab: int, dim: int, dtype: str = "float64"
    ) -> None:
        super().__init__()
        self.vocab = positive_int(vocab, "vocab")
        d = positive_int(dim, "dim")
        self.params = {"W": rng.standard_normal((self.vocab, d)).astype(dtype)}
        self.grads = {"W": np.zeros_like(self.params["W"])}

    @classmethod
    def estimate(
        cls, input_shape: tuple[int, ...], **args: Any
    ) -> tuple[int, tuple[int, ...]] | None:
        """W (vocab, dim); output (*input_shape, dim). Lets a huge vocab be refused unallocated."""
        vocab, dim = args.get("vocab"), args.get("dim")
        if not (isinstance(vocab, int) and isinstance(dim, int)):
            return None
        return vocab * dim, (*input_shape, dim)

    def forward(self, x: Array) -> Array:
        if not np.issubdtype(x.dtype, np.integer):
            raise ShapeError(
                f"embedding expects integer ids, got an array of dtype {x.dtype}",
                hint=f"ask for random ids with input: {{shape: [...], integers: {self.vocab}}}",
            )
        if x.size and (x.min() < 0 or x.max() >= self.vocab):
            raise ShapeError(
                f"embedding ids must lie in 0…{self.vocab - 1}, got {x.min()}…{x.max()}",
                hint="raise 'vocab' or fix the ids",
            )
        self.ids = x
        out: Array = self.params["W"][x]
        return out

    def backward(self, dout: Array) -> Array:
        vocab, dim = self.params["W"].shape
        dW = np.zeros((vocab, dim), dtype=dout.dtype)
        np.add.at(dW, self.ids.reshape(-1), dout.reshape(-1, dim))
        self.grads["W"] = dW
        return np.zeros(self.ids.shape)
