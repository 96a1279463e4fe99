"""Analytic vs numerical gradients → result dataclasses. The tolerance/verdict model lives here only.

Pass rule per entry:  |a − n| ≤ atol + rtol·max(|a|, |n|) + k·noise,
where noise = u·(|f₊| + |f₋|)/(θ₊ − θ₋) is the round-off of the central difference itself
(u = unit round-off of the dtype, k = NOISE_FACTOR). The noise term lets a large loss with a tiny
gradient entry pass without loosening rtol for everyone else; rtol is the size of bug we promise
to catch. Defaults and the measurement behind them: README, "How the verdict is decided".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.modes import (
    DEFAULT_BUDGET,
    DEFAULT_PROBES,
    DEFAULT_SAMPLES,
    MODES,
    PROBE_EVALS,
    SMALL_CHECK,
    Estimate,
    directions,
    estimate,
    sample_indices,
)
from gradcheck_cli.network import Network, ParamRef, rng_for
from gradcheck_cli.numeric import (
    CHUNK_BYTES,
    DEFAULT_EPS,
    UNIT_ROUNDOFF,
    Differences,
    Perturber,
)

#: Relative tolerance per dtype: the smallest relative gradient error we promise to catch.
DEFAULT_RTOL = {"float64": 1e-6, "float32": 1e-2}
#: Absolute tolerance per dtype (the noise term already covers round-off; this is a floor).
DEFAULT_ATOL = {"float64": 0.0, "float32": 0.0}
#: Safety factor on the round-off estimate.
NOISE_FACTOR = 100.0
#: How many of the worst entries a result keeps.
KEEP_WORST = 5
#: Safety factor on the Richardson truncation estimate |D(ε) − D(2ε)|/3 of a directional probe.
TRUNC_FACTOR = 10.0

#: Progress callback: (evaluations done, evaluations planned so far).
Progress = Callable[[int, int], None]


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
    #: How this tensor was checked: "full", "sample", "directional", or
    #: "directional→elementwise" (a failed directional check, then every entry).
    mode: str = "full"
    #: Directional probes evaluated (0 unless directional); ``checked`` counts entries, or the
    #: probes for a tensor checked by directions only.
    probes: int = 0


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
    #: The mode actually run (auto resolves to one of full/sample/directional).
    mode: str = "full"
    samples: int | None = None  # entries per tensor in sample mode
    probes: int | None = None  # directions per tensor in directional mode
    #: Cost estimate per mode when auto chose the mode (None otherwise).
    estimate: Estimate | None = None
    #: Stopped early (Ctrl-C): ``params`` holds the tensors finished so far; never a pass.
    interrupted: bool = False

    @property
    def passed(self) -> bool:
        return not self.interrupted and all(p.passed for p in self.params)

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


def compare_directional(
    name: str,
    shape: tuple[int, ...],
    analytic: Array,
    theta: Array,
    probes: Array,
    f: Array,
    eps: float,
    tol: Tolerance,
    dtype: str,
) -> ParamResult:
    """Directional verdict for one tensor from ``f[k] = L(θ + s·v_k)``, s = (ε, −ε[, 2ε, −2ε]).

    Per probe v (unit norm): a = ∇L·v, n = (f(ε) − f(−ε))/2ε, pass when
        |a − n| ≤ atol + rtol·max(|a|, |n|) + k·noise + k_T·|n − n₂|/3,
    noise = u·(|f₊| + |f₋|)/2ε  (round-off of the difference, as for one entry)
          + u·‖∇L ⊙ θ‖/ε        (θ + εv is rounded entry by entry; independent roundings add
                                  in quadrature, the noise factor covers the rest)
          + u·‖∇L‖               (the dot product: Σ|∇L_i·v_i| ≤ ‖∇L‖ since ‖v‖ = 1),
    n₂ = the same difference with step 2ε when given (else the term is 0), so (n − n₂)/3 is the
    Richardson estimate of n's truncation error (numeric on both sides: a wrong ∇L cannot widen
    it). Nothing scales with the tensor's size: ‖v‖ = 1 makes the step in θ-space ε, exactly as
    for a single entry.
    """
    u = UNIT_ROUNDOFF[dtype]
    g = analytic.reshape(-1).astype(np.float64, copy=False)
    flat_v = probes.reshape(len(probes), -1)
    a = flat_v @ g
    n1 = (f[:, 0] - f[:, 1]) / (2 * eps)
    n2 = (f[:, 2] - f[:, 3]) / (4 * eps) if f.shape[1] == 4 else n1
    norm_g = float(np.linalg.norm(g))
    noise = (
        u * (np.abs(f[:, 0]) + np.abs(f[:, 1])) / (2 * eps)
        + u * float(np.linalg.norm(g * theta.reshape(-1))) / eps
        + u * norm_g
    )
    trunc = np.abs(n1 - n2) / 3
    allowed = (
        tol.atol
        + tol.rtol * np.maximum(np.abs(a), np.abs(n1))
        + tol.noise_factor * noise
        + TRUNC_FACTOR * trunc
    )
    err = np.abs(a - n1)
    bad = ~(err <= allowed)  # NaN fails
    denom = max(float(np.linalg.norm(a) + np.linalg.norm(n1)), np.finfo(np.float64).tiny)
    return ParamResult(
        name=name,
        shape=shape,
        passed=not bad.any(),
        rel_error=float(np.linalg.norm(a - n1)) / denom,
        max_abs_error=float(err.max(initial=0.0)),
        checked=len(a),
        failed=int(bad.sum()),
        mode="directional",
        probes=len(a),
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
    mode: str | None = None,
    samples: int | None = None,
    probes: int | None = None,
    budget: float | None = None,
    progress: Progress | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> CheckResult:
    """Check every parameter (and the input, unless ``inputs=False``) of ``network``.

    ``x``/``target`` default to the ones the network was built with. Parameters are perturbed in
    place and restored exactly; the caller's ``x`` is never modified.

    ``mode``: "full", "sample" (``samples`` entries per tensor), "directional" (``probes``
    directions per tensor; a failing tensor is then checked entry by entry), "auto" (the most
    thorough that fits ``budget`` seconds), or None: full for small checks, else auto.
    ``progress(done, planned)`` is called as loss evaluations complete. Ctrl-C during the check
    returns the tensors finished so far with ``interrupted=True``.
    """
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    x_in = network.x if x is None else x
    if x_in is None:
        raise ValueError("check_network needs an input x (the network has none bound)")
    if target is not None:
        network.target = target
    x_arr = np.array(x_in, copy=True)
    dtype = "float32" if x_arr.dtype == np.float32 else "float64"
    eps = DEFAULT_EPS[dtype] if eps is None else eps
    tol = Tolerance.default(dtype, rtol, atol)

    pert = Perturber(network, x_arr, chunk_bytes=chunk_bytes)
    dx, grads = network.backward()
    refs = network.parameters(include_input=inputs)
    k_samples = DEFAULT_SAMPLES if samples is None else samples
    k_probes = DEFAULT_PROBES if probes is None else probes
    rng_seed = 0 if seed is None else seed
    chosen, est = mode or "full", None
    if mode == "auto" or (mode is None and sum(pert.array(r).size for r in refs) > SMALL_CHECK):
        est = estimate(
            pert,
            refs,
            eps=eps,
            samples=k_samples,
            probes=k_probes,
            budget=DEFAULT_BUDGET if budget is None else budget,
            seed=rng_seed,
            grow=samples is None,
        )
        chosen, k_samples = est.chosen, est.samples

    def planned(size: int) -> int:
        if chosen == "directional":
            return PROBE_EVALS * k_probes
        return 2 * (min(size, k_samples) if chosen == "sample" else size)

    counter = [0, sum(planned(pert.array(r).size) for r in refs)]
    if progress is not None:

        def tick(n: int) -> None:
            counter[0] += n
            progress(counter[0], counter[1])

        pert.progress = tick
        progress(0, counter[1])

    results: list[ParamResult] = []
    interrupted = False
    try:
        for ref in refs:
            arr = pert.array(ref)
            shape = tuple(arr.shape)
            if ref.key is None:
                analytic: Any = dx
            else:
                layer_grads = grads[ref.layer]
                analytic = layer_grads if isinstance(layer_grads, str) else layer_grads.get(ref.key)
            problem = _analytic_problem(ref, analytic, shape, dtype)
            if problem:
                results.append(_structural_failure(ref.name, shape, problem))
                continue
            if chosen == "directional":
                v = directions(shape, k_probes, rng_seed, ref.name)
                steps = np.array([eps, -eps])
                f = np.stack([pert.along(ref, v[k], steps) for k in range(k_probes)])
                res = compare_directional(ref.name, shape, analytic, arr, v, f, eps, tol, dtype)
                if not res.passed:  # borderline or wrong: add ±2ε for the truncation estimate
                    counter[1] += 2 * k_probes
                    f2 = np.stack([pert.along(ref, v[k], 2 * steps) for k in range(k_probes)])
                    f = np.concatenate([f, f2], axis=1)
                    res = compare_directional(ref.name, shape, analytic, arr, v, f, eps, tol, dtype)
                if res.passed:
                    results.append(res)
                    continue
                counter[1] += 2 * arr.size  # fall back to every entry of this tensor
                diff = pert.central(ref, np.arange(arr.size), eps)
                full = compare(ref.name, shape, analytic, diff, tol, dtype)
                results.append(replace(full, mode="directional→elementwise", probes=k_probes))
                continue
            if chosen == "sample":
                idx = sample_indices(arr.size, k_samples, rng_seed, ref.name)
            else:
                idx = np.arange(arr.size)
            diff = pert.central(ref, idx, eps)
            results.append(
                replace(compare(ref.name, shape, analytic, diff, tol, dtype), mode=chosen)
            )
    except KeyboardInterrupt:
        interrupted = True
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
        mode=chosen,
        samples=k_samples if chosen == "sample" else None,
        probes=k_probes if chosen == "directional" else None,
        estimate=est,
        interrupted=interrupted,
    )


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
