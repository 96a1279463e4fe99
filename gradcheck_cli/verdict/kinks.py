"""Second look at entries that disagree, that are not resolved finely enough, or whose loss is
not finite at θ ± ε: central differences over the ladder of steps (``steps.py``), extended to
finer steps while an entry is not resolved to the promise and the loss's rounding still allows
it (the steps follow the function: a gate tanh(k·x) with k = 1e10 bends on a scale of 1e-10,
whatever |θ| is); the step with the smallest error bound chosen per entry among the steps with
evidence of resolution, from the loss values alone; then the verdict at that step. An entry that
still disagrees is a kink only with evidence a smooth function cannot give (the one-sided slopes'
gap stays the same at the finest resolvable steps) and an analytic value between those slopes;
an entry no step resolves is inconclusive, never a kink, a zero or a pass."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF
from gradcheck_cli.layers.base import Array
from gradcheck_cli.verdict.steps import (
    EXTEND_BY,
    EXTEND_MAX,
    LEVELS,
    NOISE_FACTOR,
    Ladder,
    best,
    evidence,
    join,
    kink_at,
    ladder,
    unreached,
    verified_noise,
)
from gradcheck_cli.verdict.wide import wide, wide_evaluations

if TYPE_CHECKING:
    from gradcheck_cli.verdict.judge import Judge


@dataclass(frozen=True)
class Look:
    """Per entry: the estimate at the chosen step, its error bound, the step, status and label."""

    numeric: Array
    error: Array
    step: Array
    status: Array
    labels: Array


def second_look(
    judge: Judge,
    ref: ParamRef,
    idx: Array,
    a: Array,
    floor: Array,
    noise: float,
    want: Array | float = np.inf,
) -> Look:
    """Re-estimate entries ``idx`` (flat) of ``ref`` at their best ladder step and judge them.

    The tolerance is the chosen step's own error bound (noise + Richardson truncation): it
    never grows with the disagreement, and no step is tried "until one agrees". Entries whose
    best step's bound is above ``want`` (per entry: the tensor's promised resolution less the
    analytic floor; ≤ 0: no step can help) get finer steps (``extend``), then the wide stencil
    (``wide.wide``), kept where its bound is smaller: the choice is made on the bounds alone,
    before the analytic value is looked at."""
    u = UNIT_ROUNDOFF[judge.numeric_dtype]
    quantum = judge.quantum(ref)
    lad = ladder(judge.pert, ref, idx, quantum=quantum)
    need = np.broadcast_to(np.asarray(want, dtype=np.float64), (len(idx),))
    lad, eps, trusted = extend(judge, ref, idx, lad, noise, need, quantum)
    # levels the finer steps contradict are dropped (steps.consistent), with the measured
    # noise level for those steps where the ladder lowered it
    choice = best(lad, eps, u, evidence(lad, eps, trusted, u), noise)
    n, err, step = choice.numeric.copy(), choice.error.copy(), choice.step.copy()
    low = np.flatnonzero(~(err <= need) & (need > 0))
    if len(low):
        judge.grow(wide_evaluations(len(low)))
        alt = wide(judge.pert, ref, idx[low], eps[low], u, quantum)
        better = alt.error < err[low]
        sel = low[better]
        n[sel], err[sel], step[sel] = alt.numeric[better], alt.error[better], alt.step[better]
    status = np.full(len(idx), "pass", dtype=object)
    labels = np.full(len(idx), "", dtype=object)
    tol = judge._tol(a, n, err, floor)
    for j in range(len(idx)):
        if not np.isfinite(err[j]):
            if not lad.valid[j].any():
                status[j], labels[j] = "inconclusive", "L not finite at any step (domain edge)"
            else:
                status[j], labels[j] = "inconclusive", "no step resolves this entry"
            continue
        if abs(a[j] - n[j]) <= tol[j]:
            continue
        slopes = kink_at(lad, j, float(eps[j]))
        if slopes is not None:
            lo, hi, e = slopes
            margin = e + floor[j] + judge.tol.atol + judge.tol.rtol * abs(a[j])
            if lo - margin <= a[j] <= hi + margin:
                status[j], labels[j] = "kink", f"kink: slopes {lo:.4g} | {hi:.4g}"
                continue
        status[j] = "fail"
    return Look(n, err, step, status, labels)


def extend(
    judge: Judge,
    ref: ParamRef,
    idx: Array,
    lad: Ladder,
    noise: float,
    need: Array,
    quantum: str | None,
) -> tuple[Ladder, Array, Array]:
    """The ladder with finer levels for the entries not resolved to ``need`` or whose finest
    steps still lie past the function's curvature scale (``steps.unreached``), EXTEND_BY levels
    at a time, until each is resolved or the rounding of the loss stops it (k·u·|L|/h above
    every estimate the entry's ladder has shown: no finer step can resolve anything), at most
    EXTEND_MAX levels. Returns the ladder and the noise per entry with whether the measured level
    is trusted there (``steps.verified_noise``)."""
    u = UNIT_ROUNDOFF[judge.numeric_dtype]
    lad = lad.seen()  # steps L does not see at all (swallowed by rounding) are no estimate
    floor = judge.noise(ref).floor  # measured already (a second look follows the noise)
    eps, trusted = verified_noise(lad, noise, u, floor)
    done = 0
    while done < EXTEND_MAX:
        choice = best(lad, eps, u, evidence(lad, eps, trusted, u), noise)
        open_ = (~(choice.error <= need) & (need > 0)) | unreached(lad)
        with np.errstate(divide="ignore", invalid="ignore"):
            rnd = u * np.nanmax(np.where(lad.valid, np.maximum(np.abs(lad.fp), np.abs(lad.fm)), 0), axis=1)
            biggest = np.nanmax(np.where(lad.valid, np.abs(lad.central), 0), axis=1)
            finest = lad.h[:, 0]
            open_ &= (biggest > 0) & (NOISE_FACTOR * rnd / (finest / 4) < biggest)
        rows = np.flatnonzero(open_)
        if not len(rows):
            break
        judge.grow(2 * EXTEND_BY * len(rows))
        part = ladder(judge.pert, ref, idx[rows], LEVELS + done, EXTEND_BY, quantum)
        shape = (len(idx), EXTEND_BY)
        fine = Ladder(
            np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan),
            np.full(shape, np.nan), np.full(shape, np.nan), lad.f0,
            np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool),
        )  # fmt: skip
        fine.h[:] = lad.h[:, :1] * 4.0 ** -np.arange(EXTEND_BY, 0, -1)
        assert fine.moved is not None and part.moved is not None
        for arr, src in zip(
            (fine.h, fine.fp, fine.fm, fine.hp, fine.hm, fine.valid, fine.moved),
            (part.h, part.fp, part.fm, part.hp, part.hm, part.valid, part.moved), strict=True,
        ):  # fmt: skip
            arr[rows] = src
        lad = join(fine, lad).seen()
        done += EXTEND_BY
        eps, trusted = verified_noise(lad, noise, u, floor)
    return lad, eps, trusted
