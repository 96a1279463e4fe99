"""Step choice and error estimates per tensor and entry: the error model, measured.

- :func:`measure_noise` (``noise.py``, re-exported here): the noise level ε_f of the *computed* loss near θ, once per tensor, by
  Moré & Wild's ECnoise (SIAM J. Sci. Comput. 33(3), 2011) on a table L(θ + k·h·v), k = −3…3,
  along one random unit direction v (six evaluations; the table is retried with h × 100 when L
  did not change and h / 100 when the table is still smooth). It is never taken below the
  rounding floor of the computation, u·max(|L|, Σ|pred ⊙ ∂L/∂pred|, max|pred|): at a perfect fit
  L ≈ 0 while the numbers the loss subtracts are not.
- :func:`ladder`: central differences of the chosen entries at the steps h_k = s·0.1·4^(−k)
  (k = 0…14, 1e-1 … 4e-10, s = max(1, |θ|) rounded to a power of 4), with the one-sided slopes
  for free. Steps where L is not finite (outside the domain) or that round away are dropped.
- :func:`best`: per entry, the step with the smallest error bound
  E(h) = k·ε_f/h + k_T·T(h), T(h) the Richardson truncation estimate from the neighbouring steps.
  E depends on the loss values only, never on the analytic gradient, so a wrong gradient cannot
  widen its own tolerance, and the step is chosen before the analytic value is looked at.
- :func:`kink_at`: a kink needs evidence a smooth function cannot produce: at the finest steps
  where the one-sided slopes' gap is above noise, the gap stops shrinking (a smooth L's gap
  shrinks 4× per step here).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.engine.precision import realised
from gradcheck_cli.layers.base import Array
from gradcheck_cli.verdict.noise import NoiseLevel, ecnoise, measure_noise, rounding_floor

#: Safety factor on the noise term ε_f/h of a central difference.
NOISE_FACTOR = 10.0
#: Safety factor on the Richardson truncation estimate of a ladder step.
TRUNC_FACTOR = 3.0
#: Ladder: steps TOP·RATIO^(−k), k = 0 … LEVELS−1, times the entry's scale.
TOP, RATIO, LEVELS = 0.1, 4.0, 15
#: A smooth one-sided gap shrinks by RATIO per level; a kink's stays. Above this ratio (per
#: level, finest resolvable levels) the gap "does not shrink".
KINK_SHRINK = 0.5
#: Two neighbouring estimates within this fraction of each other show a slope (``Ladder.seen``).
SLOPE = 0.1
#: Resolution evidence: the finer neighbour agrees at least this much better than the coarser.
CONVERGE = 0.5
#: A measured noise level is contradicted where neighbouring estimates agree this much better.
CONTRADICT = 1e-3
#: A level is contradicted by a finer step whose estimate differs by more than this many times
#: the two bounds (``consistent``).
DISAGREE = 2.0
#: The ladder extended below its last level (entries not resolved to the promise): levels per
#: round, and at most this many extra levels.
EXTEND_BY, EXTEND_MAX = 5, 25


@dataclass(frozen=True)
class Ladder:
    """Loss values of entries at ± each ladder step; arrays are (entries, levels), finest first."""

    h: Array  # nominal steps
    fp: Array  # L(θ + h)
    fm: Array  # L(θ − h)
    hp: Array  # the steps as represented: (θ + h) − θ
    hm: Array  # θ − (θ − h)
    f0: float
    valid: Array  # both sides finite and the step not rounded away
    #: L changed at the step (θ + h or θ − h): a step L does not see at all (below the
    #: resolution of the computation, e.g. inside one float32 cell of a value rounded inside)
    #: carries no information, unless L does not change at any step (``seen``)
    moved: Array | None = None

    def seen(self) -> Ladder:
        """The ladder with the steps L did not see at all made unusable, for the entries where
        L shows a slope at other steps (two neighbouring steps where L changes give estimates
        within 10 % of each other, not 0, L moving on both sides): a step swallowed by rounding inside (θ + h rounded to
        float32, or added to an intermediate of 1e9) is not a flat L. An L that is flat at the
        small steps and only jumps at large ones (a saturated gate: D(h) ≈ c/h there) keeps its
        unchanged steps: it is flat."""
        if self.moved is None:
            return self
        d = self.central
        # a slope is shown where L moves on both sides: at a kink straddled by the step (a ReLU
        # at x = −h/2) only one side moves, and the unchanged finer steps are L being flat there
        ok = self.valid & self.moved & (self.fp != self.f0) & (self.fm != self.f0)
        with np.errstate(invalid="ignore"):
            near = np.abs(d[:, :-1] - d[:, 1:]) <= SLOPE * np.maximum(np.abs(d[:, :-1]), np.abs(d[:, 1:]))
        slope = (ok[:, :-1] & ok[:, 1:] & near & (d[:, :-1] != 0)).any(axis=1, keepdims=True)
        return replace(self, valid=self.valid & (self.moved | ~slope))

    @property
    def central(self) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.fp - self.fm) / (self.hp + self.hm)

    def one_sided(self) -> tuple[Array, Array]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.fp - self.f0) / self.hp, (self.f0 - self.fm) / self.hm


def ladder(
    pert: Perturber,
    ref: ParamRef,
    idx: Array,
    first: int = 0,
    count: int = LEVELS,
    quantum: str | None = None,
) -> Ladder:
    """Central differences of entries ``idx`` (flat) at ladder levels first … first+count−1
    (step s·TOP·RATIO^(−k)), scaled per entry, finest first. ``quantum``: the precision the
    function rounds this tensor to inside (``precision.input_quantum``): the steps are then the
    ones realised after that rounding (a step inside one cell is not taken: invalid)."""
    theta = np.real(np.asarray(pert.array(ref)).reshape(-1)[idx]).astype(np.float64)
    mag = np.maximum(1.0, np.abs(theta))
    scale = RATIO ** np.round(np.log(mag) / np.log(RATIO))
    base = TOP * RATIO ** -np.arange(first, first + count)[::-1].astype(np.float64)  # finest first
    n = len(idx)
    h = np.empty((n, count))
    fp, fm, hp, hm = (np.full((n, count), np.nan) for _ in range(4))
    for s in np.unique(scale):
        rows = np.flatnonzero(scale == s)
        steps = s * base
        offsets = np.ravel(np.column_stack([steps, -steps]))
        with np.errstate(all="ignore"):
            f, taken = pert.losses(ref, np.asarray(idx)[rows], offsets)
        f, taken = np.real(f), np.real(taken)
        h[rows] = steps
        fp[rows], fm[rows] = f[:, 0::2], f[:, 1::2]
        if quantum is None:
            hp[rows], hm[rows] = taken[:, 0::2], -taken[:, 1::2]
        else:
            hp[rows], hm[rows] = realised(theta[rows], np.broadcast_to(steps, (len(rows), count)), quantum)
    f0 = float(np.real(pert.f0))
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(fp) & np.isfinite(fm) & (hp > 0.5 * h) & (hm > 0.5 * h)
    return Ladder(h, fp, fm, hp, hm, f0, valid, (fp != f0) | (fm != f0))


def join(fine: Ladder, coarse: Ladder) -> Ladder:
    """One ladder of both (the finer levels first)."""

    def cat(a: Array, b: Array) -> Array:
        return np.concatenate([a, b], axis=1)

    return Ladder(
        cat(fine.h, coarse.h), cat(fine.fp, coarse.fp), cat(fine.fm, coarse.fm),
        cat(fine.hp, coarse.hp), cat(fine.hm, coarse.hm), coarse.f0, cat(fine.valid, coarse.valid),
        None if fine.moved is None or coarse.moved is None else cat(fine.moved, coarse.moved),
    )  # fmt: skip


@dataclass(frozen=True)
class Choice:
    """Per entry: the chosen step, its estimate and error bound (inf: no usable step)."""

    step: Array
    numeric: Array
    error: Array
    level: Array  # index into the ladder (−1: none)


def _rounding(lad: Ladder, u: float) -> Array:
    """u·max(|L₊|, |L₋|) per entry and level: the rounding of the loss values themselves."""
    return u * np.maximum(np.abs(lad.fp), np.abs(lad.fm))


def error_bounds(lad: Ladder, noise: Array | float, u: float) -> Array:
    """E(h) per entry and level: k·max(ε_f, u·|L±|)/h + k_T·T(h), T(h) from the neighbouring
    steps (Richardson: D(h) − D(h/4) ≈ (15/16)·c·h² for central differences); inf where the
    level or both its neighbours are unusable. ``noise``: ε_f, one for all or one per entry."""
    d = lad.central
    rnd = noise_bounds(lad, noise, u)
    trunc = np.full(d.shape, -np.inf)
    ok = lad.valid
    with np.errstate(invalid="ignore"):
        finer = np.abs(d[:, 1:] - d[:, :-1])  # level k vs k−1 (finer)
    both = ok[:, 1:] & ok[:, :-1]
    trunc[:, 1:] = np.where(both, np.maximum(trunc[:, 1:], finer), trunc[:, 1:])
    coarser = finer / RATIO**2  # level k vs k+1 (coarser), scaled to level k's h²
    trunc[:, :-1] = np.where(both, np.maximum(trunc[:, :-1], coarser), trunc[:, :-1])
    trunc = np.where(np.isfinite(trunc), trunc, np.inf)
    err = rnd + TRUNC_FACTOR * trunc
    return np.where(ok, err, np.inf)


def evidence(lad: Ladder, noise: Array, trusted: Array, u: float) -> Array:
    """Per entry and level: does the ladder show that the estimate there is resolved? Both
    neighbours usable, and the finer neighbour agrees better than the coarser one (at least
    ``CONVERGE`` × closer: truncation shrinking as h², where a smooth L gives 1/16) and so does
    the next finer pair (or it agrees within the noise), or within
    the rounding of the loss values, or within the measured ``noise`` where it is ``trusted``
    (per entry: not contradicted by the ladder, ``verified_noise``). Steps that all lie past the
    curvature scale (a steep gate seen from afar: D(h) ≈ c/h, each finer estimate ~4× the last)
    show none of these."""
    d = lad.central
    ok = lad.valid
    out = np.zeros(d.shape, dtype=bool)
    if d.shape[1] < 3:
        return out
    with np.errstate(invalid="ignore"):
        fine = np.abs(d[:, 1:-1] - d[:, :-2])  # level k vs k−1 (finer)
        coarse = np.abs(d[:, 1:-1] - d[:, 2:])  # level k vs k+1 (coarser)
    rnd = _rounding(lad, u)
    rnd = np.where(trusted[:, None], np.maximum(noise[:, None], rnd), rnd)
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = NOISE_FACTOR * (rnd[:, 1:-1] / lad.h[:, 1:-1] + rnd[:, :-2] / lad.h[:, :-2])
        within = fine <= floor
        converging = fine <= CONVERGE * coarse
        # and the convergence goes on one level finer (one shrinking difference can be a
        # coincidence where D(h) turns, far from the asymptotic range), or noise takes over
        on = np.ones_like(converging)
        on[:, 1:] = converging[:, :-1] | within[:, :-1]
        on[:, :1] = False
        agree = (converging & on) | within
    out[:, 1:-1] = ok[:, 1:-1] & ok[:, :-2] & ok[:, 2:] & agree
    return out


def verified_noise(lad: Ladder, noise: float, u: float, floor: float = 0.0) -> tuple[Array, Array]:
    """(ε_f, trusted) per entry: the measured ``noise`` unless this entry's ladder contradicts
    it. Noise of size ε_f makes neighbouring estimates differ by ~ε_f·(1/h + 1/h'); where three
    neighbouring pairs in a row agree ``CONTRADICT`` × better than that, the table the noise
    was measured on saw something else (a function steeper than its steps, e.g. tanh(1e8·x),
    looks like noise from afar): then ε_f is the least that such runs show (each run's largest
    |ΔD|/(1/h + 1/h'): an upper bound, it includes truncation), never below the loss values'
    rounding nor ``floor`` (the rounding floor of the computation, ``NoiseLevel.floor``), and
    the measured level is not trusted."""
    d = lad.central
    n = d.shape[0]
    out = np.full(n, float(noise))
    trusted = np.ones(n, dtype=bool)
    if noise <= 0:  # (fewer than 4 levels: no three pairs in a row, nothing contradicts it)
        return out, trusted
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1 / lad.h[:, :-1] + 1 / lad.h[:, 1:]
        shown = np.abs(d[:, :-1] - d[:, 1:]) / inv  # noise each pair is consistent with
    pair_ok = lad.valid[:, :-1] & lad.valid[:, 1:] & np.isfinite(shown)
    low = pair_ok & (shown <= CONTRADICT * noise)
    least_noise = np.maximum(_rounding(lad, u).max(axis=1, initial=0.0, where=lad.valid), floor)
    run = low[:, :-2] & low[:, 1:-1] & low[:, 2:]
    with np.errstate(invalid="ignore"):
        level = np.maximum(np.maximum(shown[:, :-2], shown[:, 1:-1]), shown[:, 2:])
    for r in np.flatnonzero(run.any(axis=1)):
        least = float(np.min(level[r][run[r]]))
        out[r] = max(min(float(noise), least), float(least_noise[r]))
        trusted[r] = False
    return out, trusted


def unreached(lad: Ladder) -> Array:
    """Per entry: the finest usable steps still lie past the function's curvature scale — over
    the three finest usable levels in a row each estimate is ≥ 2× the next coarser one (same
    sign), the D(h) ≈ c/h of a step function seen from afar (4×; more near the bend): a smooth
    L converges there (≈ 1×), and noise scatters."""
    d = lad.central
    out = np.zeros(d.shape[0], dtype=bool)
    three = lad.valid[:, :-2] & lad.valid[:, 1:-1] & lad.valid[:, 2:]
    for r in np.flatnonzero(three.any(axis=1)):
        f = int(np.argmax(three[r]))  # the finest run of three usable levels
        with np.errstate(divide="ignore", invalid="ignore"):
            r1, r2 = d[r, f] / d[r, f + 1], d[r, f + 1] / d[r, f + 2]
        out[r] = bool(r1 >= 2 and r2 >= 2)
    return out


def noise_bounds(lad: Ladder, noise: Array | float, u: float) -> Array:
    """k·max(ε_f, u·|L±|)/h per entry and level: the noise part of ``error_bounds``."""
    eps = np.asarray(noise, dtype=np.float64)
    eps_f = np.maximum(eps[:, None] if eps.ndim else eps, _rounding(lad, u))
    with np.errstate(divide="ignore", invalid="ignore"):
        return NOISE_FACTOR * eps_f / ((lad.hp + lad.hm) / 2)


def consistent(lad: Ladder, resolved: Array, err: Array, doubt: Array | float, u: float) -> Array:
    """The ``resolved`` levels whose estimate persists at every finer usable step: level i is
    dropped where a finer level j disagrees, |D_i − D_j| > DISAGREE·(E_i + N_j), N_j the noise
    part of j's bound with the larger noise estimate ``doubt`` (the measured ε_f where the
    ladder lowered it: a fine step's small bound may rest on the lowered level). Where level
    i's bound holds, |D_i − g| ≤ E_i, and its Richardson estimate assumes the asymptotic range
    D(h) ≈ g + c·h², which every finer step is in too, with less truncation (h_j²/h_i² ≤ 1/16 of
    i's, inside E_i) and its own noise inside N_j; so |D_j − D_i| ≤ E_i + N_j. A converged value
    persists as h → 0 until round-off takes over; a value the finer steps do not reproduce was
    a feature of L seen from afar (sin(k·x)/k at k·h ~ 1e6: D(h) = cos(kθ)·sin(kh)/(kh) ~ 1e-6
    at neighbouring coarse steps, which looks converged to ≈ 0 with a tiny bound). Dropping a
    level never widens a verdict's tolerance unseen: the step left has the larger bound, which
    the resolution promise still has to meet (else inconclusive)."""
    d = lad.central
    noise_j = np.where(lad.valid, noise_bounds(lad, doubt, u), np.inf)
    keep = np.array(resolved, dtype=bool, copy=True)
    with np.errstate(invalid="ignore"):
        for i in range(1, d.shape[1]):
            gap = np.abs(d[:, :i] - d[:, i : i + 1])
            keep[:, i] &= ~(gap > DISAGREE * (err[:, i : i + 1] + noise_j[:, :i])).any(axis=1)
    return keep


def best(
    lad: Ladder, noise: Array | float, u: float, resolved: Array, doubt: Array | float | None = None
) -> Choice:
    """The step with the smallest error bound, per entry, among the levels with ``resolved``
    evidence whose estimate the finer steps do not contradict (``consistent``). ``doubt``: the
    noise level the consistency test takes for the finer steps (default ``noise``; never below
    it)."""
    err = error_bounds(lad, noise, u)
    worst = noise if doubt is None else np.maximum(doubt, noise)
    err = np.where(consistent(lad, resolved, err, worst, u), err, np.inf)
    k = np.argmin(err, axis=1)
    rows = np.arange(len(k))
    e = err[rows, k]
    found = np.isfinite(e)
    return Choice(
        step=np.where(found, lad.h[rows, k], np.nan),
        numeric=np.where(found, lad.central[rows, k], np.nan),
        error=e,
        level=np.where(found, k, -1),
    )


def kink_at(lad: Ladder, row: int, noise: float) -> tuple[float, float, float] | None:
    """(lo, hi, err): the one-sided slopes at the finest resolvable step and their error bound
    when entry ``row`` sits on a kink, else None. Evidence: over the three finest consecutive
    steps whose one-sided gap is above noise, the gap neither shrinks (ratio ≥ KINK_SHRINK per
    step where a smooth L gives 1/RATIO) nor grows (≤ 1/KINK_SHRINK: a gap that grows as 1/h is
    a function steeper than the steps, not a kink). err = k·2·ε_f/h plus how much each slope
    moved to the next step (its truncation)."""
    dp, dm = lad.one_sided()
    with np.errstate(invalid="ignore"):
        gap = np.abs(dp[row] - dm[row])
    with np.errstate(divide="ignore", invalid="ignore"):
        resolvable = lad.valid[row] & (gap > NOISE_FACTOR * 2 * noise / lad.h[row])
    for k in range(gap.shape[0] - 2):
        if resolvable[k]:
            if not (resolvable[k + 1] and resolvable[k + 2]):
                return None
            r1, r2 = gap[k] / gap[k + 1], gap[k + 1] / gap[k + 2]
            if min(r1, r2) < KINK_SHRINK or max(r1, r2) > 1 / KINK_SHRINK:
                return None
            moved = max(abs(dp[row, k] - dp[row, k + 1]), abs(dm[row, k] - dm[row, k + 1]))
            err = NOISE_FACTOR * 2 * noise / lad.h[row, k] + TRUNC_FACTOR * moved
            lo, hi = sorted((float(dp[row, k]), float(dm[row, k])))
            return lo, hi, float(err)
    return None


__all__ = [
    "Choice",
    "Ladder",
    "NoiseLevel",
    "best",
    "consistent",
    "ecnoise",
    "error_bounds",
    "evidence",
    "join",
    "kink_at",
    "ladder",
    "measure_noise",
    "noise_bounds",
    "rounding_floor",
    "unreached",
    "verified_noise",
]  # fmt: skip
