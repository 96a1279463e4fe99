"""Second look at entries that disagree, that are not resolved finely enough, or whose loss is
not finite at θ ± ε: central differences over the ladder of steps (``steps.py``), the step with
the smallest error bound chosen per entry from the loss values alone, then the verdict at that
step; an entry that still disagrees is a kink only with evidence a smooth function cannot give
(the one-sided slopes' gap stops shrinking at the finest resolvable steps) and an analytic value
between those slopes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF
from gradcheck_cli.layers.base import Array
from gradcheck_cli.verdict.steps import best, kink_at, ladder, wide, wide_evaluations

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
    never grows with the disagreement, and no step is tried "until one agrees".
    Entries whose best ladder step still has an error bound above ``want`` (per entry: the
    tensor's promised resolution less the analytic floor; ≤ 0: no step can help) also get the wide stencil (``steps.wide``), kept where its bound is
    smaller: the choice is made on the bounds alone, before the analytic value is looked at."""
    u = UNIT_ROUNDOFF[judge.numeric_dtype]
    lad = ladder(judge.pert, ref, idx)
    choice = best(lad, noise, u)
    n, err, step = choice.numeric.copy(), choice.error.copy(), choice.step.copy()
    need = np.broadcast_to(np.asarray(want, dtype=np.float64), err.shape)
    low = np.flatnonzero(~(err <= need) & (need > 0))
    if len(low):
        if judge.grow is not None:
            judge.grow(wide_evaluations(len(low)))
        alt = wide(judge.pert, ref, idx[low], noise, u)
        better = alt.error < err[low]
        sel = low[better]
        n[sel], err[sel], step[sel] = alt.numeric[better], alt.error[better], alt.step[better]
    status = np.full(len(idx), "pass", dtype=object)
    labels = np.full(len(idx), "", dtype=object)
    tol = judge._tol(a, n, err, floor)
    for j in range(len(idx)):
        if not np.isfinite(err[j]):
            status[j], labels[j] = "inconclusive", "L not finite at any step (domain edge)"
            continue
        if abs(a[j] - n[j]) <= tol[j]:
            continue
        slopes = kink_at(lad, j, noise)
        if slopes is not None:
            lo, hi, e = slopes
            margin = e + floor[j] + judge.tol.atol + judge.tol.rtol * abs(a[j])
            if lo - margin <= a[j] <= hi + margin:
                status[j], labels[j] = "kink", f"kink: slopes {lo:.4g} | {hi:.4g}"
                continue
        status[j] = "fail"
    return Look(n, err, step, status, labels)
