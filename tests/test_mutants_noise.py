"""Every candidate mutant of verdict/noise.py (ECnoise, the noise search) and verdict/wide.py
(the 8th-order wide stencil and its bound), issue 28: the survivors of a ``--max 0`` run,
killed by behaviour: a measured level or verdict against the published algorithm, an
evaluation count, a bound that covers the real error or equals its closed form."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.verdict.noise import ecnoise, rounding_floor
from gradcheck_cli.verdict.steps import NOISE_FACTOR
from gradcheck_cli.verdict.wide import WIDE_WEIGHTS, wide, wide_evaluations
from tests.test_mutants_verdict2 import Elementwise, _ecnoise_reference
from tests.test_mutants_verdict4 import Fn, _search_at


@pytest.mark.parametrize("nf", [8, 10])
def test_ecnoise_calls_a_table_flat_when_exactly_half_its_differences_are_zero(nf: int) -> None:
    """Moré & Wild: h is too small when at least nf/2 of the first differences are 0. With an
    even number of values, exactly nf/2 zero differences is possible, and is flat (info 2):
    the same answer as the published code, not a noise level from the other half."""
    rng = np.random.default_rng(nf)
    steps = np.zeros(nf - 1)
    moving = rng.choice(nf - 1, nf - 1 - nf // 2, replace=False)
    steps[moving] = rng.choice([-1.0, 1.0], len(moving)) * rng.uniform(1, 2, len(moving))
    table = np.concatenate([[0.0], np.cumsum(steps)])
    assert int(np.sum(np.diff(table) == 0)) == nf // 2
    assert _ecnoise_reference([float(v) for v in table]) == (0.0, 2)
    assert ecnoise(table) == (0.0, 2)


def _sixth_difference_zero(seed: int) -> np.ndarray:
    """White noise on 7 values, the middle one set so that the 6th difference is 0."""
    f = np.random.default_rng(seed).standard_normal(7)
    c = np.array([1.0, -6.0, 15.0, -20.0, 15.0, -6.0, 1.0])  # the 6th difference's weights
    f[3] = -(c @ f - c[3] * f[3]) / c[3]
    assert abs(np.diff(f, 6)[0]) < 1e-12
    return f


@pytest.mark.parametrize(
    "table",
    [
        *(_sixth_difference_zero(seed) for seed in range(3)),
        np.arange(-3.0, 4.0) ** 3 - 8 * np.arange(-3.0, 4.0),
    ],
)
def test_ecnoise_judges_three_neighbouring_levels_not_the_whole_table(table: np.ndarray) -> None:
    """Levels 1–3 agree within 4× and the first differences change sign: ECnoise reports level
    1, as the published code does, whatever the levels past the window show. Two tables whose
    later levels vanish: white noise whose 6th difference happens to be 0, and t³ − 8t at
    t = −3…3 (levels 5.34, 3.46, 1.34, then 0 from the 4th on: a cubic, within 4×)."""
    want = _ecnoise_reference([float(v) for v in table])
    assert want[1] == 1 and want[0] > 0.1
    got = ecnoise(table)
    assert got[1] == 1 and got[0] == pytest.approx(want[0], rel=1e-12)


def test_an_output_of_flags_adds_nothing_to_the_rounding_floor() -> None:
    """The last layer outputs booleans (θ > 0), summed with weights 1e-3: the loss rounds
    numbers of size |L| only, so the floor is u·|L| = u·3e-3; a flag's "magnitude" 1 is not a
    number the loss's arithmetic works on (counting it would make the floor u, 300× larger)."""
    x = np.array([0.5, -0.25, 0.75, 2.0])
    net = Network([Elementwise(lambda t: t > 0)], WeightedSum(np.full(4, 1e-3)), x=x,
                  trusted=[False])  # fmt: skip
    net.loss_value(x)
    net.backward()
    pert = Perturber(net, x)
    assert float(pert.f0) == pytest.approx(3e-3, rel=1e-12)
    assert rounding_floor(pert, 2.0**-53) == 2.0**-53 * float(pert.f0)


class Flatten1000:
    """out = 1000·x flattened (a shape of its own), backward 1000·dout reshaped back."""

    row_independent = False

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.shape = x.shape
        return 1000 * x.reshape(-1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return 1000 * dout.reshape(self.shape)


def test_the_rounding_floor_weighs_the_prediction_by_the_losss_own_gradient() -> None:
    """θ (4×5) → θ → 1000·θ flattened to 20 values, summed with weights ±1 that cancel
    (L = 0): the loss sums 20 terms of size 1000, so the floor is u·Σ|pred ⊙ ∂L/∂pred| =
    20000u, read from the gradient at the prediction (shape (20,)), not at the first layer's
    output (shape (4, 5), 1000× larger)."""
    x = np.ones((4, 5))
    w = np.where(np.arange(20) % 2 == 0, 1.0, -1.0)
    net = Network([Fn(lambda v: v, np.ones_like), Flatten1000()], WeightedSum(w), x=x,
                  trusted=[False, False])  # fmt: skip
    net.loss_value(x)
    net.backward()
    pert = Perturber(net, x)
    assert float(pert.f0) == 0.0
    assert rounding_floor(pert, 2.0**-53) == 20000 * 2.0**-53


def test_a_loss_gradient_of_another_shape_is_not_paired_with_the_prediction() -> None:
    """L = 1·Σ pred with the weight a 0-d array (its gradient a broadcast scalar, not one per
    entry), pred = ±1 cancelling (L = 0): no entrywise product pred ⊙ ∂L/∂pred exists, so the
    floor is u·max(|L|, max|pred|) = u, not u·Σ|pred| = 20u from broadcasting the scalar."""
    x = np.where(np.arange(20).reshape(4, 5) % 2 == 0, 1.0, -1.0)
    net = Network([Fn(lambda v: v, np.ones_like)], WeightedSum(np.array(1.0)), x=x,
                  trusted=[False])  # fmt: skip
    net.loss_value(x)
    net.backward()
    pert = Perturber(net, x)
    assert float(pert.f0) == 0.0 and np.shape(net.douts[-1]) == ()
    assert rounding_floor(pert, 2.0**-53) == 2.0**-53


def test_the_noise_search_of_a_zero_tensor_reaches_down_to_1e10_u() -> None:
    """θ = 0: the reach is 1e10·u·1 ≈ 1.1e-6 (the tensor's size counts as 1). Noise at every
    step from h0 = 1e-3: the level holds at 1e-3, 6.3e-5, 3.9e-6 (all above the reach) and is
    accepted at the 4th table, 2.4e-7: 24 evaluations."""
    found = _search_at(np.zeros((2, 3)), lambda h: 1e-6, 1e-3)
    assert found.measured > 0 and found.evaluations == 24, found


@pytest.mark.parametrize("h0, sigma", [(0.01, 0.0), (1.6e-299, 1e-6)])
def test_the_noise_search_takes_steps_strictly_between_1e_300_and_1(
    h0: float, sigma: float
) -> None:
    """A flat table at 0.01 climbs ×100 to exactly 1.0, a noisy one at 1.6e-299 goes ÷16 to
    exactly 1e-300 (both exact in binary): neither bound is a step the search takes (a step of
    1 is no longer local, 1e-300 is where steps underflow), so it stops after the one table (6
    evaluations) with the rounding floor."""
    found = _search_at(np.zeros((2, 3)), lambda h: sigma, h0)
    assert found.measured == 0.0 and found.evaluations == 6, found


def test_a_table_with_one_value_not_finite_is_retreated_from_like_an_unfinite_one() -> None:
    """θ = 0, from 1e-3: noise 1e-6 in the first table; the second (6.25e-5) has one value
    NaN: the search retreats ÷100 to 6.25e-7 and starts over, as from a table with no finite
    value (not ÷16 as from a smooth one). Below 1e-6 the noise is 1e-4 and holds over 6.25e-7,
    3.9e-8, 2.4e-9 (under the reach 1.1e-6): accepted after 5 tables, 30 evaluations (÷16
    would have seen 1e-6 once more at 3.9e-6 and needed a 6th table)."""
    one_nan = np.array([1.0, 1.0, 1.0, 1.0, 1.0, np.nan])

    def sigma(h: float) -> Any:
        if 1e-5 < h < 1e-4:
            return 1e-6 * one_nan
        return 1e-6 if h > 1e-6 else 1e-4

    found = _search_at(np.zeros((2, 3)), sigma, 1e-3)
    level = _search_at(np.zeros((2, 3)), lambda h: 1e-4, 1e-3).measured
    assert found.measured == level and found.evaluations == 30, found


@pytest.mark.parametrize("h0", [1.01e-294, 0.99e-292])
def test_a_loss_not_finite_anywhere_is_searched_in_steps_of_exactly_100(h0: float) -> None:
    """Every table non-finite: the search retreats ÷100 a table while the step stays above
    1e-300, 4 tables from either start: 1.01e-294 … 1.01e-300 (just above; ÷101 would reach
    9.8e-301 at the 4th and stop after 3), 0.99e-292 … 0.99e-298 (the next, 0.99e-300, is
    just below; ÷99 would reach 1.03e-300 and take a 5th)."""
    found = _search_at(np.zeros((2, 3)), lambda h: np.nan, h0)
    assert found.measured == 0.0 and found.evaluations == 24, found


_K = np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0])


def _linear(h: float) -> np.ndarray:
    """For ``_search_at``: a table f0 + k·p, p = h rounded to a power of 2, so that the table is
    exactly linear (no rounding in it that ECnoise would rightly call noise): smooth, info 3."""
    return np.asarray((-1.0) ** _K * _K * 2.0 ** np.round(np.log2(h)))


@pytest.mark.parametrize(
    "kind, h0, tables",
    [
        ("flat", 0.99e-4, 3),
        ("flat", 1.01e-4, 2),
        ("smooth", 1.01e-294, 4),
        ("smooth", 0.99e-292, 4),
    ],
)
def test_the_search_moves_exactly_100x_from_a_flat_or_smooth_table(
    kind: str, h0: float, tables: int
) -> None:
    """No level anywhere: a flat table (L unchanged) climbs ×100, a smooth one (L = f0 + k·p,
    linear) descends ÷100, until the step leaves (1e-300, 1). Flat from 0.99e-4: 0.99e-2, 0.99,
    then 99 (3 tables; ×101 would pass 1 at the 3rd); from 1.01e-4: 1.01e-2, then 1.01 (2; ×99
    would take 0.99). Smooth: 1.01e-294 … 1.01e-300 and 0.99e-292 … 0.99e-298 (4 tables each;
    ÷101, ÷99 would take 3 and 5)."""
    shape = (lambda h: 0.0) if kind == "flat" else _linear
    found = _search_at(np.zeros((2, 3)), shape, h0)
    assert found.measured == 0.0 and found.evaluations == 6 * tables, found


@pytest.mark.parametrize("ratio", [4.0, 0.25])
def test_a_level_that_changes_by_exactly_4x_still_holds(ratio: float) -> None:
    """θ = 0 (reach 1.1e-6), from 1e-3: noise 1e-6 at 1e-3 and 6.25e-5, then exactly 4× (or
    ¼ of) it from 3.9e-6 on (ECnoise's level scales exactly with a power of 2): within 4×,
    inclusive, so the count goes on and the level is accepted at the 4th table, 2.4e-7 (24
    evaluations), at the largest value it held at."""
    found = _search_at(np.zeros((2, 3)), lambda h: 1e-6 if h > 1e-5 else 1e-6 * ratio, 1e-3)
    one = _search_at(np.zeros((2, 3)), lambda h: 1e-6, 1e-3).measured
    assert found.evaluations == 24, found
    assert found.measured == max(1.0, ratio) * one, (found, one)


@pytest.mark.parametrize("start, tables", [(16.0**3, 4), (16.0**4 * 1.01, 6), (16.0**4 * 0.99, 5)])
def test_a_level_is_accepted_at_the_first_step_within_the_reach(start: float, tables: int) -> None:
    """θ = 0: the reach is 1e10·u. Noise at every step from h0 = start·reach, ÷16 a table: from
    16³·reach the 4th table's step is the reach itself (exact in binary), which counts as
    reached; from 1.01·16⁴·reach the 5th is 1.01·reach, just outside, so the 6th; from
    0.99·16⁴·reach the 5th (÷17 or ÷15 a table would each take another count)."""
    reach = 1e10 * 2.0**-53
    found = _search_at(np.zeros((2, 3)), lambda h: 1e-6, start * reach)
    assert found.measured > 0 and found.evaluations == 6 * tables, found


def test_a_level_seen_from_afar_is_dropped_for_good_and_the_search_stays_bounded() -> None:
    """θ = 0, from 1e-3: noise at 1e-3 only, L exactly linear below: the level is dropped at
    the smooth table (6.25e-5), and every later smooth table is one spent looking, ÷100 each:
    6 such tables in all, then the floor (7 tables, 42 evaluations; a level not quite dropped
    would go ÷16 without counting, to all 16 tables)."""
    found = _search_at(np.zeros((2, 3)), lambda h: 1e-6 if h > 1e-4 else _linear(h), 1e-3)
    assert found.measured == 0.0 and found.evaluations == 42, found


@pytest.mark.parametrize("below, tables", [(3.87e-6, 6), (3.95e-6, 5)])
def test_after_a_dropped_level_the_search_goes_on_16x_finer(below: float, tables: int) -> None:
    """θ = 0 (reach 1.1e-6), from 1e-3: noise at 1e-3, L exactly linear at 6.25e-5 (the level
    is dropped there), noise again below ``below``. The next table is at 6.25e-5/16 = 3.906e-6:
    just above 3.87e-6 it is smooth (÷100 on, the level held at 3.9e-8, 2.4e-9, 1.5e-10: 6
    tables), just below 3.95e-6 it is noise (held at 3.9e-6, 2.4e-7, 1.5e-8: 5 tables); ÷17 or
    ÷15 would fall on the other side of each."""

    def sigma(h: float) -> Any:
        return 1e-6 if h > 1e-4 or h < below else _linear(h)

    found = _search_at(np.zeros((2, 3)), sigma, 1e-3)
    assert found.measured > 0 and found.evaluations == 6 * tables, found


@pytest.mark.parametrize("size", [0.0, 1e11])
def test_a_level_held_down_to_where_l_stops_changing_is_used_if_above_the_floor(
    size: float,
) -> None:
    """Noise 1e-6 at 1e-3 and 6.25e-5, then L stops changing: the level held over 2 tables is
    accepted (18 evaluations), and the level used is the larger of it and the rounding floor:
    at θ = 0 the floor is 0 and the measured level is used; at θ = ±1e11 (L = Σθ = 0, but the
    prediction holds values of 1e11) the floor u·1e11 ≈ 1.1e-5 is above the measured 1.2e-6."""
    x = size * np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]])
    found = _search_at(x, lambda h: 1e-6 if h > 1e-5 else 0.0, 1e-3)
    assert found.measured > 0 and found.evaluations == 18, found
    assert found.level == max(found.measured, found.floor)
    assert (found.level > found.floor) == (size == 0.0), found


# -- the wide stencil ----------------------------------------------------------------------------


def test_the_wide_stencil_costs_44_evaluations_an_entry() -> None:
    """The documented cost (docs/error-model.md): steps s/8 … s/4096 at ratio 2 and k = 1…4
    share their multiples k·h, 22 distinct offsets, each taken on both sides."""
    assert wide_evaluations(1) == 44
    assert wide_evaluations(5) == 5 * 44


def test_the_wide_stencils_steps_scale_with_theta_like_the_ladders() -> None:
    """L = 3·Σθ: every estimate is 3 and the bound is the rounding term alone,
    NOISE_FACTOR·2·ε_f·Σ|w|/h, at the coarsest step with neighbours on both sides, s/16, where
    s = 4^round(log₄ max(1, |θ|)) as on the ladder: s = 64 at θ = 100 and −37.5, 4 at 3 and
    2.5, 1 at 1.5 and 0. The steps are exact multiples of s, so nothing is skewed."""
    x = np.array([100.0, -37.5, 3.0, 2.5, 1.5, 0.0])
    net = Network([Elementwise(lambda t: 3 * t)], WeightedSum(np.ones_like(x)), x=x,
                  trusted=[False])  # fmt: skip
    noise = 1e-10
    c = wide(Perturber(net, x), net.parameters()[0], np.arange(x.size), noise, 2.0**-53)
    np.testing.assert_allclose(c.numeric, 3.0, rtol=1e-15)
    assert c.step.tolist() == [4.0, 4.0, 0.25, 0.25, 1 / 16, 1 / 16]
    want = NOISE_FACTOR * 2 * noise * np.abs(WIDE_WEIGHTS).sum() / c.step
    np.testing.assert_allclose(c.error, want, rtol=1e-12)
