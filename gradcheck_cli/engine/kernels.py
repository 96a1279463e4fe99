"""Per-CPU choice of how the engine evaluates a transcendental on perturbed copies.

A perturbed copy's input to an elementwise function differs from the base input by a tiny
``d`` (|d| < :data:`DELTA_LIMIT`), and the base output is cached. Then tanh(x + d) can be had
either from ``np.tanh`` directly or by the addition theorem from the cached tanh x, using only
multiplications, additions and one division. Which is cheaper depends on the CPU's vector
units: with AVX-512 NumPy's ``np.tanh`` (SVML) costs about 1 ns an element, with AVX2 about
6–14 ns, while a multiplication costs ~0.3–0.7 ns on both. Dense copies carried as their change
from the base (engine/changes.py) need tanh(x + d) − tanh x instead: ``np.tanh`` and a
subtraction, or tanh's Taylor series from the cached output (engine/series.py, coefficients
per layer made once). So every kernel here has candidate
forms that are equal to the plain formula to round-off; the first time one is needed, each
candidate is timed on a small sample (~1–2 ms in all) and the fastest is kept for the process
(:func:`choice`). Tests force each candidate (:func:`forced`) and compare it to the plain
formula; timings never decide a test (the clock is injectable).

Pure NumPy; nothing of layers, tolerances or verdicts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from gradcheck_cli.engine.series import horner, tanh_coefficients, terms_near
from gradcheck_cli.layers.base import Array

#: Largest |d| a series form is given: tanh d = d − d³/3 + 2d⁵/15 − 17d⁷/315 + …, and the
#: first dropped term is below 17/315·1e-21 ≈ 5e-23 relative to d: exact to round-off.
DELTA_LIMIT = 1e-3
#: Below it the series' d⁵ term is dropped: 2d⁴/15 < 1.4e-17 relative, under half an ulp.
SHORT_LIMIT = 1e-4
#: Environment override, e.g. ``GRADCHECK_KERNELS="tanh_shift=direct"`` (benchmarks, debugging).
ENV = "GRADCHECK_KERNELS"
#: Entries of the sample each candidate is timed on, and timed runs per candidate (the
#: fastest run counts: the others were disturbed by something else on the machine).
SAMPLE = 8192
RUNS = 5
#: A series form must be at least this much faster than the direct one to be chosen (the
#: direct form is the plain formula: it wins ties).
MARGIN = 0.9


def tanh_direct(x: Array | None, t: Array, d: Array, bound: float) -> Array:
    """tanh(x + d) by ``np.tanh`` (``t`` and ``bound`` unused), in place of the sum."""
    assert x is not None
    out: Array = x + d
    np.tanh(out, out=out)
    return out


def tanh_addition(x: Array | None, t: Array, d: Array, bound: float) -> Array:
    """tanh(x + d) from t = tanh(x) by the addition theorem, for every |d| ≤ ``bound`` <
    :data:`DELTA_LIMIT` (the caller's promise): tanh(x + d) = (t + tanh d) / (1 + t·tanh d),
    with tanh d = d·(1 − d²·(1/3 − 2d²/15)), or d·(1 − d²/3) when ``bound`` <
    :data:`SHORT_LIMIT`. Multiplications, additions and one division only."""
    # Below SHORT_LIMIT tanh d = d·(1 − d²/3): two passes fewer. (Comments stay off the lines
    # benchmarks/mutate.py keys mutants by: a key holding "  # " cannot be allow-listed.)
    if bound < SHORT_LIMIT:
        td = d * d
        td *= -1 / 3
    else:
        d2 = d * d
        td = d2 * (-2 / 15)  # in place from here: tanh d = d·(1 − d²·(1/3 − 2d²/15))
        td += 1 / 3
        td *= d2
        np.negative(td, out=td)
    td += 1
    td *= d
    near: Array = t + td
    td *= t
    td += 1
    near /= td
    return near


def exp_direct(x: Array | None, t: Array, d: Array, bound: float) -> Array:
    """exp(x + d) by ``np.exp`` (``t`` and ``bound`` unused), in place of the sum."""
    assert x is not None
    out: Array = x + d
    np.exp(out, out=out)
    return out


def exp_series(x: Array | None, t: Array, d: Array, bound: float) -> Array:
    """exp(x + d) from t = exp(x) as t·e^d, e^d by its series, for every |d| ≤ ``bound`` <
    :data:`DELTA_LIMIT`: 1 + d + d²/2 + d³/6 (+ d⁴/24 + d⁵/120 unless ``bound`` <
    :data:`SHORT_LIMIT`); the first dropped term is below 5e-18 relative. No rounding of x + d
    at all (np.exp(x + d) has it: the series is the more exact of the two)."""
    if bound < SHORT_LIMIT:
        p = d * (1 / 6)
        p += 1 / 2
    else:
        p = d * (1 / 120)
        p += 1 / 24
        p *= d
        p += 1 / 6
        p *= d
        p += 1 / 2
    p *= d
    p += 1
    p *= d
    p += 1
    p *= t
    return p


def change_direct(x: Array | None, t: Array, d: Array, c: Any) -> Array:
    """tanh(x + d) − tanh x by ``np.tanh`` (t = tanh x; the coefficients ``c`` unused)."""
    assert x is not None
    out: Array = x + d
    np.tanh(out, out=out)
    out -= t
    return out


def change_series(x: Array | None, t: Array, d: Array, c: Any) -> Array:
    """tanh(x + d) − tanh x by its Taylor series from t = tanh x, Σ_k c_k·d^k with the
    caller's coefficients ``c`` (series.tanh_coefficients, as many as series.terms_near asks
    for a bound on |d|: the caller's promise), by Horner's rule: multiplications and additions
    only."""
    return horner(c, d)


#: Kernel name → candidate name → function. The first candidate is the plain form.
#: A candidate: (x or None, t = tanh x, d, a bound on |d|) → tanh(x + d); for "tanh_change"
#: (x, t, d, series coefficients) → tanh(x + d) − t.
Kernel = Callable[[Array | None, Array, Array, Any], Array]
CANDIDATES: dict[str, dict[str, Kernel]] = {
    "tanh_shift": {"direct": tanh_direct, "addition": tanh_addition},
    "exp_shift": {"direct": exp_direct, "series": exp_series},
    "tanh_change": {"direct": change_direct, "series": change_series},
}
#: Each kernel's function of x (what t is).
FUNCTIONS = {"tanh_shift": np.tanh, "exp_shift": np.exp, "tanh_change": np.tanh}

_chosen: dict[str, str] = {}
_forced: dict[str, str] = {}
#: Per kernel: the measured seconds per element of each candidate (for benchmarks' reports).
measured: dict[str, dict[str, float]] = {}


def _sample(name: str, n: int = SAMPLE) -> tuple[Array, Array, Array]:
    rng = np.random.default_rng(0)
    x = 2 * rng.standard_normal(n)
    return x, FUNCTIONS[name](x), 1e-6 * rng.uniform(-1, 1, n)


def measure(
    name: str, clock: Callable[[], float] = time.perf_counter, runs: int = RUNS
) -> dict[str, float]:
    """Seconds per element of each candidate of kernel ``name`` (the fastest of ``runs``
    interleaved runs on a :data:`SAMPLE`-entry sample)."""
    x, t, d = _sample(name)
    last: Any = tanh_coefficients(t, terms_near(1e-5) or 1) if name == "tanh_change" else 1e-6
    best = dict.fromkeys(CANDIDATES[name], float("inf"))
    for _ in range(runs):
        for cand, fn in CANDIDATES[name].items():
            start = clock()
            fn(x, t, d, last)
            best[cand] = min(best[cand], (clock() - start) / len(x))
    return best


def pick(times: dict[str, float]) -> str:
    """The fastest candidate, the plain (first) one unless another beats it by :data:`MARGIN`."""
    plain = next(iter(times))
    fastest = min(times, key=lambda c: times[c])
    return fastest if times[fastest] < MARGIN * times[plain] else plain


def _from_env(name: str) -> str | None:
    for item in os.environ.get(ENV, "").split(","):
        key, _, value = item.partition("=")
        if key.strip() == name and value.strip() in CANDIDATES[name]:
            return value.strip()
    return None


def choice(name: str) -> str:
    """The candidate used for kernel ``name`` in this process: forced (tests, ``$GRADCHECK_KERNELS``)
    or measured once on first use (:func:`measure`, :func:`pick`)."""
    forced = _forced.get(name)
    if forced is not None:
        return forced
    chosen = _chosen.get(name)
    if chosen is None:
        chosen = _from_env(name)
        if chosen is None:
            measured[name] = measure(name)
            chosen = pick(measured[name])
        _chosen[name] = chosen
    return chosen


def chosen() -> dict[str, str]:
    """Every kernel's choice (measuring those not yet chosen): for benchmark reports."""
    return {name: choice(name) for name in CANDIDATES}


@contextmanager
def forced(name: str, candidate: str) -> Iterator[None]:
    """Use ``candidate`` for kernel ``name`` inside the block (tests)."""
    if candidate not in CANDIDATES[name]:
        raise ValueError(f"unknown candidate {candidate!r} for kernel {name!r}")
    was = _forced.get(name)
    _forced[name] = candidate
    try:
        yield
    finally:
        if was is None:
            del _forced[name]
        else:
            _forced[name] = was


def bound_of(d: Array) -> float:
    """max |d| (NaN when d holds a NaN; 0 for an empty d)."""
    return 0.0 if d.size == 0 else float(max(d.max(), -d.min()))


def _series(x: Array | None, t: Array, d: Array, bound: float | None) -> Array | None:
    """tanh(x + d) by this CPU's chosen candidate when it is not the plain one and applies
    (real float64, every |d| ≤ bound < :data:`DELTA_LIMIT`); None otherwise. Series candidates
    are given x only when it is at hand (they use t and d)."""
    if not (d.dtype == np.float64 and t.dtype == np.float64):
        return None
    name = choice("tanh_shift")
    if name == "direct":
        return None
    bound = bound_of(d) if bound is None else bound
    # `not <` so that a NaN bound also goes the plain way
    if not bound < DELTA_LIMIT:
        return None
    return CANDIDATES["tanh_shift"][name](x, t, d, bound)


def tanh_shift(
    x: Array, t: Array, d: Array, rows: Array | None = None, bound: float | None = None
) -> Array:
    """tanh(x + d), t = tanh(x), by this CPU's cheapest exact form (real float64 only for the
    series; anything else, or some |d| ≥ :data:`DELTA_LIMIT`, goes to ``np.tanh``). With
    ``rows``: of x[rows] and t[rows] (taken only as the chosen form needs them); ``bound``, when
    given, is the caller's bound on |d| (from the factors of d: no pass over d)."""
    out = _series(x if rows is None else None, t if rows is None else t[rows], d, bound)
    if out is None:
        return tanh_direct(x if rows is None else x[rows], t, d, 0.0)
    return out


def tanh_near(x: Array, t: Array, x_new: Array) -> Array | None:
    """tanh(x_new) for copies x_new near x (t = tanh(x)) by the addition theorem with
    d = x_new − x, when this CPU's choice is a series and every |d| is small; else None (the
    caller then evaluates tanh(x_new) itself, which costs no subtraction)."""
    if not (x_new.dtype == np.float64 and t.dtype == np.float64):
        return None
    if choice("tanh_shift") == "direct":
        return None
    return _series(x, t, x_new - x, None)


def exp_shift(x: Array, d: Array, bound: float) -> Array:
    """exp(x + d) (x broadcast against d), |d| ≤ ``bound``: by this CPU's cheapest exact form
    (real float64 and ``bound`` < :data:`DELTA_LIMIT` for the series; else ``np.exp``)."""
    name = choice("exp_shift")
    if name != "direct" and x.dtype == d.dtype == np.float64 and bound < DELTA_LIMIT:
        return CANDIDATES["exp_shift"][name](None, np.exp(x), d, bound)
    return exp_direct(x, x, d, 0.0)
