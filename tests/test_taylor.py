"""Rank-1 copies through tanh and the linear layer after it from one table per column
(gradcheck_cli/engine/taylor.py, engine/series.py): the series is tanh's change to round-off, relative to the
change itself, for every number of terms it takes; the engine with the tables equals the plain
loop (changed rows after a ReLU, dense copies, steps the series refuses, the complex step), and
does use them; wrong twins (a wrong coefficient, one term too few) are caught directly and
through the engine. No clock anywhere."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from gradcheck_cli import make_layer
from gradcheck_cli.engine import chunks, series, taylor
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy

U = 2.0**-53


def exact_change(t: Array, d: Array) -> Array:
    """tanh(x̃ + d) − t for x̃ = atanh(t) exactly (t a float64), in extended precision: the
    addition theorem (1 − t)(1 + t)·tanh d / (1 + t·tanh d), every factor exact or rounded
    to ~1e-19 relative."""
    tl, dl = t.astype(np.longdouble), d.astype(np.longdouble)
    td = np.tanh(dl)
    out: Array = (1 - tl) * (1 + tl) * td / (1 + tl * td)
    return out


def sum_series(t: Array, d: Array, n: int, coefficients: Callable[..., list[Array]]) -> Array:
    out = np.zeros_like(d)
    for c in reversed(coefficients(t, n)):
        out += c
        out *= d
    return out


def largest_bound(n: int) -> float:
    """About the largest |d| the series is given with n terms."""
    lo, hi = 0.0, series.DELTA_LIMIT
    for _ in range(60):
        mid = (lo + hi) / 2
        got = series.terms_needed(mid)
        lo, hi = (mid, hi) if got is not None and got <= n else (lo, mid)
    return lo


def worst_relative(coefficients: Callable[..., list[Array]], seed: int, fewer: int = 0) -> float:
    """Largest |series − exact change| / |exact change| over t of every size (saturated too) and
    |d| up to the largest bound of each number of terms (``fewer`` terms left off)."""
    rng = np.random.default_rng(seed)
    x = 3 * rng.standard_normal(3000)
    x[:8] = [0.0, 1e-300, 5.0, -5.0, 12.0, 18.0, 0.5, -1e-3]
    t = np.tanh(x)
    worst = 0.0
    for n in range(1, series.MAX_TERMS + 1):
        bound = largest_bound(n)
        if bound == 0.0 or series.terms_needed(bound) != n:
            continue
        d = bound * rng.uniform(-1, 1, x.shape)
        d[0] = bound
        got = sum_series(t, d, max(1, n - fewer), coefficients)
        ref = exact_change(t, d)
        scale = np.abs(ref)
        ok = scale > 0
        err = np.abs(got.astype(np.longdouble) - ref)
        assert np.all(err[~ok] == 0)
        worst = max(worst, float((err[ok] / scale[ok]).max()))
    return worst


RIGHT = series.tanh_coefficients


def wrong_third(t: Array, n: int) -> list[Array]:
    """c_3 with 6t² − 1 for 6t² − 2 (a slip in P_3)."""
    out = RIGHT(t, n)
    if n >= 3:
        out[2] = out[2] + (1 - t) * (1 + t) / 6
    return out


def test_polynomials_are_the_derivatives_of_tanh() -> None:
    """P_k(t)·(1 − t²) = tanh^(k): checked against the known first ones."""
    p = series.polynomials(5)
    assert p[0] == (1.0,)
    assert p[1] == (0.0, -2.0)
    assert p[2] == (-2.0, 0.0, 6.0)
    assert p[3] == (0.0, 16.0, 0.0, -24.0)
    assert p[4] == (16.0, 0.0, -120.0, 0.0, 120.0)
    # the tail bound uses qmax decreasing from k = 2 on
    q = [series.qmax(k) for k in range(2, series.MAX_TERMS + 3)]
    assert all(a >= b for a, b in itertools.pairwise(q))


def test_terms_needed_grows_with_the_bound_and_refuses_large_steps() -> None:
    got = [series.terms_needed(b) for b in (0.0, 1e-17, 1e-9, 1e-6, 1e-5, 1e-4, 5e-4)]
    assert got[0] == 1 and got[1] == 1
    assert all(a is not None for a in got)
    assert got == sorted(got)  # type: ignore[type-var]
    assert series.terms_needed(1e-5) == 4
    for b in (1e-3, 2e-3, float("nan"), float("inf"), -1.0):
        assert series.terms_needed(b) is None


@pytest.mark.parametrize("seed", range(5))
def test_the_series_is_the_change_of_tanh_to_round_off(seed: int) -> None:
    """Relative to the change itself (not to tanh): every term that matters is there."""
    assert worst_relative(series.tanh_coefficients, seed) <= 8 * U


def test_a_wrong_coefficient_and_a_term_too_few_are_caught() -> None:
    assert worst_relative(wrong_third, 0) > 1e-13
    assert worst_relative(series.tanh_coefficients, 0, fewer=1) > 1e-14


def nets(rng: np.random.Generator) -> Iterator[tuple[str, Network, Array]]:
    """Networks whose copies reach tanh as a keyed rank-1 form with n·O ≤ K: after a ReLU
    (changed rows to the loss's row terms) and after a tanh (dense copies, two pairs)."""
    x = rng.standard_normal((6, 5))
    relu = [
        make_layer("linear", (5,), rng, out=8),
        make_layer("relu", (8,)),
        make_layer("linear", (8,), rng, out=24),
        make_layer("tanh", (24,)),
        make_layer("linear", (24,), rng, out=3),
    ]
    labels = rng.integers(0, 3, 6)
    yield "relu-rows", Network(relu, SoftmaxCrossEntropy(), x=x, target=labels), x
    dense = [
        make_layer("linear", (5,), rng, out=6),
        make_layer("tanh", (6,)),
        make_layer("linear", (6,), rng, out=24),
        make_layer("tanh", (24,)),
        make_layer("linear", (24,), rng, out=4),
        make_layer("tanh", (4,)),
        make_layer("linear", (4,), rng, out=2),
    ]
    yield "tanh-dense", Network(dense, MSE(), x=x, target=rng.standard_normal((6, 2))), x


@contextmanager
def coefficients(fn: Callable[..., list[Array]]) -> Iterator[None]:
    was = taylor.tanh_coefficients
    taylor.tanh_coefficients = fn  # type: ignore[assignment]
    try:
        yield
    finally:
        taylor.tanh_coefficients = was  # type: ignore[assignment]


def compare(net: Network, x: Array, steps: tuple[Any, ...]) -> tuple[float, int]:
    """Largest |engine − plain loop| over every entry of every tensor and step, and the
    number of table columns the engine filled."""
    slow = Perturber(net, x, batched=False)
    fast = Perturber(net, x, chunk_bytes=1 << 20)
    worst = 0.0
    for ref in net.parameters():
        idx = np.arange(fast.array(ref).size)
        for eps in steps:
            fb, _ = fast.losses(ref, idx, np.array([eps, -eps]))
            fl, _ = slow.losses(ref, idx, np.array([eps, -eps]))
            worst = max(worst, float(np.abs(fb - fl).max()) / max(1.0, abs(slow.f0)))
    return worst, sum(t.fills for k, t in fast.series_cache.items() if k[0] == "tables")


@pytest.mark.parametrize("seed", range(4))
def test_engine_with_the_tables_equals_the_plain_loop(seed: int) -> None:
    """Steps the series takes (1e-6, 1e-5), one it refuses (1e-2: the usual way, in
    sub-chunks), and the complex step."""
    rng = np.random.default_rng(seed)
    for label, net, x in nets(rng):
        worst, fills = compare(net, x, (1e-6, 1e-5, 1e-2, 1e-20j))
        assert worst <= 2e-15, label
        assert fills > 0, label  # the tables were used


def test_engine_catches_a_wrong_coefficient() -> None:
    """Steps of 3e-4 (|d| ~ 1e-4, inside the series' range): a slip in c_3 shows."""
    rng = np.random.default_rng(0)
    for label, net, x in nets(rng):
        with coefficients(wrong_third):
            worst, fills = compare(net, x, (3e-4,))
        assert fills > 0 and worst > 1e-13, label


def test_chunks_are_sized_for_the_tables_and_off_means_the_dense_way() -> None:
    """With the tables a copy of 0.linear.W never holds the K-wide rows (bench medium's shape,
    smaller); with them off the engine gives the same numbers the dense way."""
    rng = np.random.default_rng(3)
    net = next(nets(rng))[1]
    x = net.x
    assert x is not None
    pert = Perturber(net, x)
    ref = next(iter(net.parameters(include_input=False)))
    with_tables = chunks.copy_bytes(pert, ref)
    idx = np.arange(pert.array(ref).size)
    on, _ = pert.losses(ref, idx, np.array([1e-5, -1e-5]))
    taylor.enabled = False
    try:
        assert chunks.copy_bytes(pert, ref) > with_tables
        off, _ = Perturber(net, x).losses(ref, idx, np.array([1e-5, -1e-5]))
    finally:
        taylor.enabled = True
    np.testing.assert_allclose(on, off, rtol=0, atol=2e-15)


def test_tables_that_do_not_fit_the_budget_are_not_made() -> None:
    rng = np.random.default_rng(1)
    net, x = next(nets(rng))[1:]
    assert taylor.fits(Perturber(net, x), 3)
    small = Perturber(net, x, chunk_bytes=4000)  # tables of 4·8·6·3 doubles > 4000/4 bytes
    assert not taylor.fits(small, 3)
    idx = np.arange(small.array(next(iter(net.parameters()))).size)
    small.losses(next(iter(net.parameters(include_input=False))), idx, np.array([1e-5, -1e-5]))
    assert not any(k[0] == "tables" for k in small.series_cache)
