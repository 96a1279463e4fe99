"""Layers that only move entries around."""

from __future__ import annotations

import math

from gradcheck_cli.layers.base import Array, Layer
from gradcheck_cli.layers.table import register_layer


@register_layer("flatten")
class Flatten(Layer):
    """Collapse the per-sample axes. x: (N, d1, d2, …), out: (N, d1·d2·…)."""

    forward_formula = "out = reshape(x, (N, d1·d2·…))"
    backward_formula = "dx = reshape(dout, x.shape)"

    def forward(self, x: Array) -> Array:
        self.shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, dout: Array) -> Array:
        return dout.reshape(self.shape)
