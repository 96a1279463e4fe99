"""Dense perturbed copies carried as their change from the base through linear layers and tanh.

After a tanh every row of a rank-1 form changes (no ReLU zeros), and each copy goes on dense:
bench ``deep`` pays (8 − ℓ) dense 32×32 linear layers and tanh's per copy. Carried as
base + d (lowrank.Shifted), a built-in linear layer maps the change alone, d·W
(``apply_change``: no bias pass, no base), and a built-in tanh maps it to
tanh(x + d) − tanh x (kernels.py "tanh_change": ``np.tanh`` and a subtraction, or tanh's Taylor
series from coefficients made once per layer, whichever this CPU runs faster;
the series cut where the dropped terms add at most a quarter of t's own rounding,
series.terms_near); base + d is formed only where another layer or the loss needs the copies
(a softmax cross-entropy takes them as they are: lowrank.softmax_ce_shifted). The same numbers
to round-off (the change is never rounded against the base: if anything, more exact than the
copies' own arithmetic). Real float64 only; anything else goes the usual way. Pure NumPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.engine import kernels
from gradcheck_cli.engine.lowrank import Rank1, Shifted, bound, declares
from gradcheck_cli.engine.series import tanh_coefficients, terms_near
from gradcheck_cli.layers.base import Array

#: Off only in tests that exercise the other paths (and to compare against them).
enabled = True


def through(pert: Any, i: int, state: Any) -> Shifted | None:
    """Layer ``i`` (of ``pert``, a numeric.Perturber) on the copies ``state`` as a change: a
    linear layer on a :class:`Shifted`, a tanh on a Shifted, a rank-1 form or dense copies of
    its input; None when layer ``i`` is neither or the copies are not real float64."""
    layer, x_base, out_base = pert.net.layers[i], pert.layer_inputs[i], pert.outputs[i]
    if not enabled:
        return None
    if isinstance(state, Shifted) and declares(layer, "apply_change"):
        if x_base.ndim == 2 and state.d.shape[1:] == x_base.shape:
            return Shifted(out_base, layer.apply_change(state.d))
        return None
    if not (declares(layer, "shift_series") and out_base.shape == x_base.shape):
        return None
    limit = None  # a bound on |d| when one is at hand without a pass over d
    if isinstance(state, Shifted):
        d = state.d
    elif isinstance(state, Rank1) and state.base.shape == x_base.shape:
        d, limit = state.u[:, :, None] * state.w[:, None, :], bound(state)
    elif isinstance(state, np.ndarray) and state.shape[1:] == x_base.shape:
        d = state - x_base
    else:
        return None
    if not (d.dtype == x_base.dtype == out_base.dtype == np.float64):
        return None
    return Shifted(out_base, tanh_change(pert, i, d, limit))


def tanh_change(pert: Any, i: int, d: Array, limit: float | None = None) -> Array:
    """tanh(x + d) − tanh x for layer ``i``'s input x (C copies of changes d, every |d| ≤
    ``limit`` when given), by this CPU's choice (kernels.py); the series only where it applies
    (every |d| < series.DELTA_LIMIT)."""
    x, t = pert.layer_inputs[i], pert.outputs[i]
    name = kernels.choice("tanh_change")
    if name != "direct":
        n = terms_near(kernels.bound_of(d) if limit is None else limit)
        if n is not None:
            return kernels.CANDIDATES["tanh_change"][name](x, t, d, coefficients(pert, i, n))
    return kernels.change_direct(x, t, d, None)


def coefficients(pert: Any, i: int, n: int) -> list[Array]:
    """The first ``n`` series coefficients of tanh layer ``i``, at t's shape (broadcast along
    the copies; laid out at the chunk's shape they measured no faster on bench deep with 3
    terms, and took memory), made once per layer and number of terms."""
    store: dict[Any, Any] = pert.series_cache
    key = ("coefficients", i, n)
    found: list[Array] | None = store.get(key)
    if found is None:
        found = store[key] = tanh_coefficients(pert.outputs[i], n)
    return found
