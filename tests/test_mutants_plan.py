"""Plan mechanisms pinned by behaviour (issue 28): directional probes' tolerance (what a correct
tensor needs to pass on its probes alone), zero gradients, the plan's choices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gradcheck_cli import check_layer, check_network, make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.losses import MSE, SoftmaxCrossEntropy


def _mlp(seed: int, dtype: str = "float64") -> Network:
    rng = np.random.default_rng(seed)
    layers = [
        make_layer("linear", (8,), rng, out=16, dtype=dtype),
        make_layer("tanh", (16,)),
        make_layer("linear", (16,), rng, out=4, dtype=dtype),
    ]
    x = rng.standard_normal((6, 8)).astype(dtype)
    return Network(
        layers, SoftmaxCrossEntropy(), x=x, target=rng.integers(0, 4, 6), trusted=[True] * 3
    )


@pytest.mark.parametrize("seed", range(3))
def test_a_correct_float32_network_passes_on_its_probes_alone(seed: int) -> None:
    """float32: the analytic gradient's own round-off is part of a probe's tolerance, so no
    probe of a correct network fails (none needs an entry-by-entry search)."""
    res = check_network(_mlp(seed, "float32"), mode="directional", probes=2, seed=seed)
    assert res.passed
    assert all(p.mode == "directional" and p.verdict != "fail" for p in res.params), [
        (p.name, p.mode, p.verdict) for p in res.params
    ]


class SteepTanh:
    """out = tanh(k·x): a strongly curved L, where a probe's truncation error is above rtol."""

    row_independent = True

    def __init__(self, k: float) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.k = k

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.tanh(self.k * x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.k * (1 - self.out**2)


def test_a_strongly_curved_correct_layer_passes_on_its_probes_alone() -> None:
    """The Richardson truncation estimate is part of a probe's tolerance: no probe of a correct
    layer limited by truncation (not noise) fails."""
    x = np.random.default_rng(0).standard_normal((4, 5)) / 300
    res = check_layer(SteepTanh(300.0), x, seed=0, mode="directional", probes=2)
    (p,) = res.params
    assert res.passed and p.mode == "directional" and p.verdict != "fail", (p.mode, p.note)


class Unused:
    """out = x; its parameter w is not used: ∂L/∂w = 0 exactly."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"w": np.ones(5)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x.copy()

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"w": np.zeros(5)}
        return dout


@pytest.mark.parametrize("mode", ["directional", "full", "sample"])
def test_a_parameter_with_zero_gradient_is_zero_in_every_mode(mode: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5))
    net = Network([Unused()], MSE(), x=x, target=rng.standard_normal((3, 5)), trusted=[False])
    given = (
        {"samples": 2, "probes": 2}
        if mode == "sample"
        else {"probes": 2}
        if mode == "directional"
        else {}
    )
    res = check_network(net, mode=mode, inputs=False, **given)
    (p,) = res.params
    assert res.passed and p.verdict == "zero", (p.verdict, p.note)


def test_directional_probes_keep_the_resolution_promise() -> None:
    """As per entry: a probed tensor resolved less finely than promised is inconclusive (and
    fails under --strict), one resolved within it passes."""
    rng = np.random.default_rng(0)
    layer, x = make_layer("tanh", (6,), rng), rng.standard_normal((4, 6))
    verdicts = set()
    for promise in np.geomspace(1e-4, 1e-12, 9):
        p = check_layer(layer, x, seed=0, mode="directional", probes=2, resolution=promise).params[
            0
        ]
        assert p.mode == "directional"
        assert (p.verdict == "pass") == (p.resolution <= promise), (
            promise,
            p.verdict,
            p.resolution,
        )
        assert p.verdict in ("pass", "inconclusive"), p.verdict
        verdicts.add(p.verdict)
        if p.verdict == "inconclusive":
            strict = check_layer(
                layer, x, seed=0, mode="directional", probes=2, resolution=promise, strict=True
            )
            assert not strict.passed
    assert verdicts == {"pass", "inconclusive"}


@pytest.mark.parametrize(
    "seconds, shown",
    [(59.9, "59.9 s"), (60, "1.0 minutes"), (3599, "60.0 minutes"), (3600, "1.0 hours"),
     (86399, "24.0 hours"), (86400, "1.0 days")],
)  # fmt: skip
def test_time_estimates_are_shown_in_the_right_unit(seconds: float, shown: str) -> None:
    from gradcheck_cli.plan.limits import human_seconds

    assert human_seconds(seconds) == shown


@pytest.mark.parametrize(
    "n, shown",
    [(1023, "1023 bytes"), (1024, "1.0 KB"), (2**20 - 1, "1024.0 KB"), (2**20, "1.0 MB"),
     (2**30, "1.0 GB"), (2**40, "1.0 TB")],
)  # fmt: skip
def test_memory_sizes_are_shown_in_the_right_unit(n: float, shown: str) -> None:
    from gradcheck_cli.plan.limits import human_bytes

    assert human_bytes(n) == shown


def test_a_layers_temporaries_count_toward_the_memory_limit(tmp_path: Path) -> None:
    """conv2d's window matrix (3.6 MB here, 20× its output) is part of the estimate: refused
    under a 2 MB limit, naming the temporaries; built under 8 MB."""
    from gradcheck_cli.engine.build import build_network
    from gradcheck_cli.errors import LimitError
    from gradcheck_cli.plan.limits import Limits
    from gradcheck_cli.spec.config import load_config

    path = tmp_path / "conv.yaml"
    path.write_text(
        "input: {shape: [8, 3, 32, 32]}\nlayers: [{type: conv2d, out_channels: 4, kernel: 5}]\n"
    )
    cfg = load_config(path)
    with pytest.raises(LimitError, match=r"layer 0 temporaries 3\.6 MB"):
        build_network(cfg, limits=Limits(max_bytes=2 * 2**20))
    assert len(build_network(cfg, limits=Limits(max_bytes=8 * 2**20)).layers) == 1


def test_time_estimates_scale_with_evaluations_and_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the engine's timing injected (no clock): 4 evaluations per entry cost twice the
    engine time of 2, and checking fewer entries is estimated cheaper, by the entries left out."""
    from gradcheck_cli.plan import limits, timing

    net = _mlp(0)
    refs = net.parameters(include_input=False)
    per = tuple(1e-3 * (i + 1) for i in range(len(refs)))
    zeros = (0.0,) * len(refs)
    fake = timing.Timing(per, per, len(refs), 0.0, zeros, zeros)
    monkeypatch.setattr(timing, "time_engine", lambda *a, **k: fake)
    sizes = [int(np.size(net.layers[r.layer].params[r.key])) for r in refs]
    two = limits.estimate_time(net, inputs=False, eps=1e-5, evals_per_entry=2).seconds
    four = limits.estimate_time(net, inputs=False, eps=1e-5, evals_per_entry=4).seconds
    assert four - two == pytest.approx(sum(t * n for t, n in zip(per, sizes, strict=True)))
    few = limits.estimate_time(net, inputs=False, eps=1e-5, entries=lambda n: min(n, 3)).seconds
    left_out = sum(
        (t + timing.JUDGE_ENTRY_SECONDS) * (n - min(n, 3)) for t, n in zip(per, sizes, strict=True)
    )
    assert two - few == pytest.approx(left_out)


class OneWrongEntry:
    """out = x·W (8 → 16) with one wrong entry of dW, [3, 5] × 1.01."""

    row_independent = True

    def __init__(self, rng: np.random.Generator) -> None:
        self.params = {"W": rng.standard_normal((8, 16)) / 3}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dW = self.x.T @ dout
        dW[3, 5] *= 1.01
        self.grads = {"W": dW}
        return dout @ self.params["W"].T


@pytest.mark.parametrize(
    "mode, given, label",
    [
        ("sample", {"samples": 4, "probes": 1}, "sample+probes→localised"),
        ("directional", {"probes": 1}, "directional→localised"),
    ],
)
def test_a_localised_failure_says_which_mode_found_it(mode: str, given: dict, label: str) -> None:
    """One wrong entry of dW, missed by the sample, is found by the probes and localised: the
    report names that entry and how it was checked; in sample mode the sampled entries are
    judged along with the suspects; the other tensors pass."""
    from gradcheck_cli.engine.draws import sample_indices

    rng = np.random.default_rng(1)
    layers = [OneWrongEntry(rng), make_layer("tanh", (16,))]
    layers.append(make_layer("linear", (16,), rng, out=4))
    x = rng.standard_normal((6, 8))
    net = Network(
        layers,
        SoftmaxCrossEntropy(),
        x=x,
        target=rng.integers(0, 4, 6),
        trusted=[False, True, True],
    )
    res = check_network(net, mode=mode, seed=1, **given)
    assert [p.name for p in res.failures] == ["0.OneWrongEntry.W"]
    bad = res.failures[0]
    assert bad.mode == label and bad.worst[0].index == (3, 5) and bad.worst[0].status == "fail"
    if mode == "sample":
        sampled = sample_indices(128, 4, 1, bad.name)
        assert 3 * 16 + 5 not in sampled
        assert np.isfinite(bad.ratios.reshape(-1)[sampled]).all()  # type: ignore[union-attr]


# -- the budget: a deadline on an injected clock -------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        return self.now


def test_the_deadline_spares_the_cheap_looks_and_stops_the_depth_rounds() -> None:
    """Two passes (issue 22): while the cheap looks run (``covering``) the budget is not
    enforced, so every tensor gets its look; after them, at the deadline the check goes on and
    past it the next evaluation stops it (on an injected clock)."""
    from gradcheck_cli.plan import plan as plan_mod

    clock = Clock()
    p = plan_mod.Plan(
        "full", 0, 0, 0, None, None, deadline=110.0, budget=10.0, clock=clock.perf_counter
    )
    p.covering = True
    clock.now = 500.0
    p.tick(2)  # a cheap look: never stopped
    assert p.expired()
    p.covering = False
    clock.now = 110.0
    p.next_tensor()
    p.tick(2)  # exactly at the deadline: not yet past it
    assert not p.expired()
    clock.now = 110.5
    with pytest.raises(plan_mod.BudgetReached):
        p.tick(2)
    assert p.done == 6
    no_budget = plan_mod.Plan("full", 0, 0, 0, None, None, clock=clock.perf_counter)
    clock.now = 1e9
    no_budget.tick(2)
    assert not no_budget.expired()


def test_progress_counts_every_evaluation_and_never_shows_more_done_than_planned() -> None:
    from gradcheck_cli.plan.plan import Plan

    seen: list[tuple[int, int]] = []
    p = Plan("full", 0, 0, 0, None, lambda d, t: seen.append((d, t)), planned=4)
    for n in (2, 1, 3):
        p.tick(n)
    assert seen == [(2, 4), (3, 4), (6, 6)]
    p.grow(5)
    assert p.planned == 11 and p.done == 6


def test_evaluations_planned_per_mode() -> None:
    from gradcheck_cli.plan import modes
    from gradcheck_cli.plan.plan import Plan

    assert Plan("full", 0, 0, 0, None, None).evaluations(50) == 100
    sample = Plan("sample", 8, 2, 0, None, None)
    assert sample.evaluations(50) == 16 + 2 * modes.PROBE_EVALS
    assert sample.evaluations(8) == 16  # the sample is the whole tensor: no probes
    assert Plan("directional", 0, 3, 0, None, None).evaluations(50) == 3 * modes.PROBE_EVALS


def test_a_budget_note_names_what_was_not_checked() -> None:
    """The note names the budget, the tensors only partly checked and those not checked (five
    names, then a count), and says they are not verified."""
    from gradcheck_cli.plan.plan import Plan

    p = Plan("full", 0, 0, 0, None, None, budget=2.5)
    refs = [f"t{i}" for i in range(8)]
    note = p.budget_note([], refs[1:])
    assert note.startswith("budget of 2.5 s reached; not checked: t1, t2, t3, t4, t5 and 2 more (")
    assert "not verified: --strict fails them" in note and "partly" not in note
    both = p.budget_note(["t0"], refs[1:3])
    assert "partly checked (probes, not all planned entries): t0; not checked: t1, t2 (" in both
    assert "more" not in both
    assert "not checked" not in p.budget_note(["t0"], [])


def test_a_check_with_a_budget_has_a_deadline_and_one_without_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """check_network(..., clock=): the deadline is the clock at the start plus the budget."""
    from gradcheck_cli.plan import plan as plan_mod

    clock = Clock()
    made: list[plan_mod.Plan] = []
    real = plan_mod.make_plan
    monkeypatch.setattr(
        "gradcheck_cli.checker.make_plan", lambda *a, **k: made.append(real(*a, **k)) or made[-1]
    )
    check_network(_mlp(0), mode="full", budget=30.0, attribute=False, clock=clock.perf_counter)
    check_network(_mlp(0), mode="full", attribute=False, clock=clock.perf_counter)
    assert made[0].deadline == 130.0 and made[0].budget == 30.0
    assert made[1].deadline is None and made[1].budget is None and made[1].estimate is None


def test_the_pilot_measures_seconds_per_entry_and_per_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a clock that advances only while the engine works (c per entry evaluated at ±ε,
    p per loss evaluation), the pilot reports exactly c per entry and p per pass, per tensor."""
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.plan import timing as timing_mod

    clock = Clock()
    net = _mlp(0)
    pert = Perturber(net, net.x)
    c, p = 2e-4, 3e-3
    losses, loss_value = pert.losses, net.loss_value

    def timed_losses(ref, idx, offsets):  # type: ignore[no-untyped-def]
        clock.now += c * len(idx)
        return losses(ref, idx, offsets)

    def timed_pass(*args, **kw):  # type: ignore[no-untyped-def]
        clock.now += p
        return loss_value(*args, **kw)

    monkeypatch.setattr(pert, "losses", timed_losses)
    monkeypatch.setattr(net, "loss_value", timed_pass)
    refs = net.parameters(include_input=True)
    timing = timing_mod.time_engine(
        pert, refs, eps=1e-5, resolution=None, cap=1e9, clock=clock.perf_counter
    )
    assert timing.per_entry == pytest.approx((c,) * len(refs))
    assert timing.per_pass == pytest.approx((p,) * len(refs))
    assert timing.timed == len(refs)


def test_the_pilot_keeps_the_fastest_run_of_each_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk run that another process interrupts (here every other run takes 50× longer)
    does not make the tensor look dear: of PILOT_RUNS timed runs the fastest counts."""
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.plan import timing as timing_mod

    assert timing_mod.PILOT_RUNS >= 2
    clock = Clock()
    net = _mlp(0)
    pert = Perturber(net, net.x)
    c = 2e-4
    losses = pert.losses
    calls = [0]

    def timed_losses(ref, idx, offsets):  # type: ignore[no-untyped-def]
        calls[0] += 1
        clock.now += c * len(idx) * (50 if calls[0] % 2 else 1)
        return losses(ref, idx, offsets)

    monkeypatch.setattr(pert, "losses", timed_losses)
    refs = net.parameters(include_input=False)
    timing = timing_mod.time_engine(
        pert, refs, eps=1e-5, resolution=None, cap=1e9, clock=clock.perf_counter
    )
    assert timing.per_entry == pytest.approx((c,) * len(refs))
    monkeypatch.setattr(timing_mod, "PILOT_RUNS", 1)  # the mutant: one run, a spike counts
    calls[0] = 0
    one = timing_mod.time_engine(
        pert, refs, eps=1e-5, resolution=None, cap=1e9, clock=clock.perf_counter
    )
    assert max(one.per_entry) >= 50 * c


def test_an_explicit_mode_is_kept_however_big_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above SMALL_CHECK entries a check with no mode runs auto; one given --mode full is full,
    with no estimate (the pilot and the budget are auto's)."""
    from gradcheck_cli.plan import modes

    monkeypatch.setattr(modes, "SMALL_CHECK", 50)  # the same rule on a small network
    given = check_network(_mlp(0), mode="full", attribute=False)
    assert given.mode == "full" and given.estimate is None
    assert check_network(_mlp(0), attribute=False).estimate is not None


def test_auto_grows_the_sample_only_when_the_user_did_not_set_it() -> None:
    """Counted work (issue 22): a limit that a full check overruns makes auto pick sample mode;
    it grows the sample to the largest size that fits when no sample size was given, and keeps
    the user's --samples when it was."""
    from gradcheck_cli.plan import modes

    sizes, ops = [400, 300], [10.0, 20.0]
    full = sum(2 * n * c for n, c in zip(sizes, ops, strict=True))
    kw = {"samples": 5, "probes": 2, "limit": 0.5 * full}
    kept = modes.choose(sizes, ops, grow=False, **kw)
    assert kept.chosen == "sample" and kept.samples == 5
    grown = modes.choose(sizes, ops, grow=True, **kw)
    assert grown.chosen == "sample" and grown.samples > 5
    assert grown.sample <= kw["limit"]
    bigger = modes.choose(sizes, ops, samples=grown.samples + 1, probes=2, limit=kw["limit"])
    assert bigger.sample > kw["limit"]  # the largest that fits


def test_counted_work_of_each_mode_is_the_documented_sum() -> None:
    """modes.choose counts, per tensor of n entries and c operations per loss evaluation: full
    2·n·c; sample 2·min(k, n)·c plus PROBE_EVALS·probes·c where the sample is not the whole
    tensor; directional PROBE_EVALS·probes·c. Exactly, so the choice can be reasoned about."""
    from gradcheck_cli.plan import modes

    sizes, ops = [400, 3], [10.0, 20.0]
    est = modes.choose(sizes, ops, samples=5, probes=2, limit=1.0)
    pe = modes.PROBE_EVALS
    assert est.full == 2 * 400 * 10 + 2 * 3 * 20
    assert est.sample == 2 * 5 * 10 + pe * 2 * 10 + 2 * 3 * 20  # the 3-entry tensor: no probes
    assert est.directional == pe * 2 * 10 + pe * 2 * 20
    assert est.entries == 403 and est.chosen == "directional"


def test_the_batch_axis_is_never_a_parameters_feature_axis() -> None:
    """_feature maps a parameter onto an output axis other than the batch (the first) when the
    output has more than one axis, preferring the last; a 1-D output is its own feature axis."""
    from gradcheck_cli.plan.modes import _feature

    assert _feature((4, 6), (4, 3)) == 0  # only the batch axis matches: no feature
    assert _feature((4, 6), (3, 6)) == 6
    assert _feature((2, 5, 6), (5, 6)) == 6 and _feature((2, 5, 7), (5, 3)) == 5
    assert _feature((6,), (6, 3)) == 6
