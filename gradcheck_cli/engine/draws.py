"""Seeded draws every phase shares: stratified sample indices and probe directions (the plan draws
them, the second look and localisation draw more of them). Same seed and name, same numbers."""

from __future__ import annotations

import numpy as np

from gradcheck_cli.engine.network import rng_for
from gradcheck_cli.layers.base import Array


def sample_indices(size: int, k: int, seed: int, name: str) -> Array:
    """``min(k, size)`` flat indices, one per stratum of equal width, sorted and distinct."""
    if k >= size:
        return np.arange(size)
    rng = rng_for(seed, f"sample:{name}")
    edges = np.linspace(0, size, k + 1).astype(np.int64)
    widths = np.diff(edges)  # ≥ 1 because k < size
    return edges[:-1] + (rng.random(k) * widths).astype(np.int64)


def directions(shape: tuple[int, ...], k: int, seed: int, name: str) -> Array:
    """``k`` unit-norm directions of ``shape``, entries ±U(0.5, 1.5) before normalising.

    One uniform draw r per entry gives both: sign = (r < ½), magnitude = 0.5 + (2r mod 1), where
    2r mod 1 = 2r − ⌊2r⌋ and the sign is that of 2r − 1 (all exact; np.mod and np.where cost
    ~6 and ~4 ns an entry, these passes well under 1)."""
    rng = rng_for(seed, f"probe:{name}")
    size = int(np.prod(shape, dtype=np.int64))
    t = rng.random((k, size))
    t *= 2
    v = np.floor(t)
    np.subtract(t, v, out=v)
    v += 0.5
    t -= 1
    np.copysign(v, t, out=v)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.reshape(k, *shape)
