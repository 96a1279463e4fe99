"""Diagnose a failing gradient: which known bug fingerprint explains the disagreement?

Input: the analytic gradient a (every entry), the numerical one n and the tolerance of each entry
(NaN where not checked; tolerance +inf at a kink, where the central estimate is no reference), the
tensor's values θ and the batch size N. Each fingerprint is a model of a in terms of n (and θ)
with at most a handful of fitted numbers; it is reported only when, after the fit,

* every checked entry's residual is within its tolerance (scaled like the model scales n), and
* the fit removes at least ``EXPLAINED`` of the squared disagreement Σ(a − n)²,

and otherwise ``diagnose`` returns None: never a guess presented as a finding. Fingerprints are
tried from the most to the least specific; the first that explains the disagreement is reported.
Pure NumPy on arrays already computed: no loss evaluations, deterministic.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from gradcheck_cli.layers.base import Array
from gradcheck_cli.verdict.evidence import (
    EXPLAINED,
    Context,
    Data,
    Diagnosis,
    idx,
    in_words,
    slice_words,
    slices,
)

__all__ = ["Context", "Diagnosis", "diagnose"]

#: Layout permutations are tried up to this many axes (4 → 2·23 permutations + 15 flips).
MAX_LAYOUT_NDIM = 4
#: "A few entries": at most this many (and at most a third of the tensor).
FEW = 4


def diagnose(analytic: Array, numeric: Array, tolerance: Array, ctx: Context) -> Diagnosis | None:
    """The fingerprint that explains why ``analytic`` disagrees with ``numeric`` (same shape;
    see the module docstring), or None when no fingerprint explains it."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64).reshape(a.shape)
    tol = np.asarray(tolerance, dtype=np.float64).reshape(a.shape)
    known = np.isfinite(n) & ~np.isnan(tol)
    use = known & np.isfinite(tol)
    d = np.where(known, a - np.where(known, n, 0.0), 0.0)
    fail = use & (np.abs(d) > np.where(use, tol, np.inf))
    if not fail.any() or not np.isfinite(a).all():
        return None
    data = Data(a, n, tol, known, use, d, float(np.sum(d[use] ** 2)), fail, ctx)
    for fingerprint in (_zeros, _scale, _layout, _param_term, _axis, _few_entries):
        found = fingerprint(data)
        if found is not None:
            return found
    return None


def _zeros(x: Data) -> Diagnosis | None:
    """missing (a = 0 where L changes), spurious (a ≠ 0 where L is flat), or both (mask)."""
    missing = x.fail & (x.a == 0.0)
    flat = x.fail & (np.abs(np.where(x.use, x.n, 0.0)) <= np.where(x.use, x.tol, 0.0))
    if not (missing | flat)[x.fail].all():
        return None
    share = x.explained(np.where(missing | flat, 0.0, x.d))
    if share < EXPLAINED:
        return None
    name = x.ctx.name
    if missing.any() and flat.any():
        return Diagnosis(
            "mask", {"missing": int(missing.sum()), "spurious": int(flat.sum())}, share,
            f"{name} agrees with the numeric gradient except where one of them is 0: 0 at "
            f"{in_words(missing, 3)} where L changes, nonzero at {in_words(flat, 3)} where L is flat "
            "— a mask or index taken from the wrong tensor or condition (e.g. x > 0 of the wrong "
            "input, argmin for argmax)?",
        )  # fmt: skip
    if missing.any():
        if (x.a == 0.0).all():
            return Diagnosis(
                "missing", {"entries": int(missing.sum()), "where": "everywhere"}, share,
                f"{name} is 0 everywhere while the numeric gradient is not: the backward never "
                "writes this gradient (or overwrites it with zeros)?",
            )  # fmt: skip
        sl = slices(missing, x.a == 0.0)
        where = slice_words(*sl, x.a.ndim) if sl else in_words(missing)
        params: dict[str, Any] = {"entries": int(missing.sum())}
        if sl:
            params |= {"axis": sl[0], "slices": sl[1]}
        return Diagnosis(
            "missing", params, share,
            f"{name} is 0 on {where} where the numeric gradient is not: a gradient not written "
            "there, or a mask applied to the wrong tensor?",
        )  # fmt: skip
    return Diagnosis(
        "spurious", {"entries": int(flat.sum())}, share,
        f"{name} is nonzero at {in_words(flat)} where L does not change (numeric ≈ 0): a gradient "
        "where there should be none — a missing mask (x > 0, dropout, the max of a pool)?",
    )  # fmt: skip


def _constants(ctx: Context) -> list[tuple[float, str, str]]:
    """Named factors c in a = c·n: (value, what it is, what it suggests). A size of the problem
    comes before a generic constant of the same value (2 outputs: the number of outputs, not
    the 2 of d(r²)/dr); the batch size before the other sizes."""
    out: list[tuple[float, str, str]] = []
    for m, what in ctx.sizes:
        if m == ctx.batch:
            continue  # named as the batch size below
        also = " (or an extra factor 2, e.g. d(r²)/dr = 2r applied twice?)" if m == 2 else ""
        out += [
            (float(m), f" = {m}, {what}", f"a missing 1/{m}: a loss that averages over "
             f"{what} too, whose backward only divides by the rest (or sums over it)?{also}"),
            (1.0 / m, f" = 1/{m} (one over {what})", f"a mean over {what} where the loss "
             "sums over it?"),
        ]  # fmt: skip
    generic = [
        (-1.0, "", ""),
        (2.0, "", "an extra factor 2 (e.g. d(r²)/dr = 2r applied twice)?"),
        (0.5, "", "a factor 2 missing (e.g. the 2 of d(r²)/dr = 2r)?"),
    ]
    out += generic  # after the sizes: a size of the same value wins (_scale's sort is stable)
    if ctx.batch and ctx.batch > 2:
        n = ctx.batch
        out += [
            (float(n), " = N, the batch size", "did you sum over the batch where the loss "
             "averages (a missing 1/N)?"),
            (1.0 / n, f" = 1/N (N = {n}, the batch size)", "did you average over the batch where "
             "the loss sums?"),
        ]  # fmt: skip
    if ctx.outputs:  # last: a size, the batch or a generic 2 (½) of the same value wins
        m = ctx.outputs
        out += [
            (float(m), ", the number of output elements", "a missing 1/n of a loss that averages "
             "over every element?"),
            (1.0 / m, f" = 1/{m}, one over the number of output elements", "a mean over every "
             "element where the loss sums?"),
        ]  # fmt: skip
    return out


def _scale(x: Data) -> Diagnosis | None:
    """a = c·n for one constant c: a named one (−1, 2, ½, N, 1/N, …) or any other."""
    n0 = np.where(x.use, x.n, 0.0)
    if np.count_nonzero(x.use & (np.abs(n0) > np.where(x.use, x.tol, 0.0))) < 2:
        return None
    c = _least_squares_factor(x)
    for value, symbol, hint in sorted(_constants(x.ctx), key=lambda k: abs(k[0] - c)):
        share = x.fits(x.a - value * n0, max(1.0, abs(value)) * x.tol)
        if share is None:
            continue
        if value == -1.0:
            return Diagnosis(
                "sign", {"factor": -1.0}, share,
                f"{x.ctx.name} ≈ −1 × numeric: the sign is flipped (a minus lost or added in "
                "the backward, or the loss's gradient has the wrong sign)?",
            )  # fmt: skip
        return Diagnosis(
            "scale", {"factor": value, "named": f"{value:.4g}{symbol}"}, share,
            f"{x.ctx.name} ≈ {value:.4g} × numeric{symbol}: {hint}",
        )  # fmt: skip
    share = x.fits(x.a - c * n0, max(1.0, abs(c)) * x.tol, fitted=1)
    if share is None or c == 1.0:
        return None
    return Diagnosis(
        "scale", {"factor": c}, share,
        f"{x.ctx.name} ≈ {c:.6g} × numeric everywhere: a constant factor is off (a scale left "
        "out or applied twice: a kernel size, 1/(1 − p), a temperature, a step?"
        + (" and the sign flipped)" if c < 0 else ")"),
    )  # fmt: skip


def _least_squares_factor(x: Data) -> float:
    nn = float(np.sum(x.n[x.use] ** 2))
    return float(np.sum(x.a[x.use] * x.n[x.use])) / nn if nn else 1.0


def _one_scale(x: Data) -> bool:
    """a = c·n for one c within tolerance, even where too few entries confirm it: then the
    disagreement of a few entries is as well explained by a scale, and neither is reported."""
    c = _least_squares_factor(x)
    return bool(np.all(np.abs(x.a - c * x.n)[x.use] <= max(1.0, abs(c)) * x.tol[x.use]))


def _index_maps(shape: tuple[int, ...]) -> Iterator[tuple[Array, str, str]]:
    """Permutations of a tensor's entries that a layout bug produces: (index map p such that
    a = n.flat[p], the kind, an expression for it)."""
    ndim = len(shape)
    ids = np.arange(int(np.prod(shape))).reshape(shape)
    shp = ", ".join(map(str, shape))
    candidates: list[tuple[Array, str]] = []
    for perm in itertools.permutations(range(ndim)):
        if perm == tuple(range(ndim)):
            continue
        axes = ", ".join(map(str, perm))
        via = tuple(shape[int(i)] for i in np.argsort(perm))
        candidates.append(
            (ids.transpose(perm).reshape(shape), f"numeric.transpose({axes}).reshape({shp})")
        )
        back = f"numeric.reshape({', '.join(map(str, via))}).transpose({axes})"
        candidates.append((ids.reshape(via).transpose(perm), back))
    for r in range(1, ndim + 1):
        for flip in itertools.combinations([i for i in range(ndim) if shape[i] > 1], r):
            candidates.append((np.flip(ids, flip), f"numeric flipped along axes {flip}"))
    seen = {ids.tobytes()}
    square = ndim == 2 and shape[0] == shape[1]
    for p, expr in candidates:
        p = np.ascontiguousarray(p)
        if p.shape != shape or p.tobytes() in seen:
            continue
        seen.add(p.tobytes())
        yield p, "transpose" if square and "transpose(1, 0)" in expr else "layout", expr


def _layout(x: Data) -> Diagnosis | None:
    """a = n in another layout: transposed, axes permuted (NCHW↔NHWC), a reshape in the wrong
    order, or flipped (convolution vs cross-correlation). Needs every entry checked."""
    shape = x.a.shape
    if not x.full or len(shape) > MAX_LAYOUT_NDIM or x.a.size < 2:
        return None
    n_flat, tol_flat = x.n.reshape(-1), x.tol.reshape(-1)
    for p, kind, expr in _index_maps(shape):
        moved = n_flat[p]
        share = x.fits(x.a - moved, np.maximum(x.tol, tol_flat[p]))
        if share is None:
            continue
        if kind == "transpose":
            sentence = (
                f"{x.ctx.name} = numericᵀ: the gradient is transposed (e.g. dout.T @ x where "
                "x.T @ dout is needed)?"
            )
        elif "flipped" in expr:
            sentence = (
                f"{x.ctx.name} = {expr}: a kernel flipped by 180° (convolution where the forward "
                "is a cross-correlation), or indices reversed?"
            )
        else:
            sentence = (
                f"{x.ctx.name} = {expr}: the right values in the wrong layout — a reshape in the "
                "wrong order (order='F', or reshape where a transpose is needed) or an "
                "NCHW/NHWC mix-up?"
            )
        return Diagnosis(kind, {"map": expr}, share, sentence)
    return None


def _param_term(x: Data) -> Diagnosis | None:
    """a − n = λ·θ (an L2 / weight-decay term) or λ·sign(θ) (an L1 term) the loss does not have."""
    if x.ctx.theta is None or np.shape(x.ctx.theta) != x.a.shape:
        return None
    theta = np.asarray(x.ctx.theta, dtype=np.float64)
    symbol = "x" if x.ctx.name == "input" else "θ"
    for form, basis in (("", theta), ("sign", np.sign(theta))):
        bb = float(np.sum(basis[x.use] ** 2))
        if bb == 0.0 or np.count_nonzero(basis[x.use]) < 2:
            continue
        lam = float(np.sum(x.d[x.use] * basis[x.use])) / bb
        share = x.fits(x.d - lam * basis, fitted=1)
        if share is None:
            continue
        term = f"sign({symbol})" if form else symbol
        what = "an L1 term λ·Σ|θ|" if form else "a weight-decay / L2 term (λ/2)·‖θ‖²"
        if lam > 0:
            why = f"the backward adds {what} the loss does not have?"
        else:
            why = f"the loss has {what} whose gradient the backward leaves out?"
        return Diagnosis(
            "param_term", {"lambda": lam, "form": term}, share,
            f"{x.ctx.name} − numeric ≈ λ·{term} with λ = {lam:.4g}: {why}",
        )  # fmt: skip
    return None


def _axis(x: Data) -> Diagnosis | None:
    """a − n does not vary along one axis: a term broadcast over, or reduced along, the wrong
    axis (e.g. a mean over the batch left out). Needs every entry checked."""
    if not x.full:
        return None
    for k in range(x.a.ndim):
        size = x.a.shape[k]
        if size < 2:
            continue
        count = np.maximum(np.sum(x.use, axis=k, keepdims=True), 1)  # kinks left out
        offset = np.sum(np.where(x.use, x.d, 0.0), axis=k, keepdims=True) / count
        active = (x.use & (np.abs(offset) > np.where(x.use, x.tol, np.inf))).any(axis=k)
        share = x.fits(x.d - offset, fitted=int(active.sum()))
        if share is None:
            continue
        if x.a.ndim == 1:
            where = f"is the same {float(offset.reshape(-1)[0]):.4g} at every entry"
        else:
            batch = " (the batch axis)" if k == 0 and x.ctx.name == "input" else ""
            where = f"does not vary along axis {k}{batch}"
        return Diagnosis(
            "axis", {"axis": k}, share,
            f"{x.ctx.name} − numeric {where}: a term broadcast over the wrong axis, or a mean/sum "
            f"over axis {k} left out or taken over another axis?",
        )  # fmt: skip
    return None


def _few_entries(x: Data) -> Diagnosis | None:
    """The disagreement sits in one or a few entries, or in one or two whole slices (a sample, a
    row of W): an indexing bug, or a condition wrong only there. Needs every entry checked."""
    if not x.full or x.a.size < 3:
        return None
    share = x.explained(np.where(x.fail, 0.0, x.d))
    if share < EXPLAINED or _one_scale(x):
        return None
    hint = (
        "every other entry agrees: an indexing bug (off by one, a wrong index, an id overwritten "
        "instead of accumulated), or a branch or condition that is wrong only there?"
    )
    sl = slices(x.fail, x.fail)  # whole slices, every entry of them wrong
    if sl is None or len(sl[1]) > min(2, x.a.shape[sl[0]] // 3):
        sl = None
    count = int(x.fail.sum())
    if sl is None and count <= min(FEW, max(1, x.a.size // 3)):
        return Diagnosis(
            "few_entries", {"entries": [idx(int(j), x.a.shape) for j in np.flatnonzero(x.fail)]},
            share, f"the error of {x.ctx.name} is confined to {in_words(x.fail)}; {hint}",
        )  # fmt: skip
    if sl is None:
        return None
    return Diagnosis(
        "few_entries", {"axis": sl[0], "slices": sl[1]}, share,
        f"the error of {x.ctx.name} is confined to {slice_words(*sl, x.a.ndim)}; {hint}",
    )  # fmt: skip
