"""Plan mechanisms pinned by behaviour (issue 28, third round): what a localisation costs and
announces (the bounded bisection of plan/localise.py), ..."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from gradcheck_cli import check_network
from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.losses import MSE


class Wrong:
    """out = x·W (64 → 64), its dW spoiled by ``bad``."""

    row_independent = True

    def __init__(self, bad: Callable[[np.ndarray], None]) -> None:
        rng = np.random.default_rng(0)
        self.params = {"W": rng.standard_normal((64, 64)) / 3}
        self.grads: dict[str, np.ndarray] = {}
        self.bad = bad

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dW = self.x.T @ dout
        self.bad(dW)
        self.grads = {"W": dW}
        return dout @ self.params["W"].T


def _localise(bad: Callable[[np.ndarray], None]) -> tuple[object, list[tuple[int, int]]]:
    rng = np.random.default_rng(1)
    net = Network(
        [Wrong(bad)], MSE(), x=rng.standard_normal((4, 64)), target=rng.standard_normal((4, 64)),
        trusted=[False],
    )  # fmt: skip
    seen: list[tuple[int, int]] = []
    res = check_network(
        net, mode="directional", probes=1, seed=0, inputs=False,
        progress=lambda d, t: seen.append((d, t)),
    )  # fmt: skip
    (p,) = res.params
    assert p.verdict == "fail" and p.mode == "directional→localised"
    return p, seen


def _spread(dW: np.ndarray) -> None:
    dW *= 1.01


def _one(dW: np.ndarray) -> None:
    dW[37, 11] *= 1.01


def test_a_spread_error_stops_the_search_after_96_block_tests_each_announced_before_it_runs() -> None:
    """Every entry of dW 1 % off: every block fails, so the bisection never gets down to 64-entry
    blocks within its bound of 96 block tests (4 loss evaluations each: ±ε, then ±2ε as every
    block fails) and the probe's failure stands with the note. 2 (the probe) + 2 (its second
    look) + 96 × 4 = 388 evaluations, and each central difference is counted in the progress
    total before its first evaluation (the bar's total is never behind the work under way)."""
    p, seen = _localise(_spread)
    assert "no single entry could be singled out" in (p.note or "")
    assert "96 block tests" in (p.note or "")
    assert seen[-1] == (388, 388)
    for done, planned in seen[1:]:
        assert planned == done + done % 2, (done, planned)


def test_one_wrong_entry_is_found_by_six_levels_of_block_tests_then_its_leaf() -> None:
    """One wrong entry among 4,096: log2(4096 / 64) = 6 levels, each a failing half (±ε and
    ±2ε: 4 evaluations) and a passing one (±ε only: 2); after the probe (2 + its second look 2)
    that is 4 + 36 = 40 evaluations, then the 64 entries of the failing leaf, 2 each, announced
    together: (168, 168)."""
    p, seen = _localise(_one)
    assert p.worst[0].index == (37, 11) and p.worst[0].status == "fail"
    i = seen.index((40, 40))
    assert seen[: i + 1] == [(0, 2)] + [(k, k + k % 2) for k in range(1, 41)]
    assert seen[i + 1] == (168, 168)


# -- the pilot (plan/timing.py) on a clock that counts loss evaluations --------------------------


def _counted(layer_type: str, shape: tuple[int, ...]) -> tuple[object, list[object], list[int]]:
    """A Perturber whose clock is the number of loss evaluations it has made."""
    from gradcheck_cli import make_layer
    from gradcheck_cli.engine.numeric import Perturber

    rng = np.random.default_rng(0)
    linear = layer_type == "linear"
    layers = [make_layer(layer_type, shape, rng, **({"out": 4} if linear else {}))]
    layers.append(make_layer("tanh", (4,) if linear else shape))
    x = rng.standard_normal((3, *shape))
    net = Network(layers, MSE(), x=x, target=np.zeros_like(layers[1].forward(layers[0].forward(x))),
                  trusted=[False, True])  # fmt: skip
    pert = Perturber(net, net.x)
    count = [0]
    pert.progress = lambda n: count.__setitem__(0, count[0] + n)
    return pert, net.parameters(include_input=False), count


def test_the_pilot_prices_a_second_look_as_one_entrys_ladder_plus_one_noise_measurement() -> None:
    """A promise no estimate resolves (resolution 1e-30): every entry gets a second look, which
    the pilot prices as the check makes it — one entry's step ladder (per entry) and one noise
    measurement (per tensor), each counted in loss evaluations here."""
    from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF
    from gradcheck_cli.plan import timing
    from gradcheck_cli.verdict.noise import measure_noise
    from gradcheck_cli.verdict.steps import ladder

    pert, refs, count = _counted("linear", (8,))
    clock = lambda: float(count[0])  # noqa: E731
    t = timing.time_engine(pert, refs, eps=1e-5, resolution=1e-30, cap=1e9, clock=clock)
    before = count[0]
    ladder(pert, refs[0], np.array([0]))
    one_ladder = count[0] - before
    noise = measure_noise(pert, refs[0], 1e-6, UNIT_ROUNDOFF["float64"], 0).evaluations
    assert one_ladder != noise  # (so the two columns cannot be swapped unseen)
    assert t.look_entry == (one_ladder, one_ladder)
    assert t.look_fixed == (noise, noise)
    assert t.per_entry == (2.0, 2.0)  # ±ε per entry
    resolved = timing.time_engine(pert, refs, eps=1e-5, resolution=1.0, cap=1e9, clock=clock)
    assert resolved.look_entry == resolved.look_fixed == (0.0, 0.0)


def test_tensors_not_timed_within_the_cap_get_the_dearest_measured_cost() -> None:
    """cap 0: the first group is timed all the same, W's (2 evaluations an entry); b is not
    timed and is estimated at W's cost (not left out, not zero)."""
    from gradcheck_cli.plan import timing

    pert, refs, count = _counted("linear", (8,))
    t = timing.time_engine(pert, refs, eps=1e-5, cap=0.0, clock=lambda: float(count[0]))
    assert t.timed == 1
    assert t.per_entry == (2.0, 2.0)
    assert timing.Timing.total(t, [10, 0]) == timing.Timing.total(t, [0, 10])


def test_tensors_that_cost_the_same_are_timed_once() -> None:
    """layernorm's gamma and beta: the same layer and shape, so one pilot for both (the pilot's
    own cost: one untimed warm-up and PILOT_RUNS = 2 timed runs of gamma's 12 entries at ±ε,
    72 loss evaluations)."""
    from gradcheck_cli.plan import timing

    pert, refs, count = _counted("layernorm", (3, 4))
    assert [r.name for r in refs] == ["0.LayerNorm.gamma", "0.LayerNorm.beta"]
    t = timing.time_engine(pert, refs, eps=1e-5, resolution=None, cap=1e9,
                           clock=lambda: float(count[0]))  # fmt: skip
    assert t.timed == 2 and t.per_entry == (2.0, 2.0)
    assert timing.PILOT_RUNS == 2 and t.seconds == 3 * 2 * 12


def test_what_a_check_costs_besides_the_engine_is_as_measured() -> None:
    """Measured over the example configs and benchmark nets: 250–500 µs a tensor and about
    0.3 µs an entry besides the engine; the total adds them to the engine's share."""
    from gradcheck_cli.plan.timing import Timing

    free = Timing((0.0, 0.0), (0.0, 0.0), 2, 0.0, (0.0, 0.0), (0.0, 0.0))
    per_tensor = free.total([0, 0]) / 2
    assert 2.5e-4 <= per_tensor <= 5e-4
    per_entry = (free.total([500_000, 500_000]) - free.total([0, 0])) / 1_000_000
    assert 1e-7 <= per_entry <= 1e-6
    engine = Timing((1e-3, 2e-3), (0.0, 0.0), 2, 0.0, (0.0, 0.0), (0.0, 0.0))
    assert engine.total([10, 20]) == pytest.approx(10 * 1e-3 + 20 * 2e-3 + free.total([10, 20]))


# -- auto's choice (plan/modes.py): counted work ---------------------------------------------------


def test_a_linear_layers_weight_counts_its_multiply_adds_exactly() -> None:
    """x (6, 8) → linear → (6, 16): W's share is 6·8·16 multiply-adds; b's (16 entries mapped
    onto the 16 outputs) 6·16; plus the call's overhead and the input and output sizes."""
    from gradcheck_cli.plan.modes import CALL_OPERATIONS, layer_operations

    out = np.zeros((6, 16))
    base = CALL_OPERATIONS + 6 * 8 + 6 * 16
    assert layer_operations(6 * 8, out, []) == base
    assert layer_operations(6 * 8, out, [np.zeros((8, 16))]) == base + 6 * 8 * 16
    assert layer_operations(6 * 8, out, [np.zeros((8, 16)), np.zeros(16)]) == (
        base + 6 * 8 * 16 + 6 * 16
    )


def test_sample_mode_is_chosen_when_its_work_is_exactly_the_limit() -> None:
    """One tensor of 100 entries at 1 operation an evaluation, 4 samples + 1 probe: sample's
    work is 2·4 + 2·1 = 10; at a limit of 10 it fits (at 9.99 it does not: directional)."""
    from gradcheck_cli.plan.modes import choose

    est = choose([100], [1.0], samples=4, probes=1, grow=False, limit=10.0)
    assert (est.full, est.sample, est.directional, est.chosen) == (200.0, 10.0, 2.0, "sample")
    assert choose([100], [1.0], samples=4, probes=1, grow=False, limit=9.99).chosen == (
        "directional"
    )


def test_directional_is_never_chosen_when_sampling_costs_less() -> None:
    """A one-entry tensor (checked whole: 2 evaluations, no probes) beside one of 100: sample
    mode (2 + 2·4 + 2·10 = 30) is cheaper than 10 probes over each (40). Past the limit of 25
    neither fits, and the cheaper, more thorough sample mode is chosen over directional."""
    from gradcheck_cli.plan.modes import choose

    est = choose([1, 100], [1.0, 1.0], samples=4, probes=10, grow=False, limit=25.0)
    assert (est.full, est.sample, est.directional) == (202.0, 30.0, 40.0)
    assert est.chosen == "sample"


def test_when_every_entry_fits_the_reported_sample_work_is_the_default_samples() -> None:
    """auto grows the sample only when full does not fit; when it does, the estimate (shown in
    the JSON report) states the work of the default sample, 2·4 + 2·2 per tensor of 100."""
    from gradcheck_cli.plan.modes import choose

    est = choose([100, 100], [1.0, 1.0], samples=4, probes=2, grow=True, limit=1e9)
    assert est.chosen == "full" and est.samples == 4 and est.sample == 2 * (8 + 4)
    grown = choose([100, 100], [1.0, 1.0], samples=4, probes=2, grow=True, limit=300.0)
    assert grown.chosen == "sample" and grown.samples == 73 and grown.sample == 2 * (146 + 4)


class _Pert:
    progress = None

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes

    def array(self, ref: int) -> np.ndarray:
        return np.zeros(self.sizes[ref])


class _Judge:
    def __init__(self, sizes: list[int]) -> None:
        self.pert = _Pert(sizes)


def _plan(monkeypatch: pytest.MonkeyPatch, sizes: list[int], **given: object) -> object:
    """make_plan for tensors of ``sizes`` entries, each evaluation counted at 1e7 operations."""
    from gradcheck_cli.options import CheckOptions
    from gradcheck_cli.plan import modes
    from gradcheck_cli.plan.plan import make_plan

    monkeypatch.setattr(modes, "evaluation_operations", lambda pert, refs: [1e7] * len(refs))
    judge = _Judge(sizes)
    refs = list(range(len(sizes)))
    return make_plan(judge, refs, CheckOptions.build(None, **given), None)  # type: ignore[arg-type]


def test_a_check_of_at_most_20000_entries_runs_full_without_counting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No mode given: 20,000 entries in all run full, unestimated; one more runs auto (here its
    count, 4e11 operations for every entry, is over the limit: sample mode)."""
    small = _plan(monkeypatch, [12_000, 8_000])
    assert small.mode == "full" and small.estimate is None  # type: ignore[attr-defined]
    big = _plan(monkeypatch, [12_000, 8_001])
    assert big.mode == "sample" and big.estimate is not None  # type: ignore[attr-defined]


def test_auto_keeps_the_users_sample_size_and_grows_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gradcheck_cli.options import DEFAULT_SAMPLES

    grown = _plan(monkeypatch, [40_000], mode="auto")
    assert grown.mode == "sample" and grown.samples > 1000  # type: ignore[attr-defined]
    kept = _plan(monkeypatch, [40_000], mode="auto", samples=DEFAULT_SAMPLES + 1)
    assert kept.mode == "sample" and kept.samples == DEFAULT_SAMPLES + 1  # type: ignore[attr-defined]


# -- the directional verdict (plan/directional.py) on exact differences ----------------------------


class _DirJudge:
    def __init__(self) -> None:
        from gradcheck_cli.verdict.judge import Tolerance

        self.tol = Tolerance(rtol=1e-7, resolution=1e-6)
        self.numeric_dtype = self.dtype = "float64"
        self.strict = False


def _probe(
    g: np.ndarray,
    true: np.ndarray,
    loss_scale: float = 1.0,
    backward_scale: float = 0.0,
    v: np.ndarray | None = None,
    offset: float = 0.0,
) -> object:
    """Two probes of a linear loss L(θ) = s·true·θ, judged against the analytic s·g."""
    from gradcheck_cli.engine.draws import directions
    from gradcheck_cli.plan.directional import compare_directional

    eps = 1e-5
    theta = np.linspace(-1.0, 1.0, g.size)
    v = directions(g.shape, 2, 0, "probe") if v is None else v
    f = np.empty((len(v), 2))
    for k in range(len(v)):
        for j, s in enumerate((eps, -eps)):
            f[k, j] = offset + loss_scale * float(true @ (theta + s * v[k]))
    judge = _DirJudge()
    return compare_directional(
        "W", g.shape, loss_scale * g, theta, v, eps, judge, backward_scale, f  # type: ignore[arg-type]
    )


def test_one_failing_probe_of_two_fails_the_tensor_and_reports_the_largest_error() -> None:
    g = np.linspace(0.5, 2.0, 16)
    ok = _probe(g, g)
    assert ok.verdict == "pass" and ok.failed == 0  # type: ignore[attr-defined]
    true = g.copy()
    true[3] *= 1.5  # a wrong entry: both probes see it, by different amounts
    bad = _probe(g, true)
    assert bad.verdict == "fail" and not bad.passed  # type: ignore[attr-defined]
    from gradcheck_cli.engine.draws import directions

    v = directions(g.shape, 2, 0, "probe")
    errors = np.abs(v @ (g - true))
    assert errors[0] != pytest.approx(errors[1], rel=0.1)
    assert bad.max_abs_error == pytest.approx(errors.max(), rel=1e-6)  # type: ignore[attr-defined]


def test_a_single_failing_probe_fails_the_tensor() -> None:
    """A wrong gradient the first probe does not see (orthogonal to it) and the second does."""
    from gradcheck_cli.engine.draws import directions

    g = np.linspace(0.5, 2.0, 16)
    v = directions(g.shape, 2, 0, "probe")
    d = v[1] - (v[1] @ v[0]) * v[0]  # orthogonal to the first probe
    res = _probe(g, g + 0.1 * d)
    assert res.failed == 1 and res.verdict == "fail"  # type: ignore[attr-defined]


def test_the_probes_resolution_and_noise_floor_scale_with_the_loss() -> None:
    """The resolution is relative: a loss 1000× larger is resolved to the same fraction; the
    noise floor, absolute, is 1000× larger — and is that of the noisier probe."""
    g = np.linspace(0.5, 2.0, 16)
    one = _probe(g, g)
    big = _probe(g, g, 1000.0)
    assert one.resolution > 0  # type: ignore[attr-defined]
    assert big.resolution == pytest.approx(one.resolution, rel=1e-6)  # type: ignore[attr-defined]
    assert big.noise_floor == pytest.approx(1000 * one.noise_floor, rel=1e-6)  # type: ignore[attr-defined]


def test_the_noise_floor_is_that_of_the_noisiest_probe() -> None:
    """A layer whose backward works on numbers 1e6 large: a probe's floor is dominated by the
    analytic round-off summed along it (∝ ‖v‖₁): a probe along one entry (‖v‖₁ = 1) is over 2× less
    noisy than one spread evenly over 16 (‖v‖₁ = 4); both together have the spread one's."""
    g = np.linspace(0.5, 2.0, 16)
    one, spread = np.eye(16)[:1], np.full((1, 16), 0.25)
    floors = [
        _probe(g, g, backward_scale=1e6, v=v).noise_floor  # type: ignore[attr-defined]
        for v in (one, spread, np.concatenate([one, spread]), np.concatenate([spread, one]))
    ]
    assert floors[1] > 2 * floors[0]
    assert floors[2] == floors[3] == floors[1]


# -- the two passes (plan/passes.py) ---------------------------------------------------------------


def _tanh_net() -> Network:
    from gradcheck_cli import make_layer

    x = np.random.default_rng(0).standard_normal((4, 6))
    return Network([make_layer("tanh", (6,))], MSE(), x=x, target=np.zeros((4, 6)))


def test_under_strict_an_unresolved_probe_is_localised_unless_a_budget_orders_the_work() -> None:
    """A promise no probe can keep (1e-13): under --strict the probe does not pass. Without a
    budget it goes to the bounded search like a failure (its entries are looked at: the search
    resolves them to better than the probes did); with a budget it is a look like any other."""
    kw = {"seed": 0, "resolution": 1e-13, "mode": "directional", "strict": True}
    (p,) = check_network(_tanh_net(), **kw).params
    assert (p.verdict, p.passed, p.mode) == ("inconclusive", False, "directional→localised")
    (q,) = check_network(_tanh_net(), budget=100.0, clock=lambda: 0.0, **kw).params
    assert (q.verdict, q.passed, q.mode) == ("inconclusive", False, "directional")
    assert q.note is not None and q.note.startswith("inconclusive: probes resolved")


def test_a_failed_probe_of_a_one_entry_sample_is_localised_with_that_entry() -> None:
    """samples = 1: the single sampled entry of W is judged along with the suspects the search
    singles out (as for any sample size)."""
    from gradcheck_cli import make_layer
    from gradcheck_cli.engine.draws import sample_indices
    from gradcheck_cli.layers.losses import SoftmaxCrossEntropy
    from tests.test_mutants_plan import OneWrongEntry

    rng = np.random.default_rng(1)
    layers = [OneWrongEntry(rng), make_layer("tanh", (16,))]
    layers.append(make_layer("linear", (16,), rng, out=4))
    net = Network(layers, SoftmaxCrossEntropy(), x=rng.standard_normal((6, 8)),
                  target=rng.integers(0, 4, 6), trusted=[False, True, True])  # fmt: skip
    res = check_network(net, mode="sample", seed=1, samples=1, probes=1)
    (bad,) = res.failures
    assert bad.mode == "sample+probes→localised" and bad.worst[0].index == (3, 5)
    (sampled,) = sample_indices(128, 1, 1, bad.name)
    assert sampled != 3 * 16 + 5
    assert np.isfinite(bad.ratios.reshape(-1)[sampled])  # type: ignore[union-attr]


def test_a_tensor_the_budget_cut_after_a_passing_look_fails_only_under_strict() -> None:
    """The clock is past the deadline as soon as the check starts: every tensor still gets its
    look (probes, never cut), then the budget stops the entries. The looks pass; the tensors are
    'probes only' — partly checked, not verified: they pass, and fail under --strict."""
    for strict in (False, True):
        times = iter([0.0])
        res = check_network(_tanh_net(), seed=0, mode="full", budget=1.0, strict=strict,
                            clock=lambda t=times: next(t, 1e9))  # fmt: skip
        (p,) = res.params
        assert p.cut == "budget: probes only" and p.verdict == "pass"
        assert p.passed is (not strict) and res.passed is (not strict)


class ScalarGain:
    """out = s·x with a 0-d parameter s."""

    row_independent = True

    def __init__(self, s: float) -> None:
        self.params = {"s": np.array(s)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return self.params["s"] * x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"s": np.array(np.sum(dout * self.x))}
        return self.params["s"] * dout


@pytest.mark.parametrize("where", ["param", "entry"])
def test_a_lost_step_is_named_at_its_entry_also_for_a_0d_tensor(where: str) -> None:
    """ε = 1e-5 is below the float64 spacing at 1e12: refused with the tensor, the entry (none
    for a 0-d tensor), θ and the spacing."""
    from gradcheck_cli.errors import NumericError
    from gradcheck_cli.plan.limits import check_step

    x = np.ones((2, 3))
    if where == "entry":
        x[1, 2] = 1e12
    net = Network([ScalarGain(1e12 if where == "param" else 2.0)], MSE(), x=x,
                  target=np.zeros((2, 3)), trusted=[False])  # fmt: skip
    at = "0.ScalarGain.s[]" if where == "param" else "input[1, 2]"
    with pytest.raises(NumericError, match=re.escape(f"at {at} (θ=1e+12, spacing 0.00012)")):
        check_step(net, x, 1e-5, inputs=True)


class _Offset:
    """out = x·W with weights around 1e4 (64 × 64), dW[37, 11] 10 % off."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"W": 1e4 + np.random.default_rng(0).standard_normal((64, 64))}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x @ self.params["W"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dW = self.x.T @ dout
        dW[37, 11] *= 1.1
        self.grads = {"W": dW}
        return dout @ self.params["W"].T


@pytest.mark.parametrize("seed", range(3))
def test_one_wrong_entry_among_large_weights_is_singled_out(seed: int) -> None:
    """Weights of 1e4: rounding θ + εv costs u·‖∇L ⊙ θ‖/ε in every directional difference,
    whatever the block. Each block's direction is normalised, so a 64-entry block deep in the
    search sees its wrong entry as clearly as the first probe did (a direction left at its
    block's share of the norm would drown in that rounding)."""
    rng = np.random.default_rng(1)
    net = Network([_Offset()], MSE(), x=rng.standard_normal((4, 64)),
                  target=rng.standard_normal((4, 64)), trusted=[False])  # fmt: skip
    (p,) = check_network(net, mode="directional", probes=1, seed=seed, inputs=False).params
    assert p.verdict == "fail" and p.mode == "directional→localised"
    assert p.worst[0].index == (37, 11) and p.worst[0].status == "fail"


def test_the_pilot_prices_no_second_look_where_everything_is_exactly_zero() -> None:
    """Zero weights and a zero target: L, the output and every central difference are exactly 0,
    so the bound from the loss's rounding (0) is not above the promise × the largest estimate
    (0): the judge makes no second look, and the pilot prices none."""
    from gradcheck_cli import make_layer
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.plan import timing

    rng = np.random.default_rng(0)
    lin = make_layer("linear", (8,), rng, out=4)
    lin.params = {k: np.zeros_like(v) for k, v in lin.params.items()}
    net = Network([lin], MSE(), x=rng.standard_normal((3, 8)), target=np.zeros((3, 4)))
    pert = Perturber(net, net.x)
    t = timing.time_engine(pert, net.parameters(include_input=False), eps=1e-5, cap=1e9)
    assert t.look_entry == (0.0, 0.0) and t.look_fixed == (0.0, 0.0)


def test_the_sample_is_not_grown_when_every_entry_fits_exactly() -> None:
    from gradcheck_cli.plan.modes import choose

    est = choose([100, 100], [1.0, 1.0], samples=4, probes=2, grow=True, limit=400.0)
    assert est.full == 400.0 and est.chosen == "full" and est.samples == 4


@pytest.mark.parametrize("eps", [1e-5, 1e-3, 1e-2])
def test_the_pilot_times_the_noise_measurement_the_check_makes(eps: float) -> None:
    """Per tensor, the pilot's noise measurement takes as many loss evaluations as the judge's
    own for that tensor at the same ε (its tables start at the same step)."""
    from gradcheck_cli.options import CheckOptions
    from gradcheck_cli.plan import timing
    from gradcheck_cli.verdict.judge import Judge

    pert, refs, count = _counted("linear", (8,))
    t = timing.time_engine(pert, refs, eps=eps, resolution=1e-30, cap=1e9,
                           clock=lambda: float(count[0]))  # fmt: skip
    opts = CheckOptions.build(None, eps=eps).resolved("float64")
    judge = Judge(pert, opts, "float64", "float64")  # type: ignore[arg-type]
    assert t.look_fixed == tuple(judge.noise(r).evaluations for r in refs)


def test_a_budget_note_names_five_tensors_then_counts_the_rest() -> None:
    from gradcheck_cli.plan.plan import Plan

    p = Plan("full", 0, 0, 0, None, None, budget=30.0)
    names = [f"t{i}" for i in range(7)]
    note = p.budget_note(names[:5], names)
    assert "partly checked (probes, not all planned entries): t0, t1, t2, t3, t4;" in note
    assert "not checked: t0, t1, t2, t3, t4 and 2 more (not verified" in note


def test_a_budgets_deadline_counts_from_now_unless_told_when_the_check_began(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gradcheck_cli.options import CheckOptions
    from gradcheck_cli.plan.plan import make_plan

    opts = CheckOptions.build(None, budget=30.0, mode="full")
    now = make_plan(_Judge([10]), [0], opts, None, clock=lambda: 100.0)  # type: ignore[arg-type]
    assert now.deadline == 130.0
    began = make_plan(_Judge([10]), [0], opts, None, clock=lambda: 100.0, started=90.0)  # type: ignore[arg-type]
    assert began.deadline == 120.0


def test_tensors_not_timed_within_the_cap_get_the_dearest_second_look() -> None:
    """Two layers' tensors; the cap lets the pilot time the first layer's W and b only (the
    evaluations those cost). The second layer's tensors are priced at the dearest second look
    measured: b's noise measurement (24 evaluations at ε = 1e-3), not W's (18)."""
    from gradcheck_cli import make_layer
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.plan import timing

    rng = np.random.default_rng(0)
    layers = [make_layer("linear", (8,), rng, out=4), make_layer("tanh", (4,))]
    layers.append(make_layer("linear", (4,), rng, out=3))
    net = Network(layers, MSE(), x=rng.standard_normal((3, 8)), target=np.zeros((3, 3)),
                  trusted=[False, True, False])  # fmt: skip
    pert = Perturber(net, net.x)
    count = [0]
    pert.progress = lambda n: count.__setitem__(0, count[0] + n)
    refs = net.parameters(include_input=False)
    kw = {"eps": 1e-3, "resolution": 1e-30, "clock": lambda: float(count[0])}
    first = timing.time_engine(pert, refs[:2], cap=1e9, **kw)  # type: ignore[arg-type]
    assert first.look_fixed == (18.0, 24.0)
    t = timing.time_engine(pert, refs, cap=first.seconds, **kw)  # type: ignore[arg-type]
    assert t.timed == 2 and t.look_fixed == (18.0, 24.0, 24.0, 24.0)


def test_the_losss_own_work_is_counted_in_every_layers_tail() -> None:
    """One linear layer (x 3×8 → 3×4) and MSE: a loss evaluation from layer 0 on costs the
    layer's operations and the loss's call on the 12 predictions."""
    from gradcheck_cli import make_layer
    from gradcheck_cli.engine.numeric import Perturber
    from gradcheck_cli.plan.modes import CALL_OPERATIONS, layer_operations, operations

    rng = np.random.default_rng(0)
    lin = make_layer("linear", (8,), rng, out=4)
    net = Network([lin], MSE(), x=rng.standard_normal((3, 8)), target=np.zeros((3, 4)))
    pert = Perturber(net, net.x)
    own = layer_operations(24, np.zeros((3, 4)), list(lin.params.values()))
    assert operations(pert) == [own + CALL_OPERATIONS + 12]


def test_the_noise_floor_allows_for_the_rounding_of_a_large_loss() -> None:
    """L = 1e10 + ∇L·θ: the difference of two losses of 1e10 carries their rounding,
    u·(|f₊| + |f₋|)/2ε ≈ 2.2e-1 here, which dwarfs every other term: the floor is k times that."""
    from gradcheck_cli.engine.numeric import UNIT_ROUNDOFF
    from gradcheck_cli.verdict.steps import NOISE_FACTOR

    g = np.linspace(0.5, 2.0, 16)
    res = _probe(g, g, offset=1e10)
    rounding = UNIT_ROUNDOFF["float64"] * 2e10 / (2 * 1e-5)
    assert res.noise_floor == pytest.approx(NOISE_FACTOR * rounding, rel=1e-3)  # type: ignore[attr-defined]
