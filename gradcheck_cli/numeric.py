"""Finite-difference machinery: perturb one entry at a time in place, restore it exactly.

Perturbing a parameter of layer ℓ re-runs only layers ℓ… from the cached input of layer ℓ.
Pure NumPy; knows nothing of tolerances or verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck_cli.errors import PluginError
from gradcheck_cli.layers.base import Array
from gradcheck_cli.network import Network, ParamRef

#: Unit round-off per dtype.
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24}
#: Default step: near the optimum (3u)^(1/3) of central differences for O(1) scales.
DEFAULT_EPS = {"float64": 1e-5, "float32": 1e-3}


@dataclass(frozen=True)
class Differences:
    """Raw central-difference data for the checked entries of one tensor (flat indices)."""

    indices: Array
    numeric: Array  # (f₊ − f₋) / (θ₊ − θ₋)
    f_plus: Array
    f_minus: Array
    step: Array  # θ₊ − θ₋ as actually represented (≈ 2ε)


def scalar(value: Any, label: str) -> Any:
    """A loss value as a NumPy scalar; anything but one number is the loss's contract error."""
    arr = np.asarray(value)
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        raise PluginError(
            f"loss ({label}).forward returned {type(value).__name__} of shape {arr.shape}, "
            "expected one number"
        )
    return arr.reshape(()).item()


class Perturber:
    """Evaluates L with single entries of one tensor changed, using prefix caching."""

    def __init__(self, network: Network, x: Array) -> None:
        self.net = network
        self.x = x
        self.f0 = scalar(network.loss_value(x), network.loss_label)
        self.layer_inputs = list(network.inputs)

    def array(self, ref: ParamRef) -> Array:
        if ref.key is None:
            return self.x
        arr: Array = self.net.layers[ref.layer].params[ref.key]
        return arr

    def loss_with(self, ref: ParamRef, index: int, value: Any) -> Any:
        """L with entry ``index`` of ``ref`` set to ``value``; the entry is restored bit-exactly."""
        arr = self.array(ref)
        old = arr.flat[index]
        arr.flat[index] = value
        try:
            start = ref.layer
            inp = self.x if ref.key is None else self.layer_inputs[start]
            return scalar(self.net.loss_value(inp, start), self.net.loss_label)
        finally:
            arr.flat[index] = old

    def losses(self, ref: ParamRef, indices: Array, offsets: Array) -> tuple[Array, Array]:
        """L with entry ``indices[j]`` of ``ref`` moved by ``offsets[k]``, for every j and k.

        Returns (losses, steps), both (len(indices), len(offsets)); ``steps`` are the offsets as
        actually represented in the array's dtype ((θ + o) − θ), which the stencils divide by.
        This is the engine every numerical method is built on.
        """
        arr = self.array(ref)
        out = np.empty((len(indices), len(offsets)))
        steps = np.empty_like(out)
        for j, i in enumerate(indices):
            theta = arr.flat[i]
            for k, off in enumerate(offsets):
                moved = arr.dtype.type(theta + off)
                out[j, k] = self.loss_with(ref, i, moved)
                steps[j, k] = float(moved) - float(theta)
        return out, steps

    def central(self, ref: ParamRef, indices: Array, eps: float) -> Differences:
        f, h = self.losses(ref, indices, np.array([eps, -eps]))
        step = h[:, 0] - h[:, 1]
        return Differences(indices, (f[:, 0] - f[:, 1]) / step, f[:, 0], f[:, 1], step)
