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
from gradcheck_cli.layers.losses import SoftmaxCrossEntropy
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


@pytest.mark.parametrize("second_looks", [True, False])
def test_the_time_detail_names_the_slowest_tensor_and_foresees_looks_only_when_asked(
    monkeypatch: pytest.MonkeyPatch, second_looks: bool
) -> None:
    """With the pilot injected: the last tensor (the second bias, 4 entries at 900 µs) is the slowest
    part and is named; a check that takes no second looks (the complex step, directional probes)
    does not ask the pilot to foresee them."""
    from gradcheck_cli.plan import limits, timing

    net = _mlp()
    asked: list[Any] = []

    def fake(pert: Any, refs: Any, **kw: Any) -> Any:
        asked.append(kw["resolution"])
        per = (*(1e-6 * (i + 1) for i in range(len(refs) - 1)), 9e-4)
        z = (0.0,) * len(refs)
        return timing.Timing(per, per, len(refs), 0.0, z, z)

    monkeypatch.setattr(timing, "time_engine", fake)
    cost = limits.estimate_time(net, inputs=True, eps=1e-5, second_looks=second_looks)
    names = [r.name for r in net.parameters(include_input=True)]
    assert f"the slowest part is {names[-1]} (4 entries at 900 µs each)" in cost.detail
    assert asked == [timing.PILOT_RESOLUTION if second_looks else None]


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
