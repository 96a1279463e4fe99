"""Dense copies carried as their change through linear layers and tanh
(gradcheck_cli/engine/changes.py, kernel "tanh_change" in engine/kernels.py): every candidate is
tanh's change to round-off, forced one at a time (the CPU's own choice never decides a test);
the engine with each equals the plain loop and does take the change path; wrong twins of the
series candidate (a sign slip in c_2, a term too few) are caught directly, the sign slip
through the engine; the cut of series.terms_near is tanh to round-off of max(|t|, |change|);
the softmax cross-entropy of such copies; chunks for them. No clock anywhere."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from gradcheck_cli import make_layer
from gradcheck_cli.engine import changes, chunks, kernels, series
from gradcheck_cli.engine.lowrank import Shifted, softmax_ce_shifted
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.layers.base import Array
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy
from tests.test_taylor import exact_change

CHANGE = list(kernels.CANDIDATES["tanh_change"])
U = 2.0**-53


def change_sign_slip(x: Array | None, t: Array, d: Array, c: Any) -> Array:
    """The series with c_2's sign flipped (wrong at |d| ≳ 1e-12 where t is not 0)."""
    return series.horner([c[0], -c[1], *c[2:]], d)


def change_term_too_few(x: Array | None, t: Array, d: Array, c: Any) -> Array:
    """The series one term short of what terms_needed asked for."""
    return series.horner(c[:-1], d) if len(c) > 1 else np.zeros_like(d)


WRONG = [change_sign_slip, change_term_too_few]


def change_error(fn: kernels.Kernel, seed: int) -> float:
    """Largest |fn − (tanh(x + d) − tanh x)| relative to the change (exact, extended precision)
    over x of every size and steps up to the series' limit, with the coefficients for the
    bound of the steps (as the engine gives them)."""
    rng = np.random.default_rng(seed)
    x = 3 * rng.standard_normal(4000)
    x[:10] = [0.0, -0.0, 1e-300, 25.0, -25.0, 400.0, 1e-3, -1e-3, 0.5, 19.0]
    t = np.tanh(x)
    worst = 0.0
    for scale in (1e-12, 1e-8, 1e-6, 1e-5, 9e-5, 2e-4, 9e-4):
        d = scale * rng.uniform(-1, 1, x.shape)
        n = series.terms_needed(kernels.bound_of(d))
        assert n is not None
        got = fn(x, t, d, series.tanh_coefficients(t, n))
        ref = exact_change(t, d)
        ok = ref != 0
        worst = max(worst, float((np.abs(got - ref)[ok] / np.abs(ref[ok])).max()))
    return worst


@pytest.mark.parametrize("seed", range(5))
def test_the_series_candidate_is_the_change_of_tanh_to_round_off(seed: int) -> None:
    """Relative to the change itself: more exact than np.tanh(x + d) − t can be."""
    assert change_error(kernels.CANDIDATES["tanh_change"]["series"], seed) <= 4 * U


@pytest.mark.parametrize("seed", range(5))
def test_the_direct_candidate_is_the_change_of_tanh_to_round_off(seed: int) -> None:
    """np.tanh(x + d) − t: to the round-off of x + d, of tanh and of the subtraction (absolute),
    which is all it can be."""
    rng = np.random.default_rng(seed)
    x = 3 * rng.standard_normal(4000)
    t = np.tanh(x)
    for scale in (1e-8, 1e-5, 1e-2, 1.0):
        d = scale * rng.uniform(-1, 1, x.shape)
        got = kernels.change_direct(x, t, d, None)
        assert np.all(np.abs(got - exact_change(t, d)) <= 4 * U * (1 + np.abs(x)))


@pytest.mark.parametrize("wrong", WRONG)
def test_a_wrong_change_twin_is_caught(wrong: kernels.Kernel) -> None:
    assert change_error(wrong, 0) > 1e-13


@contextmanager
def candidate(fn: kernels.Kernel) -> Iterator[None]:
    """Run the engine with ``fn`` as the series candidate of tanh_change (a wrong twin)."""
    table = kernels.CANDIDATES["tanh_change"]
    was = table["series"]
    table["series"] = fn
    try:
        with kernels.forced("tanh_change", "series"):
            yield
    finally:
        table["series"] = was


def nets(rng: np.random.Generator) -> Iterator[tuple[str, Network, Array]]:
    """Networks whose copies turn dense after a tanh and go on through linear layers and more
    tanh's (bench deep's shape, smaller), ending in either loss, and one where a linear layer
    follows another (the change through both)."""
    x = rng.standard_normal((6, 5))
    deep: list[Any] = []
    for _ in range(3):
        deep += [make_layer("linear", (5,), rng, out=5), make_layer("tanh", (5,))]
    deep.append(make_layer("linear", (5,), rng, out=3))
    yield "deep-ce", Network(deep, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 3, 6)), x
    two = [
        make_layer("linear", (5,), rng, out=7),
        make_layer("tanh", (7,)),
        make_layer("linear", (7,), rng, out=6),
        make_layer("tanh", (6,)),
        make_layer("linear", (6,), rng, out=4),
        make_layer("linear", (4,), rng, out=2),
    ]
    yield "linear-linear-mse", Network(two, MSE(), x=x, target=rng.standard_normal((6, 2))), x


def compare(net: Network, x: Array, steps: tuple[Any, ...]) -> float:
    """Largest |engine − plain loop| (relative to max(1, |L|)) over every entry of every tensor,
    the input included, and every step."""
    slow = Perturber(net, x, batched=False)
    fast = Perturber(net, x, chunk_bytes=4000)
    worst = 0.0
    for ref in net.parameters():
        idx = np.arange(fast.array(ref).size)
        for eps in steps:
            fb, _ = fast.losses(ref, idx, np.array([eps, -eps]))
            fl, _ = slow.losses(ref, idx, np.array([eps, -eps]))
            worst = max(worst, float(np.abs(fb - fl).max()) / max(1.0, abs(slow.f0)))
    return worst


@contextmanager
def counting() -> Iterator[list[int]]:
    """Count the Shifted states changes.through makes."""
    made = [0]
    was = changes.through

    def through(pert: Any, i: int, state: Any) -> Shifted | None:
        out = was(pert, i, state)
        made[0] += out is not None
        return out

    changes.through = through  # type: ignore[assignment]
    try:
        yield made
    finally:
        changes.through = was  # type: ignore[assignment]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", CHANGE)
def test_engine_with_each_change_candidate_equals_the_plain_loop(name: str, seed: int) -> None:
    """Steps the series takes (1e-6, 1e-5), one it refuses (1e-2: np.tanh), and the complex
    step (not real: the usual way)."""
    rng = np.random.default_rng(seed)
    for label, net, x in nets(rng):
        with kernels.forced("tanh_change", name), counting() as made:
            worst = compare(net, x, (1e-6, 1e-5, 1e-2, 1e-20j))
        assert worst <= 2e-15, label
        assert made[0] > 0, label  # the change path was taken


def test_engine_catches_a_wrong_change_twin() -> None:
    """Steps of 3e-4 (|d| ~ 1e-4, inside the series' range): the engine's dense tanh copies do
    go through the candidate. (A term too few is caught directly above, relative to the change;
    in the loss it is below round-off by construction: the cut leaves < 2⁻⁵⁶ of the change.)"""
    rng = np.random.default_rng(0)
    for label, net, x in nets(rng):
        with candidate(change_sign_slip):
            worst = compare(net, x, (3e-4,))
        assert worst > 1e-13, label


def test_off_means_the_usual_way_with_the_same_numbers() -> None:
    rng = np.random.default_rng(5)
    net, x = next(nets(rng))[1:]
    ref = next(iter(net.parameters(include_input=False)))
    idx = np.arange(net.layers[ref.layer].params[ref.key].size)
    with kernels.forced("tanh_change", "series"), counting() as made:
        on, _ = Perturber(net, x).losses(ref, idx, np.array([1e-5, -1e-5]))
        assert made[0] > 0
        changes.enabled = False
        try:
            off, _ = Perturber(net, x).losses(ref, idx, np.array([1e-5, -1e-5]))
        finally:
            changes.enabled = True
        assert made[0] > 0
    np.testing.assert_allclose(on, off, rtol=0, atol=2e-15)


def test_float32_copies_go_the_usual_way() -> None:
    rng = np.random.default_rng(2)
    net, x = next(nets(rng))[1:]
    for layer in net.layers:
        for key, value in layer.params.items():
            layer.params[key] = value.astype(np.float32)
    x32 = x.astype(np.float32)
    with kernels.forced("tanh_change", "series"), counting() as made:
        pert = Perturber(net, x32)
        ref = next(iter(net.parameters(include_input=False)))
        pert.losses(ref, np.arange(pert.array(ref).size), np.array([1e-3, -1e-3]))
    assert made[0] == 0


def test_coefficients_are_made_once_per_layer_and_terms() -> None:
    rng = np.random.default_rng(4)
    net, x = next(nets(rng))[1:]
    pert = Perturber(net, x)
    for i in (1, 3, 5):
        got = changes.coefficients(pert, i, 3)
        assert changes.coefficients(pert, i, 3) is got
        for a, b in zip(got, series.tanh_coefficients(pert.outputs[i], 3), strict=True):
            np.testing.assert_array_equal(a, b)
    assert changes.coefficients(pert, 1, 4) is not changes.coefficients(pert, 1, 3)


EXP = list(kernels.CANDIDATES["exp_shift"])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", EXP)
def test_softmax_ce_of_shifted_copies_is_that_of_the_dense_copies(name: str, seed: int) -> None:
    """lowrank.softmax_ce_shifted (base row max, exp by each candidate) equals forward_copies of
    base + d to round-off, for labels and rows of values, small and large |d| (past SHIFT_SLACK
    and NaN: the dense way)."""
    rng = np.random.default_rng(seed)
    base = 3 * rng.standard_normal((5, 4))
    loss = SoftmaxCrossEntropy()
    soft = np.exp(rng.standard_normal((5, 4)))
    for target in (rng.integers(0, 4, 5), soft / soft.sum(axis=1, keepdims=True)):
        for scale in (1e-6, 1e-4, 1e-2, 1.0, 100.0):
            d = scale * rng.standard_normal((7, 5, 4))
            copies = Shifted(base, d)
            with kernels.forced("exp_shift", name):
                got = loss.forward_shifted(copies, target)
            ref = loss.forward_copies(copies.dense(), target)
            np.testing.assert_allclose(got, ref, rtol=4e-15, atol=4e-16)
            if scale > 50:
                assert softmax_ce_shifted(copies, target) is None  # the dense way
        d[0, 0, 0] = np.nan
        assert softmax_ce_shifted(Shifted(base, d), target) is None


def test_softmax_ce_of_shifted_copies_catches_a_dropped_label_change() -> None:
    """A twin that leaves d out of the label's logit is caught by the comparison above."""
    rng = np.random.default_rng(0)
    base, target = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    copies = Shifted(base, 1e-4 * rng.standard_normal((7, 5, 4)))
    wrong = Shifted(base, copies.d.copy())
    wrong.d[:, np.arange(5), target] = 0.0  # as if z_y were the base's
    got = softmax_ce_shifted(copies, target)
    assert got is not None
    ref = SoftmaxCrossEntropy().forward_copies(copies.dense(), target)
    np.testing.assert_allclose(got, ref, rtol=4e-15, atol=4e-16)
    bad = softmax_ce_shifted(wrong, target)
    assert bad is not None and float(np.abs(bad - ref).max()) > 1e-7


def test_chunks_for_changes_only_where_every_later_layer_takes_them() -> None:
    rng = np.random.default_rng(6)
    (_, deep, x), (_, two, x2) = nets(rng)
    pert = Perturber(deep, x)
    params = list(deep.parameters(include_input=False))
    assert all(chunks.as_changes(pert, ref) for ref in params)
    assert not chunks.as_changes(pert, next(iter(deep.parameters())))  # the input
    assert chunks.as_changes(Perturber(two, x2), next(iter(two.parameters(include_input=False))))
    changes.enabled = False
    try:
        assert not chunks.as_changes(pert, params[0])
    finally:
        changes.enabled = True
    relu = Network(
        [make_layer("linear", (5,), rng, out=4), make_layer("relu", (4,)),
         make_layer("linear", (4,), rng, out=3)],
        MSE(), x=x, target=rng.standard_normal((6, 3)),
    )  # fmt: skip
    rp = Perturber(relu, x)
    assert not chunks.as_changes(rp, next(iter(relu.parameters(include_input=False))))


def largest_near(n: int) -> float:
    """About the largest |d| series.terms_near gives n terms."""
    lo, hi = 0.0, series.DELTA_LIMIT
    for _ in range(60):
        mid = (lo + hi) / 2
        got = series.terms_near(mid)
        lo, hi = (mid, hi) if got is not None and got <= n else (lo, mid)
    return lo


def worst_near(seed: int, fewer: int = 0) -> float:
    """Largest |series − exact change| / max(|t|, |change|) with the terms terms_near asks for
    (``fewer`` less), at about the largest |d| of each term count, t from 0 to ±1."""
    rng = np.random.default_rng(seed)
    x = 3 * rng.standard_normal(20000)
    x[:10] = [0.0, 1e-300, 1e-8, -1e-6, 5.0, -5.0, 12.0, 18.0, 0.5, -1e-3]
    t = np.tanh(x)
    worst = 0.0
    for n in range(1, series.MAX_TERMS + 1):
        bound = largest_near(n)
        if bound == 0.0 or series.terms_near(bound) != n:
            continue
        d = bound * rng.uniform(-1, 1, x.shape)
        d[0] = bound
        got = series.horner(series.tanh_coefficients(t, n)[: max(1, n - fewer)], d)
        ref = exact_change(t, d)
        scale = np.maximum(np.abs(t), np.abs(ref))
        ok = scale > 0
        worst = max(worst, float((np.abs(got - ref)[ok] / scale[ok]).max()))
    return worst


def test_terms_near_takes_fewer_terms_and_refuses_what_terms_needed_does() -> None:
    near = [series.terms_near(b) for b in (0.0, 1e-9, 1e-6, 1e-5, 5e-5, 1e-4, 5e-4)]
    need = [series.terms_needed(b) for b in (0.0, 1e-9, 1e-6, 1e-5, 5e-5, 1e-4, 5e-4)]
    assert near == sorted(near)  # type: ignore[type-var]
    assert all(a is not None and b is not None and a <= b for a, b in zip(near, need, strict=True))
    assert series.terms_near(1e-5) == 3 and series.terms_needed(1e-5) == 4
    for b in (1e-3, float("nan"), float("inf"), -1.0):
        assert series.terms_near(b) is None
    q = [series.tmax(k) for k in range(2, series.MAX_TERMS + 4, 2)]
    assert all(a >= b for a, b in itertools.pairwise(q))  # the tail bound's premise
    with pytest.raises(ValueError):
        series.tmax(3)


@pytest.mark.parametrize("seed", range(4))
def test_terms_near_is_tanh_to_round_off_of_the_larger_of_t_and_the_change(seed: int) -> None:
    """Within 2⁻⁵⁵ of max(|t|, |change|) from the cut plus Horner's own rounding of the
    change: at most 4u of the larger, as exact as np.tanh(x + d) can be."""
    assert worst_near(seed) <= 4 * U


def test_a_term_fewer_than_terms_near_asks_is_caught() -> None:
    assert worst_near(0, fewer=1) > 8 * U
