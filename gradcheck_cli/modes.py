"""How much to check: every entry, a stratified sample, or random directions — and what each costs.

- ``full``: every entry of every tensor.
- ``sample``: K entries per tensor, one drawn uniformly from each of K equal strata of the flat
  index range (so rows/columns are spread out), from a generator keyed by the seed and the
  tensor's name: the same seed checks the same entries.
- ``directional``: K random directions v per tensor, v = s ⊙ m / ‖s ⊙ m‖ with random signs s and
  magnitudes m ~ U(0.5, 1.5) (entries kept away from 0, so no entry can hide behind a tiny
  weight); cost independent of the tensor's size.
- ``auto``: pilot-time the engine on each tensor, estimate every mode, pick the most thorough
  one that fits the budget.

Pure NumPy; no printing (the estimate travels in the result and the report shows it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from gradcheck_cli.layers.base import Array
from gradcheck_cli.network import ParamRef, rng_for
from gradcheck_cli.numeric import Perturber

MODES = ("full", "sample", "directional", "auto")
#: With no mode given, checks of at most this many entries run ``full`` without a pilot;
#: larger ones run ``auto`` with :data:`DEFAULT_BUDGET`.
SMALL_CHECK = 20_000
#: Loss evaluations per directional probe: ±ε (±2ε are added only when the verdict needs the
#: truncation estimate).
PROBE_EVALS = 2
#: Fraction of the budget (after the pilot) auto plans to use: the estimate is ±20-30 %.
SAFETY = 0.75
#: Entries timed per tensor by the auto pilot.
PILOT_ENTRIES = 64


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

    One uniform draw r per entry gives both: sign = (r < ½), magnitude = 0.5 + (2r mod 1)."""
    rng = rng_for(seed, f"probe:{name}")
    size = int(np.prod(shape, dtype=np.int64))
    r = rng.random((k, size))
    v = np.where(r < 0.5, -1.0, 1.0) * (0.5 + np.mod(2 * r, 1.0))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.reshape(k, *shape)


@dataclass(frozen=True)
class Estimate:
    """Estimated seconds per mode (from a timed forward pass and a pilot of the engine)."""

    forward_s: float
    full_s: float
    sample_s: float
    directional_s: float
    entries: int  # entries a full check evaluates
    budget_s: float
    chosen: str
    samples: int
    probes: int

    def seconds(self, mode: str) -> float:
        return {"full": self.full_s, "sample": self.sample_s, "directional": self.directional_s}[
            mode
        ]


def estimate(
    pert: Perturber,
    refs: list[ParamRef],
    *,
    eps: float,
    samples: int,
    probes: int,
    budget: float,
    seed: int,
    grow: bool = False,
) -> Estimate:
    """Time the engine on a few entries of each tensor and a forward pass from each layer, then
    choose the most thorough mode whose estimate fits ``budget``: full, else sample, else
    directional (directional also when nothing fits: it is the cheapest). With ``grow``, sample
    mode takes as many entries per tensor as fit the budget (at least ``samples``)."""
    offsets = np.array([eps, -eps])
    full = sample = direc = 0.0
    entries = 0
    started = time.perf_counter()
    costs: list[tuple[float, int]] = []  # (seconds per entry, entries) per tensor
    t0 = time.perf_counter()
    pert.net.loss_value(pert.x)
    forward = time.perf_counter() - t0
    for ref in refs:
        arr = pert.array(ref)
        pilot = sample_indices(arr.size, PILOT_ENTRIES, seed, f"pilot:{ref.name}")
        t0 = time.perf_counter()
        pert.losses(ref, pilot, offsets)
        per_entry = (time.perf_counter() - t0) / len(pilot)
        inp = pert.x if ref.key is None else pert.layer_inputs[ref.layer]
        t0 = time.perf_counter()
        pert.net.loss_value(inp, ref.layer)
        per_pass = time.perf_counter() - t0
        entries += arr.size
        costs.append((per_entry, arr.size))
        full += per_entry * arr.size
        sample += per_entry * min(samples, arr.size)
        direc += per_pass * PROBE_EVALS * probes
    # what is left after the pilot, with a margin for the estimate's own error
    room = SAFETY * (budget - (time.perf_counter() - started))
    if grow and full > room:
        samples, sample = _grow_samples(costs, samples, room, sample)
    if full <= room:
        chosen = "full"
    elif sample <= room:
        chosen = "sample"
    else:
        chosen = "directional"
    return Estimate(forward, full, sample, direc, entries, budget, chosen, samples, probes)


def _grow_samples(
    costs: list[tuple[float, int]], k: int, budget: float, seconds: float
) -> tuple[int, float]:
    """The largest per-tensor sample size whose estimated time fits ``budget`` (at least k)."""

    def cost(m: int) -> float:
        return sum(t * min(m, size) for t, size in costs)

    lo, hi = k, max(size for _, size in costs)
    if cost(lo) > budget:
        return k, seconds
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if cost(mid) <= budget else (lo, mid - 1)
    return lo, cost(lo)
