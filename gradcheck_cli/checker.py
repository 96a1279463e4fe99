"""Analytic vs numerical gradients → result dataclasses. The tolerance/verdict model lives here only.

Pass rule per entry:  |a − n| ≤ atol + rtol·max(|a|, |n|) + k·noise,
where noise = u·(|f₊| + |f₋|)/(θ₊ − θ₋) is the round-off of the central difference itself
(u = unit round-off of the dtype, k = NOISE_FACTOR). The noise term lets a large loss with a tiny
gradient entry pass without loosening rtol for everyone else; rtol is the size of bug we promise
to catch. Defaults and the measurement behind them: README, "How the verdict is decided".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.network import Network, ParamRef, rng_for
from gradcheck_cli.numeric import DEFAULT_EPS, UNIT_ROUNDOFF, Differences, Perturber

#: Relative tolerance per dtype: the smallest relative gradient error we promise to catch.
DEFAULT_RTOL = {"float64": 1e-6, "float32": 1e-2}
#: Absolute tolerance per dtype (the noise term already covers round-off; this is a floor).
DEFAULT_ATOL = {"float64": 0.0, "float32": 0.0}
#: Safety factor on the round-off estimate.
NOISE_FACTOR = 100.0
#: How many of the worst entries a result keeps.
KEEP_WORST = 5


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float
    noise_factor: float = NOISE_FACTOR

    @classmethod
    def default(cls, dtype: str, rtol: float | None = None, atol: float | None = None) -> Tolerance:
        return cls(
            DEFAULT_RTOL[dtype] if rtol is None else rtol,
            DEFAULT_ATOL[dtype] if atol is None else atol,
        )


@dataclass(frozen=True)
class Entry:
    """One checked entry: where, both values, the error and the tolerance it was held to."""

    index: tuple[int, ...]
    analytic: float
    numeric: float
    abs_error: float
    tol: float


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
    #: What happened on the way that the user should know (NumPy overflow etc.), one line each.
    warnings: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.params)

    @property
    def failures(self) -> tuple[ParamResult, ...]:
        return tuple(p for p in self.params if not p.passed)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def _structural_failure(name: str, shape: tuple[int, ...], reason: str) -> ParamResult:
    return ParamResult(name, shape, False, float("nan"), float("nan"), 0, 0, (), reason)


def _analytic_problem(ref: ParamRef, a: Any, shape: tuple[int, ...], dtype: str) -> str | None:
    """Why an analytic gradient cannot be compared at all (None when it can)."""
    if isinstance(a, str):
        return a
    if a is None:
        return f"backward did not set grads['{ref.key}']"
    if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.number):
        return f"grads['{ref.key}'] is a {type(a).__name__}, not a numeric array"
    if a.shape != shape:
        return f"gradient has shape {a.shape}, expected {shape}"
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return f"gradient contains {int(bad.sum())} NaN/Inf value(s), first at {idx}"
    return None


def compare(
    name: str,
    shape: tuple[int, ...],
    analytic: Array,
    diff: Differences,
    tol: Tolerance,
    dtype: str,
) -> ParamResult:
    """Apply the pass rule to every checked entry of one tensor."""
    a = analytic.reshape(-1)[diff.indices].astype(np.float64)
    n = diff.numeric
    if not np.all(np.isfinite(n)):
        j = int(np.argmin(np.isfinite(n)))
        idx = tuple(int(i) for i in np.unravel_index(diff.indices[j], shape))
        return _structural_failure(
            name,
            shape,
            f"the loss is not finite when entry {idx} is perturbed (numeric gradient NaN/Inf)",
        )
    err = np.abs(a - n)
    noise = UNIT_ROUNDOFF[dtype] * (np.abs(diff.f_plus) + np.abs(diff.f_minus)) / diff.step
    allowed = tol.atol + tol.rtol * np.maximum(np.abs(a), np.abs(n)) + tol.noise_factor * noise
    bad = err > allowed
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(allowed > 0, err / allowed, np.where(err > 0, np.inf, 0.0))
    order = np.argsort(-ratio, kind="stable")[:KEEP_WORST]
    worst = tuple(
        Entry(
            tuple(int(i) for i in np.unravel_index(diff.indices[j], shape)),
            float(a[j]),
            float(n[j]),
            float(err[j]),
            float(allowed[j]),
        )
        for j in order
    )
    denom = max(float(np.linalg.norm(a) + np.linalg.norm(n)), np.finfo(np.float64).tiny)
    return ParamResult(
        name=name,
        shape=shape,
        passed=not bad.any(),
        rel_error=float(np.linalg.norm(a - n)) / denom,
        max_abs_error=float(err.max(initial=0.0)),
        checked=len(n),
        failed=int(bad.sum()),
        worst=worst,
    )


def check_network(
    network: Network,
    x: Array | None = None,
    target: Array | None = None,
    *,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    inputs: bool = True,
    seed: int | None = None,
) -> CheckResult:
    """Check every parameter (and the input, unless ``inputs=False``) of ``network``.

    ``x``/``target`` default to the ones the network was built with. Parameters are perturbed in
    place and restored exactly; the caller's ``x`` is never modified.
    """
    x_in = network.x if x is None else x
    if x_in is None:
        raise ValueError("check_network needs an input x (the network has none bound)")
    if target is not None:
        network.target = target
    x_arr = np.array(x_in, copy=True)
    dtype = "float32" if x_arr.dtype == np.float32 else "float64"
    eps = DEFAULT_EPS[dtype] if eps is None else eps
    tol = Tolerance.default(dtype, rtol, atol)

    pert = Perturber(network, x_arr)
    if not np.isfinite(np.asarray(pert.f0, dtype=complex)):
        raise network.explain_nonfinite(x_arr, pert.f0)
    dx, grads = network.backward()
    results: list[ParamResult] = []
    for ref in network.parameters(include_input=inputs):
        arr = pert.array(ref)
        shape = tuple(arr.shape)
        if ref.key is None:
            analytic: Any = dx
        else:
            layer_grads = grads[ref.layer]
            analytic = layer_grads if isinstance(layer_grads, str) else layer_grads.get(ref.key)
        problem = _analytic_problem(ref, analytic, shape, dtype)
        if problem and "NaN/Inf" in problem and network.backward_nonfinite:
            problem += f"; NaN/Inf first appear in {network.backward_nonfinite}"
        if problem:
            results.append(_structural_failure(ref.name, shape, problem))
            continue
        diff = pert.central(ref, np.arange(arr.size), eps)
        results.append(compare(ref.name, shape, analytic, diff, tol, dtype))
    results += _spurious_grads(network, grads)
    return CheckResult(
        name=network.name,
        seed=seed,
        method="central",
        eps=eps,
        rtol=tol.rtol,
        atol=tol.atol,
        dtype=dtype,
        loss=float(np.real(pert.f0)),
        params=tuple(results),
        warnings=tuple(network.fp.notes()),
    )


def _spurious_grads(network: Network, grads: list[Any]) -> list[ParamResult]:
    """A grads key with no params key is a gradient for nothing: the layer contract (same keys)
    is broken and its params/grads naming cannot be trusted, so it fails like a missing key."""
    out = []
    for i, g in enumerate(grads):
        if not isinstance(g, dict):
            continue
        params = network.layers[i].params
        short = network.labels[i].rpartition(":")[2]
        for key in sorted(set(g) - set(params)):
            out.append(
                _structural_failure(
                    f"{i}.{short}.{key}",
                    tuple(np.shape(g[key])),
                    f"grads['{key}'] has no matching params['{key}'] (params: "
                    f"{', '.join(params) or 'none'}): grads and params must have the same keys",
                )
            )
    return out


def check_layer(
    layer: Any,
    x: Array,
    *,
    dout: Array | None = None,
    seed: int = 0,
    label: str | None = None,
    **options: Any,
) -> CheckResult:
    """Check one layer on input ``x`` with L = Σ out ⊙ g (g = ``dout`` or random from ``seed``)."""
    from gradcheck_cli.registry import check_layer_contract

    label = label or type(layer).__name__
    check_layer_contract(layer, label)
    net = Network([layer], None, labels=[label], x=np.asarray(x), name=label)
    if dout is None:
        out = net.forward(np.array(x, copy=True))
        dout = rng_for(seed, "upstream").standard_normal(out.shape).astype(out.dtype)
    net.loss, net.loss_label = WeightedSum(np.asarray(dout)), "Σ out⊙g"
    return check_network(net, seed=seed, **options)
