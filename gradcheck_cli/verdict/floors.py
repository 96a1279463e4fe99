"""The analytic side's rounding, measured where it can be and derived per tensor where it
cannot: the float32 network's float64 twin (:func:`twin_gradients`), the gradients' movement
under input jitter at the round-off level (:func:`jitter_gradients`), and the size of the numbers
each tensor's backward multiplies (:func:`backward_scales`, per layer and per tensor)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF
from gradcheck_cli.layers.base import Array
from gradcheck_cli.results import ParamResult, structural_failure


def twin_gradients(net: Network) -> tuple[Any, list[Any]] | None:
    """(dx, grads) of the backward run once more on the float64 reference that the engine has
    just evaluated (its caches are float64), the loss's dout in float64 too (the numerics
    upcast a float32 g of L = Σ out ⊙ g exactly: the float32 sums of the analytic side, e.g.
    a bias's Σ dout, are part of its rounding); None when that is not possible."""
    saved = (net.douts, net.backward_nonfinite)
    try:
        with np.errstate(all="ignore"):
            return net.backward(promote=True)
    except Exception:  # the twin is optional: without it the analytic floor stays a bound
        return None
    finally:
        net.douts, net.backward_nonfinite = saved


def jitter_gradients(net: Network, x: Array, dtype: str) -> tuple[Any, list[Any]] | None:
    """How much the analytic gradients move when the input is moved at the round-off level,
    x·(1 + 4u·ξ), ξ = ±1 (max over two draws), as (dx, grads): the rounding of the forward
    caches and the backward at this point, measured (e.g. Σ x̂ ≠ 0 exactly in a batchnorm of
    near-constant inputs, which makes a bias before it look non-zero). None for integer input."""
    if not np.issubdtype(np.asarray(x).dtype, np.floating):
        return None
    saved = (net.douts, net.backward_nonfinite)
    u = UNIT_ROUNDOFF[dtype]
    runs = []
    try:  # a plugin error here is a plugin error like any other (exit 2)
        with np.errstate(all="ignore"):
            for k in range(3):
                if k:
                    rng = np.random.default_rng(k)
                    sign = np.where(rng.random(x.shape) < 0.5, -1.0, 1.0)
                    xj = (x * (1 + 4 * u * sign)).astype(x.dtype)
                else:
                    xj = x
                net.loss_value(xj)
                runs.append(net.backward())
    finally:
        net.douts, net.backward_nonfinite = saved
    net.loss_value(x)  # leave the caches at θ

    def diff(a: Any, b: Any, c: Any) -> Any:
        arrays = [
            v for v in (a, b, c) if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.number)
        ]
        if len(arrays) < 3 or len({v.shape for v in arrays}) > 1:
            return None
        a, b, c = (np.asarray(v, dtype=np.float64) for v in arrays)
        return np.maximum(np.abs(b - a), np.abs(c - a))

    (dx0, g0), (dx1, g1), (dx2, g2) = runs
    grads = [
        {k: diff(v, b.get(k), c.get(k)) for k, v in a.items()}
        if isinstance(a, dict) and isinstance(b, dict) and isinstance(c, dict)
        else None
        for a, b, c in zip(g0, g1, g2, strict=True)
    ]
    return diff(dx0, dx1, dx2), grads


def backward_scales(network: Network) -> list[float]:
    """Per layer ℓ: the size of the numbers its gradients were computed from,
    max_{m ≥ ℓ} max|dout_m| · max(1, max|input_ℓ|). Round-off in a backward is relative to these,
    not to the (possibly tiny, after cancellation) gradient itself: 1 − y² of a saturated tanh is
    exact to u absolutely, not relatively."""
    mags = [float(np.max(np.abs(d), initial=0.0)) for d in network.douts]
    upstream: list[float] = list(np.maximum.accumulate(mags[::-1])[::-1]) if mags else []
    return [
        float(up) * max(1.0, float(np.max(np.abs(inp), initial=0.0)))
        for up, inp in zip(upstream, network.inputs, strict=False)
    ]


def tensor_scale(network: Network, ref: Any, scales: list[float]) -> float:
    """The size S of the numbers the backward multiplies to make ``ref``'s gradient: for a
    parameter of layer ℓ, the layer's upstream × its input (dW = xᵀ·dout); for the network's
    input, layer 0's upstream × its parameters (dx = dout·Wᵀ), not × the input itself: a raw
    feature of 1e9 makes dW's products large, not dx's. (Cancellation that the input's size
    causes in forward caches, e.g. x − mean, is measured by the input jitter instead.)"""
    if ref.key is not None or not network.layers:
        return scales[ref.layer] if ref.layer < len(scales) else 0.0
    mags = [float(np.max(np.abs(d), initial=0.0)) for d in network.douts]
    upstream = max(mags, default=0.0)
    # (params are non-empty float arrays: the layer contract, registry.check_layer_contract)
    params = [float(np.max(np.abs(v), initial=0.0)) for v in network.layers[0].params.values()]
    return upstream * max([1.0, *params])


def not_read(pert: Any, ref: Any, shape: tuple[int, ...]) -> ParamResult | None:
    """A contract failure (a ParamResult) when the layer's output is exactly unchanged by every
    change of its ``params[key]`` — each entry at the first step (the caller saw numeric = 0
    everywhere with a nonzero analytic gradient), and the whole array replaced by 2θ+1, −θ−1
    and 0 — else None. The commonest class-layer mistake: the forward reads ``self.W`` while
    ``params['W']`` is a copy, so perturbing params['W'] changes nothing. (The layer's own
    output, not L: a ReLU behind it that is dead everywhere makes L flat, not the layer.)"""
    if ref.key is None:
        return None
    params = pert.net.layers[ref.layer].params
    theta = params[ref.key]
    if not isinstance(theta, np.ndarray) or not np.issubdtype(theta.dtype, np.floating):
        return None
    x = pert.layer_inputs[ref.layer]
    before = np.array(pert.layer_forward(ref.layer, x), copy=True)
    try:
        with np.errstate(all="ignore"):
            for other in (2 * theta + 1, -theta - 1, np.zeros_like(theta)):
                params[ref.key] = other.astype(theta.dtype)
                if not np.array_equal(before, pert.layer_forward(ref.layer, x), equal_nan=True):
                    return None
    finally:
        params[ref.key] = theta
    key = ref.key
    reason = (
        f"changing params['{key}'] does not change the layer's output at all (every entry, and "
        f"the whole array replaced by 2θ+1, −θ−1 and 0), while grads['{key}'] is not 0: the "
        f"forward does not read params['{key}'] — it keeps its own reference or a copy (e.g. it "
        f"uses self.{key} while params holds {key}.copy()); read self.params['{key}'] in forward"
    )
    return structural_failure(ref.name, shape, reason, kind="not_read")
