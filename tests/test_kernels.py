"""Per-CPU kernels (gradcheck_cli/engine/kernels.py): every candidate equals the plain formula to
round-off, forced one at a time (the CPU's own choice never decides a test); a wrong twin of a
candidate is caught, directly and through the engine; the choice itself follows an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from gradcheck_cli import make_layer
from gradcheck_cli.engine import changes, kernels
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy

TANH = list(kernels.CANDIDATES["tanh_shift"])


def tanh_sign_slip(x: Array | None, t: Array, d: Array, bound: float) -> Array:
    """The addition theorem with a sign slip in the denominator: (t + tanh d)/(1 − t·tanh d)."""
    td = d * (1 - d * d / 3)
    out: Array = (t + td) / (1 - t * td)
    return out


def tanh_short_series(x: Array | None, t: Array, d: Array, bound: float) -> Array:
    """The addition theorem with tanh d ≈ d (the d³ term dropped: wrong beyond |d| ~ 1e-8)."""
    out: Array = (t + d) / (1 + t * d)
    return out


WRONG = [tanh_sign_slip, tanh_short_series]


@contextmanager
def candidate(fn: kernels.Kernel) -> Iterator[None]:
    """Run the engine with ``fn`` as the addition candidate (a wrong twin)."""
    table = kernels.CANDIDATES["tanh_shift"]
    was = table["addition"]
    table["addition"] = fn
    try:
        with kernels.forced("tanh_shift", "addition"):
            yield
    finally:
        table["addition"] = was


def tanh_error(fn: kernels.Kernel, seed: int) -> float:
    """Largest |fn − np.tanh(x + d)| over x of every size and steps up to the series' limit."""
    rng = np.random.default_rng(seed)
    x = 3 * rng.standard_normal(4000)
    x[:10] = [0.0, -0.0, 1e-300, 25.0, -25.0, 400.0, 1e-3, -1e-3, 0.5, 19.0]
    t = np.tanh(x)
    worst = 0.0
    for scale in (1e-12, 1e-8, 1e-6, 1e-5, 9e-5, 2e-4, 9e-4):
        d = scale * rng.uniform(-1, 1, x.shape)
        got = fn(x, t, d, kernels.bound_of(d))
        worst = max(worst, float(np.abs(got - np.tanh(x + d)).max()))
    return worst


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("name", TANH)
def test_each_tanh_candidate_is_tanh_to_round_off(name: str, seed: int) -> None:
    assert tanh_error(kernels.CANDIDATES["tanh_shift"][name], seed) <= 4e-16


@pytest.mark.parametrize("wrong", WRONG)
def test_a_wrong_tanh_twin_is_caught(wrong: kernels.Kernel) -> None:
    assert tanh_error(wrong, 0) > 1e-13


@pytest.mark.parametrize("name", TANH)
def test_tanh_shift_falls_back_beyond_the_series_limit(name: str) -> None:
    """A step of 1e-2 (outside the series' range), NaN, complex and float32 go to np.tanh."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(50)
    t = np.tanh(x)
    with kernels.forced("tanh_shift", name):
        for d in (np.full(50, 1e-2), np.full(50, np.nan), 1e-6j * np.ones(50)):
            np.testing.assert_array_equal(kernels.tanh_shift(x, t, d), np.tanh(x + d))
        x32, d32 = x.astype(np.float32), np.full(50, 1e-4, np.float32)
        got = kernels.tanh_shift(x32, np.tanh(x32), d32)
        np.testing.assert_array_equal(got, np.tanh(x32 + d32))
        assert kernels.tanh_near(x, t, x + 1e-2) is None
        near = kernels.tanh_near(x, t, x + 1e-6)
        if name == "direct":
            assert near is None  # the engine then calls forward itself
        else:
            assert near is not None
            np.testing.assert_allclose(near, np.tanh(x + 1e-6), rtol=0, atol=4e-16)


def nets(rng: np.random.Generator) -> Iterator[tuple[str, Network, Array]]:
    """Networks whose copies reach tanh as changed rows (after a ReLU), as a dense rank-1
    form, as dense copies, and as changed columns: every path of the tanh kernel."""
    x = rng.standard_normal((6, 5))
    medium = [
        make_layer("linear", (5,), rng, out=8),
        make_layer("relu", (8,)),
        make_layer("linear", (8,), rng, out=7),
        make_layer("tanh", (7,)),
        make_layer("linear", (7,), rng, out=3),
    ]
    yield "relu-rows", Network(medium, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 3, 6)), x
    deep: list[Any] = []
    for _ in range(3):
        deep += [make_layer("linear", (5,), rng, out=5), make_layer("tanh", (5,))]
    deep.append(make_layer("linear", (5,), rng, out=2))
    target = rng.standard_normal((6, 2))
    yield "deep-dense", Network(deep, MSE(), x=x, target=target), x


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", TANH)
def test_engine_with_each_tanh_candidate_equals_the_plain_loop(
    name: str, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With changes.py off (dense copies then reach tanh here, not as their change:
    tests/test_changes.py covers that path)."""
    monkeypatch.setattr(changes, "enabled", False)
    rng = np.random.default_rng(seed)
    for label, net, x in nets(rng):
        slow = Perturber(net, x, batched=False)
        with kernels.forced("tanh_shift", name):
            fast = Perturber(net, x, chunk_bytes=4000)
            for ref in net.parameters():
                idx = np.arange(fast.array(ref).size)
                for eps in (1e-6, 1e-5, 1e-2):
                    fb, _ = fast.losses(ref, idx, np.array([eps, -eps]))
                    fl, _ = slow.losses(ref, idx, np.array([eps, -eps]))
                    np.testing.assert_allclose(
                        fb, fl, rtol=0, atol=2e-15 * max(1.0, abs(slow.f0)), err_msg=label
                    )


@pytest.mark.parametrize("wrong", WRONG)
def test_engine_catches_a_wrong_tanh_twin(
    wrong: kernels.Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison above (steps 1e-5 and 1e-3) fails when the series candidate is a wrong
    twin: the engine's tanh paths do go through the candidate (changes.py off, as above)."""
    monkeypatch.setattr(changes, "enabled", False)
    rng = np.random.default_rng(0)
    for label, net, x in nets(rng):
        slow = Perturber(net, x, batched=False)
        with candidate(wrong):
            fast = Perturber(net, x, chunk_bytes=4000)
            worst = 0.0
            for ref in net.parameters():
                idx = np.arange(fast.array(ref).size)
                for eps in (1e-5, 1e-3):
                    fb, _ = fast.losses(ref, idx, np.array([eps, -eps]))
                    fl, _ = slow.losses(ref, idx, np.array([eps, -eps]))
                    worst = max(worst, float(np.abs(fb - fl).max()))
        assert worst > 1e-13, label


class FakeClock:
    """A clock that advances by the cost model's seconds per element of the candidate run."""

    def __init__(self, cost: dict[str, float]) -> None:
        self.now, self.cost = 0.0, cost

    def __call__(self) -> float:
        return self.now


def test_choice_takes_the_candidate_the_clock_finds_cheapest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """measure/pick with an injected clock: the cheaper candidate wins, by a margin only."""
    for cost, expect in (
        ({"direct": 14e-9, "addition": 2e-9}, "addition"),  # AVX2-like
        ({"direct": 0.7e-9, "addition": 2e-9}, "direct"),  # AVX-512-like
        ({"direct": 2.0e-9, "addition": 1.9e-9}, "direct"),  # within the margin: the plain form
    ):
        clock = FakeClock(cost)
        table = {
            name: _timed(fn, name, clock) for name, fn in kernels.CANDIDATES["tanh_shift"].items()
        }
        monkeypatch.setitem(kernels.CANDIDATES, "tanh_shift", table)
        times = kernels.measure("tanh_shift", clock=clock)
        assert times == pytest.approx(cost)
        assert kernels.pick(times) == expect
        monkeypatch.setattr(kernels, "_chosen", {})
        monkeypatch.setattr(kernels, "measure", lambda name, times=times: times)
        assert kernels.choice("tanh_shift") == expect
        assert kernels.chosen()["tanh_shift"] == expect
        monkeypatch.undo()


def _timed(fn: Any, name: str, clock: FakeClock) -> kernels.Kernel:
    def run(x: Array | None, t: Array, d: Array, bound: float) -> Array:
        clock.now += clock.cost[name] * t.size
        out: Array = fn(x, t, d, bound)
        return out

    return run


def test_the_environment_and_forcing_override_the_measurement(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kernels, "_chosen", {})
    monkeypatch.setenv(kernels.ENV, "other=x, tanh_shift=addition")
    monkeypatch.setattr(kernels, "measure", lambda name: pytest.fail("measured"))
    assert kernels.choice("tanh_shift") == "addition"
    with kernels.forced("tanh_shift", "direct"):
        assert kernels.choice("tanh_shift") == "direct"
    assert kernels.choice("tanh_shift") == "addition"
    with pytest.raises(ValueError, match="unknown candidate"), kernels.forced("tanh_shift", "x"):
        pass


@pytest.mark.parametrize("seed", range(20))
def test_rank1_bound_covers_every_change(seed: int) -> None:
    """The bound the engine hands the series (max|u|·max|w|) is ≥ every |u[c, n]·w[c, k]| as
    computed, and NaN when a factor holds a NaN (the series is then not used)."""
    from gradcheck_cli.engine.lowrank import Rank1, bound

    rng = np.random.default_rng(seed)
    u = rng.standard_normal((5, 7)) * 10.0 ** rng.integers(-12, 2, (5, 7))
    w = rng.standard_normal((5, 3)) * 10.0 ** rng.integers(-12, 2, (5, 3))
    u[rng.random(u.shape) < 0.3] = 0.0
    copies = Rank1(np.zeros((7, 3)), u, w)
    assert bound(copies) >= np.abs(u[:, :, None] * w[:, None, :]).max()
    u[0, 0] = np.nan
    assert not bound(copies) < kernels.DELTA_LIMIT


# -- exp of perturbed copies (the rank-1 softmax cross-entropy) ---------------------------------
EXP = list(kernels.CANDIDATES["exp_shift"])


def exp_sign_slip(x: Array | None, t: Array, d: Array, bound: float) -> Array:
    """e^d's series with a sign slip in the second-order term: 1 + d − d²/2."""
    out: Array = t * (1 + d * (1 - d / 2))
    return out


def exp_first_order(x: Array | None, t: Array, d: Array, bound: float) -> Array:
    """e^d ≈ 1 + d: wrong beyond |d| ~ 1e-8."""
    out: Array = t * (1 + d)
    return out


def exp_error(fn: kernels.Kernel, seed: int) -> float:
    """Largest relative error of fn against exp(x + d) in extended precision, in units of
    (|x| + 4)·2⁻⁵³: np.exp(x + d) itself is off by up to |x|·2⁻⁵³ (x + d is rounded first), a
    few units more for the candidates' own arithmetic. x in [-40, 0], steps up to 1e-3."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-40, 0, 4000)
    x[:3] = [0.0, -1e-300, -700.0]
    worst = 0.0
    for scale in (1e-12, 1e-8, 1e-6, 1e-5, 9e-5, 2e-4, 9e-4):
        d = scale * rng.uniform(-1, 1, x.shape)
        want = np.exp(x.astype(np.longdouble) + d.astype(np.longdouble))
        got = fn(x, np.exp(x), d, kernels.bound_of(d))
        units = np.abs(got - want) / want / ((np.abs(x) + 4) * 2.0**-53)
        worst = max(worst, float(units.max()))
    return worst


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("name", EXP)
def test_each_exp_candidate_is_exp_to_round_off(name: str, seed: int) -> None:
    assert exp_error(kernels.CANDIDATES["exp_shift"][name], seed) <= 1


@pytest.mark.parametrize("wrong", [exp_sign_slip, exp_first_order])
def test_a_wrong_exp_twin_is_caught(wrong: kernels.Kernel) -> None:
    assert exp_error(wrong, 0) > 100


def ce_net(rng: np.random.Generator, labels: bool) -> tuple[Network, Array]:
    """Linear → ReLU → Linear → softmax CE: the last layer's copies reach the loss as a rank-1
    form (lowrank.softmax_ce_rank1, the exp kernel)."""
    x = rng.standard_normal((6, 5))
    layers = [
        make_layer("linear", (5,), rng, out=8),
        make_layer("relu", (8,)),
        make_layer("linear", (8,), rng, out=4),
    ]
    target = rng.integers(0, 4, 6) if labels else SoftmaxCrossEntropy.random_target(rng, (6, 4))
    return Network(layers, SoftmaxCrossEntropy(), x=x, target=target), x


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", EXP)
def test_engine_with_each_exp_candidate_equals_the_plain_loop(name: str, seed: int) -> None:
    for labels in (True, False):
        net, x = ce_net(np.random.default_rng(seed), labels)
        slow = Perturber(net, x, batched=False)
        with kernels.forced("exp_shift", name):
            fast = Perturber(net, x, chunk_bytes=4000)
            for ref in net.parameters():
                idx = np.arange(fast.array(ref).size)
                for eps in (1e-6, 1e-5, 1e-2):
                    fb, _ = fast.losses(ref, idx, np.array([eps, -eps]))
                    fl, _ = slow.losses(ref, idx, np.array([eps, -eps]))
                    np.testing.assert_allclose(fb, fl, rtol=0, atol=2e-15 * max(1.0, abs(slow.f0)))


@pytest.mark.parametrize("wrong", [exp_sign_slip, exp_first_order])
def test_engine_catches_a_wrong_exp_twin(wrong: kernels.Kernel) -> None:
    table = kernels.CANDIDATES["exp_shift"]
    was = table["series"]
    table["series"] = wrong
    try:
        with kernels.forced("exp_shift", "series"):
            for labels in (True, False):
                net, x = ce_net(np.random.default_rng(0), labels)
                slow, fast = Perturber(net, x, batched=False), Perturber(net, x, chunk_bytes=4000)
                worst = 0.0
                for ref in net.parameters():
                    idx = np.arange(fast.array(ref).size)
                    for eps in (1e-5, 1e-3):
                        fb, _ = fast.losses(ref, idx, np.array([eps, -eps]))
                        fl, _ = slow.losses(ref, idx, np.array([eps, -eps]))
                        worst = max(worst, float(np.abs(fb - fl).max()))
                assert worst > 1e-13, labels
    finally:
        table["series"] = was
