"""Every candidate mutant of verdict/steps.py (issue 28, ``--max 0``): the step ladder's
mechanisms pinned by behaviour on hand-built ladders with exact central differences (steps
that are powers of 2, L(θ ± h) = c ± d·h) and on small real ladders: which steps are taken and
usable, an error bound equal to its closed form, which levels show resolution, when a measured
noise level is contradicted, when the steps are still past the curvature scale, and a kink."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.verdict.steps import (
    Ladder,
    error_bounds,
    evidence,
    join,
    kink_at,
    ladder,
    noise_bounds,
    unreached,
    verified_noise,
)
from tests.test_mutants_fresh5 import _judged
from tests.test_mutants_verdict2 import Elementwise


def _exact(
    central: Sequence[float],
    *,
    valid: Sequence[bool] | None = None,
    moved: Sequence[bool] | None = None,
    base: Sequence[float] | float = 0.0,
    finest: int = 20,
) -> Ladder:
    """One entry, levels finest first at h = 2^−finest·4^k, L(θ ± h) = base ± d·h: the central
    difference is exactly ``central`` (and u·|L±| is u·(base + |d|·h))."""
    n = len(central)
    h = 2.0 ** (-finest + 2 * np.arange(n, dtype=np.float64))[None, :]
    d = np.array([central], dtype=np.float64)
    c = np.broadcast_to(np.asarray(base, dtype=np.float64), (1, n))
    ok = np.ones((1, n), bool) if valid is None else np.array([valid])
    mv = None if moved is None else np.array([moved])
    return Ladder(h=h, fp=c + d * h, fm=c - d * h, hp=h, hm=h, f0=0.0, valid=ok, moved=mv)


def _real(
    fn: Callable[[np.ndarray], np.ndarray],
    x: Sequence[float],
    dtype: type = np.float64,
    **kw: object,
) -> Ladder:
    """The ladder of L = Σ fn(x) at every entry of ``x`` (a tensor of ``dtype``)."""
    xs = np.array(x, dtype=dtype)
    net = Network([Elementwise(fn)], WeightedSum(np.ones_like(xs)), x=xs, trusted=[False])
    return ladder(Perturber(net, xs), net.parameters()[0], np.arange(len(xs)), **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- Ladder.seen, central, one_sided


def test_an_unchanged_step_is_dropped_where_two_neighbouring_steps_show_a_slope_within_10_percent() -> (
    None
):
    """Levels 1 and 2 (L moves on both sides) give 10 and 9: |Δ| = 1 = 10 % of the larger, a
    slope; the unchanged finest step is then a step swallowed by rounding, not a flat L."""
    lad = _exact([10.0, 10.0, 9.0, 5.0], moved=[False, True, True, True]).seen()
    assert lad.valid.tolist() == [[False, True, True, True]]


def test_neighbouring_steps_just_over_10_percent_apart_show_no_slope() -> None:
    """10 and 8.99 differ by 1.01 > 10 % of 10: no slope anywhere, the unchanged step stays."""
    lad = _exact([10.0, 10.0, 8.99, 5.0], moved=[False, True, True, True]).seen()
    assert lad.valid.tolist() == [[True, True, True, True]]


def test_a_slope_needs_both_steps_usable_and_moved() -> None:
    """Agreeing estimates at a level that is not usable, or where L did not change, show no
    slope: the unchanged steps stay usable (and an unusable one stays unusable)."""
    unusable = _exact(
        [10.0, 10.0, 10.0, 5.0], valid=[True, False, True, True], moved=[False, True, True, True]
    )
    assert unusable.seen().valid.tolist() == [[True, False, True, True]]
    unmoved = _exact([10.0, 10.0, 10.0, 5.0], moved=[False, False, True, True])
    assert unmoved.seen().valid.tolist() == [[True, True, True, True]]


@pytest.mark.parametrize("flat_side", ["plus", "minus"])
def test_l_moving_on_one_side_only_shows_no_slope(flat_side: str) -> None:
    """A ReLU straddled by the step: only one side moves, the estimates agree (d = 1 at every
    level), but that is no slope, so the unchanged finest step is L being flat: kept."""
    lad = _exact([1.0, 1.0, 1.0, 1.0], moved=[False, True, True, True])
    h = lad.h
    fp, fm = (np.zeros_like(h), -2 * h) if flat_side == "plus" else (2 * h, np.zeros_like(h))
    one = Ladder(h=h, fp=fp, fm=fm, hp=h, hm=h, f0=0.0, valid=lad.valid, moved=lad.moved)
    assert one.central.tolist() == [[1.0, 1.0, 1.0, 1.0]]
    assert one.seen().valid.tolist() == [[True, True, True, True]]


def test_an_even_l_whose_central_differences_are_zero_shows_no_slope() -> None:
    """L(θ ± h) = 1 on both sides at the coarse levels (an even function): central differences
    0 = 0 agree, but a zero estimate is no slope; the unchanged finest step is kept."""
    lad = _exact([0.0, 0.0, 0.0, 0.0], base=[0.0, 1.0, 1.0, 1.0], moved=[False, True, True, True])
    assert lad.seen().valid.tolist() == [[True, True, True, True]]


def test_a_ladder_without_moved_steps_is_seen_as_it_is() -> None:
    lad = _exact([10.0, 10.0, 9.0, 5.0], valid=[True, False, True, True])
    assert lad.seen() is lad


def test_central_and_one_sided_differences_divide_by_the_steps_taken() -> None:
    """L(θ) = 0.5, L(θ + 0.5) = 3, L(θ − 1.5) = −1: central 4/2 = 2, one-sided 2.5/0.5 = 5 and
    1.5/1.5 = 1."""
    one = np.ones((1, 1))
    lad = Ladder(h=one, fp=3 * one, fm=-one, hp=0.5 * one, hm=1.5 * one, f0=0.5, valid=one > 0)
    assert lad.central.tolist() == [[2.0]]
    dp, dm = lad.one_sided()
    assert (dp.tolist(), dm.tolist()) == ([[5.0]], [[1.0]])


# ---------------------------------------------------------------- ladder()


def test_the_ladder_scales_its_steps_by_a_power_of_4_near_max_1_abs_theta() -> None:
    """θ = 0.1, 3, −3, 100: scales 1, 4, 4, 64 (|θ| rounded to a power of 4 in the log, never
    below 1); levels first … first+count−1 of 0.1·4^−k, finest first."""
    lad = _real(lambda x: x, [0.1, 3.0, -3.0, 100.0], first=2, count=3)
    base = 0.1 * 4.0 ** -np.array([4.0, 3.0, 2.0])
    assert lad.h.shape == (4, 3)
    for row, s in enumerate([1.0, 4.0, 4.0, 64.0]):
        assert lad.h[row] == pytest.approx(s * base, rel=1e-15, abs=0)


def test_the_ladder_records_l_and_the_steps_taken_on_each_side() -> None:
    """L = Σ x³ at θ = (0.3, −2): L(θ ± h) − L(θ) = ±3θ²·h + 3θ·h² ± h³, and the steps taken
    are (θ ± h) ∓ θ as represented; L changes at every step and every step is usable."""
    x = np.array([0.3, -2.0])
    lad = _real(lambda v: v**3, x.tolist())
    th = x[:, None]
    assert lad.hp.tolist() == ((th + lad.h) - th).tolist()
    assert lad.hm.tolist() == (th - (th - lad.h)).tolist()
    f0 = float(np.sum(x**3))
    assert lad.f0 == f0
    h = lad.hp
    assert lad.fp - f0 == pytest.approx(3 * th**2 * h + 3 * th * h**2 + h**3, rel=1e-4, abs=0)
    h = lad.hm
    assert f0 - lad.fm == pytest.approx(3 * th**2 * h - 3 * th * h**2 + h**3, rel=1e-4, abs=0)
    assert lad.valid.all() and lad.moved is not None and lad.moved.all()


def test_steps_outside_the_domain_are_not_usable() -> None:
    """sqrt at θ = 0.01: the steps 0.1 and 0.025 reach below 0 (L not finite), 0.00625 does not."""
    lad = _real(np.sqrt, [0.01])
    assert lad.valid[0].tolist() == [True] * 13 + [False, False]


def test_steps_that_round_away_in_the_functions_precision_are_not_usable() -> None:
    """θ = 1 read as float32 (cells 2^−23 above 1, 2^−24 below): a step realises as the nearest
    whole cells; 9.5e-8 becomes 2^−23 on both sides (more than half the step: usable), 2.4e-8
    becomes 0 (not usable)."""
    lad = _real(lambda x: x, [1.0], quantum="float32")
    h = lad.h[0]
    assert (
        lad.hp[0].tolist()
        == ((np.float32(1.0) + h.astype(np.float32)) - 1.0).astype(np.float64).tolist()
    )
    k = int(np.flatnonzero(np.isclose(h, 0.1 * 4.0**-10))[0])
    assert lad.hp[0, k] == lad.hm[0, k] == 2.0**-23
    assert lad.valid[0].tolist() == [h_k > 5e-8 for h_k in h]


def test_the_steps_of_a_float32_tensor_are_the_ones_float32_takes() -> None:
    """θ = 1.1 stored in float32: a step is what (θ + h) − θ is in float32 (0.1 becomes
    0.100000024), and steps below half a float32 cell of 1.1 (6e-8) round away: not usable."""
    lad = _real(lambda x: x, [1.1], np.float32)
    th = np.float32(1.1)
    h = lad.h[0]
    assert lad.hp[0].tolist() == ((th + h.astype(np.float32)) - th).astype(np.float64).tolist()
    assert lad.hm[0].tolist() == (th - (th - h.astype(np.float32))).astype(np.float64).tolist()
    assert lad.hp[0, -1] != lad.h[0, -1]
    assert lad.valid[0].tolist() == [h_k > 6e-8 for h_k in h]


def test_moved_is_l_changing_on_either_side() -> None:
    """ReLU at 0 moves on the plus side only: moved; 0·x never moves."""
    assert _real(lambda x: np.maximum(x, 0.0), [0.0]).moved.all()  # type: ignore[union-attr]
    assert not _real(lambda x: 0.0 * x, [0.0]).moved.any()  # type: ignore[union-attr]


def test_join_puts_the_finer_ladder_first_and_keeps_moved_only_when_both_have_it() -> None:
    fine, coarse = _exact([1.0, 2.0], moved=[True, False]), _exact([3.0], finest=16, moved=[True])
    both = join(fine, coarse)
    assert both.central.tolist() == [[1.0, 2.0, 3.0]]
    assert both.h.tolist() == [[2.0**-20, 2.0**-18, 2.0**-16]]
    assert both.moved is not None and both.moved.tolist() == [[True, False, True]]
    assert join(fine, _exact([3.0], finest=16)).moved is None
    assert join(_exact([1.0, 2.0]), coarse).moved is None


# ---------------------------------------------------------------- error_bounds, noise_bounds


def test_the_error_bound_is_10_noise_over_h_plus_3_times_the_neighbours_richardson_estimate() -> (
    None
):
    """d = 1, 1.25, 2.25, 6.25 (differences 0.25, 1, 4): T = 0.25/16, max(0.25, 1/16),
    max(1, 4/16), 4 from the finest level up; E = 10·ε_f/h + 3·T."""
    lad = _exact([1.0, 1.25, 2.25, 6.25])
    eps = 2.0**-30
    trunc = np.array([0.25 / 16, 0.25, 1.0, 4.0])
    want = 10 * eps / lad.h[0] + 3 * trunc
    assert error_bounds(lad, eps, 0.0)[0] == pytest.approx(want, rel=1e-14, abs=0)


def test_an_unusable_level_has_no_bound_and_gives_none_to_its_neighbours() -> None:
    """Level 2 unusable: its bound is inf; level 1 keeps the finer difference only, level 3
    (no usable neighbour) is inf."""
    lad = _exact([1.0, 1.25, 2.25, 6.25], valid=[True, True, False, True])
    err = error_bounds(lad, 0.0, 0.0)[0]
    assert err.tolist() == [3 * 0.25 / 16, 3 * 0.25, np.inf, np.inf]


def test_the_noise_term_takes_the_larger_of_the_noise_and_the_loss_values_rounding() -> None:
    """L± = 2^20 ± d·h and u = 2^−52: u·|L±| is about 2^−32 > ε_f = 2^−40, and per entry the
    noise given for that entry counts."""
    lad = _exact([1.0, 1.0, 1.0], base=2.0**20)
    rnd = 2.0**-52 * np.maximum(np.abs(lad.fp), np.abs(lad.fm))[0]
    assert error_bounds(lad, 2.0**-40, 2.0**-52)[0] == pytest.approx(
        10 * rnd / lad.h[0], rel=1e-14, abs=0
    )
    two = Ladder(h=np.vstack([lad.h] * 2), fp=np.vstack([lad.fp] * 2), fm=np.vstack([lad.fm] * 2),
                 hp=np.vstack([lad.hp] * 2), hm=np.vstack([lad.hm] * 2), f0=0.0,
                 valid=np.ones((2, 3), bool))  # fmt: skip
    got = noise_bounds(two, np.array([2.0**-40, 2.0**-20]), 2.0**-52)
    assert got[0] == pytest.approx(10 * rnd / lad.h[0], rel=1e-14, abs=0)
    assert got[1] == pytest.approx(10 * 2.0**-20 / lad.h[0], rel=1e-14, abs=0)


def test_the_noise_term_divides_by_the_mean_of_the_steps_taken() -> None:
    """Steps taken 0.75·h and 1.25·h: the noise term is 10·ε_f/h."""
    h = np.array([[2.0**-10]])
    lad = Ladder(h=h, fp=h, fm=-h, hp=0.75 * h, hm=1.25 * h, f0=0.0, valid=h > 0)
    assert noise_bounds(lad, 2.0**-30, 0.0).tolist() == [[10 * 2.0**-20]]


# ---------------------------------------------------------------- evidence


def _smooth(n: int = 5) -> list[float]:
    """D(h) = 1 + c·h²: the differences shrink 16× per finer level."""
    return [1.0 + 2.0**-30 * 16.0**k for k in range(n)]


def test_a_smooth_ladder_is_resolved_where_the_next_two_finer_differences_shrink() -> None:
    """No noise: levels 2 and 3 (both neighbours usable, the finer difference 16× smaller and
    the next finer pair shrinking too); level 1 has no finer pair to confirm it."""
    lad = _exact(_smooth())
    assert evidence(lad, np.zeros(1), np.ones(1, bool), 0.0).tolist() == [
        [False, False, True, True, False]
    ]


def test_differences_shrinking_by_exactly_2x_are_resolution_and_by_1_5x_are_not() -> None:
    lad = _exact(
        [0.0, 1.0, 3.0, 7.0, 15.0]
    )  # differences 1, 2, 4, 8: the finer is half the coarser
    assert evidence(lad, np.zeros(1), np.ones(1, bool), 0.0).tolist() == [
        [False, False, True, True, False]
    ]
    lad = _exact([0.0, 1.0, 2.5, 4.75, 8.125])  # 1, 1.5, 2.25, 3.375
    assert not evidence(lad, np.zeros(1), np.ones(1, bool), 0.0).any()


def test_agreement_within_trusted_noise_is_resolution_untrusted_noise_is_not() -> None:
    """d scattered by 2^−4 (no convergence); ε_f = 2^−25 at h = 2^−20, 2^−18, …: the noise
    floor 10·ε_f·(1/h + 1/h') is 50·2^−7 at level 1, 50·2^−9 at level 2 (above 2^−4: within)
    and 50·2^−11 at level 3 (below), where that noise is trusted; nowhere where it is not."""
    lad = _exact([1.0, 1.0625, 1.0, 1.0625, 1.0])
    noise = np.full(1, 2.0**-25)
    assert evidence(lad, noise, np.ones(1, bool), 0.0).tolist() == [
        [False, True, True, False, False]
    ]
    assert not evidence(lad, noise, np.zeros(1, bool), 0.0).any()


def test_a_three_level_ladder_can_show_resolution_within_noise() -> None:
    lad = _exact([1.0, 1.0625, 1.0])
    got = evidence(lad, np.full(1, 2.0**-25), np.ones(1, bool), 0.0)
    assert got.tolist() == [[False, True, False]]


@pytest.mark.parametrize("margin, resolved", [(0.99, True), (1.01, False)])
def test_the_noise_floor_of_a_difference_is_10_times_the_two_levels_rounding_over_their_steps(
    margin: float, resolved: bool
) -> None:
    """u·|L±| differs per level (L± ≈ 1, 64, 4096; u = 2^−40): level 1's difference
    to level 0 is within 10·(r₁/h₁ + r₀/h₀) (×0.99) or not (×1.01); level 2's coarser
    neighbour is far, so level 1 rests on that floor alone."""
    h0, h1 = 2.0**-20, 2.0**-18
    base = [1.0, 64.0, 4096.0]
    floor = 10 * (2.0**-40 * base[1] / h1 + 2.0**-40 * base[0] / h0)
    lad = _exact([1.0, 1.0 + margin * floor, 1.0 + 1e6 * floor], base=base)
    r = 2.0**-40 * np.maximum(np.abs(lad.fp), np.abs(lad.fm))[0]
    assert 10 * (r[1] / h1 + r[0] / h0) == pytest.approx(floor, rel=1e-6, abs=0)
    fine = abs(lad.central[0, 1] - lad.central[0, 0])
    assert fine == pytest.approx(margin * floor, rel=1e-3, abs=0)
    got = evidence(lad, np.zeros(1), np.ones(1, bool), 2.0**-40)
    assert got.tolist() == [[False, resolved, False]]


def test_a_difference_exactly_at_the_noise_floor_is_within_it() -> None:
    """ε_f = 2^−25 trusted, h = 2^−20, 2^−18: the floor 10·ε_f·(2^18 + 2^20) = 0.390625 is
    exact, and so is the difference of level 1 to level 0: resolved (the coarser level is far,
    so it is the floor alone that resolves level 1)."""
    lad = _exact([1.0, 1.390625, 1000.0])
    got = evidence(lad, np.full(1, 2.0**-25), np.ones(1, bool), 0.0)
    assert got.tolist() == [[False, True, False]]


@pytest.mark.parametrize("bad", [0, 2, 3, 4])
def test_resolution_needs_the_level_and_both_neighbours_usable(bad: int) -> None:
    valid = [True] * 5
    valid[bad] = False
    got = evidence(_exact(_smooth(), valid=valid), np.zeros(1), np.ones(1, bool), 0.0)[0]
    want = [False, False, True, True, False]
    for k in (bad - 1, bad, bad + 1):
        if 0 <= k < 5:
            want[k] = False
    assert got.tolist() == want


# ---------------------------------------------------------------- verified_noise


def _shown(shown: Sequence[float], finest: int = 20) -> Ladder:
    """A ladder whose neighbouring pairs show exactly ``shown`` noise each:
    |D_k − D_k+1| = shown_k·(1/h_k + 1/h_k+1)."""
    h = 2.0 ** (-finest + 2 * np.arange(len(shown) + 1, dtype=np.float64))
    inv = 1 / h[:-1] + 1 / h[1:]
    d = np.concatenate([[1.0], 1.0 + np.cumsum(np.asarray(shown) * inv)])
    return _exact(d.tolist(), finest=finest)


def test_a_noise_level_three_pairs_in_a_row_contradict_becomes_the_least_largest_of_a_run() -> None:
    """Pairs showing 4, 1, 2, 3 (×2^−40) against ε_f = 1: the runs of three give 4 and 3; ε_f
    becomes 3·2^−40 and is not trusted."""
    lad = _shown([4 * 2.0**-40, 2.0**-40, 2 * 2.0**-40, 3 * 2.0**-40])
    out, trusted = verified_noise(lad, 1.0, 0.0)
    assert out[0] == pytest.approx(3 * 2.0**-40, rel=1e-6, abs=0)
    assert trusted.tolist() == [False]


def test_a_contradicted_noise_level_stays_above_the_floor_and_the_rounding_of_usable_levels() -> (
    None
):
    lad = _shown([2.0**-40] * 4)
    assert verified_noise(lad, 1.0, 0.0, floor=2.0**-30)[0][0] == 2.0**-30
    big = _exact(lad.central[0].tolist(), base=[0.0, 0.0, 0.0, 2.0**20, 0.0])  # the largest |L±|
    assert verified_noise(big, 1.0, 2.0**-52)[0][0] == pytest.approx(2.0**-32, rel=1e-6, abs=0)
    unusable = Ladder(h=lad.h, fp=lad.fp, fm=lad.fm, hp=lad.hp, hm=lad.hm, f0=0.0,
                      valid=np.array([[True] * 4 + [False]]))  # fmt: skip
    unusable.fp[0, 4] = 2.0**60  # an unusable level's loss value is not the loss's rounding
    assert verified_noise(unusable, 1.0, 0.0)[0][0] == pytest.approx(2.0**-40, rel=1e-6, abs=0)


@pytest.mark.parametrize("shown, contradicted", [(1.0, True), (1.01, False), (0.99, True)])
def test_a_noise_level_is_contradicted_by_pairs_agreeing_1000x_better(
    shown: float, contradicted: bool
) -> None:
    """ε_f = 1000: pairs showing exactly 1 (= 1e-3·ε_f) contradict it, 1.01 do not."""
    lad = _shown([shown] * 3, finest=10)
    out, trusted = verified_noise(lad, 1000.0, 0.0)
    assert trusted.tolist() == [not contradicted]
    assert out[0] == pytest.approx(shown if contradicted else 1000.0, rel=1e-9, abs=0)


def test_two_contradicting_pairs_are_not_a_run_and_an_unusable_level_breaks_one() -> None:
    assert verified_noise(_shown([1.0, 1.0, 5000.0, 1.0], finest=10), 1000.0, 0.0)[1].tolist() == [
        True
    ]
    lad = _shown([1.0] * 4, finest=10)
    cut = Ladder(h=lad.h, fp=lad.fp, fm=lad.fm, hp=lad.hp, hm=lad.hm, f0=0.0,
                 valid=np.array([[True, True, False, True, True]]))  # fmt: skip
    assert verified_noise(cut, 1000.0, 0.0)[1].tolist() == [True]


def test_a_contradicting_run_anywhere_in_the_ladder_is_enough() -> None:
    """Pairs 5000, 1, 1, 1 against ε_f = 1000: the run is the last three pairs."""
    out, trusted = verified_noise(_shown([5000.0, 1.0, 1.0, 1.0], finest=10), 1000.0, 0.0)
    assert trusted.tolist() == [False] and out[0] == pytest.approx(1.0, rel=1e-9, abs=0)


def test_no_noise_measured_is_nothing_to_contradict() -> None:
    """ε_f = 0 (nothing measured): even estimates that agree exactly at every step leave it
    0 and trusted (no floor is put in its place)."""
    out, trusted = verified_noise(_exact([1.0] * 5), 0.0, 0.0, floor=1.0)
    assert out.tolist() == [0.0] and trusted.tolist() == [True]


# ---------------------------------------------------------------- unreached, kink_at


def test_unreached_looks_at_the_finest_three_usable_levels_of_each_entry() -> None:
    assert unreached(_exact([1.0, 4.0, 2.0, 1.0], valid=[False, True, True, True])).tolist() == [
        True
    ]
    assert unreached(_exact([4.0, 2.0, 1.0, 1.0])).tolist() == [True]
    assert unreached(_exact([1.0, 1.0, 4.0, 2.0, 1.0])).tolist() == [False]
    assert unreached(_exact([-4.0, -2.0, -1.0])).tolist() == [True]
    assert unreached(_exact([4.0, -2.0, 1.0])).tolist() == [False]
    assert unreached(_exact([4.0, 2.0, 1.0], valid=[True, False, True])).tolist() == [False]


@pytest.mark.parametrize("central, far", [([8.0, 4.0, 2.0, 100.0], True), ([8.0, 2.0, 0.5], True),
                                         ([4.0, 2.0, 1.5], False), ([3.5, 2.0, 1.0], False),
                                         ([8.0, 4.0, 1.0], True), ([0.5, 2.0, 1.0], False)])  # fmt: skip
def test_unreached_compares_each_of_the_three_finest_estimates_with_the_next_coarser(
    central: list[float], far: bool
) -> None:
    """Ratios D(h)/D(4h) at the finest three levels: both ≥ 2 (2 and 2 with a coarser level
    that does not count; 4 and 4; 2 and 4) is a step function seen from afar; 2 then 1.33,
    1.75 then 2, or 0.25 then 2 is not."""
    assert unreached(_exact(central)).tolist() == [far]


def _kink(gaps: Sequence[float], valid: Sequence[bool] | None = None) -> Ladder:
    """One-sided slopes 1 + g/2 and 1 − g/2 at each level: gap g, L(θ ± h) = (1 ± g/2)·(±h)."""
    n = len(gaps)
    h = 2.0 ** (-20 + 2 * np.arange(n, dtype=np.float64))[None, :]
    g = np.array([gaps], dtype=np.float64)
    ok = np.ones((1, n), bool) if valid is None else np.array([valid])
    return Ladder(h=h, fp=(1 + g / 2) * h, fm=-(1 - g / 2) * h, hp=h, hm=h, f0=0.0, valid=ok)


@pytest.mark.parametrize("gaps, kink", [([1.0, 2.0, 4.0], True), ([4.0, 2.0, 1.0], True),
                                        ([1.0, 2.01, 4.0], False), ([4.0, 1.99, 1.0], False),
                                        ([1.0, 1.0, 2.01], False), ([2.0, 1.0, 0.499], False)])  # fmt: skip
def test_a_kinks_gap_changes_at_most_2x_per_step(gaps: list[float], kink: bool) -> None:
    assert (kink_at(_kink(gaps), 0, 0.0) is not None) == kink


def test_a_kink_is_read_at_the_finest_step_whose_gap_is_above_noise() -> None:
    """Gap 1 at every level; ε_f = 2^−24: 20·ε_f/h = 20·2^−4 > 1 at h = 2^−20, < 1 from 2^−18:
    the slopes 0.5 and 1.5 at level 1, bound 20·ε_f/2^−18 (the slopes do not move)."""
    found = kink_at(_kink([1.0] * 5), 0, 2.0**-24)
    assert found == (0.5, 1.5, pytest.approx(20 * 2.0**-24 / 2.0**-18, rel=1e-14, abs=0))


def test_a_kink_needs_the_next_two_steps_resolvable_too() -> None:
    assert kink_at(_kink([1.0] * 4, valid=[True, True, False, True]), 0, 0.0) is None
    assert kink_at(_kink([1.0] * 4, valid=[True, False, True, True]), 0, 0.0) is None


def test_a_kink_can_rest_on_the_three_coarsest_levels_and_needs_three() -> None:
    """Noise hides all but the coarsest three levels (gap 1, ε_f = 2^−21: 20·ε_f/h < 1 only from
    h = 2^−16); with only the coarsest two above noise (ε_f = 2^−19) there is no kink."""
    assert kink_at(_kink([1.0] * 5), 0, 2.0**-21) is not None
    assert kink_at(_kink([1.0] * 5), 0, 2.0**-19) is None


@pytest.mark.parametrize("noise, err", [(0.05 * 2.0**-20, 0.25), (0.04 * 2.0**-20, 0.8)])
def test_a_gap_is_above_noise_only_strictly_above_20_noise_over_h(noise: float, err: float) -> None:
    """Gap 1 at every level: with ε_f = 0.05·2^−20 the finest level's 20·ε_f/h is exactly 1
    (not above it: the kink is read at level 1, bound 20·ε_f/2^−18 = 0.25); with ε_f =
    0.04·2^−20 it is 0.8 and the finest level is read (bound 0.8)."""
    found = kink_at(_kink([1.0] * 5), 0, noise)
    assert found is not None
    assert found == (0.5, 1.5, pytest.approx(err, rel=1e-12, abs=0))


# ---------------------------------------------------------------- the extension's cap


def test_an_extension_the_rounding_never_stops_ends_after_exactly_25_levels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """sin(1e24·θ)/1e24 at |θ| < 1e-20: the bend (h ~ 1e-24) lies below even 25 extra levels
    (down to 3e-25·…: k·h still ~0.3), and L ~ 1e-20 is so small that its rounding never rules
    out a finer step; only the cap stops the extension: five rounds of 5 levels, no sixth."""
    x = np.random.default_rng(0).uniform(-1e-20, 1e-20, (2, 3))
    _res, asked = _judged(1e24, x, monkeypatch)
    assert asked == [5] * 5, asked


@pytest.mark.parametrize("swap", [False, True])
def test_a_kinks_bound_is_3_times_the_larger_move_of_a_slope_to_the_next_step(swap: bool) -> None:
    """One-sided slopes 1.5, 1.5625, 1.75 and 0.5, 0.25, 0 (finest first; gaps 1, 1.3125,
    1.75: a kink); no noise: the bound is 3·max(0.0625, 0.25) = 0.75 at the finest step, the
    slopes read there (mirrored: the same with the sides swapped)."""
    plus, minus = np.array([[1.5, 1.5625, 1.75]]), np.array([[0.5, 0.25, 0.0]])
    if swap:
        plus, minus = 2 - minus, 2 - plus
    h = 2.0 ** (-20 + 2 * np.arange(3, dtype=np.float64))[None, :]
    lad = Ladder(h=h, fp=plus * h, fm=-minus * h, hp=h, hm=h, f0=0.0, valid=np.ones((1, 3), bool))
    lo, hi = sorted((float(plus[0, 0]), float(minus[0, 0])))
    assert kink_at(lad, 0, 0.0) == (lo, hi, 0.75)
