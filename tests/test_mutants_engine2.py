"""Engine-trust mechanisms pinned by behaviour (issue 28, second round): the precision a function
rounds a float64 tensor to (``input_quantum``: what the judge's realised steps rest on) and the
steps actually taken."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gradcheck_cli.engine.precision import input_quantum, realised


def _rounds_to(q: type) -> object:
    def loss(v: np.ndarray) -> float:
        with np.errstate(over="ignore"):
            return float(np.sum(np.tanh(np.asarray(v, np.float64).astype(q).astype(np.float64))))

    return loss


POWERS = np.array([1.0, 2.0, 0.5, -4.0, 0.0, 1.0, 8.0, -0.25])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("q", [np.float16, np.float32])
def test_rounding_is_found_on_tensors_of_powers_of_two_whatever_the_moves(q: type, seed: int) -> None:
    """At a power of two the cell below is half the one above: an entry moved down must stay
    within the smaller cell, or the rounding is missed and the steps are taken as float64's
    (it was, for an input of ones, half the time)."""
    loss = _rounds_to(q)
    assert input_quantum(loss, POWERS, loss(POWERS), seed=seed) == q.__name__
    x = np.ones((3, 4))
    assert input_quantum(loss, x, loss(x), seed=seed) == q.__name__
    y = np.random.default_rng(seed).standard_normal(12)
    assert input_quantum(loss, y, loss(y), seed=seed) == q.__name__
    f64 = _rounds_to(np.float64)
    assert input_quantum(f64, POWERS, f64(POWERS), seed=seed) is None
    assert input_quantum(f64, y, f64(y), seed=seed) is None


def test_a_tensor_that_is_not_float64_or_not_finite_or_empty_has_no_quantum() -> None:
    """No quantum, and no warning from the search."""
    f32 = _rounds_to(np.float32)
    x32 = np.linspace(-1, 1, 6, dtype=np.float32)
    assert input_quantum(f32, x32, f32(x32)) is None  # not a float64 tensor
    for bad in (np.array([1.0, np.nan, 2.0]), np.array([1.0, np.inf]), np.array([3e38, 1e39])):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert input_quantum(f32, bad, f32(bad)) is None
    big = np.array([1.0, 7e4])  # beyond float16's range: only float32 can be the quantum
    assert input_quantum(f32, big, f32(big)) == "float32"
    f16 = _rounds_to(np.float16)
    assert input_quantum(f16, big, f16(big)) is None
    empty = np.zeros(0)
    assert input_quantum(f32, empty, 0.0) is None


def test_steps_swallowed_by_a_large_intermediate_are_not_a_quantum() -> None:
    """L = Σ((θ + 2³⁰) − 2³⁰) in float64 rounds θ to 2⁻²² (half a float32 cell at 1.5 rounds
    away): moves within a float32 cell vanish, but so do moves into the next float32 value —
    these are not float32's cells, and L is a float64 function of θ."""
    theta = np.random.default_rng(0).uniform(1.1, 1.9, 8)

    def loss(v: np.ndarray) -> float:
        return float(np.sum((np.asarray(v) + 2.0**30) - 2.0**30))

    for seed in range(3):
        assert input_quantum(loss, theta, loss(theta), seed=seed) is None


def test_entries_already_at_the_inside_points_give_no_evidence() -> None:
    """θ placed exactly where the float16 test moves it: that move is no move, so a float64
    function (unchanged by it) is not taken for a float16 one."""
    sign = np.where(np.random.default_rng(0).random(5) < 0.5, -1.0, 1.0)
    base = np.array([1.0, 1.5, -2.0, 3.0, 0.75], dtype=np.float16)
    toward = np.nextafter(base, (sign * np.inf).astype(np.float16))
    theta = base.astype(np.float64) + 0.3 * (toward.astype(np.float64) - base.astype(np.float64))
    f64 = _rounds_to(np.float64)
    assert input_quantum(f64, theta, f64(theta), seed=0) is None


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ratio, found", [(1500.0, "float16"), (700.0, None)])
def test_a_tensor_is_read_only_when_a_1e_3_move_changes_l_well_above_its_rounding(
    seed: int, ratio: float, found: str | None
) -> None:
    """L = 1e6 + a·round16(θ), θ = 3: moving θ by 1e-3·|θ| (to the float16 value 2⁻⁸ away)
    changes L by ``ratio`` × L's float64 rounding (2⁻⁵³·|L|). Read when that is above 1,000
    (READS), else L does not depend on the tensor in the sense the quantum needs."""
    theta = np.array([3.0])
    a = ratio * 1e6 * 2.0**-53 / 2.0**-8

    def loss(v: np.ndarray) -> float:
        return 1e6 + a * float(np.asarray(v, np.float64).astype(np.float16)[0])

    assert abs(loss(theta + 3e-3) - loss(theta)) == pytest.approx(ratio * 1e6 * 2.0**-53, rel=0.01)
    assert input_quantum(loss, theta, loss(theta), seed=seed) == found


def test_realised_steps_are_the_rounded_differences() -> None:
    theta = np.array([1.0, 3.0])
    offsets = np.array([[1e-5, 2e-5], [1e-3, 1e-9]])
    up, down = realised(theta, offsets, None)
    assert np.array_equal(up, (theta[:, None] + offsets) - theta[:, None])
    assert np.array_equal(down, theta[:, None] - (theta[:, None] - offsets))
    up, down = realised(theta, offsets, "float16")
    h16 = lambda v: np.asarray(v).astype(np.float16).astype(np.float64)  # noqa: E731
    assert np.array_equal(up, h16(theta[:, None] + offsets) - h16(theta)[:, None])
    assert np.array_equal(down, h16(theta)[:, None] - h16(theta[:, None] - offsets))
    assert up[1, 1] == 0.0 and up[0, 0] == 0.0  # below float16's cell: no step at all
    assert up[1, 0] == pytest.approx(2.0**-9) and down[1, 0] == pytest.approx(2.0**-9)
