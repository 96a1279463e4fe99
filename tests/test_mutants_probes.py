"""The probes an engine runs before it relies on a layer (engine/probes.py, issue 28), pinned by
behaviour over every candidate mutant of the module: which rows the row-independence probe
stacks and the 1024-ulp line it draws, what it says of a layer that returns the wrong number of
rows; the complex-analyticity probe's 1 % line and its allowance for the central difference's
round-off, its two steps (a kink near an input, round-off far above u), directions relative to
the tensor they move (inputs, parameters and the loss's input at 1e-8), the parameters it
moves, a layer whose output is exactly 0, and that it runs once per layer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradcheck_cli import check_layer, make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.engine.numeric import Perturber
from gradcheck_cli.engine.probes import ROWS_ULPS, complex_safety, distinct_rows, rows_mismatch
from gradcheck_cli.errors import PluginError
from gradcheck_cli.layers.losses import WeightedSum

# -- the row-independence probe --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ulps, equal", [(1024, True), (1025, False)])
def test_a_stacked_row_off_by_1024_ulps_of_the_outputs_size_is_equal_and_a_hair_more_is_not(
    dtype: type, ulps: int, equal: bool
) -> None:
    """A layer whose row 0 moves by exactly 1024 ulps (of the output's largest entry, 1.0, in the
    output's own dtype) when it is run in the stack of 4 rows still counts as row independent;
    1025 ulps is a change of the row. The move sits on an entry 4× smaller than the output's
    size: the unit is the output's size, not the entry's."""
    assert ROWS_ULPS == 1024
    x: np.ndarray = np.array([[0.5, 1.0, -0.25], [0.75, -1.0, 0.125]], dtype=dtype)
    move = ulps * float(np.finfo(dtype).eps)  # exact in dtype: −0.25 + move is representable

    def forward(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        if len(a) == 2 * len(x):
            out[0, 2] += move
        return out

    why = rows_mismatch(forward, x, x.copy())
    if equal:
        assert why is None
    else:
        assert why is not None and why.startswith("rows of its output change"), why


def test_the_row_probe_stacks_the_batch_on_a_copy_whose_row_0_is_the_row_most_unlike_it() -> None:
    """Forward of [x; x'] against [f(x); f(x')], x' = x with row 0 replaced by the row farthest
    from it (here row 2) and every other row in place: the probe runs x' alone, then the stack of
    2n rows, and nothing else."""
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
    seen: list[np.ndarray] = []

    def forward(a: np.ndarray) -> np.ndarray:
        seen.append(a.copy())
        return 2 * a

    assert rows_mismatch(forward, x, 2 * x) is None
    other = np.array([[0.0, 5.0], [1.0, 0.0], [0.0, 5.0]])
    assert len(seen) == 2
    np.testing.assert_array_equal(seen[0], other)
    np.testing.assert_array_equal(seen[1], np.concatenate([x, other]))


def test_a_layer_that_returns_too_few_rows_for_a_stack_is_named_not_crashed_on() -> None:
    """A forward that keeps only the first two rows whatever the batch: on the stack of 4 rows
    the shapes are reported (no broadcasting of a (2, 3) output against (4, 3) expected rows)."""
    x = np.array([[0.5, 1.0, -0.25], [0.75, -1.0, 0.125]])
    why = rows_mismatch(lambda a: 1.0 * a[:2], x, x.copy())
    assert why == "it returned (2, 3) for 4 rows, expected (4, 3)"


@pytest.mark.parametrize(
    "x, rows",
    [
        (np.float64(2.0), 1),  # no batch axis
        (np.zeros((0, 3)), 1),  # an empty batch
        (np.array([[1.0, 2.0]]), 1),
        (np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]), 1),
        (np.array([[1.0, 2.0], [1.0, 2.0 + 1e-12]]), 2),
        (np.eye(4)[3].reshape(1, 2, 2) * np.array([0.0, 0.0, 1.0])[:, None, None], 2),
    ],
)
def test_distinct_rows_counts_one_or_at_least_two(x: np.ndarray, rows: int) -> None:
    """1 when there is at most one row or every row equals row 0 (a scalar and an empty batch
    included: nothing is indexed), 2 as soon as one row differs anywhere (rows of any shape)."""
    assert distinct_rows(x) == rows


# -- the complex-analyticity probe -------------------------------------------------------------------


class Elementwise:
    """A parameter-free elementwise plugin computing ``fn`` (no backward needed by the probe)."""

    row_independent = True

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _probe(layer: Any, x: np.ndarray, loss: Any = None) -> str | None:
    """What the complex probe says of ``layer`` (and the loss) on ``x``: None or the refusal."""
    loss = loss or WeightedSum(np.random.default_rng(1).standard_normal(x.shape))
    net = Network([layer], loss, x=x, trusted=[False])
    try:
        complex_safety(Perturber(net, x), 0)
    except PluginError as exc:
        return exc.message
    return None


@pytest.mark.parametrize("c, accepted", [(0.0099, True), (0.0101, False)])
def test_the_complex_probe_draws_its_line_at_a_1_percent_gap(c: float, accepted: bool) -> None:
    """x + c·Re(x): along the probe's direction the complex step sees slope 1, a central
    difference 1 + c, a relative gap of c exactly (no round-off to speak of at x = 0). A gap under
    1 % is accepted, over 1 % refused."""
    why = _probe(Elementwise(lambda z: z + c * np.real(z)), np.zeros((3, 4)))
    assert (why is None) == accepted, why
    if not accepted:
        assert why is not None and "is not complex-analytic" in why and "by 0.01 " in why


@pytest.mark.parametrize("side, accepted", [(-0.003, True), (+0.003, False)])
def test_the_complex_probe_allows_100_u_of_the_output_per_its_smaller_step_and_no_more(
    side: float, accepted: bool
) -> None:
    """B + x + c·Re(x) at x = 0 with B = 2.8e5 on 10⁶ entries: the central difference's allowance
    for round-off is 100·u·‖f‖ / s at the smaller step s = 1e-6 / 8, over a direction of unit
    entries (x is all zero): 100·u·B·8e6 ≈ 0.0497 of the slope, on top of the 1 %. A gap c 0.3 %
    under that line is accepted, 0.3 % over it refused (10⁶ entries: the direction's norm is
    √n to 0.1 %)."""
    big = 2.8e5
    line = 0.01 + 100 * 2.0**-52 * big / (1e-6 / 8)
    c = line * (1 + side)
    why = _probe(Elementwise(lambda z: big + z + c * np.real(z)), np.zeros((1000, 1000)))
    assert (why is None) == accepted, why


def test_a_kink_straddled_only_by_the_larger_step_is_not_mistaken_for_a_gap() -> None:
    """ReLU with half its inputs 5e-7 above the kink, half at 1: the step 1e-6 (along a direction
    of about unit entries) crosses the kink for most of the near ones, 1e-6 / 8 for almost none;
    the probe keeps the better of its two central differences per entry, so the (complex-safe)
    ReLU is accepted and checked."""
    x = np.full((20, 50), 5e-7)
    x[::2] = 1.0
    layer = make_layer("relu", (50,), np.random.default_rng(0))
    assert _probe(layer, x) is None
    assert check_layer(layer, x, seed=0, method="complex").passed


def _offset_sine(z: np.ndarray) -> np.ndarray:
    """sin(3e4·((x + 2e8) − 2e8)): analytic (the complex step carries through exactly), but every
    real evaluation rounds x to the ulp of 2e8 (3e-8), and it turns fast (a period of 2e-4)."""
    return np.sin(3e4 * ((z + 2e8) - 2e8))


def test_an_analytic_layer_with_round_off_far_above_u_is_judged_at_the_step_1e_6() -> None:
    """Inputs about 1: at the step 1e-6 the round-off of the large intermediate is 0.3 % of the
    slope and the turn (truncation) 0.1 %: accepted. At 1e-6 / 8 alone the round-off is 2 %, at
    1e-5 the truncation is 10 %: a probe taking its larger step any larger or smaller would refuse
    this analytic layer."""
    x = np.random.default_rng(3).uniform(0.5, 1.5, (20, 50))
    assert _probe(Elementwise(_offset_sine), x) is None


def test_the_probes_complex_step_still_reads_a_slope_at_inputs_of_1e_minus_301() -> None:
    """1e300·x on inputs about 1e-301 (normal floats, an output about 0.1): the probe's complex
    step i·h·v, h = 1e-20, is subnormal there (about 1e-321: three digits) and still reads the
    slope to about 0.1 %: accepted. A step 10× finer keeps one digit and reads it 1 % off."""
    x = 1e-301 * np.random.default_rng(5).standard_normal((4, 8))
    assert _probe(Elementwise(lambda z: 1e300 * z), x) is None


class TinyTanh:
    """1e-8·tanh(1e8·(x + w)): a layer that works at the scale 1e-8 (input and parameter), whose
    output is 1e-8 small as well."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"w": np.linspace(-2e-8, 2e-8, 5)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return 1e-8 * np.tanh(1e8 * (x + self.params["w"]))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class TinyTanhLoss:
    """Σ g·tanh(1e8·pred): a plugin loss that turns at the scale 1e-8 of its input."""

    def __init__(self, g: np.ndarray) -> None:
        self.g = g

    def forward(self, pred: np.ndarray, target: Any) -> Any:
        return (self.g * np.tanh(1e8 * pred)).sum()

    def backward(self) -> np.ndarray:
        raise NotImplementedError


def test_the_probe_moves_each_tensor_relative_to_its_own_size() -> None:
    """Input, parameter and the loss's input all about 1e-8 and everything analytic: each is
    moved along a direction of its own size (|a| + mean |a| per entry), so a step of 1e-6 of it
    stays far inside the 1e-8 scale where the layer and the loss turn: accepted. A direction of
    unit size, or its reciprocal, would step 100× past the turn and refuse them."""
    x = 1e-8 * np.random.default_rng(5).standard_normal((4, 5))
    loss = TinyTanhLoss(np.random.default_rng(6).standard_normal((4, 5)))
    assert _probe(TinyTanh(), x, loss) is None


class AbsScaled:
    """x·w·|w|: analytic in x, not in w (|w| is real at complex w): a complex step on w sees
    half the slope 2|w| (for the sign of w kept)."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"w": np.linspace(0.5, 1.5, 4)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        w = self.params["w"]
        return x * w * np.abs(w)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        w = self.params["w"]
        self.grads = {"w": (dout * self.x).sum(axis=0) * 2 * np.abs(w)}
        return dout * w * np.abs(w)


def test_a_layer_not_analytic_in_its_parameter_only_is_refused_exit_2() -> None:
    """The probe moves the parameters with the input: a layer whose input path is analytic but
    whose parameter path is not is refused up front, rather than given a complex step on w that
    reads half the true slope (a false fail of a correct backward)."""
    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(PluginError, match=r"\(AbsScaled\) is not complex-analytic") as err:
        check_layer(AbsScaled(), x, seed=0, method="complex")
    assert err.value.exit_code == 2
    assert check_layer(AbsScaled(), x, seed=0).passed


def test_a_dead_relu_whose_output_is_exactly_zero_is_checked_not_refused() -> None:
    """ReLU on all-negative inputs: its output is exactly 0 along every direction, for the
    complex step and the central difference alike (a gap of 0 against an allowance of 0): the
    probe agrees, and the check judges the zero gradient."""
    rng = np.random.default_rng(0)
    res = check_layer(make_layer("relu", (4,), rng), -0.5 - rng.random((3, 4)), method="complex")
    assert res.passed and [p.verdict for p in res.params] == ["zero"]


class CountingTanh:
    """tanh(x·w) counting the forward calls on an input imaginary in every entry (the probe's
    own complex step; the engine's complex steps move one entry per copy)."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"w": np.linspace(0.5, 1.5, 4)}
        self.grads: dict[str, np.ndarray] = {}
        self.probed = 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        if np.iscomplexobj(x) and np.all(np.imag(x) != 0):
            self.probed += 1
        self.x = x
        return np.tanh(x * self.params["w"])

    def backward(self, dout: np.ndarray) -> np.ndarray:
        d = dout * (1 - np.tanh(self.x * self.params["w"]) ** 2)
        self.grads = {"w": (d * self.x).sum(axis=0)}
        return d * self.params["w"]


def test_the_complex_probe_runs_once_per_layer_per_check() -> None:
    """Two tensors read by the same layer (the input and w): the layer is probed before the
    first, and not again before the second."""
    layer = CountingTanh()
    res = check_layer(layer, np.random.default_rng(0).standard_normal((3, 4)), method="complex")
    assert res.passed and len(res.params) == 2
    assert layer.probed == 1
