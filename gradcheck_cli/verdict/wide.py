"""The wide stencil for entries the ladder cannot resolve (see :func:`wide`)."""

from __future__ import annotations

import numpy as np

from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.engine.precision import realised
from gradcheck_cli.layers.base import Array
from gradcheck_cli.verdict.steps import CONVERGE, NOISE_FACTOR, RATIO, TRUNC_FACTOR, Choice

#: Wide stencil for entries the ladder cannot resolve (round-off at small h, truncation at large
#: h: a smooth but strongly curved L, e.g. a saturated tanh behind inputs of size 100): the
#: 8th-order central difference Σ_k w_k·(L(θ + k·h) − L(θ − k·h))/h, k = 1…4, at steps
#: h_j = s·WIDE_TOP·2^(−j), j = 0 … WIDE_LEVELS−1 (s as in the ladder). Its truncation is
#: O(h⁸), so it reaches the same truncation at a step ~10× larger than a central difference,
#: where round-off is ~10× smaller.
WIDE_WEIGHTS = np.array([4 / 5, -1 / 5, 4 / 105, -1 / 280])
WIDE_TOP, WIDE_LEVELS = 1.0 / 8, 10


def wide(
    pert: Perturber, ref: ParamRef, idx: Array, noise: Array | float, u: float,
    quantum: str | None = None,
) -> Choice:
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
        up, down = taken[:, 0::2], -taken[:, 1::2]
        if quantum is not None:  # the steps taken after the function's own rounding
            up, down = realised(theta[rows], np.broadcast_to(s * mult, up.shape), quantum)
        fp[rows], fm[rows] = f[:, 0::2], f[:, 1::2]
        tp[rows], tm[rows] = up / s, down / s  # in units of s
    h = scale[:, None] * hs[None, :]  # (entries, levels)
    diff = fp[:, where] - fm[:, where]  # (entries, levels, k)
    with np.errstate(all="ignore"):
        est = np.einsum("nlk,k->nl", diff, WIDE_WEIGHTS) / h
        # a step that is not exactly k·h moves the estimate by about |est|·|taken − k·h|/(k·h)
        nominal = np.outer(hs, ks)[None]
        skew = np.maximum(np.abs(tp[:, where] - nominal), np.abs(tm[:, where] - nominal)) / nominal
        eps_f = np.maximum(noise, u * np.maximum(np.abs(fp), np.abs(fm)).max(axis=1))  # per entry
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
        # evidence of resolution, as on the ladder: the finer neighbour agrees better than the
        # coarser one (converging), or within the noise bound (steps.evidence)
        seen = np.zeros(est.shape, dtype=bool)
        finer, coarser_d = np.abs(est[:, 1:-1] - est[:, 2:]), np.abs(est[:, 1:-1] - est[:, :-2])
        agree = (finer <= CONVERGE * coarser_d) | (finer <= rnd[:, 1:-1] + rnd[:, 2:])
        seen[:, 1:-1] = valid[:, 1:-1] & valid[:, :-2] & valid[:, 2:] & agree
        err = np.where(seen, err, np.inf)
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
