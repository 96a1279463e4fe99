"""Plan mechanisms pinned by behaviour (issue 28, second round): the memory limit's default and
its boundary, the probe-memory refusal, what the pilot times, the progress of the two passes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradcheck_cli import make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.errors import LimitError
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy
from gradcheck_cli.plan.limits import Limits, MemoryPlan


def test_the_default_memory_limit_is_two_gib_and_holds_exactly_that() -> None:
    """2 GiB is allowed, one byte more is refused, naming the total and the 2.0 GB limit."""
    plan = MemoryPlan(Limits(), "net.yaml")
    plan.add("input", 2 * 2**30 - 8, "input")
    plan.add("layer 0 output", 8, "layers[0]")  # exactly 2 GiB held: allowed
    with pytest.raises(LimitError, match=r"about 2\.0 GB of memory .* more than the 2\.0 GB limit"):
        plan.add("layer 1 output", 1, "layers[1]")


def test_a_transient_peak_is_refused_on_top_of_what_is_held_but_not_kept() -> None:
    plan = MemoryPlan(Limits(max_bytes=1000))
    plan.add("input", 600, "input")
    plan.peak("layer 0 temporaries", 400, "layers[0]")  # 1000: fits exactly
    assert plan.total == 600
    with pytest.raises(LimitError, match="layer 0 temporaries 401 bytes") as err:
        plan.peak("layer 0 temporaries", 401, "layers[0]")
    assert err.value.field == "layers[0]"


def _small_config(tmp_path: Path) -> Any:
    from gradcheck_cli.spec.config import load_config

    path = tmp_path / "net.yaml"
    path.write_text("input: {shape: [4, 8]}\nlayers: [{type: linear, out: 3}, {type: tanh}]\n")
    return load_config(path)


def test_a_network_that_exactly_fits_the_limit_is_built(tmp_path: Path) -> None:
    """Held: input 4×8 (256 B), linear's 8·3+3 parameters (216 B), two 4×3 outputs and the
    upstream gradient (96 B each) = 760 bytes; neither layer declares temporaries, so none are
    added on top. 760 builds; 759 is refused with the total."""
    from gradcheck_cli.engine.build import build_network

    cfg = _small_config(tmp_path)
    assert len(build_network(cfg, limits=Limits(max_bytes=760)).layers) == 2
    with pytest.raises(LimitError, match="about 760 bytes of memory"):
        build_network(cfg, limits=Limits(max_bytes=759))


def test_a_layer_without_declared_temporaries_has_none() -> None:
    from gradcheck_cli.plan.limits import estimate_workspace

    class NoWorkspace:
        pass

    class BadArguments:
        @staticmethod
        def workspace(shape: tuple[int, ...], **args: Any) -> int:
            raise TypeError("bad")

    assert estimate_workspace(NoWorkspace, (8,), {}) == 0
    assert estimate_workspace(BadArguments, (8,), {}) == 0


@pytest.mark.parametrize("probes", [1, 3])
def test_probe_memory_is_refused_only_above_the_limit(probes: int) -> None:
    """Directional probes hold 4 float64 arrays of probes × the largest tensor: exactly at the
    limit they are drawn, one byte under it they are refused, naming the tensor and the field."""
    from gradcheck_cli.plan.limits import refuse_probes

    sizes = [("input", 10), ("0.linear.W", 250), ("0.linear.b", 5)]
    need = 4 * 8 * probes * 250
    refuse_probes(sizes, probes=probes, limits=Limits(max_bytes=need))
    with pytest.raises(LimitError, match=rf"{probes} directional probes of 0\.linear\.W") as err:
        refuse_probes(sizes, probes=probes, limits=Limits(max_bytes=need - 1), source="n.yaml")
    assert err.value.field == "check.probes" and err.value.file == "n.yaml"
    refuse_probes([], probes=probes, limits=Limits(max_bytes=0))  # nothing to probe
    refuse_probes(sizes, probes=0, limits=Limits(max_bytes=0))  # no probes


def test_the_pilot_times_a_float32_network_in_float64_as_the_check_runs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """precision.py checks a float32 network with float64 parameters: the pilot must time that
    network (float64 copies swapped in), and leave the float32 parameters in place afterwards."""
    from gradcheck_cli.plan import limits, timing

    rng = np.random.default_rng(0)
    layers = [make_layer("linear", (8,), rng, out=4, dtype="float32")]
    x = rng.standard_normal((3, 8)).astype(np.float32)
    net = Network(layers, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 4, 3), trusted=[True])
    seen: list[Any] = []

    def fake(pert: Any, refs: Any, **kw: Any) -> Any:
        seen.append({k: v.dtype for k, v in net.layers[0].params.items()})
        seen.append(np.asarray(pert.array(refs[0])).dtype)
        z = (0.0,) * len(refs)
        return timing.Timing((1e-3,) * len(refs), (1e-3,) * len(refs), len(refs), 0.0, z, z)

    monkeypatch.setattr(timing, "time_engine", fake)
    cost = limits.estimate_time(net, inputs=True, eps=1e-5)
    assert cost.seconds > 0
    assert seen[0] == {"W": np.float64, "b": np.float64}
    assert all(v.dtype == np.float32 for v in net.layers[0].params.values())


def _mlp() -> Network:
    rng = np.random.default_rng(0)
    layers = [
        make_layer("linear", (8,), rng, out=16),
        make_layer("tanh", (16,)),
        make_layer("linear", (16,), rng, out=4),
    ]
    x = rng.standard_normal((6, 8))
    return Network(
        layers, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 4, 6), trusted=[True] * 3
    )


def _fake_pilot(monkeypatch: pytest.MonkeyPatch, per: list[float], asked: list[Any]) -> None:
    """Inject the pilot: ``per[j]`` seconds per entry of tensor j (no clock)."""
    from gradcheck_cli.plan import timing

    def fake(pert: Any, refs: Any, **kw: Any) -> Any:
        asked.append(kw["resolution"])
        z = (0.0,) * len(refs)
        return timing.Timing(tuple(per), tuple(per), len(refs), 0.0, z, z)

    monkeypatch.setattr(timing, "time_engine", fake)


@pytest.mark.parametrize("second_looks", [True, False])
def test_the_time_detail_names_the_slowest_tensor_and_foresees_looks_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, second_looks: bool
) -> None:
    """With the pilot injected: the slowest part is the most entries × time per entry — the
    last tensor (4 entries at 900 µs) over 2.Linear.W (64 at 50 µs), then 2.Linear.W (64 at
    100 µs) over it; a check that takes no second looks (the complex step, directional probes)
    does not ask the pilot to foresee them."""
    from gradcheck_cli.plan import limits, timing

    net = _mlp()
    names = [r.name for r in net.parameters(include_input=True)]
    asked: list[Any] = []
    per = [1e-6, 2e-6, 3e-6, 5e-5, 9e-4]
    _fake_pilot(monkeypatch, per, asked)
    cost = limits.estimate_time(net, inputs=True, eps=1e-5, second_looks=second_looks)
    assert f"the slowest part is {names[-1]} (4 entries at 900 µs each)" in cost.detail
    per[3] = 1e-4
    cost = limits.estimate_time(net, inputs=True, eps=1e-5, second_looks=second_looks)
    assert f"the slowest part is {names[3]} (64 entries at 100 µs each)" in cost.detail
    assert asked == [timing.PILOT_RESOLUTION if second_looks else None] * 2


def test_the_time_limit_applies_only_to_timed_checks_of_over_2000_evaluations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a pilot that makes every entry cost 1 s: 1,000 entries × 2 evaluations are not
    timed (never refused on time), 1,001 are and are refused, naming the estimate; a mode that
    bounds its own time (timed=False), a check above auto's threshold and --force are not
    timed; a time exactly at the limit runs."""
    from gradcheck_cli.plan import limits

    net = _mlp()
    asked: list[Any] = []
    _fake_pilot(monkeypatch, [1.0] * 5, asked)
    run = {"inputs": True, "eps": 1e-5, "real_steps": False}
    thousand = lambda n: 200  # noqa: E731  (5 tensors)
    more = lambda n: 200 + (n == 4)  # noqa: E731  (one more entry of the last tensor)
    assert limits.preflight(net, limits=Limits(), entries=thousand, **run).seconds == 0
    assert asked == []
    with pytest.raises(LimitError, match=r"about 16\.7 minutes: 1,001 entries × 2 loss"):
        limits.preflight(net, limits=Limits(), entries=more, **run)
    limits.preflight(net, limits=Limits(), entries=more, timed=False, **run)
    limits.preflight(net, limits=Limits(), entries=more, auto_above=1000, **run)
    with pytest.raises(LimitError):
        limits.preflight(net, limits=Limits(), entries=more, auto_above=1001, **run)
    timed = len(asked)
    limits.preflight(net, limits=Limits.off(), entries=more, **run)
    assert len(asked) == timed  # --force: no pilot runs (it would only delay the check)
    seconds = limits.estimate_time(net, inputs=True, eps=1e-5, entries=more).seconds
    cost = limits.preflight(net, limits=Limits(max_seconds=seconds), entries=more, **run)
    assert cost.seconds == seconds and cost.entries == 1001 and cost.evaluations == 2002


def test_a_budgeted_checks_progress_total_counts_each_round_in_advance_and_ends_exact() -> None:
    """Under a budget (never reached: the injected clock stands still) the depth rounds double
    (16, 32, 64 entries) and each round re-judges the last round's entries: the total shown
    grows by exactly that re-judged work when a round begins, so the bar is never full before
    the end (done < planned until the last evaluation) and never promises work that is not done
    (the largest total shown is the evaluations made)."""
    from gradcheck_cli import check_network

    seen: list[tuple[int, int]] = []
    res = check_network(
        _mlp(), mode="sample", samples=64, budget=1e6, clock=lambda: 0.0,
        progress=lambda d, t: seen.append((d, t)), attribute=False,
    )  # fmt: skip
    assert res.passed and [p.checked for p in res.params] == [48, 64, 16, 64, 4]
    done = seen[-1][0]
    assert seen[-1] == (done, done)
    assert max(t for _, t in seen) == done
    assert all(d < t for d, t in seen[:-1]), seen
    assert [t for _, t in seen] == sorted(t for _, t in seen)


class IntTable:
    """out = x · w, with an integer table (never differenced) next to its float parameter."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"w": np.ones(3), "table": np.array([10**17, 2, 3], dtype=np.int64)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x * self.params["w"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"w": (dout * self.x).sum(axis=0)}
        return dout * self.params["w"]


def test_the_step_check_refuses_a_lost_float_step_and_ignores_integer_tensors() -> None:
    """θ = 1e17 in float64: θ ± 1e-5 rounds back to θ, refused naming the entry; the same value
    in an integer table is not differenced, so it is not a reason to refuse."""
    from gradcheck_cli.errors import NumericError
    from gradcheck_cli.plan.limits import check_step

    x = np.ones((2, 3))
    net = Network([IntTable()], None, x=x)
    check_step(net, x, 1e-5, inputs=True)
    x[1, 2] = 1e17
    with pytest.raises(NumericError, match=r"at input\[1, 2\] \(θ=1e\+17"):
        check_step(net, x, 1e-5, inputs=True, source="n.yaml")
    check_step(net, x, 1e-5, inputs=False)


class Stages:
    """A progress callback that also hears which tensor is being judged: per tensor, the
    evaluations of each chunk (one ``progress`` call per engine chunk)."""

    def __init__(self) -> None:
        self.done, self.tensor = 0, ""
        self.chunks: dict[str, list[int]] = {}

    def stage(self, mode: str, tensor: str) -> None:
        self.tensor = tensor

    def __call__(self, done: int, planned: int) -> None:
        if done > self.done:
            self.chunks.setdefault(self.tensor, []).append(done - self.done)
        self.done = done


def test_a_budget_caps_each_tensors_chunks_at_a_share_of_it_from_its_timed_look() -> None:
    """Under a budget the engine's chunks are kept to about 5 % of it, timed from each tensor's
    cheap look (on an injected clock that counts evaluations): at 0.01 s per evaluation and a
    2 s budget, chunks of at most 10 evaluations; the depth entries are all judged (the clock
    stops after the looks, so the budget is never reached)."""
    from gradcheck_cli import check_network

    bar = Stages()
    res = check_network(
        _mlp(), mode="full", budget=2.0, clock=lambda: 0.01 * min(bar.done, 20), progress=bar,
        attribute=False,
    )  # fmt: skip
    assert res.passed and [p.checked for p in res.params] == [48, 128, 16, 64, 4]
    for name, chunks in bar.chunks.items():
        assert chunks[:4] == [1, 1, 1, 1] and max(chunks[4:]) <= 10, (name, chunks)
    assert max(bar.chunks["input"][4:]) == max(bar.chunks["0.Linear.W"][4:]) == 10


def test_a_slow_look_caps_that_tensors_chunks_at_one_evaluation_and_no_other() -> None:
    """The input's look takes 0.4 s for its 4 evaluations, over 5 % of the 1 s budget per
    evaluation: its chunks hold one evaluation (never none); the other tensors' looks took no
    time, so their chunks are not capped."""
    from gradcheck_cli import check_network

    bar = Stages()
    res = check_network(
        _mlp(), mode="full", budget=1.0, clock=lambda: 0.1 * min(bar.done, 4), progress=bar,
        attribute=False,
    )  # fmt: skip
    assert res.passed and [p.checked for p in res.params] == [48, 128, 16, 64, 4]
    assert set(bar.chunks["input"][2:]) == {1}, bar.chunks["input"]
    assert max(bar.chunks["0.Linear.W"]) > 10


class NoGrad:
    """out = x·w with a backward that leaves grads empty: w is a structural failure."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"w": np.ones(3)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x * self.params["w"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {}
        return dout * self.params["w"]


def test_a_tensor_without_a_look_gets_no_chunk_cap() -> None:
    """Under a budget a tensor that failed before any look (no gradient to compare) has no
    look to time: it is reported, and the check does not divide by its zero evaluations."""
    from gradcheck_cli import check_network

    bar = Stages()
    net = Network([NoGrad()], MSE(), x=np.ones((2, 3)), target=np.zeros((2, 3)))
    res = check_network(net, budget=2.0, clock=lambda: 0.5 * min(bar.done, 4), progress=bar)
    assert [p.verdict for p in res.params] == ["pass", "fail"]
