"""Measured timings of the engine: what the "this check would take about …" refusal (limits.py),
an explicit ``--budget`` and the ETA may use. Plans never depend on them (modes.py counts).

:func:`time_engine` times the engine on a few real perturbed copies of each tensor (the short-cuts
it takes for that tensor included) and extrapolates to the entries that will be checked.
Timings vary with the machine's load; nothing that decides what is checked reads them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gradcheck_cli.engine.draws import sample_indices
from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.base import Array

#: Entries timed per tensor by the pilot (more when one engine chunk holds more: the pilot then
#: times one full chunk, as the check will run them).
PILOT_ENTRIES = 64
#: At most this many entries per timed tensor.
PILOT_MAX_ENTRIES = 1024
#: Seconds the pilot may spend timing; tensors not timed by then are estimated at the highest
#: per-entry cost measured so far (an over- rather than an under-estimate).
PILOT_SECONDS = 1.0
#: Timed runs of each pilot chunk; the fastest counts. A chunk takes milliseconds, so one time
#: slice lost to another process can triple it (an estimate of 22.9 s for a 6.4 s check, bench
#: medium, AVX-512 path, load ~3.5 on 2 cores), while over a whole check such losses average out.
PILOT_RUNS = 2
#: Promise (judge.Tolerance.resolution) the pilot assumes when not told: 10 × float64 central rtol.
PILOT_RESOLUTION = 1e-6
#: What a check spends besides the engine (the unperturbed pass, backward, structural checks,
#: verdict bookkeeping), per tensor and per entry checked: measured over the example configs
#: and the benchmark nets, 250-500 µs a tensor and ~0.3 µs an entry (it dominates checks of a
#: few ms, where the engine alone was estimated up to 7× short).
JUDGE_TENSOR_SECONDS = 3e-4
JUDGE_ENTRY_SECONDS = 3e-7


@dataclass(frozen=True)
class Timing:
    """What :func:`time_engine` measured, per tensor of the refs it was given."""

    per_entry: tuple[float, ...]  # seconds per checked entry (both stencil points)
    per_pass: tuple[float, ...]  # seconds of one loss evaluation from the tensor's layer on
    timed: int  # tensors whose own group (layer, input or not, shape) was timed
    seconds: float  # the pilot's own time
    #: Per tensor, 0 unless its first estimates will not resolve the promise (judge: error +
    #: floor > resolution·max|g|), so that every entry gets a second look: the seconds of one
    #: entry's step ladder, and of the tensor's noise measurement (both timed on the real calls).
    look_entry: tuple[float, ...]
    look_fixed: tuple[float, ...]

    def entry_costs(self, first: float = 1.0) -> list[float]:
        """Seconds per checked entry of each tensor, second looks included; ``first`` scales
        the first estimate's share (its evaluations per entry over the pilot's two)."""
        return [
            t * first + k + JUDGE_ENTRY_SECONDS
            for t, k in zip(self.per_entry, self.look_entry, strict=True)
        ]

    def fixed(self) -> float:
        """Seconds per check that do not grow with the entries checked: noise measurements and
        each tensor's share of what is not the engine."""
        return sum(self.look_fixed) + JUDGE_TENSOR_SECONDS * len(self.per_entry)

    def total(self, counts: Sequence[int], first: float = 1.0) -> float:
        costs = self.entry_costs(first)
        return sum(t * n for t, n in zip(costs, counts, strict=True)) + self.fixed()


_Group = tuple[int, bool, tuple[int, ...]]


def time_engine(
    pert: Perturber,
    refs: Sequence[ParamRef],
    *,
    eps: float,
    seed: int = 0,
    cap: float = PILOT_SECONDS,
    resolution: float | None = PILOT_RESOLUTION,
    clock: Callable[[], float] = time.perf_counter,
) -> Timing:
    """Time the engine on real perturbed copies: for each group of tensors that cost the same
    (same layer, same shape), ``pert.losses`` on a chunk's worth of entries at ±``eps``, and one
    loss evaluation from the layer. Tensors of groups not timed within ``cap`` seconds get the
    highest per-entry cost measured. The pilot's central estimates also tell whether the
    tensor's entries will need a second look (:func:`_unresolved`); if so, one entry's step
    ladder and the tensor's noise measurement are timed too (they cost far more). With
    ``resolution`` None nothing gets a second look (the complex step, directional probes).
    ``clock``: what measures (tests inject one that counts evaluations)."""
    offsets = np.array([eps, -eps])
    started = clock()
    groups: dict[_Group, float] = {}
    looks: dict[_Group, tuple[float, float]] = {}
    passes: dict[int, float] = {}
    per_entry: list[float | None] = []
    per_pass: list[float] = []
    keys = []
    for ref in refs:
        arr = pert.array(ref)
        layer = ref.layer
        if layer not in passes:
            inp = pert.x if ref.key is None else pert.layer_inputs[layer]
            t0 = clock()
            pert.net.loss_value(inp, layer)
            passes[layer] = clock() - t0
        per_pass.append(passes[layer])
        key = (layer, ref.key is None, tuple(arr.shape))
        if key not in groups and (not groups or clock() - started < cap):
            per_chunk = max(1, pert.chunk_size(ref) // len(offsets))
            m = min(arr.size, PILOT_MAX_ENTRIES, max(PILOT_ENTRIES, per_chunk))
            pilot = sample_indices(arr.size, m, seed, f"pilot:{ref.name}")
            if not groups:  # untimed once: the first chunk of a process pays its page faults
                pert.losses(ref, pilot, offsets)
            fastest = float("inf")
            for _ in range(PILOT_RUNS):
                t0 = clock()
                losses, steps = pert.losses(ref, pilot, offsets)
                fastest = min(fastest, clock() - t0)
            groups[key] = fastest / len(pilot)
            looks[key] = (0.0, 0.0)
            if resolution is not None and _unresolved(pert, losses, steps, eps, resolution):
                looks[key] = _time_second_look(pert, ref, pilot[:1], eps, seed, clock)
        per_entry.append(groups.get(key))
        keys.append(key)
    worst = max(groups.values(), default=0.0)
    dearest = max(looks.values(), default=(0.0, 0.0))
    return Timing(
        tuple(worst if t is None else t for t in per_entry),
        tuple(per_pass),
        sum(t is not None for t in per_entry),
        clock() - started,
        tuple(looks.get(key, dearest)[0] for key in keys),
        tuple(looks.get(key, dearest)[1] for key in keys),
    )


def _time_second_look(
    pert: Perturber, ref: ParamRef, idx: Array, eps: float, seed: int, clock: Callable[[], float]
) -> tuple[float, float]:
    """Seconds of the step ladder of one entry and of a noise measurement along ``ref``: the
    calls a second look makes (steps.ladder, steps.measure_noise)."""
    from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF
    from gradcheck_cli.verdict.steps import ladder, measure_noise

    ladder(pert, ref, idx)  # untimed once: a first call costs twice the next ones
    t0 = clock()
    ladder(pert, ref, idx)
    t1 = clock()
    measure_noise(pert, ref, min(eps, 1e-3) / 10, UNIT_ROUNDOFF["float64"], seed)
    return t1 - t0, clock() - t1


def _unresolved(
    pert: Perturber, losses: Array, steps: Array, eps: float, resolution: float
) -> bool:
    """The judge's first test of resolution (judge.Judge._needs) on the pilot's central
    estimates: the bound from the loss's rounding, NOISE_FACTOR·ε_f/ε, above
    ``resolution`` × the largest |estimate| means a second look for every entry (the bound
    is the same for every entry of a tensor)."""
    from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF
    from gradcheck_cli.verdict.steps import NOISE_FACTOR, rounding_floor

    with np.errstate(all="ignore"):
        numeric = np.real(losses[:, 0] - losses[:, 1]) / np.real(steps[:, 0] - steps[:, 1])
    numeric = numeric[np.isfinite(numeric)]
    u = UNIT_ROUNDOFF["float32" if pert.x.dtype == np.float32 else "float64"]
    error = NOISE_FACTOR * rounding_floor(pert, u) / eps
    return bool(error > resolution * float(np.max(np.abs(numeric), initial=0.0)))
