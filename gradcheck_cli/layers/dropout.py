"""Inverted dropout with a mask drawn once from the layer's seeded generator."""

from __future__ import annotations

import numpy as np

from gradcheck_cli.errors import ConfigError
from gradcheck_cli.layers.base import Array, Layer, real_number
from gradcheck_cli.layers.table import register_layer


@register_layer("dropout")
class Dropout(Layer):
    """out = x ⊙ m / (1 − p), m ~ Bernoulli(1 − p) drawn once per input shape. x, out: any shape.

    The mask is drawn from the layer's seeded generator at the first forward pass for a given
    input shape and reused afterwards, so the loss is a deterministic function of x and the
    parameters (what a gradient check needs).
    """

    forward_formula = (
        "out = x ⊙ m / (1 − p)   (m ∈ {0,1}, drawn once from the seed, P(m=1) = 1 − p)"
    )
    backward_formula = "dx = dout ⊙ m / (1 − p)"
    #: The mask is drawn per input *shape*: C stacked copies (C·N rows) would get another mask.
    row_independent = False

    def __init__(self, rng: np.random.Generator, p: float = 0.5) -> None:
        super().__init__()
        self.p = real_number(p, "p")
        if not 0 <= self.p < 1:
            raise ConfigError(f"'p' (drop probability) must be in [0, 1), got {p!r}")
        self.rng = rng
        self.masks: dict[tuple[int, ...], Array] = {}

    def mask(self, shape: tuple[int, ...]) -> Array:
        """The scaled mask m / (1 − p) for this input shape (drawn on first use)."""
        if shape not in self.masks:
            keep = self.rng.random(shape) >= self.p
            self.masks[shape] = keep / (1 - self.p)
        return self.masks[shape]

    def forward(self, x: Array) -> Array:
        self.scale = self.mask(x.shape).astype(x.real.dtype)
        out: Array = x * self.scale
        return out

    def backward(self, dout: Array) -> Array:
        return dout * self.scale
