"""The Taylor-remainder test: for a random unit direction v, r(h) = |L(θ + h·v) − L(θ) − h·∇L·v|
is O(h²) when the gradient is right and O(h) when it is wrong. Only the log-log slope matters, so
no ε is chosen (`gradcheck sweep --taylor`). Pure NumPy; parameters restored bit-exactly."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradcheck_cli.engine.contracts import scalar
from gradcheck_cli.engine.network import Network, ParamRef, rng_for
from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF
from gradcheck_cli.layers.base import Array

#: h = 10^-1 … 10^-6, four points per decade.
H_GRID: tuple[float, ...] = tuple(10.0 ** (-k / 4) for k in range(4, 25))
#: The relative size of gradient error the sweep's verdicts promise to see (V-curve and Taylor).
SWEEP_RTOL = {"float64": 1e-6, "float32": 1e-2}
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
