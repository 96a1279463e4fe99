"""Numerical derivative estimates (stencils) and how noisy each one is.

Every real-valued method is a stencil over the engine's ``Perturber.losses``: L at θ + o_k·ε for a
few offsets o_k, combined with weights. Each estimate comes with its round-off, so the checker can
judge an entry against the noise of its own estimate instead of one fixed constant.
Notation as in the error model: u = unit round-off, f_k = L(θ + o_k·ε).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF, Perturber
from gradcheck_cli.engine.probes import complex_safety
from gradcheck_cli.errors import GradcheckError, PluginError
from gradcheck_cli.layers.base import Array

METHODS = ("central", "forward", "five-point", "complex")


@dataclass(frozen=True)
class Stencil:
    offsets: tuple[float, ...]  # in units of ε (0 means "use f₀")
    weights: tuple[float, ...]  # n = Σ w_k f_k / ε
    order: int  # truncation error is O(ε^order)


STENCILS = {
    "central": Stencil((1.0, -1.0), (0.5, -0.5), 2),
    "forward": Stencil((1.0, 0.0), (1.0, -1.0), 1),
    "five-point": Stencil((2.0, 1.0, -1.0, -2.0), (-1 / 12, 8 / 12, -8 / 12, 1 / 12), 4),
}

@dataclass(frozen=True)
class Estimate:
    """Numerical derivative of L w.r.t. each checked entry, with its round-off error bound."""

    numeric: Array
    roundoff: Array  # ≈ u·Σ|w_k·f_k|/ε: how far round-off alone can move ``numeric``


def _step_scale(steps: Array, offsets: list[float]) -> Array:
    """The ε each entry really used: the ±1 offsets as represented in the array's dtype.

    (θ + ε) − θ differs from ε by up to u·|θ|, a relative error of u·|θ|/ε that matters for the
    small steps of the forward method; using the represented step removes it.
    """
    cols = [k for k, o in enumerate(offsets) if abs(o) == 1.0]  # every stencil has one
    return np.mean(np.abs(steps[:, cols]), axis=1)


def _steps(pert: Perturber, ref: ParamRef, indices: Array, eps: float, dtype: str) -> Array:
    """The step per entry: ``eps``, except for numerics in float32, where it is relative for
    entries larger than 1 (eps·|θ|): the float32 spacing at |θ| = 1e4 is already ~1e-3, so a
    fixed step would move such an entry by one unit in the last place, or not at all."""
    if dtype != "float32":
        return np.asarray(eps)
    theta = np.abs(pert.array(ref).reshape(-1)[indices].astype(np.float64))
    if np.any(theta > 1.0):
        pert.net.findings[
            f"numerics in float32: the step is ε·|θ| (ε = {eps:g}) for entries with |θ| > 1, "
            "so that it stays well above the float32 spacing of θ"
        ] = None
    return (eps * np.maximum(1.0, theta))[:, None]


def estimate(
    pert: Perturber, ref: ParamRef, indices: Array, method: str, eps: float, dtype: str
) -> Estimate:
    """The ``method`` estimate at step ``eps`` for entries ``indices`` (flat) of ``ref``."""
    if method == "complex":
        return complex_step(pert, ref, indices, eps)
    stencil = STENCILS[method]
    offs = [o for o in stencil.offsets if o != 0.0]
    f, steps = pert.losses(ref, indices, np.array(offs) * _steps(pert, ref, indices, eps, dtype))
    cols = []
    for o in stencil.offsets:
        cols.append(
            np.full(len(indices), float(np.real(pert.f0))) if o == 0.0 else f[:, offs.index(o)]
        )
    fk = np.stack(cols, axis=1)
    h = _step_scale(steps, offs)
    w = np.array(stencil.weights)
    numeric = (fk @ w) / h
    roundoff = UNIT_ROUNDOFF[dtype] * (np.abs(fk) @ np.abs(w)) / h
    return Estimate(numeric, roundoff)


def ridders(
    pert: Perturber, ref: ParamRef, indices: Array, eps: float, levels: int = 8
) -> tuple[Array, Array]:
    """Ridders' extrapolation of central differences at ε, ε/2, …, ε/2^(levels−1).

    A Neville tableau cancels the truncation terms ε², ε⁴, … one by one; for each entry the
    estimate with the smallest error estimate (difference to its tableau neighbours) is kept, and
    the search stops where round-off makes the diagonal grow again. This finds a good step whatever
    the scale of the function, which one fixed ε cannot. Returns (estimate, its error estimate).
    """
    steps = eps / 2.0 ** np.arange(levels)
    offsets = np.ravel(np.column_stack([steps, -steps]))
    f, taken = pert.losses(ref, indices, offsets)
    central = (f[:, 0::2] - f[:, 1::2]) / (taken[:, 0::2] - taken[:, 1::2])  # (n, levels)
    n = len(indices)
    best = central[:, 0].copy()
    err = np.full(n, np.inf)
    done = np.zeros(n, dtype=bool)
    prev = central[:, :1]
    for i in range(1, levels):
        row = [central[:, i]]
        for j in range(1, i + 1):
            c = 4.0**j
            row.append((c * row[j - 1] - prev[:, j - 1]) / (c - 1))
            e = np.maximum(np.abs(row[j] - row[j - 1]), np.abs(row[j] - prev[:, j - 1]))
            better = (e < err) & ~done
            best, err = np.where(better, row[j], best), np.where(better, e, err)
        cur = np.column_stack(row)
        done |= np.abs(cur[:, i] - prev[:, i - 1]) >= 2 * err
        prev = cur
    return best, err


def one_sided(
    pert: Perturber, ref: ParamRef, indices: Array, steps: tuple[float, ...]
) -> tuple[Array, Array]:
    """Forward and backward slopes (f(θ+h) − f₀)/h and (f₀ − f(θ−h))/h for each h in ``steps``.

    Returns (d_plus, d_minus), each of shape (len(indices), len(steps)).
    """
    offsets = np.array([s * h for h in steps for s in (1.0, -1.0)])
    f, taken = pert.losses(ref, indices, offsets)
    f0 = float(np.real(pert.f0))
    return (f[:, 0::2] - f0) / taken[:, 0::2], (f[:, 1::2] - f0) / taken[:, 1::2]


def complex_step(pert: Perturber, ref: ParamRef, indices: Array, h: float) -> Estimate:
    """Im L(θ + i·h) / h for each entry: no subtractive cancellation, exact to round-off.

    The engine evaluates complex offsets on complex copies (layers must read their parameters
    from ``params``); a layer that raises on complex values or casts them to real is named.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        try:
            complex_safety(pert, ref.layer)
        except np.exceptions.ComplexWarning as exc:
            raise _not_complex_safe(pert.net, ref, exc) from exc
        try:
            f, _ = pert.losses(ref, indices, np.array([1j * h]))
        except (GradcheckError, np.exceptions.ComplexWarning) as exc:
            raise _not_complex_safe(pert.net, ref, exc) from exc
    out = np.imag(f[:, 0]) / h
    return Estimate(out, UNIT_ROUNDOFF["float64"] * np.abs(out))


def _not_complex_safe(net: object, ref: ParamRef, exc: BaseException) -> PluginError:
    why = str(exc) if isinstance(exc, GradcheckError) else "it casts complex values to real"
    return PluginError(
        f"--method complex cannot evaluate the network at complex {ref.name}: {why}",
        hint="the layers on the path are not complex-safe (comparisons, max and abs must use the "
        "real part); use --method central or five-point",
    )


def complex_blind_layer(pert: Perturber, ref: ParamRef, index: int, h: float) -> str | None:
    """After a complex step that left Im L exactly 0: name the first layer that dropped the
    imaginary part (its input had one, its output has none), or the loss."""
    net = pert.net
    arr = pert.array(ref)
    carr = arr.astype(np.complex128)
    carr.flat[index] = arr.flat[index] + 1j * h
    layer = net.layers[ref.layer] if ref.key is not None else None
    if layer is not None:
        layer.params[ref.key] = carr
    try:
        out = net.forward(carr if layer is None else pert.layer_inputs[ref.layer], ref.layer)
        inputs = [*net.inputs[ref.layer + 1 :], out]
        for i, value in enumerate(inputs, start=ref.layer):
            if not np.iscomplexobj(value) or not np.any(np.imag(value)):
                return net.describe(i) if hasattr(net, "describe") else f"layer {i}"
        return f"the loss ({getattr(net, 'loss_label', '?')})"
    finally:
        if layer is not None:
            layer.params[ref.key] = arr
