"""Refuse a check that would need unreasonable memory or time — before allocating anything.

Memory is estimated from the spec while the network is built (input, then each layer's parameters
and output, from ``Layer.estimate`` where a layer offers one, else measured right after the layer
is constructed). Time is estimated once the network exists, before the first perturbation: the
check evaluates the loss twice per checked entry, each time re-running the layers from the one
that owns the entry. Both limits are generous for a gradient check (which needs a few samples
and small layers to find a wrong backward) and can be lifted with ``--force``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck_cli.errors import ConfigError, LimitError, NumericError

#: Memory a check may use (input + parameters + cached layer outputs), in bytes.
MAX_BYTES = 2 * 2**30
#: Work a check may do, in element operations (see ``estimate_work``); ~2 minutes at the
#: nominal speed below.
MAX_WORK = 2.5e10
#: Nominal element operations per second, only for the "about N minutes" in messages.
OPS_PER_SECOND = 2e8
#: Fixed cost of calling one layer or loss (Python call, copies, temporaries: ~50 µs), in element
#: operations. Measured on the CI-sized machine the estimate is right within a factor of ~5.
CALL_OVERHEAD = 10_000

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
    max_work: float = field(default_factory=lambda: MAX_WORK)

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
    """What a check will do: loss evaluations and element operations (for the time limit)."""

    entries: int
    evaluations: int
    work: float

    @property
    def seconds(self) -> float:
        return self.work / OPS_PER_SECOND


def estimate_work(
    net: Any,
    *,
    inputs: bool,
    evals_per_entry: int = 2,
    entries: Callable[[int], int] | None = None,
) -> Cost:
    """Cost of checking ``net`` (built, after one forward pass). Perturbing an entry owned by
    layer ℓ re-runs layers ℓ… and the loss; a layer costs ≈ batch·|params| + |in| + |out| element
    operations plus a fixed call overhead. ``entries(size)`` is how many entries of a tensor
    of ``size`` get checked (all of them by default)."""
    count = entries or (lambda n: n)
    n_layers = len(net.layers)
    batch = int(net.inputs[0].shape[0]) if net.inputs else 1
    outs = [*net.inputs[1:], net.output]
    per_layer = [
        batch * sum(int(np.size(p)) for p in net.layers[i].params.values())
        + int(np.size(net.inputs[i]))
        + int(np.size(outs[i]))
        + CALL_OVERHEAD
        for i in range(n_layers)
    ]
    loss_cost = int(np.size(net.output)) + CALL_OVERHEAD
    suffix = [0.0] * (n_layers + 1)
    suffix[n_layers] = loss_cost
    for i in reversed(range(n_layers)):
        suffix[i] = suffix[i + 1] + per_layer[i]
    total_entries = 0
    work = 0.0
    for ref in net.parameters(include_input=inputs):
        size = int(np.size(net.x if ref.key is None else net.layers[ref.layer].params[ref.key]))
        n = count(size)
        total_entries += n
        work += evals_per_entry * n * suffix[ref.layer]
    return Cost(total_entries, evals_per_entry * total_entries, work)


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
) -> Cost:
    """Checks before the first perturbation: something to check, affordable, ε representable.

    ``timed=False`` skips the time limit (a mode that bounds its own time, like auto with a
    budget); ``auto_above``: with no mode given, checks of more entries than this run in auto
    mode, so the time limit applies only below it."""
    cost = estimate_work(net, inputs=inputs, evals_per_entry=evals_per_entry, entries=entries)
    if auto_above is not None and cost.entries > auto_above:
        timed = False
    if cost.entries == 0:
        raise ConfigError(
            "nothing to check: the network has no parameters and the input is not checked",
            file=source,
            field="check.inputs",
            hint="check the input (drop --no-inputs / set check.inputs: true) or add a layer "
            "with parameters",
        )
    if probes:
        check_probe_memory(net, inputs=inputs, probes=probes, limits=limits, source=source)
    if timed and cost.work > limits.max_work:
        raise LimitError(
            f"this check would take about {human_seconds(cost.seconds)}: {cost.entries:,} "
            f"entries × {evals_per_entry} loss evaluations, ≈{cost.work:.1e} element operations "
            f"(limit {limits.max_work:.1e}); refused before starting",
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
    if not sizes:
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
        if arr is None or not np.issubdtype(np.asarray(arr).dtype, np.floating):
            continue
        a = np.asarray(arr, dtype=np.float64)
        lost = ((a + eps) == a) | ((a - eps) == a)
        if lost.any():
            j = tuple(int(i) for i in np.argwhere(lost)[0]) if a.ndim else ()
            theta = float(a[j]) if a.ndim else float(a)
            raise NumericError(
                f"ε={eps:g} is below the spacing of float64 numbers at {ref.name}{list(j)} "
                f"(θ={theta:g}, spacing {float(np.spacing(theta)):.2g}): "
                "θ±ε rounds back to θ, so no difference can be measured",
                file=source,
                field="eps",
                hint="use a larger ε (the default for central differences is 1e-5)",
            )
