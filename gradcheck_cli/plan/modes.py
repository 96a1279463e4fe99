"""How much to check: every entry, a stratified sample, or random directions — chosen from counts.

- ``full``: every entry of every tensor.
- ``sample``: K entries per tensor, one drawn uniformly from each of K equal strata of the flat
  index range (so rows/columns are spread out), from a generator keyed by the seed and the
  tensor's name: the same seed checks the same entries; plus directional probes over the whole
  tensor.
- ``directional``: K random directions v per tensor, v = s ⊙ m / ‖s ⊙ m‖ with random signs s and
  magnitudes m ~ U(0.5, 1.5) (entries kept away from 0, so no entry can hide behind a tiny
  weight); cost independent of the tensor's size.
- ``auto``: the most thorough mode whose *work* fits :data:`WORK`: full, else sample with as many
  entries per tensor as fit (at least the default), else directional; never a less thorough mode
  whose work is larger.

Work is counted, never timed: the operations of one loss evaluation from a tensor's layer on
(:func:`operations`, from the arrays' sizes) times the evaluations a mode makes. So the same config
and seed give the same plan, the same entries, on any machine under any load (timings only drive
the ETA, the progress bar and an explicit ``--budget``: timing.py).

Pure NumPy; no printing (the estimate travels in the result and the report shows it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck_cli.defaults import DEFAULT_EPS, DEFAULT_PROBES, DEFAULT_SAMPLES
from gradcheck_cli.engine.methods import STENCILS
from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.numeric import Perturber

if TYPE_CHECKING:
    from gradcheck_cli.options import CheckOptions

MODES = ("full", "sample", "directional", "auto")
#: With no mode given, checks of at most this many entries run ``full`` without estimating;
#: larger ones run ``auto``.
SMALL_CHECK = 20_000
#: Loss evaluations per directional probe: ±ε (±2ε are added only when the verdict needs the
#: truncation estimate).
PROBE_EVALS = 2
#: Operations counted for each layer call besides its arithmetic (Python and NumPy overhead of
#: a call, of the order of 10 µs: many tiny layers are not free).
CALL_OPERATIONS = 20_000
#: Auto's work limit in operations: what a default check may do. Calibrated so that a check of
#: this much dense work takes about a minute of one laptop core (benchmarks/bench_estimates.py
#: measures operations per second); networks whose tensors the engine evaluates through
#: low-rank short-cuts (linear layers) run faster than their count.
WORK = 8.0e10


@dataclass(frozen=True)
class Estimate:
    """Auto's choice and the work (operations) each mode would do; counted, not timed."""

    full: float
    sample: float
    directional: float
    entries: int  # entries a full check evaluates
    limit: float  # the work auto may spend (:data:`WORK`)
    chosen: str
    samples: int
    probes: int

    def work(self, mode: str) -> float:
        return {"full": self.full, "sample": self.sample, "directional": self.directional}[mode]


def _feature(out_shape: tuple[int, ...], p_shape: tuple[int, ...]) -> int:
    """The output axis a parameter maps onto (its length is one of the parameter's axes: the
    ``out`` of a linear W, the channels of a conv kernel), preferring the last; 0 if none."""
    for n in reversed(out_shape[1:] or out_shape):
        if n in p_shape:
            return int(n)
    return 0


def layer_operations(x_size: int, out: np.ndarray, params: Sequence[np.ndarray]) -> float:
    """Operations of one call of a layer, counted from sizes: its input and output, and per
    parameter P the multiply-adds of a dense map, |out| · |P| / (the output axis P maps onto)
    (exact for linear, conv, recurrent and attention weights; an embedding is over-counted)."""
    ops = float(CALL_OPERATIONS + x_size + out.size)
    for p in params:
        feature = _feature(tuple(out.shape), tuple(p.shape))
        ops += out.size * p.size / feature if feature else float(out.size + p.size)
    return ops


def operations(pert: Perturber) -> list[float]:
    """Per layer i: operations of one loss evaluation from layer i on (layers i… and the loss),
    counted from the unperturbed pass's arrays."""
    net = pert.net
    per_layer = [
        layer_operations(
            int(np.size(pert.layer_inputs[i])), np.asarray(pert.outputs[i]),
            [np.asarray(a) for a in net.layers[i].params.values()],
        )
        for i in range(len(net.layers))
    ]  # fmt: skip
    loss = float(CALL_OPERATIONS + np.size(pert.outputs[-1]))
    tails, total = [], loss
    for ops in reversed(per_layer):
        total += ops
        tails.append(total)
    return tails[::-1]


def evaluation_operations(pert: Perturber, refs: Sequence[ParamRef]) -> list[float]:
    """Operations of one loss evaluation that perturbs each of ``refs`` (from its layer on; the
    input: the whole network)."""
    tails = operations(pert)
    return [tails[r.layer] if tails else 0.0 for r in refs]


def choose(
    sizes: Sequence[int],
    ops: Sequence[float],
    *,
    samples: int,
    probes: int,
    grow: bool = False,
    limit: float = WORK,
) -> Estimate:
    """The most thorough mode whose counted work fits ``limit``: full, else sample, else
    directional (directional also when nothing fits: it is the cheapest) — never a less thorough
    mode whose work is larger. With ``grow``, sample mode takes as many entries per tensor as fit
    (at least ``samples``). Deterministic: sizes and operation counts only."""

    def work(k: int | None) -> float:  # k None: every entry; sample mode probes what it samples
        total = 0.0
        for n, c in zip(sizes, ops, strict=True):
            m = n if k is None else min(k, n)
            total += 2 * m * c + (PROBE_EVALS * probes * c if k is not None and n > k else 0.0)
        return total

    full = work(None)
    if grow and full > limit:
        samples = _grow(work, samples, max(sizes, default=samples), limit)
    sample = work(samples)
    direc = sum(PROBE_EVALS * probes * c for c in ops)
    if full <= limit:
        chosen = "full"
    elif sample <= limit:
        chosen = "sample"
    else:
        chosen = "directional"
    if chosen == "directional" and sample <= direc:  # never a less thorough mode that costs more
        chosen = "sample"
    # nor a less thorough mode that costs no less than full (compared with directional when full
    # was chosen: a no-op)
    if full <= (sample if chosen == "sample" else direc):
        chosen = "full"
    return Estimate(full, sample, direc, sum(sizes), limit, chosen, samples, probes)


def _grow(work: object, k: int, most: int, limit: float) -> int:
    """The largest per-tensor sample size whose work fits ``limit`` (at least k: work grows
    with the size, so when k does not fit the search stays at k)."""
    assert callable(work)
    lo, hi = k, max(k, most)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if work(mid) <= limit else (lo, mid - 1)
    return lo


def preflight_plan(opts: CheckOptions) -> dict[str, Any]:
    """What ``preflight`` needs: ε, loss evaluations per entry, entries per tensor (by mode),
    whether the time limit applies (auto mode bounds its own time by --budget), and whether
    steps are real (ε must be representable next to every θ) or complex."""
    method, mode = opts.method, opts.chosen_mode
    evals = len([o for o in STENCILS[method].offsets if o]) if method in STENCILS else 1
    step = opts.eps if opts.eps is not None else DEFAULT_EPS[method, "float64"]
    plan: dict[str, Any] = {"eps": step, "evals_per_entry": evals}
    plan["real_steps"] = method != "complex"
    plan["second_looks"] = method != "complex" and mode != "directional"
    if mode == "sample":
        k = opts.samples or DEFAULT_SAMPLES
        plan["entries"] = lambda n: min(n, k)
    elif mode == "directional":
        k = opts.probes or DEFAULT_PROBES
        plan["entries"] = lambda n: min(n, k)
    if mode in ("directional", "auto", None):  # auto may choose directional
        plan["probes"] = opts.probes or DEFAULT_PROBES
    plan["timed"] = mode != "auto" and opts.budget is None  # both bound their own work
    plan["auto_above"] = SMALL_CHECK if mode is None else None
    return plan
