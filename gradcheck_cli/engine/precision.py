"""A float32 network's numerical reference in float64: swap float32 parameters for float64
copies, unless a layer downcasts or ignores its params (then the numerics stay float32)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.base import Array


@contextmanager
def promoted(network: Network) -> Iterator[str | None]:
    """Swap every float32 parameter for a float64 copy, so a float32 network's numerical reference
    is computed in float64; yields why that is not possible (then nothing is swapped)."""
    saved: list[tuple[Any, str, Array]] = []
    for layer in network.layers:
        for k, v in list(layer.params.items()):
            if isinstance(v, np.ndarray) and v.dtype == np.float32:
                saved.append((layer, k, v))
                layer.params[k] = v.astype(np.float64)
    try:
        why = _reference_problem(network, saved)
        if why:
            for layer, k, v in saved:
                layer.params[k] = v
        yield why
    finally:
        for layer, k, v in saved:
            layer.params[k] = v


def _reference_problem(network: Network, saved: list[tuple[Any, str, Array]]) -> str | None:
    """A layer that returns float32 for float64 input, or that keeps its own references to its
    parameters (so the float64 copies would be ignored), cannot take part in a float64 reference."""
    x = network.inputs[0] if network.inputs else network.x
    assert x is not None
    out = network.forward(x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x)
    outputs = [*network.inputs[1:], out]
    for i, value in enumerate(outputs):
        if np.issubdtype(value.dtype, np.floating) and np.finfo(value.dtype).bits < 64:
            return f"{network.describe(i)} returns {value.dtype} for float64 input (it downcasts)"
    for i, layer in enumerate(network.layers):
        if network.trusted[i]:
            continue
        for lay, k, _ in saved:
            if lay is not layer:
                continue
            before = network.forward(network.inputs[i], i)
            if not _reads(network, i, k, before):
                return f"{network.describe(i)} does not read params['{k}'] (it keeps its own reference)"
    network.forward(x)  # leave the caches as the float32 pass made them
    return None


def _reads(network: Network, i: int, key: str, before: Array) -> bool:
    """Does layer ``i``'s output (``before``) change when params[key] is replaced by other
    values? Several replacements (2θ+1, −θ−1, 0), so a saturated layer, flat under one of
    them, is not taken for a layer that keeps its own reference."""
    params = network.layers[i].params
    theta = params[key]
    try:
        for other in (theta * 2 + 1, -theta - 1, np.zeros_like(theta)):
            params[key] = other
            if not np.array_equal(before, network.forward(network.inputs[i], i)):
                return True
        return False
    finally:
        params[key] = theta


#: "L reads the tensor": moving every entry by 1e-3 relative changes L by more than this ×
#: its float64 rounding (a tensor L depends on only through rounding, e.g. a bias before a
#: batch norm, is not read in this sense).
READS = 1e3
#: Precisions a function may round a float64 tensor to inside (coarsest first).
QUANTA = ("float16", "float32")


def realised(theta: Array, offsets: Array, quantum: str | None) -> tuple[Array, Array]:
    """The steps actually taken by moving ``theta`` (per row) by ``offsets`` (per row and
    column) when the function reads the tensor rounded to ``quantum`` (None: as stored in
    float64): (θ + o) rounded − θ rounded, and the same for −o."""
    th = np.asarray(theta, dtype=np.float64)[:, None]
    o = np.asarray(offsets, dtype=np.float64)
    if quantum is None:
        return (th + o) - th, th - (th - o)
    q = np.dtype(quantum)
    with np.errstate(over="ignore", invalid="ignore"):
        base = th.astype(q).astype(np.float64)
        return (th + o).astype(q).astype(np.float64) - base, base - (th - o).astype(q).astype(np.float64)


def input_quantum(loss_at: Any, theta: Array, f0: float, seed: int = 0) -> str | None:
    """The precision a function rounds this float64 tensor to before using it (``QUANTA``), or
    None. ``loss_at(values)`` is L with the tensor replaced by ``values``. Evidence: L is exactly
    unchanged when every entry moves within its cell of that precision (a float64 function would
    change), changes well above rounding when the entries move by 1e-3 (it does read the tensor:
    ``READS``), and changes when they move just across into the neighbouring cell (the steps
    that vanish are that precision's cells, not steps swallowed by a large intermediate)."""
    theta = np.asarray(theta)
    if theta.dtype != np.float64:
        return None
    sign = np.where(np.random.default_rng(seed).random(theta.shape) < 0.5, -1.0, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):  # non-finite θ: no quantum (below)
        coarse = theta + 1e-3 * np.maximum(np.abs(theta), 1.0) * sign
    for name in QUANTA:
        q = np.dtype(name)
        with np.errstate(over="ignore", invalid="ignore"):
            base = theta.astype(q)
            # each entry's neighbouring value in the direction of its move (at a power of two
            # the cell below is half the one above): non-finite where θ is (or rounds to) ±inf
            # or NaN, or its neighbour is past that precision's range
            toward = np.nextafter(base, (sign * np.inf).astype(q))
            cell = toward.astype(np.float64) - base.astype(np.float64)
        if not np.all(np.isfinite(cell)):
            continue
        inside = base.astype(np.float64) + 0.3 * cell  # rounds back to base
        across = base.astype(np.float64) + 0.75 * cell  # rounds to the neighbouring value
        if np.array_equal(inside, theta):  # θ does not move (also: an empty tensor)
            continue
        if loss_at(inside) != f0 or abs(loss_at(coarse) - f0) <= READS * abs(f0) * 2.0**-53:
            continue
        if loss_at(across) != f0:  # L changes exactly where that precision's values change
            return name
    return None
