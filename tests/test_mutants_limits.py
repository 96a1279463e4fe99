"""plan/limits.py pinned by behaviour (issue 28, every candidate): the default time limit, the
threshold below which a check is not timed, what a memory refusal names, the evaluations a check
is counted at, which tensors the pilot times and on what, and when it does not run at all. The
pilot is always injected (``timing.time_engine``): no test decides from a wall clock."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gradcheck_cli import make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.errors import LimitError
from gradcheck_cli.layers.activations import Tanh
from gradcheck_cli.layers.base import Layer
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy
from gradcheck_cli.plan import limits, timing
from gradcheck_cli.plan.limits import Limits, MemoryPlan
from tests.test_mutants_plan2 import _mlp  # five tensors: 48, 8×16 + 16, 16×4 + 4 (260 entries)


class _Pilot:
    """The injected pilot: ``per[j]`` seconds per entry of tensor j, ``looks[j]`` seconds of a
    foreseen second look; records the names of the tensors it is asked to time, the network's
    parameter dtypes and the input's dtype while it runs."""

    def __init__(self, per: list[float], looks: list[float] | None = None) -> None:
        self.per, self.looks = per, looks
        self.asked: list[list[str]] = []
        self.params: list[dict[str, Any]] = []
        self.x: list[Any] = []

    def __call__(self, pert: Any, refs: Any, **kw: Any) -> timing.Timing:
        self.asked.append([r.name for r in refs])
        self.params.append({k: v.dtype for la in pert.net.layers for k, v in la.params.items()})
        self.x.append(np.asarray(pert.x).dtype)
        n = len(refs)
        per = tuple(self.per[:n])
        looks = tuple(self.looks[:n]) if self.looks else (0.0,) * n
        return timing.Timing(per, per, n, 0.0, looks, (0.0,) * n)


def _inject(monkeypatch: pytest.MonkeyPatch, pilot: _Pilot) -> _Pilot:
    monkeypatch.setattr(timing, "time_engine", pilot)
    return pilot


RUN = {"inputs": True, "eps": 1e-5, "real_steps": False}
#: 1,001 entries of the MLP: 200 of each tensor and one more of the last.
MORE = lambda n: 200 + (n == 4)  # noqa: E731


def test_the_default_time_limit_is_five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --force a check is held to 300 s: ~290 s of estimated engine time runs, ~310 s
    is refused, naming the 5.0 minute limit."""
    _inject(monkeypatch, _Pilot([0.29] * 5))
    cost = limits.preflight(_mlp(), limits=Limits(), entries=MORE, **RUN)
    assert 290 < cost.seconds < 300
    _inject(monkeypatch, _Pilot([0.31] * 5))
    with pytest.raises(LimitError, match=r"about 5\.2 minutes: .* the limit is 5\.0 minutes"):
        limits.preflight(_mlp(), limits=Limits(), entries=MORE, **RUN)


def test_a_check_of_exactly_2000_evaluations_is_not_timed_and_one_more_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With one evaluation an entry (the complex step): 2,000 entries are not timed (never
    refused on time, the pilot does not run); 2,001 are timed, and at 1 s an entry refused."""
    pilot = _inject(monkeypatch, _Pilot([1.0] * 5))
    run = {**RUN, "evals_per_entry": 1}
    cost = limits.preflight(_mlp(), limits=Limits(), entries=lambda n: 400, **run)
    assert (cost.evaluations, cost.seconds, pilot.asked) == (2000, 0.0, [])
    with pytest.raises(LimitError, match=r"2,001 entries × 1 loss evaluations"):
        limits.preflight(_mlp(), limits=Limits(), entries=lambda n: 400 + (n == 4), **run)
    assert len(pilot.asked) == 1


def test_a_memory_refusal_names_the_three_largest_parts_largest_first() -> None:
    """Five parts over the limit: the message lists the three largest, in decreasing order, and
    neither of the two smaller ones."""
    plan = MemoryPlan(Limits(max_bytes=1400), "net.yaml")
    for label, nbytes in (("a", 100), ("b", 500), ("c", 300), ("d", 400)):
        plan.add(label, nbytes, label)
    with pytest.raises(LimitError) as err:
        plan.add("e", 200, "e")
    message = str(err.value)
    assert "(b 500 bytes, d 400 bytes, c 300 bytes)" in message
    assert "e 200" not in message and "a 100" not in message


def test_a_check_is_counted_as_central_differences_unless_told() -> None:
    """``count_entries`` without evals_per_entry counts two loss evaluations an entry (θ ± ε):
    260 entries are 520 evaluations, the 212 parameters alone 424."""
    assert limits.count_entries(_mlp(), inputs=True) == limits.Cost(260, 520)
    assert limits.count_entries(_mlp(), inputs=False) == limits.Cost(212, 424)


def _ids_net(dtype: str) -> Network:
    rng = np.random.default_rng(1)
    emb = make_layer("embedding", (5,), rng, vocab=10, dim=3, dtype=dtype)
    ids = rng.integers(0, 10, (4, 5))
    return Network([emb], MSE(), x=ids, target=rng.standard_normal((4, 5, 3)), trusted=[True])


def test_a_network_of_integer_ids_is_timed_on_its_parameters_with_the_ids_as_they_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ids are data, not differentiated: asked to time the input too, the pilot times only the
    embedding's W, and runs the network on the integer ids themselves (ids cast to floats
    would not index anything), with float32 parameters left float32 as the check keeps them."""
    for dtype in ("float64", "float32"):
        net = _ids_net(dtype)
        pilot = _inject(monkeypatch, _Pilot([1e-3]))
        cost = limits.estimate_time(net, inputs=True, eps=1e-5)
        assert pilot.asked == [[net.parameters(include_input=False)[0].name]]
        assert np.issubdtype(pilot.x[0], np.integer)
        assert pilot.params == [{"W": np.dtype(dtype)}]
        assert cost.seconds > 0


@pytest.mark.parametrize(("given", "timed"), [("float32", np.float64), ("float64", np.float32)])
def test_float32_parameters_are_timed_in_float64_only_behind_a_float32_input(
    monkeypatch: pytest.MonkeyPatch, given: str, timed: Any
) -> None:
    """The check promotes parameters only for a float32 input (checker._dtype): behind one, the
    pilot times float64 copies on a float64 input; behind a float64 input the float32
    parameters are timed as they are, as the check will run them."""
    rng = np.random.default_rng(2)
    layer = make_layer("linear", (8,), rng, out=4, dtype="float32")
    x = rng.standard_normal((3, 8)).astype(given)
    net = Network([layer], SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 4, 3), trusted=[True])
    pilot = _inject(monkeypatch, _Pilot([1e-3] * 3))
    limits.estimate_time(net, inputs=True, eps=1e-5)
    assert pilot.params == [{"W": timed, "b": timed}]
    assert pilot.x == [np.float64]
    assert all(v.dtype == np.float32 for v in layer.params.values())


def test_a_check_of_nothing_runs_no_pilot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A network without parameters whose input is not checked: nothing to time, so the pilot
    does not run and the estimate is 0 entries, 0 seconds."""
    rng = np.random.default_rng(3)
    net = Network(
        [Tanh()], MSE(), x=rng.standard_normal((2, 3)), target=np.zeros((2, 3)), trusted=[True]
    )
    pilot = _inject(monkeypatch, _Pilot([]))
    assert limits.estimate_time(net, inputs=False, eps=1e-5) == limits.Cost(0, 0)
    assert pilot.asked == []


class _Constant(Layer):
    """A layer whose output is its parameter whatever it is fed (so it runs without an input)."""

    row_independent = False

    def __init__(self) -> None:
        super().__init__()
        self.params = {"w": np.arange(6.0).reshape(2, 3)}
        self.grads = {"w": np.zeros((2, 3))}

    def forward(self, x: Any) -> Any:
        return self.params["w"] * 1.0


def test_a_network_without_an_input_is_not_timed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A network built with no input (x given later, at check time) has nothing real to time
    on: the pilot does not run and the estimate counts the entries only, 0 seconds."""
    net = Network([_Constant()], MSE(), x=None, target=np.zeros((2, 3)), trusted=[True])
    pilot = _inject(monkeypatch, _Pilot([1e-3, 1e-3]))
    cost = limits.estimate_time(net, inputs=True, eps=1e-5)
    assert (cost.entries, cost.seconds, pilot.asked) == (7, 0.0, [])


def test_the_time_detail_says_the_slowest_part_takes_a_second_look_only_when_it_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last tensor (4 entries at 900 µs) is the slowest part: when the pilot foresees a
    second look for it the detail says so; a look foreseen for another tensor only does not."""
    per = [1e-6, 2e-6, 3e-6, 5e-5, 9e-4]
    _inject(monkeypatch, _Pilot(per, [0.0, 0.0, 0.0, 0.0, 1e-6]))
    cost = limits.estimate_time(_mlp(), inputs=True, eps=1e-5)
    assert "(4 entries at 901 µs each, with a second look: its first" in cost.detail
    _inject(monkeypatch, _Pilot(per, [1e-6, 0.0, 0.0, 0.0, 0.0]))
    cost = limits.estimate_time(_mlp(), inputs=True, eps=1e-5)
    assert cost.detail.endswith("(4 entries at 900 µs each)")


def test_a_declared_workspace_and_estimate_are_what_the_memory_plan_reads() -> None:
    """conv2d 3×8×8, 4 channels, 3×3 kernel: its window matrix is 3·6·6·3·3 = 972 elements a
    sample and its estimate 4·3·3·3 + 4 = 112 parameters, output 4×6×6; a class declaring
    neither has no temporaries (0) and no estimate (None)."""
    from gradcheck_cli.layers.conv import Conv2d

    args = {"out_channels": 4, "kernel": 3}
    assert limits.estimate_workspace(Conv2d, (3, 8, 8), args) == 972
    assert limits.estimate_layer(Conv2d, (3, 8, 8), args) == (112, (4, 6, 6))
    assert limits.estimate_workspace(object, (3, 8, 8), args) == 0
    assert limits.estimate_layer(object, (3, 8, 8), args) is None


def test_a_preflight_with_probes_refuses_them_when_they_do_not_fit() -> None:
    """Directional probes are checked for memory before anything else: 1,000 probes of the
    MLP's largest tensor (128 entries) need 4 MB, refused under a 1 MB limit; a network with
    no tensor to probe is never refused for them, even under a limit of 0 bytes."""
    bare = Network([Tanh()], MSE(), x=np.ones((2, 3)), target=np.zeros((2, 3)), trusted=[True])
    cost = limits.preflight(bare, limits=Limits(max_bytes=0), probes=3, **{**RUN, "inputs": False})
    assert cost == limits.Cost(0, 0)
    with pytest.raises(LimitError, match=r"1,000 directional probes of .* \(128 entries\)"):
        limits.preflight(_mlp(), limits=Limits(max_bytes=2**20), probes=1000, **RUN)


@pytest.mark.parametrize("theta", [1.0, -1.0])
def test_a_step_lost_on_one_side_of_a_power_of_two_is_refused(theta: float) -> None:
    """At |θ| = 1 the floats are twice as far apart away from 0 as towards it: ε = 1e-16 is
    lost on the far side only (1 + 1e-16 rounds to 1, 1 − 1e-16 does not), and that is enough
    to refuse it, naming that entry, whichever side it is on; at 0.5 it survives both ways."""
    from gradcheck_cli.errors import NumericError

    x = np.array([[0.5, theta]])
    net = Network([Tanh()], MSE(), x=x, target=np.zeros((1, 2)), trusted=[True])
    limits.check_step(net, np.array([[0.5, 0.5]]), 1e-16, inputs=True)
    with pytest.raises(NumericError, match=rf"ε=1e-16 is below .* at \S+\[0, 1\] \(θ={theta:g},"):
        limits.check_step(net, x, 1e-16, inputs=True)
