"""Cheap probes of what a layer declares, run before the engine relies on it.

- Row independence (stacked copies): forward of a stack must be the stack of forwards.
- Complex analyticity (complex step): along one random direction, the complex-step derivative
  must match central differences.

Each costs a few forward calls of one layer; each returns (or raises) in plain words what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from gradcheck_cli.errors import GradcheckError, PluginError
from gradcheck_cli.layers.base import Array

if TYPE_CHECKING:
    from gradcheck_cli.engine.numeric import Perturber

#: Largest difference, in units of round-off of the output's size, between a row computed in a
#: stack and the same row computed alone that still counts as equal (BLAS may block differently).
ROWS_ULPS = 1024


def _row_distance(x: Array) -> Array:
    """max |x_k − x_0| per row k (0 for rows equal to row 0)."""
    flat = x.reshape(len(x), -1)
    dist: Array = np.abs(flat - flat[:1]).max(axis=1, initial=0)
    return dist


def distinct_rows(x: Array) -> int:
    """1 when every row of ``x`` equals row 0 (or there is one row), else 2 (at least two)."""
    return 2 if x.ndim and len(x) > 1 and bool(np.any(_row_distance(x) > 0)) else 1


def rows_mismatch(forward: Callable[[Array], Array], x: Array, out: Array) -> str | None:
    """Why ``forward`` is not row independent at input ``x`` (``out`` = forward(x)), or None.

    Forward of [x; x'] must be [f(x); f(x')] to round-off, x' = x with row 0 replaced by the
    row most unlike it: batch statistics, a dependence on the batch size or on row positions all break it
    (the same ways stacked ±ε copies would go wrong)."""
    n = x.shape[0] if x.ndim else 0
    if n == 0:
        return "its input has no batch axis"
    # x' = x with row 0 replaced by the row most unlike it (one row: only the batch size changes)
    k = int(np.argmax(_row_distance(x))) if n > 1 else 0
    other = x[np.r_[k, 1:n]]
    try:
        f_other = forward(other)
        f_both = forward(np.concatenate([x, other]))
        want = np.concatenate([out, f_other])
    except (GradcheckError, ValueError) as exc:
        return f"its forward fails on a stack of {2 * n} rows ({exc})"
    if f_both.shape != want.shape:
        return f"it returned {f_both.shape} for {2 * n} rows, expected {want.shape}"
    u = float(np.finfo(np.result_type(want.dtype, np.float32)).eps)
    scale = float(np.max(np.abs(want), initial=0.0))
    err = np.nan_to_num(np.abs(f_both - want), nan=np.inf)
    if (err <= ROWS_ULPS * u * scale).all():
        return None
    return (
        f"rows of its output change when other rows of the batch change (by up to "
        f"{float(err.max()):.3g}; batch statistics?)"
    )


#: Relative disagreement between a complex-step and a central-difference directional derivative
#: that no complex-analytic layer shows (non-analytic ones are off by O(1): |·| drops Im entirely).
COMPLEX_PROBE_RTOL = 1e-2


def complex_safety(pert: Perturber, start: int) -> None:
    """Before any complex-step verdict on a tensor read by layer ``start``: every layer from
    ``start`` on, and the loss, must carry a complex step. A layer (or loss) that declares
    ``complex_safe = False`` is refused; any other is probed once along a random direction of
    its input and parameters: Im f(x + ihv)/h must match a central difference (at two steps, so
    a kink straddled by one of them is not mistaken for it). Raises PluginError naming the first
    one that cannot (exit 2): a verdict from a stencil the layer cannot carry would be false."""
    net = pert.net
    for i in range(start, len(net.layers) + 1):
        if i in pert.complex_checked:
            continue
        is_loss = i == len(net.layers)
        obj = net.loss if is_loss else net.layers[i]
        who = f"the loss ({net.loss_label})" if is_loss else net.describe(i)
        if getattr(obj, "complex_safe", True) is False:
            note = getattr(obj, "complex_note", "")
            raise PluginError(
                f"--method complex: {who} declares complex_safe = False"
                + (f" ({note})" if note else ""),
                hint="use --method central or five-point for this network",
            )
        seen = dict(net.fp.counts)  # the probe's own steps may leave a domain: not the user's
        try:
            gap = _complex_gap(pert, i)
        except GradcheckError as exc:
            gap = f"cannot be evaluated at complex values: {exc.message}"
        finally:
            net.fp.counts = seen
        if gap is not None:
            raise PluginError(
                f"--method complex: {who} {gap}",
                hint="use --method central or five-point (or make it complex-safe: comparisons, "
                "max, abs and sign on the real part only)",
            )
        pert.complex_checked.add(i)


def _complex_gap(pert: Perturber, i: int) -> str | None:
    """How the complex-step and central-difference directional derivatives of layer ``i`` (or
    the loss, i = number of layers) disagree at its unperturbed input; None when they agree
    (within COMPLEX_PROBE_RTOL plus the central difference's round-off)."""
    net = pert.net
    is_loss = i == len(net.layers)
    x = pert.outputs[-1] if is_loss else pert.layer_inputs[i]
    if not np.issubdtype(x.dtype, np.floating):
        return None  # integer ids are not perturbed
    rng = np.random.default_rng(0)
    params: dict[str, Array] = {} if is_loss else net.layers[i].params
    keys = [k for k, v in params.items() if np.issubdtype(np.asarray(v).dtype, np.floating)]
    originals = {k: params[k] for k in keys}

    def scaled(a: Array) -> Array:  # a relative step per entry, about the mean where a is small
        return rng.standard_normal(a.shape) * (np.abs(a) + (float(np.mean(np.abs(a))) or 1.0))

    vx, vp = scaled(x), {k: scaled(originals[k]) for k in keys}

    def run(t: complex) -> Array:
        for k in keys:
            params[k] = originals[k] + t * vp[k]
        try:
            if is_loss:
                with net.stage(f"loss ({net.loss_label}).forward"):
                    value = net.loss.forward(x + t * vx, net.target)
                return np.asarray(value).reshape(1)
            return np.asarray(pert.layer_forward(i, x + t * vx)).reshape(-1)
        finally:
            for k in keys:
                params[k] = originals[k]

    h = 1e-20
    cs = np.imag(run(1j * h)) / h
    u = float(np.finfo(np.result_type(x.dtype, np.float32)).eps)
    errs, noise = [], 0.0
    for s in (1e-6, 1e-6 / 8):
        with np.errstate(all="ignore"):
            fp, fm = np.real(run(s)), np.real(run(-s))
            cd = (fp - fm) / (2 * s)
        errs.append(np.where(np.isfinite(cd), np.abs(cs - cd), 0.0))
        noise = max(noise, 100 * u * float(np.linalg.norm(np.nan_to_num(fp))) / s)
    err = float(np.linalg.norm(np.minimum(*errs)))
    size = float(np.linalg.norm(cs))
    if err <= COMPLEX_PROBE_RTOL * size + noise:
        return None
    if size == 0.0:
        return "drops the imaginary part: Im f(x + ihv) stays exactly 0 where f changes along v"
    return (
        "is not complex-analytic: along a random direction its complex-step derivative differs "
        f"from a central difference by {err / size:.2g} (relative); it uses abs, var, |·|² or "
        "a real cast on complex values"
    )
