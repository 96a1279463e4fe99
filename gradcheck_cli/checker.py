"""Analytic vs numerical gradients → result dataclasses. The tolerance/verdict model lives here only.

Per entry, with a the analytic value, n the numerical estimate and r its round-off bound:

    |a − n| ≤ atol + rtol·max(|a|, |n|) + k·r + k·u·(max|a| + S)

rtol is the relative size of bug we promise to catch; k·r is the noise of the numerical estimate
itself (error model: a large loss makes small entries uncheckable at fixed rtol); k·u·(max|a| + S)
is the round-off of the analytic backward, relative to the size S of the numbers it was computed
from (largest upstream gradient × largest layer input), not to the gradient it produced. Entries that fail are looked at again before
being called wrong: Ridders' extrapolation over steps ε … ε/128 removes truncation error whatever the
function's scale, and
one-sided slopes at ε, ε/2, ε/4 tell a kink (a non-differentiable point straddled by the stencil)
from a bug. Verdict per tensor: pass, fail, kink (a correct subgradient at a kink) or noise (the
estimate's round-off is as large as the gradient: nothing can be concluded). The calibration behind
the defaults is benchmarks/calibrate_tolerance.py; see README, "How the verdict is decided".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from gradcheck_cli import modes, structure
from gradcheck_cli.errors import PluginError
from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.limits import check_step
from gradcheck_cli.methods import (
    DEFAULT_EPS,
    METHODS,
    complex_blind_layer,
    estimate,
    one_sided,
    ridders,
)
from gradcheck_cli.network import Network, ParamRef, rng_for
from gradcheck_cli.numeric import CHUNK_BYTES, UNIT_ROUNDOFF, Perturber, scalar
from gradcheck_cli.selection import select

#: Relative tolerance per (method, dtype of the network): the smallest relative gradient error
#: we promise to catch (calibration: benchmarks/calibrate_tolerance.py). A float32 network is
#: compared against float64 numerics, so its rtol reflects float32 round-off in the backward.
DEFAULT_RTOL = {
    ("central", "float64"): 1e-7,
    ("five-point", "float64"): 1e-7,
    ("forward", "float64"): 1e-5,
    ("complex", "float64"): 1e-11,
    ("central", "float32"): 1e-5,
    ("five-point", "float32"): 1e-5,
    ("forward", "float32"): 1e-5,
    ("complex", "float32"): 1e-5,
}
#: Safety factor k on the round-off bound of the numerical estimate.
NOISE_FACTOR = 10.0
#: How many of the worst entries a result keeps by default.
KEEP_WORST = 5
#: Safety factor on the Richardson truncation estimate |D(ε) − D(2ε)|/3 of a directional probe.
TRUNC_FACTOR = 10.0

#: Progress callback: (evaluations done, evaluations planned so far).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float = 0.0
    noise_factor: float = NOISE_FACTOR

    @classmethod
    def default(
        cls, method: str, dtype: str, rtol: float | None = None, atol: float | None = None
    ) -> Tolerance:
        return cls(DEFAULT_RTOL[method, dtype] if rtol is None else rtol, atol or 0.0)


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
    verdict: str = "pass"  # pass | fail | kink | noise
    kinks: int = 0
    refined: int = 0  # entries re-estimated (Richardson / smaller steps) before a verdict
    noise_floor: float = 0.0  # largest estimated noise among the checked entries
    note: str | None = None
    #: |a − n| / tolerance per entry, in the tensor's shape (NaN where not checked).
    ratios: Array | None = field(default=None, compare=False, repr=False)
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

    @property
    def passed(self) -> bool:
        return not self.interrupted and not self.problems and all(p.passed for p in self.params)

    @property
    def failures(self) -> tuple[ParamResult, ...]:
        return tuple(p for p in self.params if not p.passed)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for p in d["params"]:
            p.pop("ratios", None)
        d["passed"] = self.passed
        return d


def _structural_failure(name: str, shape: tuple[int, ...], reason: str) -> ParamResult:
    return ParamResult(
        name, shape, False, float("nan"), float("nan"), 0, 0, (), reason, verdict="fail"
    )


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


class _Judge:
    """Applies the verdict model to the entries of one tensor."""

    def __init__(
        self,
        pert: Perturber,
        method: str,
        eps: float,
        tol: Tolerance,
        dtype: str,
        strict: bool,
        top: int = KEEP_WORST,
        numeric_dtype: str | None = None,
    ) -> None:
        self.pert, self.method, self.eps, self.tol = pert, method, eps, tol
        self.dtype, self.strict, self.top = dtype, strict, top
        self.numeric_dtype = numeric_dtype or dtype

    def allowed(self, a: Array, n: Array, roundoff: Array, floor: Any) -> tuple[Array, Array]:
        noise = self.tol.noise_factor * roundoff + floor
        return self.tol.atol + self.tol.rtol * np.maximum(np.abs(a), np.abs(n)) + noise, noise

    def __call__(
        self,
        ref: ParamRef,
        shape: tuple[int, ...],
        analytic: Array,
        idx: Array,
        scale: float = 0.0,
    ) -> ParamResult:
        a = np.asarray(analytic, dtype=np.float64).reshape(-1)[idx]
        floor = (
            self.tol.noise_factor
            * UNIT_ROUNDOFF[self.dtype]
            * (float(np.max(np.abs(a), initial=0.0)) + scale)
        )
        est = estimate(self.pert, ref, idx, self.method, self.eps, self.numeric_dtype)
        n = est.numeric.copy()
        if not np.all(np.isfinite(n)):
            j = int(np.argmin(np.isfinite(n)))
            where = tuple(int(i) for i in np.unravel_index(idx[j], shape))
            return _structural_failure(
                ref.name, shape, f"the loss is not finite when entry {where} is perturbed"
            )
        if self.method == "complex" and not n.any() and a.any():
            culprit = complex_blind_layer(self.pert, ref, int(idx[np.argmax(np.abs(a))]), self.eps)
            raise PluginError(
                f"--method complex: Im L stayed exactly 0 for every entry of {ref.name}; "
                f"{culprit} drops the imaginary part (or does not read its parameters from params)",
                hint="make it complex-safe (use the real part only for comparisons and max) or use "
                "--method central / five-point",
            )
        tol, noise = self.allowed(a, n, est.roundoff, floor)
        status = np.where(np.abs(a - n) <= tol, "pass", "fail").astype(object)
        labels = np.full(len(idx), "", dtype=object)
        bad = np.flatnonzero(status == "fail")
        refined = len(bad)
        if len(bad) and self.method != "complex":
            self._refine(ref, idx, a, n, tol, noise, status, labels, bad, est, floor)
        for jf in np.flatnonzero(status == "fail"):
            j = int(jf)
            if a[j] == 0.0:
                labels[j] = "missing (analytic is 0)"
            elif abs(n[j]) <= noise[j]:
                labels[j] = "spurious (L is flat here)"
        err = np.abs(a - n)
        return self._result(ref.name, shape, idx, a, n, err, tol, noise, status, labels, refined)

    def _refine(
        self,
        ref: ParamRef,
        idx: Array,
        a: Array,
        n: Array,
        tol: Array,
        noise: Array,
        status: Array,
        labels: Array,
        bad: Array,
        est: Any,
        floor: Any,
    ) -> None:
        """Second look at failing entries, cheapest evidence first.

        1. Central differences at ε/2 and ε/4 and their Richardson extrapolation: if one agrees,
           the first estimate was limited by truncation (or straddled a kink that ε/4 avoids).
        2. One-sided slopes at ε, ε/2, ε/4: for smooth L their gap halves with the step; if it
           does not, the stencil straddles a kink, and an analytic value between the one-sided
           slopes is a valid subgradient ("kink").
        3. Smooth but the extrapolations have not converged: Ridders' tableau over ε … ε/128.
        """
        floor = np.broadcast_to(floor, a.shape)
        dp, dm = one_sided(self.pert, ref, idx[bad], (self.eps, self.eps / 2, self.eps / 4))
        c = (dp + dm) / 2
        ro = est.roundoff[bad]
        r1, r2 = (4 * c[:, 1] - c[:, 0]) / 3, (4 * c[:, 2] - c[:, 1]) / 3
        r_err = np.abs(r2 - r1)
        candidates = [
            (c[:, 1], 2 * ro),
            (c[:, 2], 4 * ro),
            (r2, 7 * ro + r_err / self.tol.noise_factor),
        ]
        for cand, cand_ro in candidates:
            self._accept(bad, a, n, tol, noise, status, cand, cand_ro, floor[bad])
        gap = np.abs(dp - dm)
        with np.errstate(divide="ignore", invalid="ignore"):
            shrink = gap[:, 1] / gap[:, 0]
        unsettled = []
        for jj, j in enumerate(bad):
            if status[j] != "fail":
                continue
            lo, hi = min(dp[jj, 2], dm[jj, 2]), max(dp[jj, 2], dm[jj, 2])
            if gap[jj, 0] > tol[j] and not (0.4 <= shrink[jj] <= 0.6):
                if lo - tol[j] <= a[j] <= hi + tol[j]:
                    status[j] = "kink"
                    labels[j] = f"kink: slopes {dm[jj, 2]:.4g} | {dp[jj, 2]:.4g}"
            elif r_err[jj] > 0.1 * abs(a[j] - r2[jj]):
                unsettled.append(jj)
        if unsettled:
            sub = bad[unsettled]
            rich, rich_err = ridders(self.pert, ref, idx[sub], self.eps)
            ro_r = ro[unsettled] + 2 * rich_err / self.tol.noise_factor
            self._accept(sub, a, n, tol, noise, status, rich, ro_r, floor[sub])

    def _accept(
        self,
        sub: Array,
        a: Array,
        n: Array,
        tol: Array,
        noise: Array,
        status: Array,
        cand: Array,
        cand_ro: Array,
        floor: Array,
    ) -> None:
        """Entries ``sub`` still failing pass if the better estimate ``cand`` agrees with them."""
        t, nz = self.allowed(a[sub], cand, cand_ro, floor)
        for jj, j in enumerate(sub):
            if status[j] == "fail" and abs(a[j] - cand[jj]) <= t[jj]:
                n[j], tol[j], noise[j], status[j] = cand[jj], t[jj], nz[jj], "pass"

    def _result(
        self,
        name: str,
        shape: tuple[int, ...],
        idx: Array,
        a: Array,
        n: Array,
        err: Array,
        tol: Array,
        noise: Array,
        status: Array,
        labels: Array,
        refined: int,
    ) -> ParamResult:
        fails = int(np.sum(status == "fail"))
        kinks = int(np.sum(status == "kink"))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(tol > 0, err / tol, np.where(err > 0, np.inf, 0.0))
        ratio = np.where(status == "kink", np.minimum(ratio, 1.0), ratio)
        order = np.lexsort((-ratio, status != "fail"))[: self.top]  # failures first, then by ratio
        worst = tuple(
            Entry(
                tuple(int(i) for i in np.unravel_index(idx[j], shape)),
                float(a[j]),
                float(n[j]),
                float(err[j]),
                float(tol[j]),
                float(noise[j]),
                str(status[j]),
                str(labels[j]),
            )
            for j in order
        )
        mags = np.maximum(np.abs(a), np.abs(n))
        unjudgeable = (noise >= mags) & (mags > 0)
        note = None
        if fails:
            verdict = "fail"
        elif kinks:
            verdict = "kink"
            note = f"{kinks} entr{'y' if kinks == 1 else 'ies'} at a kink (analytic is a one-sided slope)"
        elif unjudgeable.all() and unjudgeable.any():
            verdict = "noise"
            note = (
                f"the estimate's noise (~{float(noise.max()):.2g}) is as large as the gradient "
                f"(max {float(mags.max()):.2g}): nothing can be concluded; use float64, another ε "
                "or --method complex"
            )
        else:
            verdict = "pass"
        passed = verdict == "pass" or (verdict in ("kink", "noise") and not self.strict)
        full = np.full(int(np.prod(shape)), np.nan)
        full[idx] = ratio
        denom = max(float(np.linalg.norm(a) + np.linalg.norm(n)), np.finfo(np.float64).tiny)
        return ParamResult(
            name=name,
            shape=shape,
            passed=passed,
            rel_error=float(np.linalg.norm(a - n)) / denom,
            max_abs_error=float(err.max(initial=0.0)),
            checked=len(idx),
            failed=fails + (kinks + int(verdict == "noise") * len(idx) if self.strict else 0),
            worst=worst,
            verdict=verdict,
            kinks=kinks,
            refined=refined,
            noise_floor=float(noise.max(initial=0.0)),
            note=note,
            ratios=full.reshape(shape),
        )


def check_network(
    network: Network,
    x: Array | None = None,
    target: Array | None = None,
    *,
    method: str = "central",
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    inputs: bool = True,
    strict: bool = False,
    attribute: bool = True,
    top: int = KEEP_WORST,
    seed: int | None = None,
    mode: str | None = None,
    samples: int | None = None,
    probes: int | None = None,
    budget: float | None = None,
    progress: Progress | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
) -> CheckResult:
    """Check every parameter (and the input, unless ``inputs=False``) of ``network``.

    ``include``/``exclude`` are parameter-name glob patterns (gradcheck_cli/selection.py).
    ``x``/``target`` default to the ones the network was built with. Parameters are perturbed in
    place and restored exactly; the caller's ``x`` is never modified.

    ``mode``: "full", "sample" (``samples`` entries per tensor), "directional" (``probes``
    directions per tensor; a failing tensor is then checked entry by entry), "auto" (the most
    thorough that fits ``budget`` seconds), or None: full for small checks, else auto.
    ``progress(done, planned)`` is called as loss evaluations complete. Ctrl-C during the check
    returns the tensors finished so far with ``interrupted=True``.
    """
    if mode is not None and mode not in modes.MODES:
        raise ValueError(f"mode must be one of {', '.join(modes.MODES)}, got {mode!r}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    x_in = network.x if x is None else x
    if x_in is None:
        raise ValueError("check_network needs an input x (the network has none bound)")
    if target is not None:
        network.target = target
    x_arr = np.array(x_in, copy=True)
    # Integer inputs (embedding ids) are not differentiable: check the parameters only, and take
    # the dtype from the parameters.
    discrete = np.issubdtype(x_arr.dtype, np.integer)
    first = next((p for la in network.layers for p in la.params.values()), x_arr)
    dtype = "float32" if (first if discrete else x_arr).dtype == np.float32 else "float64"
    eps_given, eps = eps, DEFAULT_EPS[method, dtype] if eps is None else eps
    if method != "complex":
        check_step(network, x_arr, eps, inputs=inputs and not discrete)
    tol = Tolerance.default(method, dtype, rtol, atol)
    header = dict(
        name=network.name, seed=seed, method=method, eps=eps, rtol=tol.rtol, atol=tol.atol,
        dtype=dtype, strict=strict,
    )  # fmt: skip

    network.watch, network.mutated = True, set()
    try:
        pert = Perturber(network, x_arr, chunk_bytes=chunk_bytes)
    finally:
        network.watch = False
    if not np.isfinite(np.asarray(pert.f0, dtype=complex)):
        raise network.explain_nonfinite(x_arr, pert.f0)
    again = scalar(network.loss_value(x_arr), network.loss_label)
    problem = structure.nondeterminism(pert.f0, again)
    if problem:
        return CheckResult(loss=float(np.real(pert.f0)), problems=(problem,), **header)  # type: ignore[arg-type]
    dx, grads = network.backward()
    problems = structure.mutations(network) + structure.backward_consistency(network, grads, dx)
    scales = _backward_scales(network)
    originals = {ref.name: pert.array(ref) for ref in network.parameters()}
    refs = network.parameters(include_input=inputs and not discrete)
    chosen = set(select([r.name for r in refs], include, exclude))
    refs = [r for r in refs if r.name in chosen]
    with ExitStack() as stack:
        numeric_dtype, notes = dtype, []
        if dtype == "float32":
            why_not = stack.enter_context(_promoted(network))
            if why_not:
                notes.append(f"numerics in float32: {why_not}")
            else:
                numeric_dtype = "float64"
                pert = Perturber(
                    network,
                    x_arr if discrete else x_arr.astype(np.float64),
                    chunk_bytes=chunk_bytes,
                )
        header["reference"] = numeric_dtype
        if eps_given is None:
            header["eps"] = eps = DEFAULT_EPS[method, numeric_dtype]
        judge = _Judge(pert, method, eps, tol, dtype, strict, top, numeric_dtype)
        plan = _plan(judge, refs, mode, samples, probes, budget, seed, progress)
        if plan.mode == "directional" and method != "central":
            notes.append(f"directional probes use central differences along v, not {method}")
        results: list[ParamResult] = []
        interrupted = False
        try:
            _judge_all(network, judge, grads, dx, scales, originals, refs, plan, results)
        except KeyboardInterrupt:
            interrupted = True
    result = CheckResult(
        loss=float(np.real(pert.f0)),
        params=tuple(results),
        problems=tuple(problems),
        notes=tuple(notes + list(network.findings) + network.fp.notes()),
        mode=plan.mode,
        samples=plan.samples if plan.mode == "sample" else None,
        probes=plan.probes if plan.mode == "directional" else None,
        estimate=plan.estimate,
        interrupted=interrupted,
        **header,  # type: ignore[arg-type]
    )
    if attribute and not result.passed and not interrupted and len(network.layers) > 1:
        how = {"mode": mode, "samples": samples, "probes": probes, "budget": budget}
        result = _with_attribution(result, network, method, eps, tol, strict, how)
    return result


@dataclass
class _Plan:
    """Which entries/probes to check per tensor, and the progress count."""

    mode: str
    samples: int
    probes: int
    seed: int
    estimate: modes.Estimate | None
    progress: Progress | None
    done: int = 0
    planned: int = 0

    def evaluations(self, size: int) -> int:
        if self.mode == "directional":
            return modes.PROBE_EVALS * self.probes
        return 2 * (min(size, self.samples) if self.mode == "sample" else size)

    def tick(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.planned)

    def grow(self, n: int) -> None:
        self.planned += n


def _plan(
    judge: _Judge,
    refs: list[ParamRef],
    mode: str | None,
    samples: int | None,
    probes: int | None,
    budget: float | None,
    seed: int | None,
    progress: Progress | None,
) -> _Plan:
    """Resolve the mode for ``refs`` (auto: pilot the engine and estimate), hook up progress."""
    pert = judge.pert
    k_samples = modes.DEFAULT_SAMPLES if samples is None else samples
    k_probes = modes.DEFAULT_PROBES if probes is None else probes
    rng_seed = 0 if seed is None else seed
    chosen, est = mode or "full", None
    sizes = [pert.array(r).size for r in refs]
    if mode == "auto" or (mode is None and sum(sizes) > modes.SMALL_CHECK):
        est = modes.estimate(
            pert,
            refs,
            eps=judge.eps,
            samples=k_samples,
            probes=k_probes,
            budget=modes.DEFAULT_BUDGET if budget is None else budget,
            seed=rng_seed,
            grow=samples is None,
        )
        chosen, k_samples = est.chosen, est.samples
    plan = _Plan(chosen, k_samples, k_probes, rng_seed, est, progress)
    plan.planned = sum(plan.evaluations(n) for n in sizes)
    if progress is not None:
        pert.progress = plan.tick
        progress(0, plan.planned)
    return plan


def _judge_all(
    network: Network,
    judge: _Judge,
    grads: list[dict[str, Array] | str],
    dx: Any,
    scales: list[float],
    originals: dict[str, Array],
    refs: list[ParamRef],
    plan: _Plan,
    results: list[ParamResult],
) -> None:
    """Judge every tensor of ``refs`` (appending to ``results``, so a Ctrl-C keeps what is done);
    ``originals`` are the arrays as the network holds them outside any float64 reference
    (their dtype is what the gradients must match)."""
    for ref in refs:
        arr = originals[ref.name]
        shape = tuple(arr.shape)
        analytic, why = analytic_gradient(ref, dx, grads, arr)
        if why and "NaN/Inf" in why and network.backward_nonfinite:
            why += f"; NaN/Inf first appear in {network.backward_nonfinite}"
        if why:
            results.append(_structural_failure(ref.name, shape, why))
            continue
        if plan.mode == "directional":
            res = _directional(judge, ref, shape, analytic, scales[ref.layer], plan)
            if not res.passed:  # localise: every entry of this tensor
                plan.grow(2 * arr.size)
                full = judge(ref, shape, analytic, np.arange(arr.size), scales[ref.layer])
                res = replace(full, mode="directional→elementwise", probes=plan.probes)
            results.append(res)
            continue
        if plan.mode == "sample":
            idx = modes.sample_indices(arr.size, plan.samples, plan.seed, ref.name)
        else:
            idx = np.arange(arr.size)
        res = judge(ref, shape, analytic, idx, scales[ref.layer])
        results.append(replace(res, mode=plan.mode))
    results += _spurious_grads(network, grads)


def _directional(
    judge: _Judge,
    ref: ParamRef,
    shape: tuple[int, ...],
    analytic: Array,
    scale: float,
    plan: _Plan,
) -> ParamResult:
    """Probe one tensor along ``plan.probes`` random directions (central differences)."""
    pert, eps = judge.pert, judge.eps
    v = modes.directions(shape, plan.probes, plan.seed, ref.name)
    steps = np.array([eps, -eps])
    f = np.stack([pert.along(ref, v[k], steps) for k in range(plan.probes)])
    args = (ref.name, shape, analytic, pert.array(ref), v, eps, judge, scale)
    res = compare_directional(*args, f)
    if not res.passed:  # borderline or wrong: add ±2ε for the truncation estimate
        plan.grow(2 * plan.probes)
        f2 = np.stack([pert.along(ref, v[k], 2 * steps) for k in range(plan.probes)])
        res = compare_directional(*args, np.concatenate([f, f2], axis=1))
    return res


def compare_directional(
    name: str,
    shape: tuple[int, ...],
    analytic: Array,
    theta: Array,
    probes: Array,
    eps: float,
    judge: _Judge,
    scale: float,
    f: Array,
) -> ParamResult:
    """Directional verdict for one tensor from ``f[k] = L(θ + s·v_k)``, s = (ε, −ε[, 2ε, −2ε]).

    Per probe v (unit norm): a = ∇L·v, n = (f(ε) − f(−ε))/2ε, pass when
        |a − n| ≤ atol + rtol·max(|a|, |n|) + k·noise + k_T·|n − n₂|/3,
    noise = u·(|f₊| + |f₋|)/2ε   (round-off of the difference, as for one entry)
          + u·‖∇L ⊙ θ‖/ε         (θ + εv is rounded entry by entry; independent roundings
                                   add in quadrature, the factor k covers the rest)
          + ‖v‖₁·u·(max|∇L| + S) (the analytic gradient's own round-off, as per entry, summed
                                   along v: at most √n·that, since ‖v‖ = 1)
    with u for the dtype the numerics are computed in (the analytic term: the network's dtype),
    S the backward scale of the layer, n₂ the same difference with step 2ε when given (else the
    term is 0): (n − n₂)/3 is the Richardson estimate of n's truncation error, numeric on both
    sides, so a wrong ∇L cannot widen it. Nothing scales with the tensor's size except the
    analytic round-off bound; ‖v‖ = 1 makes the step in θ-space ε, exactly as for one entry.
    """
    tol = judge.tol
    u = UNIT_ROUNDOFF[judge.numeric_dtype]
    g = np.asarray(analytic, dtype=np.float64).reshape(-1)
    flat_v = probes.reshape(len(probes), -1)
    a = flat_v @ g
    n1 = (f[:, 0] - f[:, 1]) / (2 * eps)
    n2 = (f[:, 2] - f[:, 3]) / (4 * eps) if f.shape[1] == 4 else n1
    backward = (
        UNIT_ROUNDOFF[judge.dtype]
        * np.abs(flat_v).sum(axis=1)
        * (float(np.max(np.abs(g), initial=0.0)) + scale)
    )
    noise = (
        u * (np.abs(f[:, 0]) + np.abs(f[:, 1])) / (2 * eps)
        + u * float(np.linalg.norm(g * np.asarray(theta, dtype=np.float64).reshape(-1))) / eps
        + backward
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
        verdict="fail" if bad.any() else "pass",
        noise_floor=float((tol.noise_factor * noise).max(initial=0.0)),
        mode="directional",
        probes=len(a),
    )


@contextmanager
def _promoted(network: Network) -> Iterator[str | None]:
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


def _backward_scales(network: Network) -> list[float]:
    """Per layer ℓ: the size of the numbers its gradients were computed from,
    max_{m ≥ ℓ} max|dout_m| · max(1, max|input_ℓ|). Round-off in a backward is relative to these,
    not to the (possibly tiny, after cancellation) gradient itself: 1 − y² of a saturated tanh is
    exact to u absolutely, not relatively."""
    mags = [float(np.max(np.abs(d), initial=0.0)) for d in network.douts]
    upstream: list[float] = list(np.maximum.accumulate(mags[::-1])[::-1]) if mags else []
    return [
        float(up) * max(1.0, float(np.max(np.abs(inp), initial=0.0)))
        for up, inp in zip(upstream, network.inputs, strict=False)
    ]


def _with_attribution(
    result: CheckResult,
    network: Network,
    method: str,
    eps: float,
    tol: Tolerance,
    strict: bool,
    how: dict[str, Any] | None = None,
) -> CheckResult:
    """Check each layer on its own cached input with the upstream gradient it received; name the
    layers whose own backward is wrong (a wrong layer also corrupts every dx below it)."""
    if network.x is not None:
        network.loss_value(network.x)  # caches from the unperturbed pass at the network's dtype
    inputs, douts = list(network.inputs), list(network.douts)
    if len(douts) != len(network.layers):
        return result
    culprits = []
    for i, layer in enumerate(network.layers):
        if douts[i].size == 0:
            continue  # no upstream gradient reached this layer (a later backward broke the chain)
        single = Network(
            [layer], WeightedSum(douts[i]), labels=[network.labels[i]], x=inputs[i],
            trusted=[network.trusted[i]], name=network.describe(i),
        )  # fmt: skip
        own = check_network(
            single, method=method, eps=eps, rtol=tol.rtol, atol=tol.atol, strict=strict,
            attribute=False, **(how or {}),
        )  # fmt: skip
        if not own.passed:
            bad = [p.name.split(".", 1)[-1] if p.name != "input" else "dx" for p in own.failures]
            culprits.append(
                f"{network.describe(i)} fails on its own ({', '.join(bad) or '; '.join(own.problems)})"
            )
    # Re-run the network pass so its caches match the unperturbed parameters again.
    network.loss_value(network.x if network.x is not None else inputs[0])
    return replace(result, attribution=tuple(culprits))


def _spurious_grads(network: Network, grads: list[Any]) -> list[ParamResult]:
    """A grads key with no params key is a gradient for nothing: the layer contract (same keys)
    is broken and its params/grads naming cannot be trusted, so it fails like a missing key."""
    out = []
    for i, g in enumerate(grads):
        if not isinstance(g, dict):
            continue
        params = network.layers[i].params
        for key in sorted(set(g) - set(params)):
            out.append(
                _structural_failure(
                    network.param_name(i, key),
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
    from gradcheck_cli.registry import check_layer_contract, is_plugin

    label = label or type(layer).__name__
    check_layer_contract(layer, label)
    trusted = [not is_plugin(label) and type(layer).__module__.startswith("gradcheck_cli.")]
    net = Network([layer], None, labels=[label], x=np.asarray(x), name=label, trusted=trusted)
    if dout is None:
        out = net.forward(np.array(x, copy=True))
        dout = rng_for(seed, "upstream").standard_normal(out.shape).astype(out.dtype)
    net.loss, net.loss_label = WeightedSum(np.asarray(dout)), "Σ out⊙g"
    return check_network(net, seed=seed, **options)
