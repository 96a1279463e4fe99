"""Refuse a check that would need unreasonable memory or time — before allocating anything.

Memory is estimated from the spec before anything is drawn (engine/spec_arrays.py ``footprint``:
input, target, each layer's parameters, output and temporaries from ``Layer.estimate`` where a
layer offers one, the parameters of ``fn:`` layers, the directional probes), then again while the
network is built (measured right after a layer without an estimate is constructed). Time is measured once the network exists, before the check: the engine is timed on a few real
perturbed copies of each tensor (``modes.time_engine``: its short-cuts included) and the time per
entry is multiplied by the entries the check will evaluate. Both limits are generous for a gradient check (which needs a few samples
and small layers to find a wrong backward) and can be lifted with ``--force``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck_cli.errors import LimitError, NumericError

#: Memory a check may use (input + parameters + cached layer outputs), in bytes.
MAX_BYTES = 2 * 2**30
#: Estimated seconds a check may take (measured by timing the engine, see ``estimate_time``).
MAX_SECONDS = 300.0
#: Checks of at most this many loss evaluations are not timed (never refused on time): they
#: could reach :data:`MAX_SECONDS` only if one evaluation took over 0.15 s.
UNTIMED_EVALUATIONS = 2000

HINT = (
    "narrow it: smaller input.shape / layer sizes (a few samples and small layers find a wrong "
    "backward just as well), --mode sample (a random subset of entries) or --mode auto "
    "--budget SECONDS, --no-inputs; or --force to run it anyway"
)


def human_bytes(n: float) -> str:
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def human_seconds(s: float) -> str:
    if s >= 86400:
        return f"{s / 86400:.1f} days"
    if s >= 3600:
        return f"{s / 3600:.1f} hours"
    if s >= 60:
        return f"{s / 60:.1f} minutes"
    return f"{s:.1f} s"


@dataclass(frozen=True)
class Limits:
    """The ceilings a check is held to; ``Limits.off()`` for ``--force``."""

    max_bytes: float = field(default_factory=lambda: MAX_BYTES)
    max_seconds: float = field(default_factory=lambda: MAX_SECONDS)

    @classmethod
    def off(cls) -> Limits:
        return cls(math.inf, math.inf)


@dataclass
class MemoryPlan:
    """Running total of the bytes a network will hold; raises as soon as it is over the limit."""

    limits: Limits
    source: str | None = None
    parts: list[tuple[str, float]] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(b for _, b in self.parts)

    def add(self, label: str, nbytes: float, fld: str) -> None:
        self.parts.append((label, nbytes))
        if self.total > self.limits.max_bytes:
            big = sorted(self.parts, key=lambda p: -p[1])[:3]
            detail = ", ".join(f"{lab} {human_bytes(b)}" for lab, b in big)
            raise LimitError(
                f"this check would need about {human_bytes(self.total)} of memory ({detail}), "
                f"more than the {human_bytes(self.limits.max_bytes)} limit; "
                "refused before allocating it",
                file=self.source,
                field=fld,
                hint=HINT,
            )

    def peak(self, label: str, nbytes: float, fld: str) -> None:
        """A transient allocation (a layer's temporaries): refused if it would not fit on top of
        what is held, but not kept in the total."""
        self.add(label, nbytes, fld)
        self.parts.pop()


def estimate_workspace(cls: type, input_shape: tuple[int, ...], args: dict[str, Any]) -> int:
    """``cls.workspace(input_shape, **args)``: elements per sample of a layer's largest temporary
    (e.g. conv2d's window matrix), 0 when the class declares none or the arguments are bad."""
    ws = getattr(cls, "workspace", None)
    if not callable(ws):
        return 0
    try:
        return int(ws(input_shape, **args))
    except Exception:
        return 0


def array_bytes(shape: tuple[int, ...] | list[int], dtype: str) -> float:
    """Bytes of an array of ``shape`` (exact Python integers: no overflow for absurd shapes)."""
    return float(math.prod(int(d) for d in shape) * np.dtype(dtype).itemsize)


def estimate_layer(cls: type, input_shape: tuple[int, ...], args: dict[str, Any]) -> Any:
    """``cls.estimate(input_shape, **args)`` → (parameter count, per-sample output shape), or None
    when the class offers no estimate or the arguments are bad (construction will say why)."""
    est = getattr(cls, "estimate", None)
    if not callable(est):
        return None
    try:
        return est(input_shape, **args)
    except Exception:
        return None


@dataclass(frozen=True)
class Cost:
    """What a check will do: entries, loss evaluations, and the measured time estimate (0 when
    the engine was not timed)."""

    entries: int
    evaluations: int
    seconds: float = 0.0
    detail: str = ""


def _sizes(net: Any, inputs: bool) -> list[tuple[Any, int]]:
    return [
        (ref, int(np.size(net.x if ref.key is None else net.layers[ref.layer].params[ref.key])))
        for ref in net.parameters(include_input=inputs)
    ]


def count_entries(
    net: Any,
    *,
    inputs: bool,
    evals_per_entry: int = 2,
    entries: Callable[[int], int] | None = None,
) -> Cost:
    """Entries and loss evaluations of checking ``net``; ``entries(size)`` is how many entries
    of a tensor of ``size`` get checked (all of them by default)."""
    count = entries or (lambda n: n)
    total = sum(count(n) for _, n in _sizes(net, inputs))
    return Cost(total, evals_per_entry * total)


def estimate_time(
    net: Any,
    *,
    inputs: bool,
    eps: float,
    evals_per_entry: int = 2,
    entries: Callable[[int], int] | None = None,
    second_looks: bool = True,
) -> Cost:
    """Cost of checking ``net`` (built, after one forward pass), its time measured by running
    the engine on a few real copies per tensor (``modes.time_engine``) and scaled by the loss
    evaluations per entry, plus the second looks the pilot foresees (``second_looks``: the
    method and mode take them; not the complex step, not directional probes). A pilot that
    cannot run (a layer that fails on copies) leaves the time at 0: the check itself reports
    that failure."""
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.engine.precision import promoted
    from gradcheck_cli.plan import timing as modes

    cost = count_entries(net, inputs=inputs, evals_per_entry=evals_per_entry, entries=entries)
    count = entries or (lambda n: n)
    sized = [
        (ref, n)
        for ref, n in _sizes(net, inputs)
        if ref.key is not None or np.issubdtype(np.asarray(net.x).dtype, np.floating)
    ]
    if not sized or net.x is None:
        return cost
    try:
        with ExitStack() as stack:
            x = np.array(net.x, copy=True)  # a layer may write into its input
            if x.dtype == np.float32 and not stack.enter_context(promoted(net)):
                x = x.astype(np.float64)  # as the check: float64 numerics (precision.py)
            pert = Perturber(net, x)
            resolution = modes.PILOT_RESOLUTION if second_looks else None
            refs = [r for r, _ in sized]
            timing = modes.time_engine(pert, refs, eps=eps, resolution=resolution)
    except Exception:  # the check will meet the same failure and report it properly
        return cost
    counts = [count(n) for _, n in sized]
    seconds = timing.total(counts, evals_per_entry / 2)
    each = timing.entry_costs(evals_per_entry / 2)
    slow = max(range(len(sized)), key=lambda j: each[j] * counts[j])
    detail = (
        f"measured: the engine timed on real copies of {timing.timed} of {len(sized)} tensor(s); "
        f"the slowest part is {sized[slow][0].name} ({counts[slow]:,} entries at "
        f"{each[slow] * 1e6:,.0f} µs each"
        + (
            ", with a second look: its first estimates do not resolve the promise)"
            if timing.look_entry[slow]
            else ")"
        )
    )
    return Cost(cost.entries, cost.evaluations, seconds, detail)


def preflight(
    net: Any,
    *,
    inputs: bool,
    eps: float,
    limits: Limits,
    source: str | None = None,
    evals_per_entry: int = 2,
    real_steps: bool = True,
    entries: Callable[[int], int] | None = None,
    timed: bool = True,
    auto_above: int | None = None,
    probes: int = 0,
    second_looks: bool = True,
) -> Cost:
    """Checks before the first perturbation: affordable (memory of probes, time), ε representable
    (nothing to check is refused by the selection: plan/selection.py).

    ``timed=False`` skips the time limit (a mode that bounds its own time, like auto with a
    budget); ``auto_above``: with no mode given, checks of more entries than this run in auto
    mode, so the time limit applies only below it."""
    cost = count_entries(net, inputs=inputs, evals_per_entry=evals_per_entry, entries=entries)
    if auto_above is not None and cost.entries > auto_above:
        timed = False
    if probes:
        check_probe_memory(net, inputs=inputs, probes=probes, limits=limits, source=source)
    if timed and math.isfinite(limits.max_seconds) and cost.evaluations > UNTIMED_EVALUATIONS:
        cost = estimate_time(
            net,
            inputs=inputs,
            eps=eps,
            evals_per_entry=evals_per_entry,
            entries=entries,
            second_looks=second_looks,
        )
        if cost.seconds > limits.max_seconds:
            raise LimitError(
                f"this check would take about {human_seconds(cost.seconds)}: {cost.entries:,} "
                f"entries × {evals_per_entry} loss evaluations ({cost.detail}); the limit is "
                f"{human_seconds(limits.max_seconds)}; refused before starting",
                file=source,
                hint=HINT,
            )
    if real_steps:
        check_step(net, net.x, eps, inputs=inputs, source=source)
    return cost


#: Arrays of probes × tensor size that drawing directional probes holds at once (the uniform draw,
#: the signs, the magnitudes and the directions; see modes.directions), float64.
PROBE_ARRAYS = 4


def check_probe_memory(
    net: Any, *, inputs: bool, probes: int, limits: Limits, source: str | None = None
) -> None:
    """Directional mode draws all ``probes`` directions of a tensor at once: refuse when
    probes × the largest tensor does not fit, before drawing any."""
    sizes = [
        (
            ref.name,
            int(np.size(net.x if ref.key is None else net.layers[ref.layer].params[ref.key])),
        )
        for ref in net.parameters(include_input=inputs)
    ]
    refuse_probes(sizes, probes=probes, limits=limits, source=source)


def refuse_probes(
    sizes: list[tuple[str, int]], *, probes: int, limits: Limits, source: str | None = None
) -> None:
    """``check_probe_memory`` on (tensor name, entries) pairs: from a built network, or from the
    spec before anything is drawn (engine/spec_arrays.py) — one rule, one message."""
    if not sizes or not probes:
        return
    name, size = max(sizes, key=lambda s: s[1])
    need = float(PROBE_ARRAYS * 8 * probes * size)
    if need > limits.max_bytes:
        raise LimitError(
            f"{probes:,} directional probes of {name} ({size:,} entries) would need about "
            f"{human_bytes(need)} of memory, more than the {human_bytes(limits.max_bytes)} "
            "limit; refused before drawing them",
            file=source,
            field="check.probes",
            hint="a few probes per tensor find a wrong gradient (the default is 2)",
        )


def check_step(net: Any, x: Any, eps: float, *, inputs: bool, source: str | None = None) -> None:
    """Refuse an ε below the spacing of floats at some entry: θ ± ε would round back to θ and
    every difference would be 0/0. Judged in float64 (float32 networks are differenced in
    float64 where the layers allow it). Not for the complex step, whose ε is imaginary."""
    for ref in net.parameters(include_input=inputs):
        arr = x if ref.key is None else net.layers[ref.layer].params[ref.key]
        if not np.issubdtype(np.asarray(arr).dtype, np.floating):  # None: object
            continue
        a = np.asarray(arr, dtype=np.float64)
        lost = ((a + eps) == a) | ((a - eps) == a)
        if lost.any():
            j = tuple(int(i) for i in np.argwhere(lost)[0])  # () for a 0-d tensor
            theta = float(a[j])
            raise NumericError(
                f"ε={eps:g} is below the spacing of float64 numbers at {ref.name}{list(j)} "
                f"(θ={theta:g}, spacing {float(np.spacing(theta)):.2g}): "
                "θ±ε rounds back to θ, so no difference can be measured",
                file=source,
                field="eps",
                hint="use a larger ε (the default for central differences is 1e-5)",
            )
