"""Perturbed copies through a tanh and the linear layer after it, from one table per column.

A one-entry change of a linear layer's W (or b) reaches the next linear layer as a rank-1 form
(lowrank.Rank1): copy c's output is base + u[c] ⊗ w[c], where w[c] = V₁[j] is the row of that
layer's weights for the changed column j = ``Rank1.cols[c]`` (the same row for every copy of
column j). A tanh after it changes by its Taylor series in d = u[c, n]·w[c] around the cached
t = tanh x, tanh(x + d) − t = Σ_k c_k ⊙ d^k (engine/series.py), and the linear layer after
the tanh maps a change Δ of its input to Δ·V₂ (its W). So row n of copy c leaves that layer as base₂[n] + Σ_k u[c, n]^k · M_k[j, n], with
M_k[j] = (c_k ⊙ w_j^k) V₂ (N, O): the same table for every copy of column j. The tables are
computed once per column (lazily, on first use, per :class:`numeric.Perturber`), and each copy
then costs k·O multiply-adds per changed row instead of a tanh of K entries and K·O
multiply-adds (bench ``medium``, 0.Linear.W: 262k copies share 512 tables).

Exact to round-off: the series is cut where the first dropped term is below 2⁻⁵⁶ of the
change (series.terms_needed, from a bound on |d|: max|u|·max|w|). Only real float64 copies of
built-in layers (``declares``) with finite factors take it; anything else goes the dense way.
Pure NumPy; nothing of tolerances or verdicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck_cli.engine.lowrank import ROWS_FRACTION, Rank1, RowSet, declares, rows_to_loss
from gradcheck_cli.engine.series import tanh_coefficients, terms_needed
from gradcheck_cli.layers.base import Array

#: Entries of the (keys, K, O) temporary a table fill builds at once.
FILL_ENTRIES = 1 << 20
#: Tables may take at most this share of the Perturber's chunk budget.
TABLE_SHARE = 4
#: Terms the chunk sizes assume (|d| ~ 1e-6 … 1e-4 takes 3 to 5: central steps of 1e-5).
TYPICAL_TERMS = 4
#: Off only in tests that exercise the dense paths (tanh kernels).
enabled = True


class Tables:
    """Per (tanh layer i, linear layer i + 1): M_k[j] = (c_k ⊙ w_j^k)·V₂ for the columns j
    filled so far, (n, J, N, O); ``fills`` counts the columns computed (for the pilot)."""

    def __init__(self, t: Array, v: Array, keys: int, n: int) -> None:
        self.n, self.v = n, v
        self.coeffs = tanh_coefficients(t, n)
        self.m = np.empty((n, keys, t.shape[0], v.shape[1]))
        self.filled = np.zeros(keys, bool)
        self.finite = True
        self.fills = 0

    def fill(self, cols: Array, w: Array) -> None:
        """Tables of the columns in ``cols`` not filled yet (w[c] is column cols[c]'s row)."""
        need = ~self.filled[cols]
        if not need.any():
            return
        keys, first = np.unique(cols[need], return_index=True)
        rows = w[need][first]  # (J', K)
        k_in, o = self.v.shape
        per = max(1, FILL_ENTRIES // (k_in * o))
        for lo in range(0, len(keys), per):
            js, wj = keys[lo : lo + per], rows[lo : lo + per]
            power = np.ones_like(wj)
            for k, c in enumerate(self.coeffs):
                power *= wj  # w_j^(k+1)
                g = power[:, :, None] * self.v[None]  # (J', K, O)
                flat = c @ g.transpose(1, 0, 2).reshape(k_in, -1)  # (N, J'·O)
                self.m[k, js] = flat.reshape(len(c), len(js), o).transpose(1, 0, 2)
        self.finite = self.finite and bool(np.isfinite(self.m[:, keys]).all())
        self.filled[keys] = True
        self.fills += len(keys)


def tables(pert: Any, i: int, n: int) -> Tables | None:
    """The Perturber's tables for layers (i, i + 1) with at least ``n`` terms (made afresh with
    more terms when needed); None when they would not fit its budget (:func:`fits`)."""
    store: dict[Any, Any] = pert.series_cache
    found = store.get(("tables", i))
    if found is not None and found.n >= n:
        return found
    if not fits(pert, i, n):
        return None
    t, v = pert.outputs[i], pert.net.layers[i + 1].params["W"]
    made = Tables(t, v, pert.layer_inputs[i - 1].shape[-1], n)
    if found is not None:
        made.fills = found.fills
    store[("tables", i)] = made
    return made


def fits(pert: Any, i: int, n: int = TYPICAL_TERMS) -> bool:
    """Layers i, i + 1 are a built-in tanh (``shift_series``) and a built-in linear layer
    (``apply_change``) on 2-D float64 arrays, after a layer i − 1 with ``rank1_columns``, and
    ``n`` terms pay: n·O ≤ K (a row's n·O terms cost about what its K tanh's and K·O
    multiply-adds do at n·O = K: bench deep, K = O = 32, measured no faster) and the tables fit
    1/:data:`TABLE_SHARE` of the chunk budget. Structure only: chunks.py sizes chunks by it."""
    layers = pert.net.layers
    if not (enabled and 1 <= i < len(layers) - 1):
        return False
    if not (declares(layers[i], "shift_series") and declares(layers[i + 1], "apply_change")):
        return False
    if not declares(layers[i - 1], "rank1_columns"):
        return False
    t, out, v = pert.outputs[i], pert.outputs[i + 1], layers[i + 1].params.get("W")
    if not (isinstance(v, np.ndarray) and t.ndim == 2 and out.ndim == 2):
        return False
    if not (v.shape == (t.shape[1], out.shape[1]) and pert.layer_inputs[i - 1].ndim == 2):
        return False
    if not all(a.dtype == np.float64 for a in (t, v, out)):
        return False
    keys, (k_in, o) = pert.layer_inputs[i - 1].shape[1], v.shape
    table_bytes = n * keys * t.shape[0] * o * 8
    return n * o <= k_in and table_bytes <= pert.chunk_bytes // TABLE_SHARE


def applies(pert: Any, i: int, state: Any) -> bool:
    """``state`` reaching layer i is a keyed rank-1 form from layer i − 1 (real or complex
    float64) and layers i, i + 1 take the series (:func:`fits`)."""
    return (
        isinstance(state, Rank1)
        and state.cols is not None
        and state.made_by == i - 1
        and state.u.dtype in (np.float64, np.complex128)
        and state.w.dtype == np.float64
        and fits(pert, i)
    )


def run(pert: Any, start: int, state: Any, dense_bytes: int) -> Any:
    """Layers ``start``… of the network on the copies ``state`` (numeric.Perturber): a tanh and
    the linear layer after it from the tables (:func:`through`) where they apply, every other
    layer by ``pert.propagate``."""
    i = start
    while i < len(pert.net.layers):
        if applies(pert, i, state):
            pert.net.fp.where = pert.net.call(i, "forward")  # floating-point events named
            state, i = through(pert, i, state, dense_bytes), i + 2
        else:
            state, i = pert.propagate(i, state), i + 1
    return state


def through(pert: Any, i: int, state: Rank1, dense_bytes: int) -> RowSet | Array:
    """Copies ``state`` (layer i's input, :func:`applies`) after layers i and i + 1: as changed
    rows (when few rows change and the rest of the way takes them, lowrank.RowSet) or dense
    (C, N, O). When the series does not apply to these copies (|d| too large for it, more terms
    than pay, a factor not finite), the two layers run the usual way on sub-chunks of copies of
    about ``dense_bytes`` each (the chunk was sized for the series)."""
    u, w = state.u, state.w
    n = terms_needed(float(np.abs(u).max(initial=0.0) * np.abs(w).max(initial=0.0)))
    k_in, o = pert.net.layers[i + 1].params["W"].shape
    tab = None if n is None or n * o > k_in else tables(pert, i, n)
    if tab is None or n is None or not np.all(np.isfinite(w)):
        return _usual_way(pert, i, state, dense_bytes)
    assert state.cols is not None
    tab.fill(state.cols, w)
    if not tab.finite:
        return _usual_way(pert, i, state, dense_bytes)
    base, keys = pert.outputs[i + 1], state.cols
    nonzero = u != 0
    if nonzero.sum() <= ROWS_FRACTION * u.size and rows_to_loss(pert, i + 2):
        ci, ni = np.nonzero(nonzero)  # the other rows of a copy are the base rows, exactly
        values = _horner(tab.m, n, (keys[ci], ni), u[ci, ni][:, None], base)
        values += base[ni]
        return RowSet(base, len(u), ci, ni, values)
    dense = _horner(tab.m, n, (keys,), u[:, :, None], base)
    dense += base
    return dense


def _horner(m: Array, n: int, at: tuple[Array, ...], a: Array, base: Array) -> Array:
    """Σ_k a^(k+1)·m[k][at] over the first n terms of the tables ``m``, by Horner's rule."""
    last: tuple[Any, ...] = (n - 1, *at)
    acc: Array = m[last].astype(np.result_type(a, base), copy=False)
    for k in range(n - 2, -1, -1):
        term: tuple[Any, ...] = (k, *at)
        acc *= a
        acc += m[term]
    acc *= a
    return acc


def _usual_way(pert: Any, i: int, state: Rank1, dense_bytes: int) -> Array:
    """Layers i and i + 1 on ``state`` by ``pert.propagate``, in sub-chunks of copies whose
    dense form is about ``dense_bytes``: the copies after layer i + 1, dense (C, N, O)."""
    per = max(1, dense_bytes // max(state.base.nbytes, 1))
    outs = []
    for lo in range(0, len(state.u), per):
        sub = Rank1(state.base, state.u[lo : lo + per], state.w[lo : lo + per])
        done = pert.propagate(i + 1, pert.propagate(i, sub))
        outs.append(done if isinstance(done, np.ndarray) else done.dense())
    return np.concatenate(outs)
