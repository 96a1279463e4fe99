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

from gradcheck_cli.errors import GradcheckError, PluginError
from gradcheck_cli.layers.base import Array
from gradcheck_cli.network import ParamRef
from gradcheck_cli.numeric import UNIT_ROUNDOFF, Perturber

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

#: Default ε per method and dtype: near each method's optimum for O(1) scales (error model table).
DEFAULT_EPS = {
    ("central", "float64"): 1e-5,
    ("central", "float32"): 1e-3,
    ("forward", "float64"): 1e-8,
    ("forward", "float32"): 3e-4,
    ("five-point", "float64"): 1e-3,
    ("five-point", "float32"): 1e-2,
    ("complex", "float64"): 1e-20,
    ("complex", "float32"): 1e-20,
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
        try:
            gap = _complex_gap(pert, i)
        except GradcheckError as exc:
            gap = f"cannot be evaluated at complex values: {exc.message}"
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

    def scaled(a: Array) -> Array:  # a relative step per entry, about 1 where a is small
        return rng.standard_normal(a.shape) * (np.abs(a) + float(np.mean(np.abs(a))) + 1e-300)

    vx, vp = scaled(x), {k: scaled(originals[k]) for k in keys}

    def run(t: complex) -> Array:
        for k in keys:
            params[k] = originals[k] + t * vp[k]
        try:
            if is_loss:
                with net.stage(f"loss ({net.loss_label}).forward"):
                    value = net.loss.forward(x + t * vx, net.target)
                return np.asarray(value).reshape(1)
            return np.asarray(pert._forward(i, x + t * vx)).reshape(-1)
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
