"""Step choice and error estimates per tensor and entry: the error model, measured.

- :func:`measure_noise`: the noise level ε_f of the *computed* loss near θ, once per tensor, by
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

from dataclasses import dataclass

import numpy as np

from gradcheck_cli.engine.draws import directions
from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.base import Array

#: Safety factor on the noise term ε_f/h of a central difference.
NOISE_FACTOR = 10.0
#: Safety factor on the Richardson truncation estimate of a ladder step.
TRUNC_FACTOR = 3.0
#: Ladder: steps TOP·RATIO^(−k), k = 0 … LEVELS−1, times the entry's scale.
TOP, RATIO, LEVELS = 0.1, 4.0, 15
#: A smooth one-sided gap shrinks by RATIO per level; a kink's stays. Above this ratio (per
#: level, finest resolvable levels) the gap "does not shrink".
KINK_SHRINK = 0.5


@dataclass(frozen=True)
class NoiseLevel:
    """ε_f of the computed loss near θ for one tensor."""

    level: float  # what the verdict uses: max(measured, floor)
    measured: float  # the ECnoise estimate (0 when none was detected)
    floor: float  # the rounding floor of the computation
    evaluations: int = 0  # loss evaluations the measurement took


def ecnoise(fval: Array) -> tuple[float, int]:
    """Moré & Wild's ECnoise on equally spaced values ``fval``: (noise level, info), info 1 =
    noise detected, 2 = the table is flat (h too small), 3 = still smooth (h too large)."""
    f = np.asarray(fval, dtype=np.float64).copy()
    nf = len(f)
    levels = np.zeros(nf - 1)
    signs = np.zeros(nf - 1, dtype=bool)
    gamma = 1.0
    for j in range(1, nf):
        f = np.diff(f)
        if j == 1 and np.sum(f == 0) >= nf / 2:
            return 0.0, 2
        gamma *= 0.5 * j / (2 * j - 1)  # γ_j = (j!)² / (2j)!
        levels[j - 1] = np.sqrt(gamma * np.mean(f**2))
        signs[j - 1] = f.min() * f.max() < 0
    for k in range(nf - 3):
        lo, hi = levels[k : k + 3].min(), levels[k : k + 3].max()
        if hi <= 4 * lo and signs[k]:
            return float(levels[k]), 1
    return 0.0, 3


def rounding_floor(pert: Perturber, u: float) -> float:
    """u·max(|L|, Σ|pred ⊙ ∂L/∂pred|, max|pred|): the rounding of the loss's own arithmetic,
    which works on numbers the size of its inputs (logits, predictions, out ⊙ g terms)."""
    pred = np.asarray(pert.outputs[-1])
    terms = [abs(float(np.real(pert.f0)))]
    if np.issubdtype(pred.dtype, np.number) and pred.size:
        mag = np.abs(pred).astype(np.float64)
        terms.append(float(mag.max()))
        douts = pert.net.douts
        if douts and np.shape(douts[-1]) == pred.shape:
            terms.append(float(np.sum(mag * np.abs(np.asarray(douts[-1], dtype=np.float64)))))
    return u * max(terms)


def measure_noise(pert: Perturber, ref: ParamRef, h0: float, u: float, seed: int) -> NoiseLevel:
    """ε_f near θ along one random unit direction of ``ref``.

    ECnoise on a table at h; a flat table (L did not change) moves h up × 100, a smooth one down
    ÷ 100. Noise is independent of h while a kink or curvature crossed by the table is not, so a
    level is accepted only when the table at h/16 confirms it (within 4×); otherwise h keeps
    shrinking. At most six tables (36 evaluations); nothing confirmed → the rounding floor."""
    floor = rounding_floor(pert, u)
    shape = pert.array(ref).shape
    v = directions(shape, 1, seed, f"{ref.name}#noise")[0]
    f0 = float(np.real(pert.f0))
    ks = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])
    h, previous, used = h0, 0.0, 0
    for _ in range(6):
        if not 1e-300 < h < 1:
            break
        f = np.real(pert.along(ref, v, ks * h))
        used += len(ks)
        table = np.insert(f, 3, f0)
        if not np.all(np.isfinite(table)):
            h, previous = h / 100, 0.0
            continue
        level, info = ecnoise(table)
        if info == 1:
            if previous and previous / 4 <= level <= 4 * previous:
                found = max(level, previous)
                return NoiseLevel(max(found, floor), found, floor, used)
            h, previous = h / 16, level
            continue
        if previous:  # a level that the next table does not confirm: not noise
            break
        h = h * 100 if info == 2 else h / 100
    return NoiseLevel(floor, 0.0, floor, used)


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

    @property
    def central(self) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.fp - self.fm) / (self.hp + self.hm)

    def one_sided(self) -> tuple[Array, Array]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return (self.fp - self.f0) / self.hp, (self.f0 - self.fm) / self.hm


def ladder(pert: Perturber, ref: ParamRef, idx: Array) -> Ladder:
    """Central differences of entries ``idx`` (flat) at every ladder step, scaled per entry."""
    theta = np.real(np.asarray(pert.array(ref)).reshape(-1)[idx]).astype(np.float64)
    mag = np.maximum(1.0, np.abs(theta))
    scale = RATIO ** np.round(np.log(mag) / np.log(RATIO))
    base = TOP * RATIO ** -np.arange(LEVELS)[::-1].astype(np.float64)  # finest first
    n = len(idx)
    h = np.empty((n, LEVELS))
    fp, fm, hp, hm = (np.full((n, LEVELS), np.nan) for _ in range(4))
    for s in np.unique(scale):
        rows = np.flatnonzero(scale == s)
        steps = s * base
        offsets = np.ravel(np.column_stack([steps, -steps]))
        with np.errstate(all="ignore"):
            f, taken = pert.losses(ref, np.asarray(idx)[rows], offsets)
        f, taken = np.real(f), np.real(taken)
        h[rows] = steps
        fp[rows], fm[rows] = f[:, 0::2], f[:, 1::2]
        hp[rows], hm[rows] = taken[:, 0::2], -taken[:, 1::2]
    valid = np.isfinite(fp) & np.isfinite(fm) & (hp > 0.5 * h) & (hm > 0.5 * h)
    return Ladder(h, fp, fm, hp, hm, float(np.real(pert.f0)), valid)


@dataclass(frozen=True)
class Choice:
    """Per entry: the chosen step, its estimate and error bound (inf: no usable step)."""

    step: Array
    numeric: Array
    error: Array
    level: Array  # index into the ladder (−1: none)


def error_bounds(lad: Ladder, noise: float, u: float) -> Array:
    """E(h) per entry and level: k·max(ε_f, u·|L±|)/h + k_T·T(h), T(h) from the neighbouring
    steps (Richardson: D(h) − D(h/4) ≈ (15/16)·c·h² for central differences); inf where the
    level or both its neighbours are unusable."""
    d = lad.central
    hh = (lad.hp + lad.hm) / 2
    eps_f = np.maximum(noise, u * np.maximum(np.abs(lad.fp), np.abs(lad.fm)))
    with np.errstate(divide="ignore", invalid="ignore"):
        rnd = NOISE_FACTOR * eps_f / hh
    trunc = np.full(d.shape, -np.inf)
    ok = lad.valid
    finer = np.abs(d[:, 1:] - d[:, :-1])  # level k vs k−1 (finer)
    both = ok[:, 1:] & ok[:, :-1]
    trunc[:, 1:] = np.where(both, np.maximum(trunc[:, 1:], finer), trunc[:, 1:])
    coarser = finer / RATIO**2  # level k vs k+1 (coarser), scaled to level k's h²
    trunc[:, :-1] = np.where(both, np.maximum(trunc[:, :-1], coarser), trunc[:, :-1])
    trunc = np.where(np.isfinite(trunc), trunc, np.inf)
    err = rnd + TRUNC_FACTOR * trunc
    return np.where(ok, err, np.inf)


def best(lad: Ladder, noise: float, u: float) -> Choice:
    """The step with the smallest error bound, per entry."""
    err = error_bounds(lad, noise, u)
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
    steps whose one-sided gap is above noise, the gap does not shrink (ratio ≥ KINK_SHRINK per
    step where a smooth L gives 1/RATIO). err = k·2·ε_f/h plus how much each slope moved to the
    next step (its truncation)."""
    dp, dm = lad.one_sided()
    gap = np.abs(dp[row] - dm[row])
    with np.errstate(divide="ignore", invalid="ignore"):
        resolvable = lad.valid[row] & (gap > NOISE_FACTOR * 2 * noise / lad.h[row])
    for k in range(LEVELS - 2):
        if resolvable[k]:
            if not (resolvable[k + 1] and resolvable[k + 2]):
                return None
            r1, r2 = gap[k] / gap[k + 1], gap[k + 1] / gap[k + 2]
            if r1 < KINK_SHRINK or r2 < KINK_SHRINK:
                return None
            moved = max(abs(dp[row, k] - dp[row, k + 1]), abs(dm[row, k] - dm[row, k + 1]))
            err = NOISE_FACTOR * 2 * noise / lad.h[row, k] + TRUNC_FACTOR * moved
            lo, hi = sorted((float(dp[row, k]), float(dm[row, k])))
            return lo, hi, float(err)
    return None


#: Wide stencil for entries the ladder cannot resolve (round-off at small h, truncation at large
#: h: a smooth but strongly curved L, e.g. a saturated tanh behind inputs of size 100): the
#: 8th-order central difference Σ_k w_k·(L(θ + k·h) − L(θ − k·h))/h, k = 1…4, at steps
#: h_j = s·WIDE_TOP·2^(−j), j = 0 … WIDE_LEVELS−1 (s as in the ladder). Its truncation is
#: O(h⁸), so it reaches the same truncation at a step ~10× larger than a central difference,
#: where round-off is ~10× smaller.
WIDE_WEIGHTS = np.array([4 / 5, -1 / 5, 4 / 105, -1 / 280])
WIDE_TOP, WIDE_LEVELS = 1.0 / 8, 10


def wide(pert: Perturber, ref: ParamRef, idx: Array, noise: float, u: float) -> Choice:
    """Per entry, the wide-stencil step with the smallest error bound
    E(h) = k·ε_f·Σ|w|/h + k_T·T(h) + the steps' own rounding, T(h) the Richardson estimate
    from the neighbouring steps (S(h) − S(h/2) ≈ (255/256)·c·h⁸): the same kind of bound as the
    ladder's, from loss values only (never from the analytic value)."""
    theta = np.real(np.asarray(pert.array(ref)).reshape(-1)[idx]).astype(np.float64)
    mag = np.maximum(1.0, np.abs(theta))
    scale = RATIO ** np.round(np.log(mag) / np.log(RATIO))
    hs = WIDE_TOP * 2.0 ** -np.arange(WIDE_LEVELS)  # coarsest first
    ks = np.arange(1, len(WIDE_WEIGHTS) + 1, dtype=np.float64)
    mult = np.unique(np.outer(hs, ks))  # k·h_j, shared between levels (2·h_{j+1} = h_j)
    where = np.searchsorted(mult, np.outer(hs, ks))  # (levels, k) → column of mult
    n = len(idx)
    fp, fm, tp, tm = (np.full((n, len(mult)), np.nan) for _ in range(4))
    for s in np.unique(scale):
        rows = np.flatnonzero(scale == s)
        offsets = np.ravel(np.column_stack([s * mult, -s * mult]))
        with np.errstate(all="ignore"):
            f, taken = pert.losses(ref, np.asarray(idx)[rows], offsets)
        f, taken = np.real(f).astype(np.float64), np.real(taken).astype(np.float64)
        fp[rows], fm[rows] = f[:, 0::2], f[:, 1::2]
        tp[rows], tm[rows] = taken[:, 0::2] / s, -taken[:, 1::2] / s  # in units of s
    h = scale[:, None] * hs[None, :]  # (entries, levels)
    diff = fp[:, where] - fm[:, where]  # (entries, levels, k)
    with np.errstate(all="ignore"):
        est = np.einsum("nlk,k->nl", diff, WIDE_WEIGHTS) / h
        # a step that is not exactly k·h moves the estimate by about |est|·|taken − k·h|/(k·h)
        nominal = np.outer(hs, ks)[None]
        skew = np.maximum(np.abs(tp[:, where] - nominal), np.abs(tm[:, where] - nominal)) / nominal
        eps_f = np.maximum(noise, u * np.maximum(np.abs(fp), np.abs(fm)).max(axis=1))
        rnd = NOISE_FACTOR * (
            eps_f[:, None] * 2 * np.sum(np.abs(WIDE_WEIGHTS)) / h + np.abs(est) * skew.max(axis=2)
        )
        valid = np.isfinite(diff).all(axis=2) & np.isfinite(est) & (skew.max(axis=2) < 0.5)
        trunc = np.full(est.shape, -np.inf)
        step = np.abs(est[:, :-1] - est[:, 1:])  # level j vs j+1 (finer)
        both = valid[:, :-1] & valid[:, 1:]
        trunc[:, :-1] = np.where(both, np.maximum(trunc[:, :-1], step), trunc[:, :-1])
        coarser = step / 2.0**8  # level j+1 vs j (coarser), scaled to level j+1's h⁸
        trunc[:, 1:] = np.where(both, np.maximum(trunc[:, 1:], coarser), trunc[:, 1:])
        trunc = np.where(np.isfinite(trunc), trunc, np.inf)
        err = np.where(valid, rnd + TRUNC_FACTOR * trunc, np.inf)
    k = np.argmin(err, axis=1)
    rows = np.arange(n)
    e = err[rows, k]
    found = np.isfinite(e)
    return Choice(
        step=np.where(found, h[rows, k], np.nan),
        numeric=np.where(found, est[rows, k], np.nan),
        error=e,
        level=np.where(found, k, -1),
    )


def wide_evaluations(entries: int) -> int:
    """Loss evaluations :func:`wide` takes for ``entries`` entries."""
    hs = WIDE_TOP * 2.0 ** -np.arange(WIDE_LEVELS)
    return 2 * entries * len(np.unique(np.outer(hs, np.arange(1, len(WIDE_WEIGHTS) + 1))))
