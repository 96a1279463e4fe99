"""Survivors in verdict/ of a fresh mutation sample (seed 42, issue 28), killed by behaviour:
each test checks a verdict's mechanism against a closed form, not a restatement of the line."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from gradcheck_cli import check_network, make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.losses import SoftmaxCrossEntropy, WeightedSum
from gradcheck_cli.options import CheckOptions
from gradcheck_cli.verdict.diagnosis import Context, diagnose
from gradcheck_cli.verdict.judge import Judge
from gradcheck_cli.verdict.steps import Ladder, kink_at, ladder, unreached
from gradcheck_cli.verdict.wide import wide
from tests.test_mutants_engine import ShortDx
from tests.test_mutants_verdict2 import Elementwise


def _at_zero(fn: Callable[[np.ndarray], np.ndarray]) -> Ladder:
    x = np.array([0.0])
    net = Network([Elementwise(fn)], WeightedSum(np.ones_like(x)), x=x, trusted=[False])
    return ladder(Perturber(net, x), net.parameters()[0], np.arange(1))


def _exact(central: list[float]) -> Ladder:
    """A ladder (finest first) whose central differences are exactly ``central``: steps that are
    powers of 2, L(θ ± h) = ±d·h, so (fp − fm)/(hp + hm) = 2dh/2h = d without rounding."""
    h = np.array([[2.0**-20, 2.0**-18, 2.0**-16]])
    d = np.array([central])
    return Ladder(h=h, fp=d * h, fm=-d * h, hp=h, hm=h, f0=0.0,
                  valid=np.ones_like(h, dtype=bool))  # fmt: skip


@pytest.mark.parametrize("central, far", [([4.0, 2.0, 1.0], True), ([4.0, 2.0, 1.0001], False),
                                          ([3.9999, 2.0, 1.0], False), ([8.0, 2.0, 1.0], True)])  # fmt: skip
def test_unreached_counts_a_growth_of_exactly_2x_per_finer_step(
    central: list[float], far: bool
) -> None:
    """The documented rule: each of the three finest estimates ≥ 2× the next coarser one. A
    ladder whose estimates grow by exactly 2× (4, 2, 1) is unreached; just under 2× at either
    pair is not."""
    assert unreached(_exact(central)).tolist() == [far]


@pytest.mark.parametrize("mirror", [1.0, -1.0])
def test_a_kinks_bound_counts_the_side_whose_slope_moves_most(mirror: float) -> None:
    """θ + θ² for θ > 0 and 5θ² for θ < 0 at 0 (and its mirror θ → −θ): one-sided slopes
    1 + h and −5h; between a step and the next (4× coarser) one they move by 3h and 15h. The
    bound is 10·2·ε_f/h + 3·max(moved) = 20·ε_f/h + 45h, whichever side moves most."""
    noise = 1e-13
    lad = _at_zero(lambda x: np.where(mirror * x > 0, mirror * x + x * x, 5 * x * x))
    h = lad.h[0]
    k = int(np.argmax(1 + 6 * h > 20 * noise / h))
    found = kink_at(lad, 0, noise)
    assert found is not None
    lo, hi, err = found
    slopes = sorted(mirror * s for s in (1 + h[k], -5 * h[k]))  # the mirror swaps the sides
    assert (lo, hi) == pytest.approx(slopes, rel=1e-6, abs=0)
    assert err == pytest.approx(20 * noise / h[k] + 3 * 15 * h[k], rel=1e-6, abs=0)


@pytest.mark.parametrize("seed", range(3))
def test_a_layer_below_a_wrong_shaped_dx_is_not_re_checked_alone(seed: int) -> None:
    """A Linear below a layer whose backward returns dx one column short: the Linear never
    received an upstream gradient, so attribution skips it (no re-check with an empty upstream,
    no note that it "could not be re-checked") and blames the broken layer alone."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 3))
    net = Network(
        [make_layer("linear", (3,), rng, out=3), ShortDx()], SoftmaxCrossEntropy(), x=x,
        target=rng.integers(0, 3, 4), trusted=[False, False],
    )  # fmt: skip
    res = check_network(net)
    assert not res.passed
    assert res.attribution == ("layer 1 (ShortDx) fails on its own (dx)",)
    assert not any("layer 0" in n for n in res.notes), res.notes


@pytest.mark.parametrize("factor", [0.37, -2.6])
def test_an_unnamed_factor_is_found_on_three_entries_and_not_on_two(factor: float) -> None:
    """a = c·n with an unnamed c: the fitted factor is one number, so it is evidence once it
    explains entries beyond it: 3 departing entries (1 fitted + 2) are a diagnosis, 2 are not."""
    n = np.array([0.8, -1.3, 1.9])
    found = diagnose(factor * n, n, np.full(3, 1e-6), Context("W"))
    assert found is not None and found.kind == "scale"
    assert found.params == {"factor": pytest.approx(factor, rel=1e-12)}
    assert f"W ≈ {factor:.6g} × numeric everywhere" in found.sentence
    two = diagnose(factor * n[:2], n[:2], np.full(2, 1e-6), Context("W"))
    assert two is None or two.kind != "scale", two


@pytest.mark.parametrize("strict", [False, True])
def test_a_tensor_resolved_to_exactly_the_promise_passes(strict: bool) -> None:
    """R = max E / max(|a|, |n|) is what a pass promises to see: a tensor whose entries agree and
    whose resolution equals the promise (E = 0.25, |g| = 1, --resolution 0.25) passes, even under
    --strict; a hair worse (E = 0.25 + 2⁻²⁰) is inconclusive, and reports that resolution."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3))
    net = Network([make_layer("linear", (3,), rng, out=2)], WeightedSum(np.ones((2, 2))), x=x)
    opts = CheckOptions.build(None, resolution=0.25, rtol=1e-3, strict=strict).resolved("float64")
    judge = Judge(Perturber(net, x), opts, "float64", "float64")
    g = np.array([1.0, -0.5, 0.75])
    for e, verdict in ((0.25, "pass"), (0.25 + 2.0**-20, "inconclusive")):
        error = np.full(3, e)
        res = judge._result("W", (3,), np.arange(3), g, g, np.full(3, 1e-3) + error, error,
                            np.full(3, "pass"), np.full(3, ""), 0, np.full(3, 1e-3),
                            np.zeros(3))  # fmt: skip
        assert res.verdict == verdict and res.resolution == e
        assert res.passed == (verdict == "pass" or not strict)


@pytest.mark.parametrize("k", [30.0, 300.0])
def test_the_wide_stencil_resolves_a_strongly_curved_sine_within_its_bound(k: float) -> None:
    """sin(k·θ): the wide stencil's estimates converge (each finer level ~256× closer) over
    the levels where k·h < 1; the step it picks must be one of those, its estimate within its
    own error bound of the exact k·cos(k·θ), the bound ≤ 1e-6 of the slope's size."""
    x = np.array([0.3, -0.7, 0.05])
    net = Network([Elementwise(lambda t: np.sin(k * t))], WeightedSum(np.ones_like(x)), x=x,
                  trusted=[False])  # fmt: skip
    c = wide(Perturber(net, x), net.parameters()[0], np.arange(3), 0.0, 2.0**-53)
    assert (np.abs(c.numeric - k * np.cos(k * x)) <= c.error).all(), (c.numeric, c.error)
    assert (c.error <= 1e-6 * k).all(), c.error
