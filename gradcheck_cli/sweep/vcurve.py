"""Two looks at one gradient beyond a single ε: the ε V-curve (here) and the Taylor-remainder
test (taylor.py).

V-curve: the relative error ‖a − n(ε)‖ / (‖a‖ + ‖n(ε)‖) of the central difference n(ε) against the
analytic gradient a, for ε = 1e-1 … 1e-12 in half decades. Truncation (≈ ε²) dominates on the
right, round-off (≈ u·|L|/ε) on the left; the minimum is the best the numerics can do.

Taylor test: for a random unit direction v, r(h) = |L(θ + h·v) − L(θ) − h·∇L·v| is O(h²) when the
gradient is right and O(h) when it is wrong. Only the log-log slope matters, so no ε is chosen.

Pure NumPy: no printing, no terminal. Parameters are moved in place and restored bit-exactly.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gradcheck_cli.defaults import DEFAULT_EPS
from gradcheck_cli.engine.network import Network, ParamRef, rng_for
from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF, Perturber
from gradcheck_cli.engine.precision import promoted
from gradcheck_cli.errors import ConfigError
from gradcheck_cli.layers.base import Array
from gradcheck_cli.results import analytic_gradient
from gradcheck_cli.sweep.taylor import H_GRID as H_GRID  # re-exported: the sweep command's grid
from gradcheck_cli.sweep.taylor import SWEEP_RTOL, Taylor, taylor_test
from gradcheck_cli.verdict.steps import measure_noise, rounding_floor

#: ε = 10^-1, 10^-1.5, …, 10^-12.
EPS_GRID: tuple[float, ...] = tuple(10.0 ** (-k / 2) for k in range(2, 25))
#: Tensors bigger than this are swept on a seeded sample of this many entries.
MAX_ENTRIES = 64
#: V-curve pass rule per entry, at the judged ε (see v_curve; rtol is taylor.SWEEP_RTOL):
#: |a − n| ≤ rtol·max(|a|, |n|) + NOISE_FACTOR·round-off + TRUNC_FACTOR·|n(ε) − n(ε/√10)|.
NOISE_FACTOR = 100.0
#: Safety factor on the truncation estimate |n(ε) − n(ε/√10)| in the same rule.
TRUNC_FACTOR = 10.0


@dataclass(frozen=True)
class VCurve:
    """Central-difference error against ε for one tensor."""

    name: str
    shape: tuple[int, ...]
    checked: int  # entries swept
    total: int  # entries in the tensor
    eps: tuple[float, ...]
    error: tuple[float, ...]  # NaN where ε is below the dtype's resolution (step rounds to 0)
    used_eps: float
    used_error: float
    best_eps: float
    best_error: float
    judged_eps: float  # the ε the verdict was taken at (least predicted noise + truncation)
    verdict: str  # pass | fail | inconclusive
    reason: str = ""

    @property
    def sampled(self) -> bool:
        return self.checked < self.total

    @classmethod
    def unavailable(cls, name: str, shape: tuple[int, ...], used: float, reason: str) -> VCurve:
        """A tensor whose analytic gradient cannot be compared at all (fails with ``reason``)."""
        nan = math.nan
        size = int(np.prod(shape))
        return cls(name, shape, 0, size, EPS_GRID, (nan,) * len(EPS_GRID), used, nan, nan, nan,
                   nan, "fail", reason)  # fmt: skip


@dataclass(frozen=True)
class SweepResult:
    name: str
    seed: int
    dtype: str
    loss: float
    used_eps: float
    eps_source: str  # "config" or "<dtype> default"
    curves: tuple[VCurve, ...]
    taylor: tuple[Taylor, ...] | None = None

    @property
    def failures(self) -> tuple[str, ...]:
        bad = [c.name for c in self.curves if c.verdict == "fail"]
        bad += [t.name for t in self.taylor or () if t.verdict == "fail" and t.name not in bad]
        return tuple(bad)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"passed": self.passed, "failures": list(self.failures)}
        d.update(_finite(asdict(self)))
        return d


def _finite(v: Any) -> Any:
    """NaN/Inf → None, recursively (for JSON)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


# -- choosing tensors ----------------------------------------------------------------------------


def select(
    network: Network, name: str | None, include_input: bool = True, discrete: bool = False
) -> list[ParamRef]:
    """All tensors (the input only if ``include_input``), or the one called ``name``.

    A ``discrete`` input (integer ids) has no gradient and is never offered.
    """
    refs = [r for r in network.parameters(include_input=True) if not (discrete and r.key is None)]
    if name is None:
        return [r for r in refs if include_input or r.key is not None]
    for r in refs:
        if r.name == name:
            return [r]
    why = "the input holds integer ids and has no gradient" if discrete and name == "input" else ""
    raise ConfigError(
        why or f"no tensor named '{name}'",
        field="--param",
        hint=f"available: {', '.join(r.name for r in refs)}",
    )


# -- the V-curve ---------------------------------------------------------------------------------


def _sample(size: int, seed: int, name: str) -> Array:
    if size <= MAX_ENTRIES:
        return np.arange(size)
    picked = rng_for(seed, f"sweep:{name}").choice(size, MAX_ENTRIES, replace=False)
    return np.sort(picked)


def _rel_error(a: Array, n: Array, rows: Array, valid: Array) -> Array:
    """‖a − n‖ / (‖a‖ + ‖n‖) per column over ``rows``; NaN for columns that are not ``valid``."""
    a_r, n_r = a[rows], np.where(valid, n[rows], 0.0)
    denom = np.linalg.norm(a_r, axis=0) + np.linalg.norm(n_r, axis=0)
    err = np.linalg.norm(a_r - n_r, axis=0) / np.maximum(denom, np.finfo(np.float64).tiny)
    result: Array = np.where(valid, err, np.nan)
    return result


def v_curve(
    pert: Perturber,
    ref: ParamRef,
    analytic: Array,
    used_eps: float,
    dtype: str,
    seed: int,
    loss_noise: float = 0.0,
    numeric: str | None = None,
    rounding: Array | None = None,
) -> VCurve:
    """Sweep ε over EPS_GRID (plus ``used_eps``) on up to MAX_ENTRIES entries of ``ref``.

    Verdict: entries on a kink (one-sided slopes that jump at the used ε and still a decade
    below, with the analytic value between them) are counted, not judged; every other entry must
    pass |a − n| ≤ rtol·max(|a|, |n|) + k·u·(|f₊| + |f₋|)/(θ₊ − θ₋) + k_t·|n(ε) − n(ε/√10)| at
    the ε where that allowance (which does not depend on a) is smallest.
    """
    arr = pert.array(ref)
    idx = _sample(arr.size, seed, ref.name)
    grid = np.array([*EPS_GRID, used_eps])
    m = len(grid)
    f, steps = pert.losses(ref, idx, np.concatenate([grid, -grid]))
    fp, fm, sp, sm = f[:, :m], f[:, m:], steps[:, :m], steps[:, m:]
    step = sp - sm
    a = analytic.reshape(-1)[idx][:, None]
    # the analytic gradient's own measured rounding (a float32 network against its float64 twin)
    slack = np.zeros(len(idx)) if rounding is None else rounding.reshape(-1)[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        n = (fp - fm) / step
        # the rounding of L itself, and of the loss's arithmetic (L ≈ 0 at a perfect fit while
        # the numbers it subtracts are not): steps.rounding_floor, as in `gradcheck run`
        u = UNIT_ROUNDOFF[numeric or dtype]
        noise = np.maximum(u * (np.abs(fp) + np.abs(fm)), 2 * loss_noise)
        noise = noise / np.abs(step)
    valid = np.all((step != 0) & np.isfinite(n), axis=0)
    everything = np.ones(len(idx), dtype=bool)
    error = _rel_error(a, n, everything, valid)
    curve = error[:-1]
    verdict, reason = "pass", ""
    best_eps = best_error = judged = math.nan
    if not np.any(np.isfinite(curve)):
        verdict = "fail"
        reason = "no ε gave a finite central difference (the loss is NaN/Inf nearby)"
    else:
        best = int(np.nanargmin(curve))
        best_eps, best_error = EPS_GRID[best], float(curve[best])
        tol = SWEEP_RTOL[dtype] * np.maximum(np.abs(a), np.abs(n)) + NOISE_FACTOR * noise
        tol = tol + slack[:, None]
        tenth = int(np.argmin(np.abs(np.log10(EPS_GRID) - math.log10(used_eps / 10))))
        kinks = _kinks(pert.f0, fp, fm, sp, sm, a[:, 0], tol[:, -1], m - 1, tenth)
        rest = ~kinks
        # Judge at the ε where the *predicted* error (round-off + truncation, neither of which
        # depends on a) is smallest, so a wrong gradient cannot pick a noisy ε to hide behind.
        with np.errstate(invalid="ignore"):
            trunc = np.abs(n[:, :-2] - n[:, 1:-1])  # n(ε) − n(ε/√10) ≈ 0.9·truncation(ε)
            allowed = NOISE_FACTOR * noise[:, :-2] + TRUNC_FACTOR * trunc
            predicted = np.where(
                valid[:-2] & valid[1:-1], np.linalg.norm(allowed[rest], axis=0), np.nan
            )
        j = int(np.nanargmin(predicted)) if np.any(np.isfinite(predicted)) else best
        judged = EPS_GRID[j]
        tol_j = SWEEP_RTOL[dtype] * np.maximum(np.abs(a[:, 0]), np.abs(n[:, j])) + allowed[:, j]
        tol_j = tol_j + slack
        bad = rest & ~(np.abs(a[:, 0] - n[:, j]) <= tol_j)
        if bad.any():
            verdict = "fail"
            reason = (
                f"{int(bad.sum())} of {len(idx)} entries disagree at ε={judged:.0e} "
                "(the ε with the least predicted round-off + truncation)"
            )
        elif best_error > 1e3 * SWEEP_RTOL[dtype]:
            reason = (
                f"passes on round-off alone: |a| and |n| are at the noise level "
                f"(max |a| = {float(np.abs(a).max()):.1e}), so their relative error means nothing"
            )
        if not bad.any() and kinks.any():
            verdict = "inconclusive"
            reason = (
                f"{int(kinks.sum())} of {len(idx)} entries sit on a kink (the one-sided slopes "
                "differ and the analytic value lies between them)"
                + (f"; the rest agree at ε={EPS_GRID[j]:.0e}" if rest.any() else "")
            )
    return VCurve(
        name=ref.name,
        shape=tuple(arr.shape),
        checked=len(idx),
        total=arr.size,
        eps=EPS_GRID,
        error=tuple(float(e) for e in curve),
        used_eps=float(used_eps),
        used_error=float(error[-1]),
        best_eps=best_eps,
        best_error=best_error,
        judged_eps=judged,
        verdict=verdict,
        reason=reason,
    )


def _kinks(
    f0: Any, fp: Array, fm: Array, sp: Array, sm: Array, a: Array, tol: Array, j: int, k: int
) -> Array:
    """Entries whose one-sided slopes jump at column j and still at column k (a smaller ε),
    with the analytic value ``a`` between them: a smooth gap (≈ ε·f'') would shrink, a kink's not."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d_plus = (fp - np.real(f0)) / sp
        d_minus = (np.real(f0) - fm) / -sm
        gap = np.abs(d_plus - d_minus)
    lo, hi = np.minimum(d_plus[:, j], d_minus[:, j]), np.maximum(d_plus[:, j], d_minus[:, j])
    between = (lo - tol <= a) & (a <= hi + tol)
    jumps = (gap[:, j] > 10 * tol) & (gap[:, k] > 0.5 * gap[:, j])
    result: Array = between & jumps
    return result


def sweep_network(
    network: Network,
    *,
    eps: float | None = None,
    param: str | None = None,
    inputs: bool = True,
    taylor: bool = False,
    seed: int = 0,
) -> SweepResult:
    """V-curves (and Taylor tests) for every tensor of ``network``, or just ``param``.

    ``eps`` is the step the config uses (None: the dtype default); it is marked on the curve.
    """
    if network.x is None:
        raise ValueError("sweep_network needs a network with a bound input x")
    x = np.array(network.x, copy=True)
    discrete = bool(np.issubdtype(x.dtype, np.integer))  # embedding ids: parameters only
    refs = select(network, param, inputs, discrete)
    first = next((p for layer in network.layers for p in layer.params.values()), x)
    dtype = "float32" if (first if discrete else x).dtype == np.float32 else "float64"
    used = DEFAULT_EPS["central", dtype] if eps is None else eps
    pert = Perturber(network, x)
    dx, grads = network.backward()
    loss = float(np.real(pert.f0))
    unavailable: dict[str, VCurve] = {}
    analytic: dict[str, Array] = {}
    rounding: dict[str, Array] = {}
    for ref in refs:
        arr = pert.array(ref)
        raw, why = analytic_gradient(ref, dx, grads, arr)
        if why:
            unavailable[ref.name] = VCurve.unavailable(ref.name, tuple(arr.shape), used, why)
        else:
            analytic[ref.name] = np.real(raw).astype(np.float64)
    with ExitStack() as stack:
        # As `gradcheck run`: a float32 network's numerics in float64 when its layers allow.
        num, xn = dtype, x
        if dtype == "float32" and not stack.enter_context(promoted(network)):
            num, xn = "float64", x if discrete else x.astype(np.float64)
            pert = Perturber(network, xn)
            dx64, grads64 = network.backward()  # the same backward in float64: its difference
            for ref in refs:  # to the float32 one is the measured rounding of the gradient
                a64, bad = analytic_gradient(ref, dx64, grads64, pert.array(ref))
                if ref.name in analytic and not bad:
                    rounding[ref.name] = 2 * np.abs(analytic[ref.name] - np.real(a64))
        u = UNIT_ROUNDOFF[num]
        noise: dict[str, float] = {}
        curves: list[VCurve] = []
        for ref in refs:
            if ref.name not in analytic:
                curves.append(unavailable[ref.name])
                continue
            level = measure_noise(pert, ref, min(used, 1e-3) / 10, u, seed).level
            noise[ref.name] = max(level, rounding_floor(pert, u))
            a = analytic[ref.name]
            extra = (noise[ref.name], num, rounding.get(ref.name))
            curves.append(v_curve(pert, ref, a, used, dtype, seed, *extra))
        tests = None
        if taylor:
            tests = tuple(
                taylor_test(
                    network,
                    xn,
                    ref,
                    analytic[ref.name],
                    dtype,
                    seed,
                    noise[ref.name],
                    num,
                    rounding.get(ref.name),
                )
                for ref in refs
                if ref.name in analytic
            )
    return SweepResult(
        name=network.name,
        seed=seed,
        dtype=dtype,
        loss=loss,
        used_eps=float(used),
        eps_source="config" if eps is not None else f"{dtype} default",
        curves=tuple(curves),
        taylor=tests,
    )
