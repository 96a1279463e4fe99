"""tanh's series around a cached output (gradcheck_cli/engine/series.py) against an independent
derivation: the change tanh(x + d) − t = s·T/(1 + t·T), T = tanh d = d − d³/3 + 2d⁵/15 − …,
s = 1 − t², expanded as a power series in d. From it: the coefficients c_k(t) themselves, the
bounds qmax/tmax (true maxima over t ∈ [−1, 1], 1 % slack at most), the number of terms (the
fewest that meet the stated tail, not one more), and the promise behind terms_near (what the
dropped terms add is at most 2⁻⁵⁵·max(|t|, |change|))."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

from gradcheck_cli.engine import kernels, series

#: tanh d = Σ T_j d^j (j ≤ 10).
TANH = [0.0, 1.0, 0.0, -1 / 3, 0.0, 2 / 15, 0.0, -17 / 315, 0.0, 62 / 2835, 0.0]
K = 10
#: The tail the module promises (literal: it must not move with the module's constant).
TAIL = 2.0**-56
LIMIT = 1e-3


def reference_coefficients(t: np.ndarray) -> list[np.ndarray]:
    """c_0 … c_K of tanh(x + d) − t in powers of d (c_0 = 0), by power-series arithmetic:
    s·T·Σ_m (−t·T)^m."""
    u = [t * c for c in TANH]
    inv = [np.ones_like(t)]
    for j in range(1, K + 1):
        inv.append(-sum(u[i] * inv[j - i] for i in range(1, j + 1)))
    s = (1 - t) * (1 + t)
    return [s * sum(TANH[i] * inv[k - i] for i in range(0, k + 1)) for k in range(K + 1)]


@cache
def true_maxima() -> tuple[dict[int, float], dict[int, float]]:
    """max over t of |c_k/s| (= |P_k|/k!) and, for even k, of |c_k/(s·t)|, on a grid 20× finer
    than the module's."""
    t = np.linspace(-1.0, 1.0, 400_001)
    t = t[np.abs(t) < 1.0]  # s = 0 at ±1
    s = (1 - t) * (1 + t)
    c = reference_coefficients(t)
    nz = t != 0
    q = {k: float(np.abs(c[k] / s).max()) for k in range(1, K + 1)}
    r = {k: float(np.abs(c[k][nz] / (s[nz] * t[nz])).max()) for k in range(2, K + 1, 2)}
    return q, r


@pytest.mark.parametrize("t0", [0.0, 0.3, -0.75, 0.999, -1.0 + 1e-9, 1.0])
def test_the_coefficients_are_those_of_the_addition_theorem(t0: float) -> None:
    t = np.array([t0, -t0])
    for n in range(1, 9):  # literal: the test must not move with MAX_TERMS
        got = series.tanh_coefficients(t, n)
        assert len(got) == n
        ref = reference_coefficients(t)
        for k, ck in enumerate(got, start=1):
            np.testing.assert_allclose(ck, ref[k], rtol=1e-13, atol=1e-300)


def test_at_t0_the_coefficients_are_tanhs_own() -> None:
    got = [float(c[0]) for c in series.tanh_coefficients(np.zeros(1), 8)]
    assert got == pytest.approx([1, 0, -1 / 3, 0, 2 / 15, 0, -17 / 315, 0], rel=1e-15, abs=0)
    assert series.polynomials(4) == ((1.0,), (0.0, -2.0), (-2.0, 0.0, 6.0), (0.0, 16.0, 0.0, -24.0))


def test_polyval_is_the_polynomial_and_keeps_the_shape_of_t() -> None:
    t = np.array([[0.5, -2.0]])
    got = series.polyval((1.0, -3.0, 2.0), t)
    np.testing.assert_array_equal(got, 1 - 3 * t + 2 * t * t)
    assert np.shape(series.polyval((4.0,), t)) == t.shape and np.all(series.polyval((4.0,), t) == 4)


@pytest.mark.parametrize("k", range(1, K + 1))
def test_qmax_is_the_true_maximum_with_at_most_one_percent_to_spare(k: int) -> None:
    q, _ = true_maxima()
    assert q[k] <= series.qmax(k) <= 1.0101 * q[k]


@pytest.mark.parametrize("k", range(2, K + 1, 2))
def test_tmax_is_the_true_maximum_with_at_most_one_percent_to_spare(k: int) -> None:
    _, r = true_maxima()
    assert r[k] <= series.tmax(k) <= 1.0101 * r[k]


@pytest.mark.parametrize("k", [1, 3, 5])
def test_tmax_of_an_odd_order_is_refused(k: int) -> None:
    with pytest.raises(ValueError, match="no factor t"):
        series.tmax(k)


def _fewest(ok: object, bound: float) -> int | None:
    if not 0.0 <= bound < LIMIT:
        return None
    for n in range(1, 9):
        if ok(n, bound):  # type: ignore[operator]
            return n
    return None


def needed_between(bound: float) -> tuple[int | None, int | None]:
    """terms_needed's count from the true maxima, and with 1.01 % slack on them."""
    q, _ = true_maxima()

    def count(slack: float) -> int | None:
        return _fewest(lambda n, b: slack * q[n + 1] * b**n / (1 - b) <= TAIL, bound)

    return count(1.0), count(1.0101)


def near_between(bound: float) -> tuple[int | None, int | None]:
    q, r = true_maxima()

    def count(slack: float) -> int | None:
        def ok(n: int, b: float) -> bool:
            odd, even = (n + 2, n + 1) if n % 2 else (n + 1, n + 2)
            room = TAIL * (1 - b * b)
            return slack * q[odd] * b ** (odd - 1) <= room and slack * r[even] * b**even <= room

        return _fewest(ok, bound)

    return count(1.0), count(1.0101)


BOUNDS = [0.0, *np.geomspace(1e-12, 0.9999 * LIMIT, 1500).tolist()]


def test_terms_needed_is_the_fewest_that_meet_the_tail() -> None:
    for b in BOUNDS:
        lo, hi = needed_between(b)
        got = series.terms_needed(b)
        assert lo is not None and hi is not None and got is not None, b
        assert lo <= got <= hi, b


def test_terms_near_is_the_fewest_that_meet_its_tail() -> None:
    for b in BOUNDS:
        lo, hi = near_between(b)
        got = series.terms_near(b)
        assert lo is not None and hi is not None and got is not None, b
        assert lo <= got <= hi, b


@pytest.mark.parametrize("fn", [series.terms_needed, series.terms_near])
def test_the_term_counts_refuse_what_the_series_is_not_given(fn: object) -> None:
    for bad in (LIMIT, 1.5 * LIMIT, 10 * LIMIT, -1e-9, float("nan"), float("inf")):
        assert fn(bad) is None, bad  # type: ignore[operator]
    assert fn(0.0) == 1  # type: ignore[operator]
    assert fn(0.9999 * LIMIT) is not None  # type: ignore[operator]


def test_the_documented_counts() -> None:
    """3 terms instead of 4 for |d| from ~4e-6 to ~6e-5 (series.terms_near's docstring)."""
    for b in (5e-6, 1e-5, 5e-5):
        assert series.terms_near(b) == 3 and series.terms_needed(b) == 4, b


@pytest.mark.parametrize("x0", [0.0, 0.4, -2.0, 9.0])
def test_the_dropped_terms_add_at_most_a_quarter_ulp_of_t_or_the_change(x0: float) -> None:
    """terms_near's promise, against the change in extended precision from the same t: the
    series is within round-off (a few ulps of the change) plus 2⁻⁵⁵·max(|t|, |change|)."""
    rng = np.random.default_rng(int(abs(10 * x0)) + 7)
    x = x0 + (0.3 * rng.standard_normal(200) if x0 else 0.0)
    t = np.tanh(x)
    for b in [*np.geomspace(1e-9, 0.999 * LIMIT, 25).tolist()]:
        d = b * rng.uniform(-1, 1, 200)
        d[0] = b
        n = series.terms_near(kernels.bound_of(d))
        assert n is not None
        got = series.horner(series.tanh_coefficients(t, n), d)
        tl, dl = t.astype(np.longdouble), d.astype(np.longdouble)
        tdl = np.tanh(dl)
        ref = (1 - tl) * (1 + tl) * tdl / (1 + tl * tdl)
        change = np.abs(ref).astype(np.float64)
        room = 4 * np.spacing(change) + 2.0**-55 * np.maximum(np.abs(t), change)
        assert bool(np.all(np.abs(got.astype(np.longdouble) - ref) <= room)), b


def test_horner_sums_every_coefficient_once() -> None:
    d = np.array([0.5, -2.0])
    c = [np.array([3.0, 3.0]), np.array([5.0, 5.0]), np.array([7.0, 7.0])]
    np.testing.assert_array_equal(series.horner(c, d), 3 * d + 5 * d**2 + 7 * d**3)
    np.testing.assert_array_equal(series.horner([np.array(2.0)], d), 2 * d)
    assert math.isclose(float(series.horner([1.0, 1.0], np.array(0.5))), 0.75)  # type: ignore[list-item]
