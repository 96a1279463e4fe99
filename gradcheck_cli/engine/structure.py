"""Structural checks on a backward pass, independent of any finite difference.

Each returns plain-language problems ("" when fine). They catch bugs that an elementwise table would
report confusingly (a forward that draws a new dropout mask each call shows up as a mismatch
everywhere) or not at all (a backward that accumulates into grads passes a single check).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.base import Array

#: Relative size of a difference that cannot come from round-off in a repeated computation.
REPEAT_RTOL = 1e-12


def nondeterminism(first: complex, second: complex) -> str | None:
    """Same parameters, two forward passes: the loss must be the same number."""
    if first == second or (np.isnan(first) and np.isnan(second)):
        return None
    # (an infinite L is repeated only by the same infinity: inf − x is not a round-off)
    gap = first - second
    if np.isfinite(gap) and abs(gap) <= REPEAT_RTOL * max(abs(first), abs(second)):
        return None
    return (
        f"forward is not deterministic: the same parameters gave L = {np.real(first):.12g} and then "
        f"L = {np.real(second):.12g}. A numerical gradient needs L to be a function of θ: draw "
        "random masks (dropout, noise) once, e.g. from a seeded rng at construction, not per call"
    )


def mutations(net: Network) -> list[str]:
    return [
        f"{net.call(i, 'forward')} modifies its input x in place; in a real network that corrupts "
        "the previous layer's cached output (gradcheck passed it a copy)"
        for i in sorted(net.mutated)
    ]


def _differs(a: Array, b: Array) -> bool:
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    return bool(np.max(np.abs(a - b), initial=0.0) > REPEAT_RTOL * scale)


def _ratio(scaled: Array, base: Array) -> float:
    denom = float(np.vdot(base, base).real)
    return float(np.vdot(base, scaled).real) / denom if denom else float("nan")


def backward_consistency(net: Network, grads: list[dict[str, Array] | str], dx: Any) -> list[str]:
    """Call each layer's backward again with dout and with 2·dout (after the main pass).

    backward must overwrite (not accumulate) grads, and be linear in dout: 2·dout ⇒ 2·grads, 2·dx.
    Scaling by 2 is exact in binary floating point, so any difference beyond round-off is a bug.
    Built-in layers (``net.trusted``) are not called again: their own tests hold them to this.
    """
    problems: list[str] = []
    for i, layer in enumerate(net.layers):
        g1 = grads[i]
        if isinstance(g1, str) or i >= len(net.douts) or net.trusted[i]:
            continue
        dout = net.douts[i]
        dx1 = net.douts[i - 1] if i > 0 else dx
        if not isinstance(dx1, np.ndarray):
            continue
        # Like with like: the main pass gave backward dout.copy() (C order); 2·dout must have the
        # same layout, or reductions inside backward sum in another order and round differently
        # (visible in float32), which is not a lack of linearity.
        twice = dout.copy()
        twice *= 2
        with net.stage(f"{net.call(i, 'backward')} (called again)"):
            layer.backward(dout.copy())
            g2 = {k: np.array(v, copy=True) for k, v in layer.grads.items()}
            dx3 = np.asarray(layer.backward(twice))
            g3 = {k: np.array(v, copy=True) for k, v in layer.grads.items()}
        who = net.describe(i)
        common = [
            k
            for k in g1
            if k in g2
            and k in g3
            and np.shape(g1[k]) == np.shape(g2[k]) == np.shape(g3[k])
            and all(np.issubdtype(np.asarray(g[k]).dtype, np.number) for g in (g1, g2, g3))
        ]
        repeat = [k for k in common if _differs(np.asarray(g2[k]), np.asarray(g1[k]))]
        if repeat:
            k = repeat[0]
            problems.append(
                f"{who}: backward called twice with the same dout gave different grads['{k}'] "
                f"(second = {_ratio(np.asarray(g2[k]), np.asarray(g1[k])):.3g}× first); backward must "
                "overwrite grads, not accumulate into them (+=)"
            )
            continue
        nonlinear = [k for k in common if _differs(np.asarray(g3[k]), 2 * np.asarray(g1[k]))]
        if dx3.shape == dx1.shape and _differs(dx3, 2 * dx1):
            nonlinear.insert(0, "dx")
        if nonlinear:
            k = nonlinear[0]
            got = dx3 if k == "dx" else np.asarray(g3[k])
            base = dx1 if k == "dx" else np.asarray(g1[k])
            label = "dx" if k == "dx" else f"grads['{k}']"
            problems.append(
                f"{who}: backward is not linear in dout: backward(2·dout) gave {label} = "
                f"{_ratio(got, base):.4g}× backward(dout), expected exactly 2×"
            )
    return problems
