"""Survivors of the verdict-room mutation sample (issue 28, seed 28): each test pins a behaviour
a mutant changed without any test noticing. Small and quick: NumPy on arrays, or one tiny check."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from gradcheck_cli import check_layer
from gradcheck_cli.verdict.diagnosis import Context, diagnose
from tests.test_mutants_verdict import Relu

TOL = 1e-6


def _n(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A numeric gradient with every entry well away from 0 (|n| ≥ 0.5)."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(0.5, 2.0, shape)
    return v * np.where(rng.random(shape) < 0.5, -1.0, 1.0)


# -- diagnosis -----------------------------------------------------------------------------------


def test_exact_agreement_at_zero_tolerance_is_nothing_to_diagnose() -> None:
    """A tolerance of 0 occurs where a, n and every bound are 0 (a dead unit): a = n there is
    agreement, not a failure to explain."""
    n = np.array([0.0, 0.0, 1.0, -2.0])
    assert diagnose(n.copy(), n, np.array([0.0, 0.0, TOL, TOL]), Context("W")) is None
    z = np.zeros(4)
    assert diagnose(z.copy(), z, np.zeros(4), Context("W")) is None


@pytest.mark.parametrize("shape, axes", [((5,), (0,)), ((3, 4), (1,)), ((4, 3), (0,))])
def test_a_gradient_reversed_along_one_axis_is_a_flip(
    shape: tuple[int, ...], axes: tuple[int, ...]
) -> None:
    """A 1-D kernel reversed (convolution vs cross-correlation) or one axis reversed: a flip
    along that one axis, named by it."""
    n = _n(shape)
    found = diagnose(np.flip(n, axes).copy(), n, np.full(shape, TOL), Context("W"))
    assert found is not None and found.kind == "layout", found
    assert found.params == {"map": f"numeric flipped along axes {axes}"}


def test_an_offset_along_an_axis_needs_more_departing_entries_than_offsets_fitted() -> None:
    """a − n constant down each column: one offset per active column is fitted, so it is
    evidence only when at least (active columns + 2) entries depart from n. A (2, 1) tensor
    (1 offset, 2 entries) is not; two shifted columns of a (2, 6) tensor (2 offsets, 4 entries)
    are — the columns left alone are not fitted numbers."""
    rng = np.random.default_rng(0)
    n = rng.uniform(0.5, 2, (2, 1))
    assert diagnose(n + 0.3, n, np.full(n.shape, TOL), Context("W")) is None
    n = rng.uniform(0.5, 2, (2, 6))
    a = n.copy()
    a[:, [1, 4]] += [0.3, 0.7]
    found = diagnose(a, n, np.full(n.shape, TOL), Context("W"))
    assert found is not None and found.kind == "axis" and found.params == {"axis": 0}, found


def test_few_wrong_entries_are_named_only_when_every_entry_was_checked() -> None:
    """One entry not checked (numeric NaN): the error may sit there too; no "confined to"."""
    n = _n((4, 5))
    a = n.copy()
    a[1, 2] += 0.5
    full = diagnose(a, n, np.full(n.shape, TOL), Context("W"))
    assert full is not None and full.kind == "few_entries"
    n[3, 3] = np.nan
    assert diagnose(a, n, np.full(n.shape, TOL), Context("W")) is None


# -- floors: the analytic side's rounding --------------------------------------------------------


class Affine:
    """out = x·W + b with W, b of few mantissa bits; a correct backward."""

    row_independent = True

    def __init__(self, dtype: str) -> None:
        self.params = {"W": np.array([[1.5, -0.5], [2.0, 0.75], [-1.25, 3.0]], dtype=dtype),
                       "b": np.array([0.5, -1.0], dtype=dtype)}  # fmt: skip
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": self.x.T @ dout, "b": dout.sum(axis=0)}
        return dout @ self.params["W"].T


@pytest.mark.parametrize("dtype, u", [("float64", 2.0**-53), ("float32", 2.0**-24)])
def test_the_input_jitter_moves_dw_by_exactly_four_units_of_roundoff(dtype: str, u: float) -> None:
    """x·(1 ± 4u) on powers of two is exact, and so is dW = xᵀ·g for powers of two: dW moves by
    exactly 4u·|x g| (either sign), while db and dx do not depend on x (0). The caches are left
    at x and the douts as they were."""
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.verdict.floors import jitter_gradients

    x = np.array([[1.0, -0.5, 2.0]], dtype=dtype)
    g = np.array([[0.5, -4.0]], dtype=dtype)
    net = Network([Affine(dtype)], WeightedSum(g), x=x, trusted=[False])
    net.loss_value(x)
    net.backward()
    douts = net.douts
    moved = jitter_gradients(net, x, dtype)
    assert moved is not None
    dx, grads = moved
    np.testing.assert_array_equal(grads[0]["W"], 4 * u * np.abs(x.T @ g).astype(np.float64))
    np.testing.assert_array_equal(grads[0]["b"], 0.0)
    np.testing.assert_array_equal(dx, 0.0)
    assert net.douts is douts and np.array_equal(net.inputs[0], x)
    assert jitter_gradients(net, np.array([[1, 0, 2]]), dtype) is None  # integer ids: no jitter


def test_the_backward_scale_is_the_upstream_times_the_input_at_least_one() -> None:
    """S_ℓ = max_{m ≥ ℓ} max|dout_m| · max(1, max|input_ℓ|); the input's S uses layer 0's
    upstream × its parameters, a parameter's its layer's S (documented closed forms)."""
    from gradcheck_cli.engine.network import Network, ParamRef
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.verdict.floors import backward_scales, tensor_scale

    for xs, first in [(0.25, 1.0), (8.0, 8.0)]:
        x = np.array([[xs, -0.5 * xs, 0.125 * xs]])
        g = np.array([[0.5, -4.0]])
        net = Network([Affine("float64")], WeightedSum(g), x=x, trusted=[False])
        net.loss_value(x)
        net.backward()
        scales = backward_scales(net)
        assert scales == [4.0 * first]
        assert tensor_scale(net, ParamRef("W", 0, "W"), scales) == 4.0 * first
        assert tensor_scale(net, ParamRef("input", 0, None), scales) == 4.0 * 3.0  # max|W| = 3


class Gated:
    """out = x + relu(θ − 1): at θ = 0.5 only a replacement above 1 changes the output."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"t": np.full(3, 0.5)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x + np.maximum(self.params["t"] - 1.0, 0.0)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"t": (dout * (self.params["t"] > 1.0)).sum(axis=0)}
        return dout


def test_a_parameter_read_through_a_gate_is_read() -> None:
    """not_read replaces θ by 2θ + 1, −θ − 1 and 0: a layer whose output changes only for a
    θ above 1 does read its parameter (2·0.5 + 1 = 2 shows it); one that keeps a copy does not."""
    from gradcheck_cli.engine.network import Network, ParamRef
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.verdict.floors import not_read

    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 0.25]])
    layer = Gated()
    net = Network([layer], WeightedSum(np.ones_like(x)), x=x, trusted=[False])
    pert = Perturber(net, x)
    assert not_read(pert, ParamRef("t", 0, "t"), (3,)) is None
    assert np.array_equal(layer.params["t"], np.full(3, 0.5))  # restored
    layer.forward = lambda x: x + 0.0  # type: ignore[method-assign]  # reads nothing
    found = not_read(pert, ParamRef("t", 0, "t"), (3,))
    assert found is not None and found.verdict == "fail"
    assert "does not change the layer's output at all" in (found.reason or "")


# -- judge: the second look and the labels of failing entries ------------------------------------


class Fn:
    """out = f(x) elementwise, backward dout·df(x)."""

    row_independent = True

    def __init__(self, f: Any, df: Any) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.f, self.df = f, df

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.asarray(self.f(x))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.asarray(dout * self.df(self.x))


def test_every_entry_of_a_large_correct_tensor_gets_its_second_look() -> None:
    """sin(kx)/k, k = 1e3, on 320 entries: the first step's truncation (k²ε²/6 ≈ 2e-5 relative)
    puts every entry beyond rtol, so all 320 need a second look — more than one chunk of them.
    Every chunk is looked at (a passing chunk is no reason to stop): the tensor passes."""
    k = 1e3
    x = np.random.default_rng(0).uniform(-1, 1, (20, 16))
    res = check_layer(Fn(lambda v: np.sin(k * v) / k, lambda v: np.cos(k * v)), x, seed=0)
    (p,) = res.params
    assert p.refined == 320 and p.verdict == "pass" and res.passed, p
    assert p.rel_error < 1e-6


def test_only_a_failing_entry_where_l_is_flat_is_labelled_spurious() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (4, 5))
    relu = check_layer(Fn(lambda v: np.maximum(v, 0), np.ones_like), x, seed=0)
    (p,) = relu.params
    assert p.verdict == "fail" and p.worst
    assert all(e.label == "spurious (L is flat here)" and e.numeric == 0.0 for e in p.worst)
    doubled = check_layer(Fn(np.sin, lambda v: 2 * np.cos(v)), x, seed=0)
    (p,) = doubled.params
    assert p.verdict == "fail" and p.worst
    assert all(e.label == "" and abs(e.numeric) > 0.1 for e in p.worst), p.worst


def test_a_loss_that_is_identically_zero_is_resolved_to_zero_under_the_complex_step() -> None:
    """dout = 0: L ≡ 0, every gradient, estimate and bound is exactly 0 (the complex step has no
    rounding to add): a zero verdict resolved to 0, not an unresolved (inf) one — it passes
    under --strict."""
    x = np.random.default_rng(0).uniform(-1, 1, (4, 5))
    res = check_layer(Fn(np.sin, np.cos), x, seed=0, dout=np.zeros((4, 5)), method="complex",
                      strict=True)  # fmt: skip
    (p,) = res.params
    assert p.verdict == "zero" and p.resolution == 0.0 and res.passed, p


@pytest.mark.parametrize("scale", [1.0, 1e3])
@pytest.mark.parametrize("at_zero, verdict", [(1 + 5e-4, "kink"), (1 + 2e-3, "fail")])
def test_at_a_kink_the_slopes_are_widened_by_rtol_relative_to_the_value(
    scale: float, at_zero: float, verdict: str
) -> None:
    """ReLU at 0 with dout = s (slopes 0 | s, their error bound ~1.4e-5·s): with rtol = 1e-3
    an analytic value within rtol·|a| of the upper slope is a kink at s = 1 and 1e3 (the
    margin scales with |a|); 2·rtol beyond it fails."""
    x = np.array([[0.0, 0.7, -0.4, 0.0], [1.2, 0.0, -2.0, 0.3]])
    res = check_layer(Relu(at_zero), x, seed=0, dout=scale * np.ones_like(x), rtol=1e-3)
    (p,) = res.params
    assert p.verdict == verdict, (p.verdict, p.worst[:1])


# -- noise: a level must hold within 4× from table to table --------------------------------------


def _search_on(sigma: Any, h0: float = 1e-3) -> Any:
    """measure_noise on a loss whose table at step h is f0 + σ(h)·(−1)^k (k = −3…3, k ≠ 0):
    ECnoise's level is exactly proportional to σ(h), so σ sets the level each table shows.
    θ ~ 1e-3 (the floor u·|L| is ~1e-19) and the reach 1e10·u·max|θ| ≈ 1e-9."""
    return _search_at(1e-3 * np.random.default_rng(0).uniform(0.5, 1.0, (2, 3)), sigma, h0)


def _search_at(x: np.ndarray, sigma: Any, h0: float) -> Any:
    """``_search_on`` for the tensor ``x``."""
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.verdict.noise import measure_noise

    net = Network([Fn(lambda v: v, np.ones_like)], WeightedSum(np.ones_like(x)), x=x,
                  trusted=[False])  # fmt: skip
    pert = Perturber(net, x)
    f0 = float(pert.f0)

    def along(ref: Any, v: Any, steps: np.ndarray) -> np.ndarray:
        h = float(np.max(np.abs(steps))) / 3
        k = np.rint(steps / h)
        return np.asarray(f0 + sigma(h) * (-1.0) ** k)

    pert.along = along  # type: ignore[method-assign, assignment]
    return measure_noise(pert, net.parameters()[0], h0, 2.0**-53, 0)


@pytest.mark.parametrize("ratio, tables, level", [(3.5, 6, 3.5), (1 / 3.5, 6, 1.0),
                                                    (4.5, 7, 4.5), (1 / 4.5, 7, 1 / 4.5)])  # fmt: skip
def test_a_level_holds_within_4x_of_the_largest_seen(
    ratio: float, tables: int, level: float
) -> None:
    """Tables at h0·16^−t: σ = 1e-6 for t ≤ 3, then σ·ratio. The reach 1e10·u·max|θ| is first
    met at t = 5, where a level that has held over ≥ 3 tables is accepted (at the largest
    value it held at). A change within 4× (3.5×, 1/3.5) keeps the count; beyond 4× (4.5×,
    1/4.5) the earlier level was L's shape seen from afar: the count restarts at t = 4, and
    the new level is accepted at t = 6 (one table of 6 evaluations more)."""
    h0, sig = 1e-3, 1e-6
    x_max = float((1e-3 * np.random.default_rng(0).uniform(0.5, 1.0, (2, 3))).max())
    reach = 1e10 * 2.0**-53 * x_max
    assert h0 / 16**5 <= reach < h0 / 16**4  # the precondition of the numbers below

    found = _search_on(lambda h: sig if h > h0 / 16**3.5 else sig * ratio, h0)
    assert found.evaluations == 6 * tables, found
    one = _search_on(lambda h: sig, h0).measured  # the level σ = 1e-6 shows
    assert found.measured == pytest.approx(level * one, rel=1e-9, abs=0), (found, one)


@pytest.mark.parametrize("flat_at, accepted", [(2, True), (1, False)])
def test_a_level_that_held_down_to_where_l_stops_changing_is_noise(
    flat_at: int, accepted: bool
) -> None:
    """σ = 1e-6 down to table flat_at − 1, then L stops changing (every value equals L(θ)):
    a level that held over 2 tables down to there is accepted without reaching the reach (3
    tables, 18 evaluations); one table alone is not a level."""
    h0, sig = 1e-3, 1e-6
    found = _search_on(lambda h: sig if h > h0 / 16 ** (flat_at - 0.5) else 0.0, h0)
    if accepted:
        one = _search_on(lambda h: sig, h0).measured
        assert found.measured == one and found.evaluations == 18, found
    else:
        assert found.measured == 0.0, found


# -- outcomes: how the closing line counts a tensor ----------------------------------------------


@pytest.mark.parametrize(
    "verdict, passed, cut, want",
    [
        ("fail", False, None, "disagree"),
        ("pass", True, None, "agree"),
        ("zero", True, None, "zero here"),
        ("pass", False, None, "disagree"),  # a pass overruled (e.g. a contract): disagrees
        ("zero", False, None, "disagree"),
        ("kink", True, None, "at a kink"),
        ("kink", False, None, "at a kink"),  # --strict: not passed, still a kink, not a bug
        ("inconclusive", True, None, "inconclusive"),
        ("inconclusive", False, None, "inconclusive"),
        ("pass", True, "budget", "partly checked (budget)"),
        ("pass", False, "budget", "partly checked (budget)"),  # --strict fails a cut tensor
        ("zero", False, "budget", "partly checked (budget)"),
        ("not checked", False, "budget", "not checked (budget)"),
    ],
)  # fmt: skip
def test_each_tensor_is_counted_by_its_outcome(
    verdict: str, passed: bool, cut: str | None, want: str
) -> None:
    from gradcheck_cli.results import ParamResult
    from gradcheck_cli.verdict.outcomes import count_outcomes, outcome

    p = ParamResult("W", (2,), passed, 0.0, 0.0, 2, 0, verdict=verdict, cut=cut)
    assert outcome(p) == want
    assert count_outcomes([p, p]) == {want: 2}


def test_outcomes_are_counted_in_the_closing_lines_order() -> None:
    from gradcheck_cli.results import ParamResult
    from gradcheck_cli.verdict.outcomes import count_outcomes

    made = [ParamResult(str(i), (2,), v != "fail", 0.0, 0.0, 2, 0, verdict=v)
            for i, v in enumerate(["kink", "pass", "fail", "kink", "zero", "inconclusive"])]  # fmt: skip
    counted = count_outcomes(made)
    assert list(counted.items()) == [("disagree", 1), ("agree", 1), ("zero here", 1),
                                     ("at a kink", 2), ("inconclusive", 1)]  # fmt: skip


# -- steps: a step L does not see ----------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("apart, dropped", [(0.05, True), (0.2, False)])
def test_unseen_steps_are_dropped_where_two_seen_steps_show_a_slope_at_any_scale(
    scale: float, apart: float, dropped: bool
) -> None:
    """Four steps, finest first: L unchanged at the two finest (swallowed by rounding inside),
    moving on both sides at the two coarser with estimates s and s·(1 + apart). Within 10 % of
    each other (relative: at any size s) they show a slope, so the unchanged steps are no
    evidence of a flat L and are made unusable; 20 % apart they are not a slope and L keeps
    its flat steps."""
    from gradcheck_cli.verdict.steps import Ladder

    h = np.array([[1e-9, 4e-9, 1.6e-8, 6.4e-8]])
    f0 = 1.0
    slope = scale * np.array([[0.0, 0.0, 1.0, 1.0 + apart]])
    lad = Ladder(h=h, fp=f0 + slope * h, fm=f0 - slope * h, hp=h, hm=h, f0=f0,
                 valid=np.ones_like(h, dtype=bool), moved=slope != 0)  # fmt: skip
    seen = lad.seen()
    want = [[not dropped, not dropped, True, True]]
    np.testing.assert_array_equal(seen.valid, want)


@pytest.mark.parametrize("levels", [1, 2, 4, 6])
def test_a_step_function_seen_from_afar_is_unreached_even_next_to_an_unusable_step(
    levels: int,
) -> None:
    """D(h) = c/h (a bend far finer than every step) over `levels` steps ×4 apart, the coarsest
    unusable (L not finite there): with three usable levels in a row it is unreached (the
    ladder must go finer); with fewer there is no evidence either way (not unreached). A
    converged slope (D constant) is never unreached."""
    from gradcheck_cli.verdict.steps import Ladder, unreached

    h = 1e-6 * 4.0 ** np.arange(levels)[None, :]
    valid = np.ones_like(h, dtype=bool)
    valid[0, -1] = False
    rows = []
    for d in (1e-3 / h, np.full_like(h, 2.0)):
        rows.append(Ladder(h=h, fp=1.0 + d * h, fm=1.0 - d * h, hp=h, hm=h, f0=1.0,
                           valid=valid))  # fmt: skip
    assert list(unreached(rows[0])) == [levels - 1 >= 3]
    assert list(unreached(rows[1])) == [False]


def test_a_kink_needs_three_consecutive_resolvable_steps() -> None:
    """One-sided slopes 1 | 0 at every step (a ReLU at 0): a kink with those slopes when the
    three finest steps are usable; one unusable step among them (L not finite there) is no
    evidence — no kink is claimed from the finest run."""
    from gradcheck_cli.verdict.steps import Ladder, kink_at

    h = 1e-8 * 4.0 ** np.arange(5)[None, :]
    lad = Ladder(h=h, fp=1.0 + h, fm=np.ones_like(h), hp=h, hm=h, f0=1.0,
                 valid=np.ones_like(h, dtype=bool))  # fmt: skip
    found = kink_at(lad, 0, 1e-20)
    assert found is not None and found[:2] == pytest.approx((0.0, 1.0), abs=1e-7)
    for hole in (1, 2):
        valid = np.ones_like(h, dtype=bool)
        valid[0, hole] = False
        assert kink_at(replace(lad, valid=valid), 0, 1e-20) is None


def test_a_failing_tensor_stops_its_second_look_after_one_chunk_of_256() -> None:
    """sin(kx)/k, k = 1e3, with a backward 2× too large, on 320 entries: all need a second
    look; the first chunk (256 entries, worst first) confirms the failure, so the other 64 are
    not re-estimated — they keep the first look's central difference, whose relative error is
    k²ε²/6 (ε = 1e-5) in closed form, while the 256 are resolved by the ladder."""
    k = 1e3
    x = np.random.default_rng(0).uniform(-1, 1, (20, 16))
    res = check_layer(Fn(lambda v: np.sin(k * v) / k, lambda v: 2 * np.cos(k * v)), x, seed=0,
                      dout=np.ones_like(x))  # fmt: skip
    (p,) = res.params
    assert p.verdict == "fail" and p.refined == 320 and p.numeric is not None
    rel = np.abs(p.numeric - np.cos(k * x)) / np.abs(np.cos(k * x))
    assert int(np.sum(rel < 1e-7)) == 256
    first = rel[rel >= 1e-7]
    np.testing.assert_allclose(first, (k * 1e-5) ** 2 / 6, rtol=1e-3)


@pytest.mark.parametrize("levels", [1, 2, 3, 4, 5])
def test_a_noise_level_is_contradicted_only_by_three_pairs_in_a_row(levels: int) -> None:
    """D(h) = 1 + δ·(j + 1) at steps h_j = 1e-6·4^j (|ΔD| = δ = 1e-12 for each pair): far better
    agreement than a claimed noise of 1 allows. With ≥ 4 levels (three pairs in a row) the
    level becomes the least run's largest |ΔD|/(1/h + 1/h') = δ·h_{j+1}·4/5 (the finest run:
    j = 1 for its coarsest pair) and is not trusted; with fewer, nothing contradicts it."""
    from gradcheck_cli.verdict.steps import Ladder, verified_noise

    h = 1e-6 * 4.0 ** np.arange(levels)[None, :]
    d = 1.0 + 1e-12 * (np.arange(levels)[None, :] + 1)
    lad = Ladder(h=h, fp=d * h, fm=-d * h, hp=h, hm=h, f0=0.0, valid=np.ones_like(h, dtype=bool))
    eps, trusted = verified_noise(lad, 1.0, 2.0**-53)
    if levels >= 4:
        assert not trusted[0]
        np.testing.assert_allclose(eps[0], 1e-12 * h[0, 2] * 4 / 5, rtol=1e-3)
    else:
        assert trusted[0] and eps[0] == 1.0


@pytest.mark.parametrize("third, kink", [(1.0, True), (1.9, True), (4.0, False), (0.25, False)])
def test_a_kink_gap_must_stay_between_both_pairs_of_the_three_finest_steps(
    third: float, kink: bool
) -> None:
    """One-sided gap g at the two finest steps and g·third at the third: a smooth L's gap
    shrinks 4× per finer step and a steeper function's grows: only a gap that stays within 2×
    over both pairs (finest/second and second/third) is a kink."""
    from gradcheck_cli.verdict.steps import Ladder, kink_at

    h = 1e-8 * 4.0 ** np.arange(5)[None, :]
    gap = np.array([[1.0, 1.0, third, third, third]])
    lad = Ladder(h=h, fp=1.0 + (0.5 + gap) * h, fm=1.0 - 0.5 * h, hp=h, hm=h, f0=1.0,
                 valid=np.ones_like(h, dtype=bool))  # fmt: skip
    assert (kink_at(lad, 0, 1e-20) is not None) == kink


# -- attribution: re-checks of each layer alone --------------------------------------------------


class Embed:
    """Integer ids → rows of a table (the ids get no gradient)."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"E": np.random.default_rng(2).standard_normal((5, 3))}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return self.params["E"][x[:, 0]]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        g = np.zeros_like(self.params["E"])
        np.add.at(g, self.x[:, 0], dout)
        self.grads = {"E": g}
        return np.zeros(self.x.shape)


def test_attribution_rechecks_every_layer_with_its_input_kind_and_restores_the_caches() -> None:
    """Each layer is re-checked on its own cached input with the upstream gradient it got:
    integer ids at layer 0 are ids only when the check took them as ids (``discrete``); a
    re-check that raises is a note, never a verdict; the network's caches are those of the
    unperturbed pass afterwards."""
    from gradcheck_cli import check_network
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.verdict.attribution import with_attribution

    ids = np.array([[0], [3], [1], [3]])
    g = np.random.default_rng(0).standard_normal((4, 3))
    net = Network([Embed(), Fn(np.tanh, lambda v: 1 - np.tanh(v) ** 2)], WeightedSum(g), x=ids,
                  trusted=[False, False], discrete=True)  # fmt: skip
    result = check_network(net, attribute=False)
    assert result.passed
    net.loss_value(ids)
    before = [np.array(a, copy=True) for a in net.inputs]
    seen: list[tuple[int, bool, np.ndarray, np.ndarray]] = []

    def check_one(single: Network) -> Any:
        seen.append((len(seen), single.discrete, np.asarray(single.x), single.loss.g))
        if len(seen) == 2:
            raise ValueError("boom\nmore")
        return check_network(single, attribute=False)

    net.loss_value(ids + 1)  # caches elsewhere: attribution starts from the unperturbed pass
    out = with_attribution(result, net, check_one, discrete=True)
    assert [s[1] for s in seen] == [True, False]
    np.testing.assert_array_equal(seen[0][2], ids)
    np.testing.assert_array_equal(seen[1][2], before[1])  # layer 1 on its cached input
    np.testing.assert_array_equal(seen[1][3], g)  # with the upstream gradient it got
    assert out.attribution == ()
    assert out.notes[-1] == ("attribution: layer 1 (Fn) could not be re-checked alone (boom); "
                             "the verdict above stands")  # fmt: skip
    assert out.passed == result.passed
    for a, b in zip(net.inputs, before, strict=True):
        np.testing.assert_array_equal(a, b)
    seen.clear()
    with_attribution(result, net, lambda s: seen.append((0, s.discrete, s.x, s.x)) or result)
    assert [s[1] for s in seen] == [False, False]  # ids not taken as ids by the check


def test_missing_slices_are_named_as_a_user_reads_them() -> None:
    """Whole slices where the gradient is 0: columns of a matrix, a channel of NCHW, an index of
    another axis; scattered entries beyond five are elided with '…'."""
    n = _n((4, 5))
    a = n.copy()
    a[:, [1, 3]] = 0.0
    found = diagnose(a, n, np.full(n.shape, TOL), Context("W"))
    assert found is not None and found.params == {"entries": 8, "axis": 1, "slices": [1, 3]}
    assert "W is 0 on columns 1, 3 (axis 1) where" in found.sentence
    n4 = _n((2, 3, 2, 2))
    a4 = n4.copy()
    a4[:, 2] = 0.0
    found = diagnose(a4, n4, np.full(n4.shape, TOL), Context("x"))
    assert found is not None and found.params == {"entries": 8, "axis": 1, "slices": [2]}
    assert "x is 0 on channel 2 where" in found.sentence
    n3 = _n((3, 2, 4))
    a3 = n3.copy()
    a3[:, :, 1] = 0.0
    found = diagnose(a3, n3, np.full(n3.shape, TOL), Context("x"))
    assert found is not None and "x is 0 on index 1 of axis 2 where" in found.sentence
    flat = np.zeros(12)
    spur = flat.copy()
    spur[[0, 2, 4, 6, 8, 10, 11]] = 1.0
    found = diagnose(spur, flat, np.full(12, TOL), Context("b"))
    assert found is not None and found.kind == "spurious"
    assert "b is nonzero at 7 entries: [0], [2], [4], [6], [8], … where" in found.sentence


# -- more reported numbers and fingerprints ------------------------------------------------------


def test_the_reported_errors_of_a_doubled_gradient_are_the_closed_form() -> None:
    """a = 2·cos(x), n ≈ cos(x): rel_error = ‖a − n‖ / (‖a‖ + ‖n‖) = 1/3 and max_abs_error =
    max|cos(x)|, to the estimate's accuracy."""
    x = np.random.default_rng(0).uniform(-1, 1, (4, 5))
    res = check_layer(Fn(np.sin, lambda v: 2 * np.cos(v)), x, seed=0, dout=np.ones_like(x))
    (p,) = res.params
    assert p.rel_error == pytest.approx(1 / 3, rel=1e-6)
    assert p.max_abs_error == pytest.approx(float(np.abs(np.cos(x)).max()), rel=1e-6)


def test_entries_at_a_kink_are_shown_within_their_claim() -> None:
    """A ReLU whose backward sends 1 at x == 0 (a one-sided slope): the kink entries disagree
    with the central difference (1/2) by far more than the tolerance, yet their reported ratio
    |a − n|/tol is capped at 1 — their claim is the slopes, which they satisfy."""
    x = np.array([[0.0, 0.7, -0.4, 0.0], [1.2, 0.0, -2.0, 0.3]])
    res = check_layer(Relu(1.0), x, seed=0, dout=np.ones_like(x))
    (p,) = res.params
    assert p.verdict == "kink" and p.ratios is not None
    at = x == 0
    np.testing.assert_array_equal(p.ratios[at], 1.0)
    assert np.all(p.ratios[~at] <= 1.0)


def test_an_unnamed_factor_holds_the_plain_tolerance_below_one() -> None:
    """a = 0.37·n + δ: an unnamed factor below 1 scales no tolerance (max(1, |c|) = 1): δ of
    0.5·tol is a scale, 5·tol is not."""
    n = _n((4, 5))
    sign = np.where(np.random.default_rng(1).random(n.shape) < 0.5, -1.0, 1.0)
    ok = diagnose(0.37 * n + 0.5 * TOL * sign, n, np.full(n.shape, TOL), Context("W", batch=4))
    assert ok is not None and ok.kind == "scale" and "factor" in ok.params
    off = diagnose(0.37 * n + 5 * TOL * sign, n, np.full(n.shape, TOL), Context("W", batch=4))
    assert off is None or off.kind != "scale", off


def test_a_non_square_matrix_in_the_transposed_order_is_a_layout_not_a_transpose() -> None:
    n = _n((3, 4))
    found = diagnose(np.ascontiguousarray(n.T).reshape(3, 4), n, np.full(n.shape, TOL),
                     Context("W"))  # fmt: skip
    assert found is not None and found.kind == "layout", found
    assert found.params == {"map": "numeric.transpose(1, 0).reshape(3, 4)"}


def test_an_axis_offset_is_fitted_from_the_entries_that_are_not_kinks() -> None:
    """Offsets per column of a (2, 3) tensor, the entry [1, 2] a kink (tolerance inf, not used):
    column 2's offset is its one used entry's, and the offset model explains it exactly."""
    rng = np.random.default_rng(0)
    n = rng.uniform(0.5, 2, (2, 3))
    a = n + np.array([0.3, 0.6, 0.9])
    tol = np.full(n.shape, TOL)
    tol[1, 2] = np.inf
    found = diagnose(a, n, tol, Context("W"))
    assert found is not None and found.kind == "axis" and found.params == {"axis": 0}, found


@pytest.mark.parametrize("agree, contradicted", [(5e-4, True), (2e-3, False)])
def test_a_noise_level_is_contradicted_at_a_thousandth_of_it(
    agree: float, contradicted: bool
) -> None:
    """Neighbouring estimates that agree to `agree` × the claimed noise (in |ΔD|/(1/h + 1/h'))
    over three pairs in a row contradict it below 1e-3, not above."""
    from gradcheck_cli.verdict.steps import Ladder, verified_noise

    h = 1e-6 * 4.0 ** np.arange(5)[None, :]
    d = 1.0 + 1e-12 * (np.arange(5)[None, :] + 1)
    lad = Ladder(h=h, fp=d * h, fm=-d * h, hp=h, hm=h, f0=0.0, valid=np.ones_like(h, dtype=bool))
    biggest = 1e-12 * h[0, 2] * 4 / 5  # the largest |ΔD|/(1/h + 1/h') of the first run
    _, trusted = verified_noise(lad, biggest / agree, 2.0**-53)
    assert trusted[0] == (not contradicted)


def test_a_zero_noise_level_is_never_contradicted() -> None:
    """ε_f = 0 (nothing measured): estimates agreeing exactly (|ΔD| = 0) are no contradiction."""
    from gradcheck_cli.verdict.steps import Ladder, verified_noise

    h = 1e-6 * 4.0 ** np.arange(5)[None, :]
    lad = Ladder(h=h, fp=0.5 * h, fm=-0.5 * h, hp=h, hm=h, f0=0.0,
                 valid=np.ones_like(h, dtype=bool))  # fmt: skip
    eps, trusted = verified_noise(lad, 0.0, 2.0**-53)
    assert trusted[0] and eps[0] == 0.0


def test_a_two_entry_gradient_in_reverse_order_is_a_flip() -> None:
    n = np.array([0.7, -1.3])
    found = diagnose(n[::-1].copy(), n, np.full(2, TOL), Context("b"))
    assert found is not None and found.kind == "layout", found
    assert found.params == {"map": "numeric flipped along axes (0,)"}


class WrongDx(Affine):
    """A correct dW, db and a dx of the wrong shape (the chain is broken below it)."""

    def backward(self, dout: np.ndarray) -> np.ndarray:
        super().backward(dout)
        return np.zeros((2, 2))


def test_a_wrong_shaped_dx_fails_the_input_and_the_parameters_are_still_judged() -> None:
    """The input jitter measures dW and db; dx is a reason, not an array, in every run: it is
    left out (no crash), the input fails with the reason, W and b pass."""
    x = np.random.default_rng(0).uniform(-1, 1, (4, 3))
    res = check_layer(WrongDx("float64"), x, seed=0)
    verdicts = {p.name: (p.verdict, p.reason) for p in res.params}
    assert verdicts["input"] == ("fail", "layer 0 (WrongDx).backward returned dx of shape (2, 2), "
                                 "expected the input's shape (4, 3)")  # fmt: skip
    assert verdicts["0.WrongDx.W"][0] == "pass" and verdicts["0.WrongDx.b"][0] == "pass"


class Window:
    """out = x + 1[|θ + 1.5| < 0.1]: reads θ, but only a value near −1.5 changes the output."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"t": np.full(3, 0.5)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x + (np.abs(self.params["t"] + 1.5) < 0.1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout


def test_the_not_read_probe_replaces_theta_by_minus_theta_minus_one() -> None:
    """At θ = 0.5 the replacements 2θ + 1 = 2 and 0 leave this output unchanged; −θ − 1 = −1.5
    changes it: the parameter is read (no contract failure)."""
    from gradcheck_cli.engine.network import Network, ParamRef
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.verdict.floors import not_read

    x = np.array([[1.0, 2.0, 3.0]])
    net = Network([Window()], WeightedSum(np.ones_like(x)), x=x, trusted=[False])
    assert not_read(Perturber(net, x), ParamRef("t", 0, "t"), (3,)) is None


def test_the_rounding_floor_counts_the_terms_the_loss_sums() -> None:
    """L = Σ g ⊙ pred with pred = 1 and g = ±1 cancelling exactly: L = 0 and max|pred| = 1,
    but the loss summed 20 terms of size 1: the floor is u·Σ|pred ⊙ g| = 20u."""
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.verdict.noise import rounding_floor

    x = np.ones((4, 5))
    g = np.where(np.arange(20).reshape(4, 5) % 2 == 0, 1.0, -1.0)
    net = Network([Fn(lambda v: v, np.ones_like)], WeightedSum(g), x=x, trusted=[False])
    net.loss_value(x)
    net.backward()
    pert = Perturber(net, x)
    assert float(pert.f0) == 0.0
    assert rounding_floor(pert, 2.0**-53) == 20 * 2.0**-53


# -- kink evidence bounds, the wide stencil's announced work -------------------------------------


def _kink_ladder(right: float, left: float) -> Any:
    """L(θ) = right·θ for θ > 0, left·θ below, at θ = 0 over steps 1e-8·4^j, finest first."""
    from gradcheck_cli.verdict.steps import Ladder

    h = 1e-8 * 4.0 ** np.arange(6)[None, :]
    return Ladder(h=h, fp=right * h, fm=-left * h, hp=h, hm=h, f0=0.0,
                  valid=np.ones_like(h, dtype=bool))  # fmt: skip


def test_a_kink_gap_is_resolvable_above_twenty_noise_over_h() -> None:
    """Gap 1 between the one-sided slopes: resolvable at step h when 1 > 10·2·ε_f/h. With ε_f
    just below h₃/20 the steps h₃, h₄, h₅ resolve it (a kink); just above, only two do (none)."""
    from gradcheck_cli.verdict.steps import kink_at

    lad = _kink_ladder(1.0, 0.0)
    h3 = float(lad.h[0, 3])
    assert kink_at(lad, 0, h3 / 20 * 0.99) is not None
    assert kink_at(lad, 0, h3 / 20 * 1.01) is None


def test_a_kinks_slopes_error_is_the_noise_term_when_the_slopes_do_not_move() -> None:
    """Slopes 1 | −0.5 exactly at every step (nothing moves from step to step): the error bound
    is 10·2·ε_f/h at the finest resolvable step, no truncation term."""
    from gradcheck_cli.verdict.steps import kink_at

    lad = _kink_ladder(1.0, -0.5)
    noise = 1e-12
    found = kink_at(lad, 0, noise)
    assert found is not None
    lo, hi, err = found
    assert (lo, hi) == pytest.approx((-0.5, 1.0), rel=1e-6, abs=0)
    assert err == pytest.approx(20 * noise / float(lad.h[0, 0]), rel=1e-9, abs=0)


def test_the_wide_stencil_announces_the_evaluations_it_makes() -> None:
    """wide_evaluations(n) — what the progress total grows by — is exactly the loss evaluations
    wide() then makes for n entries."""
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.verdict.wide import wide, wide_evaluations

    x = np.random.default_rng(0).uniform(-1, 1, (2, 3))
    net = Network([Fn(np.sin, np.cos)], WeightedSum(np.ones_like(x)), x=x, trusted=[False])
    pert = Perturber(net, x)
    made = [0]
    losses = pert.losses

    def counted(ref: Any, indices: np.ndarray, offsets: np.ndarray) -> Any:
        made[0] += len(indices) * np.shape(offsets)[-1]
        return losses(ref, indices, offsets)

    pert.losses = counted  # type: ignore[method-assign]
    wide(pert, net.parameters()[0], np.array([0, 2, 5]), 0.0, 2.0**-53)
    assert made[0] == wide_evaluations(3)


def test_a_contradicting_run_shows_the_largest_of_its_three_pairs() -> None:
    """Four levels (one run of three pairs) with |ΔD| = δ, δ, δ/16: the pairs show
    |ΔD|/(1/h + 1/h') = 0.8δ·(h₀, 4h₀, h₀) — the middle pair the largest; that is the level."""
    from gradcheck_cli.verdict.steps import Ladder, verified_noise

    h = 1e-6 * 4.0 ** np.arange(4)[None, :]
    d = 1.0 + 1e-12 * np.array([[0.0, 1.0, 2.0, 2.0 + 1 / 16]])
    lad = Ladder(h=h, fp=d * h, fm=-d * h, hp=h, hm=h, f0=0.0, valid=np.ones_like(h, dtype=bool))
    eps, trusted = verified_noise(lad, 1.0, 2.0**-53)
    assert not trusted[0]
    np.testing.assert_allclose(eps[0], 0.8e-12 * h[0, 1], rtol=1e-3)


# -- second sample (seed 29) ----------------------------------------------------------------------


def test_two_entries_off_by_a_common_factor_are_not_called_an_indexing_bug() -> None:
    """Only two entries matter (the rest 0) and both are 3× (within 3·tol, the tolerance scaled
    like the model): a scale explains them as well as 'confined to two entries' does, and two
    entries cannot confirm a factor: no fingerprint at all."""
    n = np.zeros((3, 3))
    n[0, 0], n[1, 1] = 1.0, -1.5
    a = 3 * n
    a[0, 0] += 2 * TOL
    a[1, 1] += 2 * TOL
    assert diagnose(a, n, np.full((3, 3), TOL), Context("W")) is None


def test_a_parameter_of_another_shape_is_no_basis_for_a_decay_term() -> None:
    rng = np.random.default_rng(0)
    n = rng.uniform(0.5, 2, (4, 5))
    theta = rng.uniform(0.5, 2, (5, 4))
    found = diagnose(n + 0.01 * theta.T, n, np.full((4, 5), TOL), Context("W", theta=theta))
    assert found is None or found.kind != "param_term", found


def test_three_whole_wrong_rows_are_not_few_even_on_a_long_axis() -> None:
    """Rows 1, 4, 7 of 9 wrong: at most two whole slices are 'a few'."""
    n = np.random.default_rng(0).uniform(0.5, 2, (9, 4))
    a = n.copy()
    a[[1, 4, 7]] += np.linspace(0.5, 1.5, 4)
    found = diagnose(a, n, np.full(n.shape, TOL), Context("W"))
    assert found is None or found.kind != "few_entries", found


def test_the_rounding_floor_holds_the_largest_prediction() -> None:
    """L = Σ g ⊙ pred with g = 1e-3: |L| and Σ|pred ⊙ g| are small; the loss still rounds on
    numbers as large as max|pred| = 4: the floor is u·4."""
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.verdict.noise import rounding_floor

    x = np.array([[0.5, 4.0, -0.25], [1.0, 0.125, 2.0]])
    g = np.full_like(x, 1e-3)
    net = Network([Fn(lambda v: v, np.ones_like)], WeightedSum(g), x=x, trusted=[False])
    net.loss_value(x)
    net.backward()
    assert rounding_floor(Perturber(net, x), 2.0**-53) == 4 * 2.0**-53


def test_a_kinks_error_includes_how_far_the_left_slope_moves() -> None:
    """Right slope 1 exactly, left L(−h) = 0.5h + c·h², so the left one-sided slope is −0.5 − c·h
    and moves by 3c·h between the two finest steps: the bound is 20·ε_f/h₀ + 3·3c·h₀."""
    from gradcheck_cli.verdict.steps import Ladder, kink_at

    c, noise = 1e3, 1e-12
    h = 1e-8 * 4.0 ** np.arange(6)[None, :]
    lad = Ladder(h=h, fp=h, fm=0.5 * h + c * h**2, hp=h, hm=h, f0=0.0,
                 valid=np.ones_like(h, dtype=bool))  # fmt: skip
    found = kink_at(lad, 0, noise)
    assert found is not None
    h0 = float(h[0, 0])
    assert found[2] == pytest.approx(20 * noise / h0 + 3 * 3 * c * h0, rel=1e-6, abs=0)


def test_attribution_without_a_stored_input_restores_the_caches_of_the_last_pass() -> None:
    """A network built without x: attribution re-checks from the caches of the last pass and
    leaves them as they were (layer 0 fed its own cached input again)."""
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.verdict.attribution import with_attribution

    x = np.random.default_rng(0).uniform(-1, 1, (3, 4))
    layers = [Fn(np.tanh, lambda v: 1 - np.tanh(v) ** 2), Fn(np.sin, np.cos)]
    net = Network(layers, WeightedSum(np.ones_like(x)), trusted=[False, False])
    net.loss_value(x)
    net.backward()
    before = [np.array(a, copy=True) for a in net.inputs]
    result = check_layer(layers[0], x, seed=0)  # any result: attribution only adds to it
    with_attribution(result, net, lambda single: result)
    for got, want in zip(net.inputs, before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_bend_finer_than_the_ladder_is_resolved_by_extending_it() -> None:
    """sin(kx)/k, k = 1e7, near 0: resolving cos(kx) to 1e-6 needs steps ≲ 1e-10, below the
    ladder's 4e-10: the ladder is extended for the entries not resolved, and the correct
    gradient passes."""
    k = 1e7
    x = np.random.default_rng(0).uniform(-1e-3, 1e-3, (4, 5))
    res = check_layer(Fn(lambda v: np.sin(k * v) / k, lambda v: np.cos(k * v)), x, seed=0,
                      dout=np.ones_like(x))  # fmt: skip
    (p,) = res.params
    assert p.verdict == "pass" and res.passed, (p.verdict, p.worst[:1])
    assert min(e.step for e in p.worst) < 4e-10


def test_the_judge_announces_the_noise_search_it_runs() -> None:
    """The progress total grows by exactly the loss evaluations the noise measurement makes:
    the precision probes (one each, as they run), the first table before the search and the
    rest after it."""
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.options import CheckOptions
    from gradcheck_cli.verdict.judge import Judge

    x = np.random.default_rng(0).uniform(-1, 1, (2, 3))
    net = Network([Fn(np.sin, np.cos)], WeightedSum(np.ones_like(x)), x=x, trusted=[False])
    pert = Perturber(net, x)
    made = [0]
    along = pert.along

    def counted(ref: Any, v: np.ndarray, steps: np.ndarray) -> np.ndarray:
        made[0] += len(steps)
        return along(ref, v, steps)

    pert.along = counted  # type: ignore[method-assign]
    judge = Judge(pert, CheckOptions().resolved("float64"), "float64", "float64")
    grown: list[int] = []
    judge.grow = grown.append
    level = judge.noise(net.parameters()[0])
    assert level.evaluations > 6  # several tables
    assert sum(grown) == made[0]  # the search's tables and the precision probes before it


@pytest.mark.parametrize("k", [1e3, 1e6])
def test_the_judge_announces_every_evaluation_beyond_the_first_look(k: float) -> None:
    """sin(kx)/k: every entry needs a second look (k = 1e6: the ladder is extended too). The
    progress total grows by exactly the loss evaluations made beyond the first look's two per
    entry (which the plan counted)."""
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.layers.losses import WeightedSum
    from gradcheck_cli.options import CheckOptions
    from gradcheck_cli.verdict.judge import Judge

    x = np.random.default_rng(0).uniform(-1, 1, (2, 3))
    net = Network([Fn(lambda v: np.sin(k * v) / k, lambda v: np.cos(k * v))],
                  WeightedSum(np.ones_like(x)), x=x, trusted=[False])  # fmt: skip
    pert = Perturber(net, x)
    made = [0]
    pert.progress = lambda n: made.__setitem__(0, made[0] + n)
    judge = Judge(pert, CheckOptions().resolved("float64"), "float64", "float64")
    grown: list[int] = []
    judge.grow = grown.append
    ref = net.parameters()[0]
    res = judge(ref, x.shape, np.cos(k * x), np.arange(x.size))
    assert res.refined == x.size
    assert sum(grown) == made[0] - 2 * x.size


def test_a_search_between_a_domain_edge_and_a_flat_loss_gives_up_after_six_tables() -> None:
    """L not finite at the starting step (the table crosses a domain edge), flat at 1/100 of it:
    the search climbs back ×100 from the flat table and retreats ÷100 from the edge; after
    NOISE_SEARCH = 6 tables with no level it stops at the rounding floor (36 evaluations)."""
    h0 = 1e-3
    found = _search_on(lambda h: np.nan if h > h0 / 2 else 0.0, h0)
    assert found.measured == 0.0 and found.level == found.floor
    assert found.evaluations == 36
