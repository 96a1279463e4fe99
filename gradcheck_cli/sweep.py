"""Two looks at one gradient beyond a single ε: the ε V-curve and the Taylor-remainder test.

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

from gradcheck_cli.errors import ConfigError
from gradcheck_cli.layers.base import Array
from gradcheck_cli.network import Network, ParamRef, rng_for
from gradcheck_cli.numeric import UNIT_ROUNDOFF, Perturber, scalar
from gradcheck_cli.options import DEFAULT_EPS
from gradcheck_cli.precision import promoted
from gradcheck_cli.results import analytic_gradient
from gradcheck_cli.steps import measure_noise, rounding_floor

#: ε = 10^-1, 10^-1.5, …, 10^-12.
EPS_GRID: tuple[float, ...] = tuple(10.0 ** (-k / 2) for k in range(2, 25))
#: h = 10^-1 … 10^-6, four points per decade.
H_GRID: tuple[float, ...] = tuple(10.0 ** (-k / 4) for k in range(4, 25))
#: Tensors bigger than this are swept on a seeded sample of this many entries.
MAX_ENTRIES = 64
#: V-curve pass rule per entry, at the judged ε (see v_curve):
#: |a − n| ≤ rtol·max(|a|, |n|) + NOISE_FACTOR·round-off + TRUNC_FACTOR·|n(ε) − n(ε/√10)|.
SWEEP_RTOL = {"float64": 1e-6, "float32": 1e-2}
NOISE_FACTOR = 100.0
#: Safety factor on the truncation estimate |n(ε) − n(ε/√10)| in the same rule.
TRUNC_FACTOR = 10.0
#: Taylor verdict: slope ≥ PASS_SLOPE passes; FLAT_SLOPE ≤ slope ≤ FAIL_SLOPE fails; else inconclusive.
PASS_SLOPE = 1.8
FAIL_SLOPE = 1.2
FLAT_SLOPE = 0.7
#: The second difference L(θ+hv) − 2L(θ) + L(θ−hv) is O(h²) when L is smooth along v; a slope
#: below this means a kink (slope 1) or noise (slope 0) and no first-order verdict is possible.
SMOOTH_SLOPE = 1.5
#: A remainder counts only above FLOOR_FACTOR·u·(magnitude of the numbers subtracted) and above
#: PROBE_FACTOR × the largest remainder seen at the tiny PROBE_H steps (pure rounding noise there).
FLOOR_FACTOR = 100.0
PROBE_FACTOR = 10.0
PROBE_H = (1e-10, 1e-11, 1e-12)
#: The slope is fitted over the smallest-h usable points spanning at most this many decades …
FIT_DECADES = 2.0
#: … and needs at least this many of them.
MIN_POINTS = 4
#: Quiet (round-off) remainders at this many of the smallest h (one decade) bound ∇L·v's error.
MIN_TAIL = 5


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
class Taylor:
    """The Taylor-remainder test along one random direction for one tensor."""

    name: str
    h: tuple[float, ...]
    remainder: tuple[float, ...]  # r(h) = |L(θ+hv) − L(θ) − ∇L·Δ|, Δ the step actually taken
    floor: tuple[float, ...]  # round-off floor per h; points below it are not fitted
    slope: float  # NaN when no fit was possible
    fit_h: tuple[float, float] | None  # (smallest, largest) h used in the fit
    points: int  # points fitted
    directional: float  # ∇L·v
    verdict: str  # pass | fail | inconclusive
    reason: str


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


# -- the Taylor-remainder test -------------------------------------------------------------------


def direction(shape: tuple[int, ...], seed: int, name: str) -> Array:
    """A seeded unit direction with entries ±U(0.5, 1.5) before normalising (none near 0)."""
    rng = rng_for(seed, f"taylor:{name}")
    v = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    unit: Array = v / np.linalg.norm(v)
    return unit


def _slope(h: Array, r: Array, floor: Array) -> tuple[float, int, tuple[float, float] | None]:
    """Robust log-log slope (median of pairwise slopes) over the smallest-h usable points."""
    ok = r > floor
    hs, rs = h[ok], r[ok]
    if len(hs) == 0:
        return math.nan, 0, None
    sel = hs <= hs.min() * 10**FIT_DECADES * (1 + 1e-9)
    hs, rs = hs[sel], rs[sel]
    if len(hs) < MIN_POINTS:
        return math.nan, len(hs), None
    lh, lr = np.log10(hs), np.log10(rs)
    i, k = np.triu_indices(len(hs), 1)
    slope = float(np.median((lr[k] - lr[i]) / (lh[k] - lh[i])))
    return slope, len(hs), (float(hs.min()), float(hs.max()))


def taylor_test(
    network: Network,
    x: Array,
    ref: ParamRef,
    analytic: Array,
    dtype: str,
    seed: int,
    loss_noise: float = 0.0,
    numeric: str | None = None,
    rounding: Array | None = None,
) -> Taylor:
    """r(h) for h in H_GRID along a seeded direction; the slope decides (see module constants).

    The whole live array of ``ref`` is moved in place by ±h·v and restored bit-exactly.
    """
    arr = x if ref.key is None else network.layers[ref.layer].params[ref.key]
    v = direction(tuple(arr.shape), seed, ref.name)
    g = analytic.reshape(-1)
    gv = float(g @ v.reshape(-1))
    saved = arr.copy()
    label = network.loss_label
    u = UNIT_ROUNDOFF[numeric or dtype]

    def loss() -> float:
        return float(np.real(scalar(network.loss_value(x), label)))

    h = np.array(H_GRID)
    probe = np.array(PROBE_H)
    rem = np.empty((2, len(h) + len(probe)))  # signed remainders for +h and −h
    mag = np.empty_like(rem)
    moved = np.empty_like(rem)  # L(θ ± hv) − L(θ)
    try:
        f0 = loss()
        again = loss()
        for k, hk in enumerate(np.concatenate([h, probe])):
            for s, sign in enumerate((1.0, -1.0)):
                np.copyto(arr, saved + sign * hk * v, casting="same_kind")
                step = arr.astype(np.float64) - saved.astype(np.float64)
                lin = float(g @ step.reshape(-1))
                f = loss()
                rem[s, k] = f - f0 - lin
                mag[s, k] = max(abs(f), abs(f0), abs(lin))
                moved[s, k] = f - f0
    finally:
        np.copyto(arr, saved)
        network.loss_value(x)  # leave the caches at θ
    # At the probe steps the true remainder (≤ h·|error of ∇L·v| + h²·curvature) is negligible,
    # so what is left there is the rounding noise of evaluating L, cancellation inside L included.
    noise = float(np.abs(rem[:, len(h) :]).max())
    rem, mag, moved = rem[:, : len(h)], mag[:, : len(h)], moved[:, : len(h)]
    # loss_noise: the measured noise of L near θ (ECnoise, as in `gradcheck run`); in float32
    # the probe steps may not move θ at all, so the probes alone can miss it
    floor = np.maximum(FLOOR_FACTOR * u * mag, PROBE_FACTOR * max(noise, loss_noise))
    r = np.abs(rem[0])
    even = np.abs(rem[0] + rem[1])  # ≈ |L(θ+hv) − 2L(θ) + L(θ−hv)|: curvature, not the gradient
    slope, points, fit = _slope(h, r, floor[0])
    slack = 0.0 if rounding is None else float(np.abs(rounding.reshape(-1)) @ np.abs(v.reshape(-1)))
    verdict, reason = _taylor_verdict(
        h, rem, r, even, floor, slope, points, gv, SWEEP_RTOL[dtype], slack
    )
    if verdict == "pass" and np.all(np.abs(moved) <= floor):
        reason = (
            f"the loss does not change with this tensor (∇L·v = {gv:.3g}); remainder is round-off"
        )
    if again != f0:
        verdict = "inconclusive"
        reason = (
            f"the forward is not deterministic: L(θ) came out {f0!r} and then {again!r} "
            "with the same parameters, so r(h) mixes that noise in"
        )
    return Taylor(
        name=ref.name,
        h=tuple(float(x) for x in h),
        remainder=tuple(float(x) for x in r),
        floor=tuple(float(x) for x in floor[0]),
        slope=slope,
        fit_h=fit,
        points=points,
        directional=gv,
        verdict=verdict,
        reason=reason,
    )


def _taylor_verdict(
    h: Array,
    rem: Array,
    r: Array,
    even: Array,
    floor: Array,
    slope: float,
    points: int,
    gv: float,
    rtol: float,
    slack: float = 0.0,
) -> tuple[str, str]:
    quiet = np.all(np.abs(rem) <= floor, axis=0)  # both ±h at the round-off floor
    if quiet.all():
        return "pass", "loss is linear in this tensor; remainder is round-off"
    # A run of quiet h down to the smallest: |L(θ±hv) − L(θ) ∓ h∇L·v| ≤ floor at both signs
    # bounds the error of ∇L·v by floor/h (L is linear near θ, e.g. piecewise linear).
    tail = int(np.argmin(quiet[::-1]))  # how many of the smallest h are quiet
    bound = math.inf
    if tail >= MIN_TAIL:
        c = len(h) - tail
        bound = float(floor[:, c].max() / h[c])
        if bound <= rtol * abs(gv) and not (slope >= PASS_SLOPE):
            return "pass", (
                f"remainder is round-off for h ≤ {h[c]:.1e} (L is linear near θ, or its "
                f"curvature is below round-off): ∇L·v = {gv:.6g} is right to within {bound:.1e}"
            )
    if math.isnan(slope):
        text = (
            f"only {points} step sizes near the smallest h leave a remainder above the round-off "
            f"floor ({int((r > floor[0]).sum())} of {len(h)} in all): too few to fit a slope"
        )
        if math.isfinite(bound):
            text += f"; round-off bounds the error of ∇L·v = {gv:.3g} only by {bound:.1e}"
        return "inconclusive", text
    floor_even = floor[0] + floor[1]
    even_slope, _, _ = _slope(h, even, floor_even)
    if not math.isnan(even_slope) and even_slope < SMOOTH_SLOPE:
        if even_slope < FLAT_SLOPE:
            return "inconclusive", (
                f"L(θ+hv) − 2L(θ) + L(θ−hv) does not shrink as h → 0 (slope {even_slope:.2f}): "
                "rounding noise above the estimated floor, or L is rough at this scale"
            )
        k = int(np.flatnonzero(even > floor_even)[-1])
        d_plus = (rem[0, k]) / h[k] + gv
        d_minus = -(rem[1, k]) / h[k] + gv
        slack = 0.01 * abs(d_plus - d_minus) + 2 * floor[:, k].max() / h[k]
        inside = min(d_plus, d_minus) - slack <= gv <= max(d_plus, d_minus) + slack
        return "inconclusive", (
            f"L is not smooth along v at θ (a kink: the second difference shrinks like "
            f"h^{even_slope:.2f}); one-sided slopes {d_minus:.6g} (−) and {d_plus:.6g} (+), "
            f"∇L·v = {gv:.6g} {'lies between them' if inside else 'lies OUTSIDE them'}"
        )
    if slope >= PASS_SLOPE:
        return "pass", f"remainder shrinks like h^{slope:.2f} (O(h²) expected)"
    if FLAT_SLOPE <= slope <= FAIL_SLOPE:
        k = int(np.flatnonzero(r > floor[0])[-1])
        rate = gv + (rem[0, k] - rem[1, k]) / (2 * h[k])
        off = abs(rate - gv) / max(abs(rate), abs(gv), np.finfo(float).tiny)
        # an O(h) term below the bug size the sweep claims to see, or within the measured
        # rounding of the analytic gradient along v
        if abs(rate - gv) <= rtol * max(abs(rate), abs(gv)) + slack:
            return "pass", (
                f"remainder is O(h) but the loss's rate along v differs from ∇L·v = {gv:.6g} "
                f"by {off:.1e} of it, below rtol {rtol:g} (e.g. the rounding of the gradient)"
            )
        return "fail", (
            f"remainder shrinks like h^{slope:.2f}, i.e. O(h): the loss changes at rate "
            f"{rate:.6g} along v but ∇L·v = {gv:.6g}"
        )
    if slope < FLAT_SLOPE:
        return "inconclusive", f"remainder does not shrink as h → 0 (slope {slope:.2f})"
    return "inconclusive", (
        f"slope {slope:.2f} lies between {FAIL_SLOPE} (wrong) and {PASS_SLOPE} (right): a small "
        "gradient error that competes with curvature, or round-off near the floor"
    )


# -- both, for a network -------------------------------------------------------------------------


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
