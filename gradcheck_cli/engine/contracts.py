"""What a layer's output and a loss must be at the unperturbed point, checked once while the
network is built, so a breach is named as the layer's or the loss's own (exit 2), not found later
as a crash in another layer, a NaN/Inf message or a "spurious" gradient."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.errors import PluginError
from gradcheck_cli.layers.base import Array


def is_number(v: Any) -> bool:
    """A scalar (anything NumPy reads as one complex number; None is not one)."""
    if v is None:
        return False
    try:
        np.asarray(v, dtype=complex)
    except (TypeError, ValueError):
        return False
    return np.size(v) == 1


def check_output_dtype(net: Any, i: int, x: Array, out: Array) -> None:
    """A layer whose output has fewer bits than its float input (float16 from float64) rounds
    every θ±ε difference away: refuse it by name, instead of letting the numeric gradient be 0
    and the analytic one look "spurious"."""
    if not (np.issubdtype(x.dtype, np.floating) and np.issubdtype(out.dtype, np.floating)):
        return
    if out.dtype.itemsize < x.dtype.itemsize and out.dtype.itemsize < 4:
        raise PluginError(
            f"{net.call(i, 'forward')} downcasts its {x.dtype} input to {out.dtype}: a "
            f"{out.dtype} output resolves steps of {float(np.finfo(out.dtype).eps):.0e} only, "
            "so finite differences cannot be measured through it",
            hint=f"return {x.dtype} (e.g. out.astype(x.dtype)); gradcheck checks float32 and "
            "float64 networks",
        )


def check_loss_behaviour(net: Any) -> None:
    """At the unperturbed point: the loss's forward returns a number and leaves ``pred`` (and the
    target) as they were; its backward returns an array of ``pred``'s shape. Each breach is the
    loss's error, named as such (not a later layer's crash or a NaN/Inf message)."""
    assert net.output is not None
    label = f"loss ({net.loss_label})"
    pred = net.output.copy()
    target = None if net.target is None else np.array(net.target, copy=True)
    with net.stage(f"{label}.forward"):
        value = net.loss.forward(pred, target)
    if not is_number(value):
        raise PluginError(
            f"{label}.forward returned "
            + ("None" if value is None else type(value).__name__)
            + (f" of shape {np.shape(value)}" if isinstance(value, np.ndarray) else "")
            + ", expected one number",
            hint="forward(pred, target) must return the scalar loss (a missing 'return'?)",
        )
    if not np.array_equal(pred, net.output, equal_nan=True):
        raise PluginError(
            f"{label}.forward modified pred in place (the network output it was given)",
            hint="the output array belongs to the network (a layer may have cached it for its "
            "backward); compute on a copy, e.g. pred = pred.copy()",
        )
    if target is not None and not np.array_equal(target, net.target, equal_nan=True):
        raise PluginError(
            f"{label}.forward modified target in place", hint="compute on a copy of the target"
        )
    with net.stage(f"{label}.backward"):
        grad = net.loss.backward()
    if grad is None or np.shape(grad) != net.output.shape:
        got = "None" if grad is None else f"shape {np.shape(grad)}"
        raise PluginError(
            f"{label}.backward returned {got}, not dpred of the prediction's shape "
            f"{net.output.shape}",
            hint="backward() must return ∂L/∂pred (a missing 'return'?)",
        )


def scalar(value: Any, label: str) -> Any:
    """A loss value as a NumPy scalar; anything but one number is the loss's contract error."""
    arr = np.asarray(value)
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number):
        raise PluginError(
            f"loss ({label}).forward returned {type(value).__name__} of shape {arr.shape}, "
            "expected one number"
        )
    return arr.reshape(()).item()


def row_independent(layer: Any) -> bool:
    """Output row i depends on input row i only (declared by the layer; default: no)."""
    return getattr(layer, "row_independent", False) is True
