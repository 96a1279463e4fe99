"""Result types of a check (entry → tensor → network) and the pieces every phase shares: the
analytic gradient of a tensor and why it cannot be compared, a structural failure, and grads keys
that name no parameter. JSON form: ``formats.jsondoc.to_json_dict`` (``CheckResult.to_dict`` is the same)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck_cli.engine.network import Network, ParamRef
from gradcheck_cli.layers.base import Array
from gradcheck_cli.plan import modes
from gradcheck_cli.verdict.evidence import Diagnosis
from gradcheck_cli.verdict.outcomes import OUTCOMES as OUTCOMES
from gradcheck_cli.verdict.outcomes import VERIFIED, count_outcomes, outcome
from gradcheck_cli.verdict.outcomes import WHY_NOT as WHY_NOT


@dataclass(frozen=True)
class Entry:
    """One checked entry: where, both values, the error and the tolerance it was held to."""

    index: tuple[int, ...]
    analytic: float
    numeric: float
    abs_error: float
    tol: float
    noise: float = 0.0  # the part of tol that is estimated noise (not rtol/atol)
    status: str = "pass"  # pass | fail | kink
    label: str = ""  # e.g. "missing gradient", "kink: one-sided slopes 0 … 0.31"
    step: float = 0.0  # the finite-difference step the numeric value was taken at


@dataclass(frozen=True)
class ParamResult:
    """The verdict for one tensor (a parameter or the input)."""

    name: str
    shape: tuple[int, ...]
    passed: bool
    rel_error: float
    max_abs_error: float
    checked: int
    failed: int
    worst: tuple[Entry, ...] = ()  # worst first (by error relative to tolerance)
    reason: str | None = None
    verdict: str = "pass"  # pass | fail | kink | zero | inconclusive
    kinks: int = 0
    refined: int = 0  # entries re-estimated (Richardson / smaller steps) before a verdict
    noise_floor: float = 0.0  # largest estimated noise among the checked entries
    note: str | None = None
    #: |a − n| / tolerance per entry, in the tensor's shape (NaN where not checked).
    ratios: Array | None = field(default=None, compare=False, repr=False)
    #: How this tensor was checked: "full", "sample", "directional", or
    #: "sample+probes" (a sample plus directional probes), or "directional→localised" /
    #: "sample+probes→localised" (a failed probe, then the entries a bounded search singled out).
    mode: str = "full"
    #: Directional probes evaluated (0 unless directional); ``checked`` counts entries, or the
    #: probes for a tensor checked by directions only.
    probes: int = 0
    #: The numerical derivative per entry, in the tensor's shape (NaN where not checked), and the
    #: tolerance each entry was held to (+inf at a kink: the estimate is no reference there).
    numeric: Array | None = field(default=None, compare=False, repr=False)
    tolerance: Array | None = field(default=None, compare=False, repr=False)
    #: For a failing tensor: the bug fingerprint that explains the disagreement (diagnosis.py),
    #: None when none does.
    diagnosis: Diagnosis | None = None
    #: Resolution achieved: the largest error bound of the numerical estimate relative to the
    #: largest gradient entry (a bug larger than about rtol + resolution is seen); inf when some
    #: entry could not be estimated; NaN when not measured.
    resolution: float = float("nan")
    #: Why this tensor's check fell short of its plan (the budget ran out after its cheap look,
    #: before all its planned entries; or before any look), None when the plan was carried out.
    #: A tensor cut short is not verified: never under a ✓, and --strict fails it.
    cut: str | None = None

    @property
    def outcome(self) -> str:
        """How the closing line counts this tensor (one of :data:`OUTCOMES`)."""
        return outcome(self)

    @property
    def verified(self) -> bool:
        """Shown right: it agrees, or its gradient is zero here with evidence."""
        return self.outcome in VERIFIED


def not_checked(name: str, shape: tuple[int, ...], why: str, *, strict: bool) -> ParamResult:
    """A selected tensor the budget left without any look: not verified (fails under strict)."""
    return ParamResult(
        name, shape, not strict, float("nan"), float("nan"), 0, 0, verdict="not checked",
        mode="none", cut=why,
    )  # fmt: skip


@dataclass(frozen=True)
class CheckResult:
    name: str
    seed: int | None
    method: str
    eps: float
    rtol: float
    atol: float
    dtype: str
    loss: float
    params: tuple[ParamResult, ...] = field(default_factory=tuple)
    #: Failures of the network as a whole (non-deterministic forward, non-linear backward, …).
    problems: tuple[str, ...] = ()
    strict: bool = False
    #: When the network check failed: which layers fail when checked on their own.
    attribution: tuple[str, ...] = ()
    #: dtype the numerical derivatives were computed in (float64 for a float32 network when the
    #: layers allow it).
    reference: str = "float64"
    #: What the reader should know that is not a failure (e.g. why a reference is float32).
    notes: tuple[str, ...] = ()
    #: The mode actually run (auto resolves to one of full/sample/directional).
    mode: str = "full"
    samples: int | None = None  # entries per tensor in sample mode
    probes: int | None = None  # directions per tensor in directional mode
    #: Cost estimate per mode when auto chose the mode (None otherwise).
    estimate: modes.Estimate | None = None
    #: Stopped early (Ctrl-C): ``params`` holds the tensors finished so far; never a pass.
    interrupted: bool = False
    #: Every setting the check ran with, defaults filled in (CheckOptions, JSON form): with the
    #: config and the seed, enough to reproduce the run.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.interrupted and not self.problems and all(p.passed for p in self.params)

    @property
    def failures(self) -> tuple[ParamResult, ...]:
        return tuple(p for p in self.params if not p.passed)

    @property
    def counts(self) -> dict[str, int]:
        """Tensors per outcome (:data:`OUTCOMES` order): what the closing line counts."""
        return count_outcomes(self.params)

    @property
    def verified(self) -> bool:
        """Every selected tensor shown right (agrees, or zero with evidence), nothing failed,
        not interrupted: the only result under a green ✓."""
        return self.passed and all(p.verified for p in self.params)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report's document (``gradcheck run --format json``) as a dict."""
        from gradcheck_cli.report.jsondoc import to_json_dict

        return to_json_dict(self)

    def _repr_html_(self) -> str:
        """A notebook shows the report table (the terminal report, coloured), not the repr."""
        from gradcheck_cli.report.notebook import result_html

        return result_html(self)


def structural_failure(
    name: str, shape: tuple[int, ...], reason: str, analytic: Any = None, kind: str | None = None
) -> ParamResult:
    """A tensor that fails before any number is compared; its diagnosis kind (``missing``,
    ``transpose``, ``layout``, ``shape``, ``dtype``, ``nonfinite``, ``not_read``…) is in the JSON
    like any diagnosis (``kind`` given, or read from the ``analytic`` value)."""
    kind = kind or structural_kind(analytic, shape)
    found = None if kind is None else Diagnosis(kind, {"structural": True}, 1.0, reason)
    return ParamResult(
        name, shape, False, float("nan"), float("nan"), 0, 0, (), reason, verdict="fail",
        diagnosis=found,
    )  # fmt: skip


def structural_kind(a: Any, shape: tuple[int, ...]) -> str | None:
    """What kind of structural failure an analytic value is: None (not set) → missing; the
    reversed shape of a 2-D tensor → transpose; the same number of entries in another shape →
    layout; another size → shape; NaN/Inf → nonfinite; a lower precision → dtype."""
    if a is None:
        return "missing"
    if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.number):
        if a.shape != tuple(shape):
            if len(shape) == 2 and a.shape == tuple(shape)[::-1]:
                return "transpose"
            return "layout" if a.size == int(np.prod(shape)) else "shape"
        if not np.all(np.isfinite(a)):
            return "nonfinite"
        return "dtype"
    return "type" if not isinstance(a, str) else None


def analytic_gradient(
    ref: ParamRef, dx: Any, grads: list[dict[str, Array] | str], arr: Array
) -> tuple[Any, str | None]:
    """The analytic gradient of ``ref`` from a backward pass (``Network.backward``), and why it
    cannot be compared with a numerical one (None when it can)."""
    if ref.key is None:
        a = dx
    else:
        layer_grads = grads[ref.layer]
        a = layer_grads if isinstance(layer_grads, str) else layer_grads.get(ref.key)
    return a, _analytic_problem(ref, a, arr)


def _analytic_problem(ref: ParamRef, a: Any, arr: Array) -> str | None:
    """Why an analytic gradient cannot be compared at all (None when it can)."""
    what = "dx" if ref.key is None else f"grads['{ref.key}']"
    if isinstance(a, str):
        return a
    if a is None:
        return f"backward did not set grads['{ref.key}']"
    if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.number):
        return f"{what} is a {type(a).__name__}, not a numeric array"
    if a.shape != arr.shape:
        return f"gradient has shape {a.shape}, expected {arr.shape}"
    if np.iscomplexobj(a) or (
        np.issubdtype(arr.dtype, np.floating) and np.finfo(a.dtype).bits < np.finfo(arr.dtype).bits
    ):
        return (
            f"{what} has dtype {a.dtype} but the tensor is {arr.dtype}: the gradient lost precision"
        )
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return f"gradient contains {int(bad.sum())} NaN/Inf value(s), first at {idx}"
    return None




def spurious_grads(network: Network, grads: list[Any]) -> list[ParamResult]:
    """A grads key with no params key is a gradient for nothing: the layer contract (same keys)
    is broken and its params/grads naming cannot be trusted, so it fails like a missing key."""
    out = []
    for i, g in enumerate(grads):
        if not isinstance(g, dict):
            continue
        params = network.layers[i].params
        for key in sorted(set(g) - set(params)):
            out.append(
                structural_failure(
                    network.param_name(i, key),
                    tuple(np.shape(g[key])),
                    f"grads['{key}'] has no matching params['{key}'] (params: "
                    f"{', '.join(params) or 'none'}): grads and params must have the same keys",
                    kind="extra_key",
                )
            )
    return out

