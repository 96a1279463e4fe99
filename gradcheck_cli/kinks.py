"""Second look at entries that disagree: smaller steps and extrapolation (was the first estimate
limited by truncation?), and one-sided slopes (does the stencil straddle a kink, and is the analytic
value a valid subgradient there?)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gradcheck_cli.layers.base import Array
from gradcheck_cli.methods import one_sided, ridders
from gradcheck_cli.network import ParamRef

if TYPE_CHECKING:
    from gradcheck_cli.judge import Judge


def refine(
    judge: Judge,
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
    dp, dm = one_sided(judge.pert, ref, idx[bad], (judge.eps, judge.eps / 2, judge.eps / 4))
    c = (dp + dm) / 2
    ro = est.roundoff[bad]
    r1, r2 = (4 * c[:, 1] - c[:, 0]) / 3, (4 * c[:, 2] - c[:, 1]) / 3
    r_err = np.abs(r2 - r1)
    candidates = [
        (c[:, 1], 2 * ro),
        (c[:, 2], 4 * ro),
        (r2, 7 * ro + r_err / judge.tol.noise_factor),
    ]
    for cand, cand_ro in candidates:
        accept(judge, bad, a, n, tol, noise, status, cand, cand_ro, floor[bad])
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
        rich, rich_err = ridders(judge.pert, ref, idx[sub], judge.eps)
        ro_r = ro[unsettled] + 2 * rich_err / judge.tol.noise_factor
        accept(judge, sub, a, n, tol, noise, status, rich, ro_r, floor[sub])

def accept(
    judge: Judge,
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
    t, nz = judge.allowed(a[sub], cand, cand_ro, floor)
    for jj, j in enumerate(sub):
        if status[j] == "fail" and abs(a[j] - cand[jj]) <= t[jj]:
            n[j], tol[j], noise[j], status[j] = cand[jj], t[jj], nz[jj], "pass"

