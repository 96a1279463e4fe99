"""Per-CPU kernels (gradcheck_cli/engine/kernels.py) at the edges of each regime, against exact
values: every candidate form is the true value to a few ulp — relative to the CHANGE where the
cached value is exact (t = tanh 0 = 0, e⁰ = 1) — for |d| just below and above SHORT_LIMIT and
DELTA_LIMIT, for |t| near 1, float32 and float64; a wrong twin (one series coefficient off) is
caught by the same check; the timing sample only ever makes valid calls that compute the kernel's
value; the environment override and the cache of the choice. References: math.tanh / math.exp of
Python floats (x = 0: no rounding of x + d) and np.longdouble (64-bit significand)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from gradcheck_cli.engine import kernels, series
from gradcheck_cli.layers.base import Array

TANH = list(kernels.CANDIDATES["tanh_shift"])
EXP = list(kernels.CANDIDATES["exp_shift"])
SHORT, LIMIT = kernels.SHORT_LIMIT, kernels.DELTA_LIMIT
#: Steps at the edges of each regime: well inside, just below / at / above SHORT_LIMIT, just
#: below DELTA_LIMIT (the series' own range).
INSIDE = [1e-9, 3e-6, 0.99 * SHORT, SHORT, 1.01 * SHORT, 3e-4, 0.999 * LIMIT]


def ulps_at_zero(fn: Any, exact: Any, one: float, steps: list[float]) -> float:
    """Largest |fn(0 + d) − exact(d)| in ulps of the exact CHANGE exact(d) − one (the cached value
    at x = 0 is exact), each step alone (its own bound) and all in one array (the largest bound)."""
    worst = 0.0
    d_all = np.array([s * sign for s in steps for sign in (1.0, -1.0)])
    for d in [np.array([v]) for v in d_all] + [d_all]:
        got = fn(np.zeros_like(d), np.full_like(d, one), d, kernels.bound_of(d))
        for g, v in zip(got, d, strict=True):
            ref = exact(float(v))
            worst = max(worst, abs(float(g) - ref) / math.ulp(ref - one))
    return worst


def tanh_ulps(fn: kernels.Kernel, steps: list[float] = INSIDE) -> float:
    return ulps_at_zero(fn, math.tanh, 0.0, steps)


@pytest.mark.parametrize("name", TANH)
def test_each_tanh_form_at_t0_is_tanh_d_to_an_ulp_of_d(name: str) -> None:
    """tanh(0 + d) is tanh d itself: the series' coefficients must be right to d⁵ (a 2/15 → 3/15
    slip moves tanh d by d⁵/15, ~300 ulps of d at |d| = 1e-3)."""
    assert tanh_ulps(kernels.CANDIDATES["tanh_shift"][name]) <= 1.0


def _addition_with(c3: float, c5: float, short: float = 1e-4) -> kernels.Kernel:
    """The addition theorem with tanh d = d·(1 − c3·d² + c5·d⁴) (c5 dropped below ``short``; the
    numbers are literal: a twin must not move with the module's constants)."""

    def run(x: Array | None, t: Array, d: Array, bound: float) -> Array:
        td = d * (1 - c3 * d * d + (0.0 if bound < short else c5) * d**4)
        out: Array = (t + td) / (1 + t * td)
        return out

    return run


@pytest.mark.parametrize(
    "c3, c5, short",
    [
        (1 / 3, 3 / 15, 1e-4),  # the d⁵ coefficient off
        (1 / 3, 2 / 14, 1e-4),
        (1 / 3, -2 / 15, 1e-4),
        (1 / 3, 2 / 15, 1e-3),  # the d⁵ term dropped up to 1e-3
        (1 / 3.01, 2 / 15, 1e-4),
    ],
)
def test_a_tanh_twin_with_one_coefficient_off_is_caught(c3: float, c5: float, short: float) -> None:
    assert tanh_ulps(_addition_with(1 / 3, 2 / 15)) <= 1.0  # the right one passes the same check
    assert tanh_ulps(_addition_with(c3, c5, short)) > 4.0


def exp_ulps(fn: kernels.Kernel, steps: list[float] = INSIDE) -> float:
    """As tanh_ulps, in ulps of e^d itself (the result is near 1: its own rounding is 1e-16 of
    it, far above the change's)."""
    worst = 0.0
    d_all = np.array([s * sign for s in steps for sign in (1.0, -1.0)])
    for d in [np.array([v]) for v in d_all] + [d_all]:
        got = fn(np.zeros_like(d), np.ones_like(d), d, kernels.bound_of(d))
        for g, v in zip(got, d, strict=True):
            ref = math.exp(float(v))
            worst = max(worst, abs(float(g) - ref) / math.ulp(ref))
    return worst


def exp_long(x: Array | None, t: Array, d: Array, bound: float) -> Array:
    """e^d in extended precision from the same terms (a reference for the d⁴, d⁵ terms)."""
    dl = d.astype(np.longdouble)
    out: Array = t * np.exp(dl)
    return out


@pytest.mark.parametrize("name", EXP)
def test_each_exp_form_at_zero_is_exp_d_to_an_ulp(name: str) -> None:
    assert exp_ulps(kernels.CANDIDATES["exp_shift"][name]) <= 1.0


def test_the_exp_series_keeps_the_d4_term_from_short_limit_on() -> None:
    """From |d| = SHORT_LIMIT to DELTA_LIMIT the d⁴/24 term matters (4e-14 relative at 1e-3):
    the series is the true e^d there, to extended precision; a series cut after d³ everywhere
    is not."""

    def cubic(x: Array | None, t: Array, d: Array, bound: float) -> Array:
        out: Array = t * (1 + d * (1 + d * (1 / 2 + d / 6)))
        return out

    series_fn = kernels.CANDIDATES["exp_shift"]["series"]
    d = np.linspace(-0.999 * LIMIT, 0.999 * LIMIT, 41)
    t = np.ones_like(d)
    ref = exp_long(None, t, d, LIMIT)
    got = series_fn(None, t, d, kernels.bound_of(d))
    assert float(np.abs(got - ref).max()) <= 2.3e-16
    assert float(np.abs(cubic(None, t, d, LIMIT) - ref).max()) > 1e-14


@pytest.mark.parametrize("x0", [5.0, -5.0, 9.0, 18.0, -18.5, 0.3])
@pytest.mark.parametrize("step", [0.99 * SHORT, 1.01 * SHORT, 0.999 * LIMIT])
def test_tanh_addition_near_saturation_is_tanh_to_an_ulp_of_the_result(
    x0: float, step: float
) -> None:
    """|t| near 1: the result (not the change) is what rounding allows, ~1 ulp of tanh(x + d);
    the cached t carries its own rounding (the reference starts from the same t)."""
    rng = np.random.default_rng(int(1000 * abs(x0)))
    x = x0 + 0.01 * rng.standard_normal(64)
    t = np.tanh(x)
    d = step * rng.uniform(-1, 1, 64)
    d[0] = step
    tl, dl = t.astype(np.longdouble), d.astype(np.longdouble)
    tdl = np.tanh(dl)
    ref = (tl + tdl) / (1 + tl * tdl)  # the addition theorem in extended precision from the same t
    got = kernels.tanh_addition(x, t, d, kernels.bound_of(d))
    err = np.abs(got.astype(np.longdouble) - ref) / np.spacing(np.abs(got))
    assert float(err.max()) <= 2.0
    assert float(np.abs(got).max()) <= 1.0


@pytest.mark.parametrize("name", TANH)
@pytest.mark.parametrize("step", [0.999 * LIMIT, 1.001 * LIMIT, 3e-3, 9.9e-3])
def test_tanh_shift_is_tanh_d_at_t0_below_and_beyond_the_series_limit(
    name: str, step: float
) -> None:
    """Through the public kernel (bound from d, and given): beyond DELTA_LIMIT the series would
    be off by 17d⁷/315 (~100 ulps of d at 9.9e-3): np.tanh must take those."""
    d = np.array([step, -step, step / 2])
    x = np.zeros(3)
    with kernels.forced("tanh_shift", name):
        for bound in (None, step):
            got = kernels.tanh_shift(x, np.zeros(3), d, bound=bound)
            for g, v in zip(got, d, strict=True):
                assert abs(float(g) - math.tanh(v)) <= math.ulp(math.tanh(v))
        near = kernels.tanh_near(x, np.zeros(3), d)
        if near is not None:
            assert name != "direct" and step < LIMIT
            for g, v in zip(near, d, strict=True):
                assert abs(float(g) - math.tanh(v)) <= math.ulp(math.tanh(v))
        else:
            assert name == "direct" or step >= LIMIT


@pytest.mark.parametrize("name", EXP)
@pytest.mark.parametrize("step", [0.999 * LIMIT, 1.001 * LIMIT, 3e-3, 9.9e-3])
def test_exp_shift_is_exp_d_below_and_beyond_the_series_limit(name: str, step: float) -> None:
    """Beyond DELTA_LIMIT the series' first dropped term d⁶/720 is several ulps of e^d at
    9.9e-3: np.exp must take those."""
    d = np.linspace(-step, step, 21)
    with kernels.forced("exp_shift", name):
        got = kernels.exp_shift(np.zeros(1), d, step)
    ref = np.exp(d.astype(np.longdouble))
    assert float((np.abs(got - ref) / np.spacing(got)).max()) <= 1.0


@pytest.mark.parametrize("name", EXP)
def test_exp_shift_in_float32_is_np_exp_in_float32(name: str) -> None:
    x = np.linspace(-2, 2, 9, dtype=np.float32)
    d = np.full(9, 1e-4, np.float32)
    with kernels.forced("exp_shift", name):
        got = kernels.exp_shift(x, d, 1e-4)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.exp(x + d))


@pytest.mark.parametrize("name", TANH)
@pytest.mark.parametrize("step", [0.5 * SHORT, 5 * SHORT, 0.999 * LIMIT])
def test_tanh_shift_with_rows_takes_the_rows_of_x_and_t(name: str, step: float) -> None:
    """With ``rows``, tanh(x[rows] + d): each form reads the rows it needs (x for np.tanh,
    t for the addition theorem)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4))
    rows = np.array([4, 1, 1])
    d = step * rng.uniform(-1, 1, (3, 4))
    with kernels.forced("tanh_shift", name):
        got = kernels.tanh_shift(x, np.tanh(x), d, rows=rows)
    np.testing.assert_allclose(got, np.tanh(x[rows] + d), rtol=0, atol=4e-16)


# -- tanh_change: the series of the change against an extended-precision change ---------------


@pytest.mark.parametrize("x0", [0.0, 0.7, -3.0, 12.0])
@pytest.mark.parametrize("step", [1e-8, 0.99 * SHORT, 1.01 * SHORT, 0.999 * LIMIT])
def test_the_change_series_is_the_change_to_a_few_ulps_of_it(x0: float, step: float) -> None:
    """tanh(x + d) − tanh x from the coefficients terms_near asks for: within a few ulps of the
    CHANGE plus a quarter ulp of t (terms_near's promise), against extended precision from the
    same t (x = 0: t exact, so relative to the change alone)."""
    rng = np.random.default_rng(int(10 * abs(x0)) + 1)
    x = x0 + 0.1 * rng.standard_normal(32) * (x0 != 0.0)
    t = np.tanh(x)
    d = step * rng.uniform(-1, 1, 32)
    d[0] = -step
    n = series.terms_near(kernels.bound_of(d))
    assert n is not None
    got = kernels.CANDIDATES["tanh_change"]["series"](x, t, d, series.tanh_coefficients(t, n))
    tl, dl = t.astype(np.longdouble), d.astype(np.longdouble)
    tdl = np.tanh(dl)
    ref = (tl + tdl) / (1 + tl * tdl) - tl  # the change from the same t, extended precision
    room = 4 * np.spacing(np.abs(got)) + np.spacing(np.abs(t)) / 4
    assert bool(np.all(np.abs(got.astype(np.longdouble) - ref) <= room))


# -- the choice: timing sample, environment override, cache ----------------------------------


class Recorder:
    """A candidate that records each call and advances the clock by its cost per element: three
    times that on its first call (a run disturbed by something else on the machine)."""

    def __init__(self, name: str, fn: kernels.Kernel, clock: list[float], calls: list[Any]) -> None:
        self.name, self.fn, self.clock, self.calls = name, fn, clock, calls

    def __call__(self, x: Array | None, t: Array, d: Array, last: Any) -> Array:
        first = not any(call[0] == self.name for call in self.calls)
        self.clock[0] += t.size * COST[self.name] * (3.0 if first else 1.0)
        out: Array = self.fn(x, t, d, last)
        self.calls.append((self.name, x, t, d, last, out))
        return out


COST = {"direct": 1.0, "addition": 0.5, "series": 0.25}


@pytest.mark.parametrize("kernel", list(kernels.CANDIDATES))
@pytest.mark.parametrize("runs", [1, 2, 3])
def test_the_timing_sample_makes_only_valid_calls_that_compute_the_kernel(
    kernel: str, runs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``runs`` timed runs per candidate (even one), the fastest counting, in seconds per
    element; each timed call keeps the caller's promise (its bound covers |d|, |d| <
    DELTA_LIMIT; its series has the terms its |d| needs) and computes the kernel's value (a
    timing of a wrong computation measures nothing)."""
    clock: list[float] = [0.0]
    calls: list[Any] = []
    table = {n: Recorder(n, f, clock, calls) for n, f in kernels.CANDIDATES[kernel].items()}
    monkeypatch.setitem(kernels.CANDIDATES, kernel, table)
    times = kernels.measure(kernel, clock=lambda: clock[0], runs=runs)
    assert times == {n: COST[n] * (3.0 if runs == 1 else 1.0) for n in table}
    assert len(calls) == runs * len(table)
    fn = kernels.FUNCTIONS[kernel]
    for _name, x, t, d, last, out in calls:
        bound = kernels.bound_of(d)
        assert 0 < bound < LIMIT
        np.testing.assert_array_equal(t, fn(x))
        xl, dl = x.astype(np.longdouble), d.astype(np.longdouble)
        if kernel == "tanh_change":
            n = series.terms_near(bound)
            assert n is not None and len(last) >= n
            tl, tdl = t.astype(np.longdouble), np.tanh(dl)
            exact = (1 - tl) * (1 + tl) * tdl / (1 + tl * tdl)  # from the same t
            room = 4 * np.spacing(np.abs(out)) + 2.0**-55 * np.maximum(np.abs(t), np.abs(out))
            if _name == "direct":  # np.tanh(x + d) − t: the rounding of x + d and of tanh
                room = room + np.spacing(np.abs(x)) + 2 * np.spacing(np.abs(t))
        else:
            assert bound <= last
            exact = fn(xl + dl)
            slope = (1 - t) * (1 + t) if kernel == "tanh_shift" else t
            room = 4 * np.spacing(np.abs(out)) + slope * np.spacing(np.abs(x))
        assert bool(np.all(np.abs(out - exact) <= room))


def test_the_environment_override_is_parsed_leniently_and_a_bad_value_is_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``GRADCHECK_KERNELS``: "kernel=candidate" items split by commas, spaces ignored; an unknown
    candidate, an item without "=", or another kernel's name falls back to the measurement."""
    measured: list[str] = []

    def fake(name: str) -> dict[str, float]:
        measured.append(name)
        first, *rest = kernels.CANDIDATES[name]
        return {first: 10.0, **dict.fromkeys(rest, 1.0)}  # measured: the series form

    monkeypatch.setattr(kernels, "measure", fake)
    for value, expect, measures in (
        (" tanh_shift = direct ", "direct", 0),
        ("exp_shift=series,tanh_shift=direct", "direct", 0),
        ("tanh_shift=direct,exp_shift=series", "direct", 0),
        ("tanh_shift=addition", "addition", 0),
        ("tanh_shift=bogus", "addition", 1),
        ("tanh_shift", "addition", 1),
        ("tanh_shift=", "addition", 1),
        ("exp_shift=direct", "addition", 1),  # another kernel's item
        ("tanh_change=direct", "addition", 1),
        ("direct", "addition", 1),
        ("=direct", "addition", 1),
        ("", "addition", 1),
    ):
        monkeypatch.setattr(kernels, "_chosen", {})
        monkeypatch.setenv(kernels.ENV, value)
        measured.clear()
        assert kernels.choice("tanh_shift") == expect, value
        assert measured == ["tanh_shift"] * measures, value
        other = "direct" if expect == "addition" else "addition"
        monkeypatch.setenv(kernels.ENV, f"tanh_shift={other}")  # cached: read once
        assert kernels.choice("tanh_shift") == expect, value
        assert len(measured) == measures, value


def test_the_choice_is_measured_once_per_kernel_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    counts: dict[str, int] = {}

    def fake(name: str) -> dict[str, float]:
        counts[name] = counts.get(name, 0) + 1
        first, *rest = kernels.CANDIDATES[name]
        return {first: 10.0, **dict.fromkeys(rest, 1.0)}  # the series ten times cheaper

    monkeypatch.setattr(kernels, "_chosen", {})
    monkeypatch.setattr(kernels, "measured", {})
    monkeypatch.delenv(kernels.ENV, raising=False)
    monkeypatch.setattr(kernels, "measure", fake)
    for _ in range(3):
        assert kernels.chosen() == {
            "tanh_shift": "addition",
            "exp_shift": "series",
            "tanh_change": "series",
        }
    assert counts == dict.fromkeys(kernels.CANDIDATES, 1)
    assert kernels.measured["exp_shift"] == {"direct": 10.0, "series": 1.0}


def test_pick_keeps_the_plain_form_unless_another_is_cheaper_by_the_margin() -> None:
    m = kernels.MARGIN
    assert kernels.pick({"direct": 1.0, "series": m * 1.0001}) == "direct"
    assert kernels.pick({"direct": 1.0, "series": m * 0.9999}) == "series"
    assert kernels.pick({"direct": 1.0, "series": 1.0}) == "direct"
    assert kernels.pick({"direct": 2.0, "series": m * 2.0}) == "direct"  # exactly the margin: a tie
    assert kernels.pick({"direct": 1.0, "series": 2.0}) == "direct"
    assert kernels.pick({"direct": float("inf"), "series": 1.0}) == "series"


@pytest.mark.parametrize("name", TANH)
@pytest.mark.parametrize("t_type, d_type", [(np.float32, np.float64), (np.float64, np.float32)])
def test_tanh_shift_takes_no_series_unless_t_and_d_are_both_float64(
    name: str, t_type: type, d_type: type
) -> None:
    """A float32 cached tanh (rounded to 6e-8) is no base for the addition theorem: the result
    is np.tanh(x + d) itself, to float64 round-off."""
    x = np.linspace(-2.0, 2.0, 41)
    d = np.full(41, 3e-5).astype(d_type)
    with kernels.forced("tanh_shift", name):
        got = kernels.tanh_shift(x, np.tanh(x).astype(t_type), d)
    np.testing.assert_allclose(got, np.tanh(x + d), rtol=0, atol=4e-16)
