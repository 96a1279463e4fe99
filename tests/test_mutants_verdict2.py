"""Verdict mechanisms pinned by behaviour, second round (issue 28): ECnoise against Moré & Wild's
published algorithm, the noise search of ``measure_noise`` on losses whose noise (or smooth bend)
sits at a known scale, and the step ladder's safety factors on functions whose error lies
between the factor and its mutation."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import pytest

from gradcheck_cli import check_layer
from gradcheck_cli.engine.network import Network, ParamRef
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.losses import WeightedSum
from gradcheck_cli.verdict.noise import NOISE_TABLES, NoiseLevel, ecnoise, measure_noise
from gradcheck_cli.verdict.steps import (
    Ladder,
    error_bounds,
    evidence,
    kink_at,
    ladder,
    unreached,
    verified_noise,
)

U64 = float(np.finfo(np.float64).eps) / 2


# -- ECnoise is Moré & Wild's algorithm -----------------------------------------------------------


def _ecnoise_reference(fval: list[float]) -> tuple[float, int]:
    """ECnoise transcribed from Moré & Wild's published MATLAB code (ecnoise.m, SIAM J. Sci.
    Comput. 33(3), 2011), loop for loop, in plain Python floats: an independent reference."""
    nf = len(fval)
    f = list(fval)
    levels = [0.0] * nf
    dsgn = [False] * nf
    gamma = 1.0
    for j in range(1, nf):
        for i in range(nf - j):
            f[i] = f[i + 1] - f[i]
        if j == 1 and sum(1 for i in range(nf - 1) if f[i] == 0.0) >= nf / 2:
            return 0.0, 2
        gamma = 0.5 * (j / (2 * j - 1)) * gamma
        levels[j] = math.sqrt(gamma * sum(f[i] ** 2 for i in range(nf - j)) / (nf - j))
        emin, emax = min(f[: nf - j]), max(f[: nf - j])
        if emin * emax < 0.0:
            dsgn[j] = True
    for k in range(1, nf - 2):
        emin, emax = min(levels[k : k + 3]), max(levels[k : k + 3])
        if emax <= 4 * emin and dsgn[k]:
            return levels[k], 1
    return 0.0, 3


def _tables() -> list[np.ndarray]:
    """Tables of every kind ECnoise meets: white noise on smooth functions, pure curvature,
    quantised values (ties, staircases, half the differences zero), mixed scales, 7 and 9
    points."""
    rng = np.random.default_rng(2028)
    out: list[np.ndarray] = []
    for nf in (7, 9):
        t = np.arange(nf) - (nf - 1) / 2
        for sigma in (1e-12, 1e-8, 1e-4, 1e-1):
            for h in (1e-6, 1e-3, 1e-1):
                out.append(np.exp(1 + h * t) + sigma * rng.standard_normal(nf))
                out.append(np.cos(h * t) + sigma * rng.uniform(-1, 1, nf))
        for h in (1e-3, 1e-1, 1.0):
            out += [np.exp(h * t), np.cos(h * t), (h * t) ** 3, h * t]
        for _ in range(40):  # quantised noise: integers with ties, every share of equal values
            out.append(rng.integers(0, rng.integers(1, 6), nf).astype(float))
        out.append(np.floor(t / 2))  # a staircase: first differences 0 and 1, never negative
        out.append(np.floor(t / 2) * -1.0)
        out.append(np.floor(t / 3))
        out.append(np.floor(np.abs(t)))  # a quantised kink
        out.append(np.where(t > 0, t, 0.0))  # a kink in the table
        out.append(np.full(nf, 3.0))
        half = np.zeros(nf)
        half[(nf + 1) // 2 :] = np.arange(1, nf - (nf + 1) // 2 + 1)  # just under/over half flat
        out += [half, np.cumsum(half)]
    # integer tables whose three levels span exactly 4× (the agreement test is ≤ 4×, inclusive)
    out += [np.array(t, dtype=float) for t in ([-5, -2, 1, 3, 2, -1, -3], [-3, 0, 2, 4, 3, 0, -3],
                                               [5, 5, 4, 1, -3, -6, -5])]  # fmt: skip
    return out


def test_ecnoise_is_more_and_wilds_published_algorithm() -> None:
    """On tables of every kind (white and quantised noise, curvature, staircases, kinks, tables
    half flat), the noise level and the diagnosis (1 noise, 2 flat, 3 smooth) are the ones of
    the published algorithm: the γ_j weights, the sign test, the 4× agreement of three orders
    and the flat-table test."""
    infos = set()
    for table in _tables():
        want = _ecnoise_reference([float(v) for v in table])
        got = ecnoise(table)
        infos.add(want[1])
        assert got[1] == want[1], (table, got, want)
        assert got[0] == pytest.approx(want[0], rel=1e-12, abs=0), (table, got, want)
    assert infos == {1, 2, 3}


# -- the noise search: noise at every step is measured, a smooth bend is not noise -----------------


def _hash_noise(x: np.ndarray) -> np.ndarray:
    """A uniform value in [−½, ½) hashed from the bits of each entry (splitmix64): white noise at
    every step that changes x at all, like rounding inside a computation."""
    z = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(29)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(32)
    return (z >> np.uint64(11)).astype(np.float64) / 2.0**53 - 0.5


class Elementwise:
    """out = fn(x) elementwise (its backward is not used by the noise measurement)."""

    row_independent = True

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.fn = fn

    def forward(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return self.fn(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.copy()


def _measure(
    fn: Callable[[np.ndarray], np.ndarray], h0: float, scale: float = 1.0
) -> tuple[NoiseLevel, float, int]:
    """(NoiseLevel, ‖g‖, evaluations counted at the Perturber) of L = Σ g·fn(x) near
    x = scale·ξ (ξ standard normal; scale 0: x = 0)."""
    rng = np.random.default_rng(0)
    x, g = scale * rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    net = Network([Elementwise(fn)], WeightedSum(g), x=x, trusted=[False])
    pert = Perturber(net, x)
    calls = [0]
    along = pert.along

    def counted(ref: ParamRef, v: np.ndarray, steps: np.ndarray) -> np.ndarray:
        calls[0] += len(steps)
        return along(ref, v, steps)

    pert.along = counted  # type: ignore[method-assign, assignment]
    level = measure_noise(pert, net.parameters()[0], h0, U64, 0)
    return level, float(np.linalg.norm(g)), calls[0]


STARTS = (1e-2, 2.56e-3, 1e-3, 1e-4, 1e-5, 1e-8, 1e-12)


@pytest.mark.parametrize("h0", STARTS)
def test_noise_present_at_every_step_is_measured_at_its_level_from_any_start(h0: float) -> None:
    """L = Σ g·(x + σ·hash(x)): white noise of σ‖g‖/√12 along any unit direction, at every step.
    From any starting step (too large, too small) the level found is that one within 2.5×,
    and the evaluations it reports are the ones it made."""
    sigma = 1e-9
    level, gnorm, calls = _measure(lambda x: x + sigma * _hash_noise(x), h0)
    want = sigma * gnorm / math.sqrt(12)
    assert want / 2.5 <= level.measured <= 2.5 * want, (level, want)
    assert level.level == max(level.measured, level.floor) and level.floor < want / 1e4
    assert level.evaluations == calls and calls % 6 == 0 and calls <= 6 * NOISE_TABLES


@pytest.mark.parametrize("h0", [1e-2, 2.56e-3, 1e-3, 1e-4, 1e-5, 1e-8])
def test_noise_is_confirmed_in_three_tables_down_to_the_reach(h0: float) -> None:
    """Noise present at every step costs what the rule says and no more: the level is accepted
    once it has held over 3 tables (h, h/16, h/256, …) and the last of them is within the reach
    1e10·u·max|θ| (docs/error-model.md), i.e. after max(3, 1 + ⌈log₁₆(h0/reach)⌉) tables of 6
    evaluations (here the hashed noise's level stays within 4× from table to table)."""
    sigma = 1e-9
    level, _, calls = _measure(lambda x: x + sigma * _hash_noise(x), h0)
    x = np.random.default_rng(0).standard_normal((4, 5))
    reach = 1e10 * U64 * float(np.abs(x).max())
    tables = max(3, 1 + math.ceil(math.log(h0 / reach, 16)))
    assert calls == 6 * tables and level.evaluations == calls, (calls, tables)
    assert level.measured > 0


def _fractal(x: np.ndarray, alpha: float = 0.75) -> np.ndarray:
    """Σ_k 2^(−αk)·(hashed values on the grid 2^(−k), linearly interpolated), k < 60: a
    continuous function whose increments over a step h are ~h^α at every scale (Hölder α)."""
    out = np.zeros_like(x)
    for k in range(60):
        t = x * 2.0**k
        i = np.floor(t)
        w = t - i
        lo, hi = (_hash_noise(j + 0.5 + 1e3 * k) for j in (i, i + 1))
        out += 2.0 ** (-alpha * k) * ((1 - w) * lo + w * hi)
    return out


@pytest.mark.parametrize("h0", [1e-2, 1e-3, 1e-4, 1e-6])
def test_a_level_that_shrinks_with_the_step_is_not_noise_and_the_search_is_bounded(
    h0: float,
) -> None:
    """L = Σ g·(x + F(x)), F fractal with increments ~h^0.75: every table looks like noise, but
    its level shrinks 8× per 16× smaller step, so no level holds: nothing is confirmed (the
    rounding floor is used) and the search stops at its bound of 16 tables (96 evaluations)."""
    level, _, calls = _measure(lambda x: x + _fractal(x), h0)
    assert level.measured == 0.0 and level.level == level.floor, level
    assert calls == 96 and level.evaluations == calls


@pytest.mark.parametrize("h0, tables", [(0.5, 1), (0.1, 1), (0.01, 1), (1e-3, 2), (1e-4, 2),
                                         (1e-9, 5), (1e-11, 6), (1e-13, 6), (1e-15, 6)])  # fmt: skip
def test_a_loss_that_never_changes_costs_a_bounded_search(h0: float, tables: int) -> None:
    """A dead layer (L does not depend on θ): every table is flat, so the step grows ×100 per
    table while it stays below 1 (a step of 1 or more is no small step), and at most 6 tables
    are spent looking for a level that is never there (36 evaluations, docs/error-model.md);
    then the rounding floor is the level."""
    level, _, calls = _measure(lambda x: 0.0 * x, h0)
    assert level.measured == 0.0 and level.level == level.floor
    assert calls == 6 * tables and level.evaluations == calls


@pytest.mark.parametrize("h0", STARTS)
@pytest.mark.parametrize("k", [1e5, 1e6])
def test_a_smooth_bend_finer_than_the_start_is_not_noise(k: float, h0: float) -> None:
    """L = Σ g·(x + 10⁻³·sin(k·x)): seen from steps ≫ 1/k the table looks like noise of
    ~7·10⁻⁴‖g‖, but it is smooth on the scale 1/k ≥ 1e-6, which the ladder resolves; the
    level must hold down to steps of NOISE_REACH·u·max|θ| to be noise. What is measured is the
    rounding of the sine's argument (~1e-13), never the sine's amplitude."""
    level, gnorm, calls = _measure(lambda x: x + 1e-3 * np.sin(k * x), h0)
    assert level.measured <= 1e-11 * gnorm, level
    assert level.evaluations == calls and calls <= 6 * NOISE_TABLES


@pytest.mark.parametrize("scale", [0.0, 1e-3, 1e-2])
@pytest.mark.parametrize("h0", [1e-2, 2.56e-3, 1e-3, 1e-4])
def test_the_noise_search_scales_with_the_tensor(scale: float, h0: float) -> None:
    """The search is relative to the tensor's size: θ = s·ξ with a bend at s/10⁶ seen from
    s·h0 is the same problem as θ = ξ, a bend at 10⁻⁶ and h0 (not noise), for s < 1 too (the
    reach is NOISE_REACH·u·max|θ|, not ·max(1, |θ|)); θ = 0 is taken at the ladder's own scale
    1 (steps of 1e-1 … 4e-10)."""
    s = scale or 1.0
    level, gnorm, calls = _measure(lambda x: x + 1e-3 * s * np.sin(1e6 * x / s), s * h0, scale)
    assert level.measured <= 1e-11 * s * gnorm, level
    assert level.evaluations == calls


# -- the step ladder: its steps, its error bound and its evidence, against closed forms ----------


def _ladder_of(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> Ladder:
    """The ladder of every entry of x for L = Σ fn(x) (a sum of one function per entry)."""
    net = Network([Elementwise(fn)], WeightedSum(np.ones_like(x)), x=x, trusted=[False])
    pert = Perturber(net, x)
    ref = net.parameters()[0]
    return ladder(pert, ref, np.arange(x.size))


@pytest.mark.parametrize("theta, scale", [(0.0, 1.0), (0.3, 1.0), (-1.9, 1.0), (2.1, 4.0),
                                          (-7.0, 4.0), (9.0, 16.0), (1e3, 1024.0), (-3e6, 4.0**11)])  # fmt: skip
def test_the_ladder_takes_the_documented_steps(theta: float, scale: float) -> None:
    """Steps s·0.1·4^(−k), k = 0…14 (1e-1 … 4e-10, finest first), s = max(1, |θ|) rounded to a
    power of 4 (docs/error-model.md), both sides taken exactly (a smooth L: every step usable)."""
    lad = _ladder_of(lambda x: np.sin(x), np.array([theta]))
    want = scale * 0.1 * 4.0 ** -np.arange(14, -1, -1)
    assert lad.h.shape == (1, 15)
    np.testing.assert_allclose(lad.h[0], want, rtol=1e-15)
    np.testing.assert_allclose(lad.hp[0], want, rtol=1e-6)
    np.testing.assert_allclose(lad.hm[0], want, rtol=1e-6)
    assert lad.valid.all()


def test_a_step_that_rounds_away_is_not_used() -> None:
    """A float32 tensor at θ = 3 moves by float32 steps: the finest ladder steps round to 0 or
    to a whole float32 cell (2.4e-7); a step realised as less than half its size is dropped
    (invalid), the coarser ones are kept."""
    x = np.array([3.0], dtype=np.float32)
    lad = _ladder_of(lambda v: v * v, x)
    # float32 cell at 3: 2.4e-7; a step is kept when its realised size is > half the step
    realised = (np.float32(3.0) + lad.h[0].astype(np.float32)) - np.float32(3.0)
    keep = realised > 0.5 * lad.h[0]
    assert (~keep).any() and keep.any()
    np.testing.assert_array_equal(lad.valid[0], keep)


def test_the_error_bound_is_the_documented_closed_form_on_a_cubic() -> None:
    """L = θ³ at θ = 0: D(h) = h² exactly, so the Richardson estimate from either neighbour is
    (15/16)·h², and E(h) = 10·max(ε_f, u·|L±|)/h + 3·(15/16)·h² at every inner step (one
    neighbour at the ends: the same value here)."""
    lad = _ladder_of(lambda x: x**3, np.array([0.0]))
    h = lad.h[0]
    for noise in (0.0, 1e-13, 1e-7):
        e = error_bounds(lad, noise, U64)[0]
        want = 10 * np.maximum(noise, U64 * h**3) / h + 3 * (15 / 16) * h**2
        np.testing.assert_allclose(e, want, rtol=1e-6)
        per_entry = error_bounds(lad, np.array([noise]), U64)[0]  # one noise level per entry
        np.testing.assert_allclose(per_entry, want, rtol=1e-6)


def _at_zero(fn: Callable[[np.ndarray], np.ndarray]) -> Ladder:
    return _ladder_of(fn, np.array([0.0]))


def test_a_cubic_shows_evidence_of_resolution_and_a_gate_seen_from_afar_does_not() -> None:
    """θ³ at 0 (D(h) = h²: each finer difference 16× smaller than the coarser) shows evidence
    at every inner step but the finest (whose finer pair is not there to confirm it); a gate
    tanh(10¹³·θ) at 0 seen from steps ≥ 4e-10 (L± = ±1, D(h) = 1/h: each finer estimate 4× the
    last) shows none, and its finest steps are "unreached" (past the curvature scale) where
    the cubic's are not."""
    cubic = _at_zero(lambda x: x**3)
    no = np.zeros(1)
    seen = evidence(cubic, no, np.ones(1, dtype=bool), U64)[0]
    assert not seen[0] and not seen[1] and seen[2:-1].all() and not seen[-1], seen
    gate = _at_zero(lambda x: np.tanh(1e13 * x))
    np.testing.assert_allclose(gate.central[0], 1 / gate.h[0], rtol=1e-12)
    assert not evidence(gate, no, np.ones(1, dtype=bool), U64).any()
    assert unreached(gate).tolist() == [True] and unreached(cubic).tolist() == [False]


def test_a_gate_whose_bend_is_reached_by_the_finest_steps_is_not_unreached() -> None:
    """tanh(k·θ) at 0: the finest three steps are 3.7e-10, 1.5e-9, 6e-9. With k = 2e8
    (k·h ≤ 1.2) the estimates have turned towards the slope k (ratios 1.03, 1.39): reached;
    with k = 1e9 the finest pair has turned (1.58) while the next still grows (3.6): reached
    (both must grow ≥ 2× to be unreached); with k = 2e9 (2.5, 4.0) and 4e10 (4, 4) not yet."""
    for k, far in ((2e8, False), (1e9, False), (2e9, True), (4e10, True)):
        gate = _at_zero(functools.partial(lambda x, k: np.tanh(k * x), k=k))
        assert unreached(gate).tolist() == [far], k


@pytest.mark.parametrize("noise", [1e-13, 1e-11, 1e-10, 3e-9])
def test_a_relu_at_zero_is_a_kink_with_its_slopes_and_bound_in_closed_form(noise: float) -> None:
    """max(θ, 0) + θ² at 0: one-sided slopes 1 + h and −h, their gap 1 + 2h does not shrink:
    a kink. Reported at the finest step whose gap is above the noise (gap > 10·2·ε_f/h), with
    slopes (−h, 1 + h) and error bound 10·2·ε_f/h + 3·(how much a slope moved to the next
    step: 3h)."""
    lad = _at_zero(lambda x: np.maximum(x, 0.0) + x * x)
    h = lad.h[0]
    k = int(np.argmax(1 + 2 * h > 20 * noise / h))
    found = kink_at(lad, 0, noise)
    assert found is not None
    lo, hi, err = found
    assert lo == pytest.approx(-h[k], rel=1e-6, abs=0)
    assert hi == pytest.approx(1 + h[k], rel=1e-12, abs=0)
    assert err == pytest.approx(20 * noise / h[k] + 3 * 3 * h[k], rel=1e-6, abs=0)


@pytest.mark.parametrize("q, kink", [(1.0, True), (1.4, True), (1.6, False), (0.6, True),
                                     (0.4, False), (2.0, False)])  # fmt: skip
def test_a_kink_is_a_one_sided_gap_that_neither_shrinks_nor_grows_past_2x_per_step(
    q: float, kink: bool
) -> None:
    """θ^q for θ > 0, else 0, at θ = 0: the one-sided gap is h^(q−1). A gap that changes by at
    most 2× per 4× smaller step is a kink (q = 1: a ReLU; 1.4: 1.74× smaller; 0.6: 1.74×
    larger); one that shrinks faster (q = 1.6: 2.3×, q = 2: 4×, smooth) or grows faster
    (q = 0.4: 2.3×, a function steeper than the steps) is not."""
    lad = _at_zero(lambda x: np.where(x > 0, np.abs(x) ** q, 0.0))
    assert (kink_at(lad, 0, 1e-16) is not None) == kink


def test_a_jump_and_a_gap_that_disappears_below_the_noise_are_not_kinks() -> None:
    """A step function's gap grows as 1/h: not a kink. A kink whose gap is below the noise at
    the finest steps and above it at only two coarser steps has too few steps to show that its
    gap stays: not a kink either."""
    jump = _at_zero(lambda x: (x > 1e-12).astype(float))
    assert kink_at(jump, 0, 1e-16) is None
    relu = _at_zero(lambda x: np.maximum(x, 0.0))
    h = relu.h[0]
    # the noise at which the gap 1 is resolvable at the two coarsest steps only
    noise = h[-3] / 20 * 1.01
    assert kink_at(relu, 0, noise) is None
    assert kink_at(relu, 0, h[-4] / 20 * 1.01) is not None


def test_a_noise_level_the_ladder_contradicts_is_replaced_by_what_it_shows() -> None:
    """sin(10⁴·θ) at 0 with a claimed noise of 1: neighbouring estimates agree far better than
    noise 1 allows (|ΔD| ≤ 10⁻³·(1/h + 1/h')), so the level becomes the least that three pairs
    in a row show, each pair's |ΔD|/(1/h + 1/h') with D(h) = sin(10⁴h)/h in closed form, and is
    not trusted; never below the floor; a level the ladder does not contradict is kept."""
    k = 1e4
    lad = _at_zero(lambda x: np.sin(k * x))
    h = lad.h[0]
    d = np.sin(k * h) / h
    shown = np.abs(d[:-1] - d[1:]) / (1 / h[:-1] + 1 / h[1:])
    low = shown <= 1e-3
    runs = [max(shown[i : i + 3]) for i in range(len(shown) - 2) if low[i : i + 3].all()]
    eps, trusted = verified_noise(lad, 1.0, U64)
    assert not trusted[0] and eps[0] == pytest.approx(min(runs), rel=1e-6, abs=0)
    assert min(runs) > 1e3 * U64  # above the rounding of L: the closed form decides
    eps, trusted = verified_noise(lad, 1.0, U64, floor=0.5)
    assert not trusted[0] and eps[0] == 0.5
    eps, trusted = verified_noise(lad, 1e-20, U64)
    assert trusted[0] and eps[0] == 1e-20


# -- a float32 network: the analytic side's rounding is measured on its float64 twin -------------


class BiasOff:
    """A float32 linear layer whose bias gradient is off by ``off`` (0: correct)."""

    row_independent = True

    def __init__(self, off: float) -> None:
        rng = np.random.default_rng(1)
        self.params = {"W": rng.standard_normal((3, 2)).astype(np.float32),
                       "b": rng.standard_normal(2).astype(np.float32)}  # fmt: skip
        self.grads: dict[str, np.ndarray] = {}
        self.off = off

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"W": self.x.T @ dout, "b": dout.sum(axis=0) + np.float32(self.off)}
        return dout @ self.params["W"].T


@pytest.mark.parametrize("offset", [1e2, 1e3])
def test_a_correct_float32_layer_is_judged_on_its_measured_rounding(offset: float) -> None:
    """float32 linear on inputs of ~offset with a dout whose columns sum to ~0: dW and db are
    float32 sums that cancel, their rounding (measured as |a₃₂ − a₆₄| on the float64 twin, the
    twin's dout promoted to float64 like the numerics' L = Σ out ⊙ g) is far above u₃₂·|a|. A
    correct layer never fails (db ≈ 1e-7 is below what float32 resolves: not a pass either);
    a bias gradient off by 1e-3 fails."""
    rng = np.random.default_rng(0)
    x = (offset + rng.standard_normal((64, 3))).astype(np.float32)
    d = rng.standard_normal((64, 2))
    dout = (d - d.mean(axis=0)).astype(np.float32)
    res = check_layer(BiasOff(0.0), x, seed=0, dout=dout)
    verdicts = {p.name.split(".")[-1]: p.verdict for p in res.params}
    assert res.passed and "fail" not in verdicts.values(), verdicts
    assert verdicts["b"] != "pass"
    bad = check_layer(BiasOff(1e-3), x, seed=0, dout=dout)
    assert {p.name.split(".")[-1]: p.verdict for p in bad.params}["b"] == "fail"
