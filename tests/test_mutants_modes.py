"""Survivors of the exhaustive run over plan/modes.py (issue 28), pinned by behaviour: the work
auto counts (and the JSON report's ``estimate`` shows) for a known network, down to the last
operation; which mode it then picks where two modes' counts sit next to each other (ties, a
sample cheaper than directional, a full check cheaper than directional); how far it grows the
sample when tensors differ in size; and that a tensor no larger than the sample is checked whole
with no probes counted on top."""

from __future__ import annotations

import numpy as np

from gradcheck_cli import check_network, make_layer
from gradcheck_cli.engine.network import Network
from gradcheck_cli.layers.losses import MSE
from gradcheck_cli.plan.modes import choose

# -- the counted work of a known network (what the JSON report's estimate shows) --------------


def test_auto_counts_the_exact_operations_of_two_linear_layers_and_their_loss() -> None:
    """x (3, 8) → linear 8→4 → linear 4→2 → MSE. Every call costs 20,000 operations of overhead
    besides its arithmetic; per call, layer 0: 24 in + 12 out + W 12·32/4 + b 12·4/4 = 20,144;
    layer 1: 12 + 6 + W 6·8/2 + b 6·2/2 = 20,048; the loss on the 6 predictions (the last
    layer's output, not the first's 12): 20,006. One evaluation from layer 0 on costs 60,198,
    from layer 1 on 40,054; a full check evaluates each of the 24 + 32 + 4 entries of the
    input and layer 0 and the 8 + 2 of layer 1 twice: 2·(60·60,198 + 10·40,054) = 8,024,840."""
    rng = np.random.default_rng(0)
    layers = [make_layer("linear", (8,), rng, out=4), make_layer("linear", (4,), rng, out=2)]
    net = Network(layers, MSE(), x=rng.standard_normal((3, 8)), target=np.zeros((3, 2)))
    est = check_network(net, mode="auto").estimate
    assert est is not None
    assert est.full == 8_024_840.0
    assert est.entries == 70 and est.chosen == "full"
    # directional: 2 probes × 2 evaluations per tensor, whatever its size
    assert est.directional == 4 * (3 * 60_198 + 2 * 40_054)


# -- sample mode's count -------------------------------------------------------------------------


def test_a_tensor_no_larger_than_the_sample_is_counted_whole_without_probes() -> None:
    """4 samples: a tensor of exactly 4 entries is checked whole (2 evaluations each, 8), with no
    directional probes on top; one of 100 draws 4 entries (8) and 3 probes (6): 22 in all."""
    est = choose([4, 100], [1.0, 1.0], samples=4, probes=3, grow=False, limit=1.0)
    assert est.sample == 8 + 8 + 6
    alone = choose([4], [1.0], samples=4, probes=3, grow=False, limit=1.0)
    assert alone.sample == alone.full == 8.0


def test_auto_grows_the_sample_up_to_the_largest_tensor_not_the_smallest() -> None:
    """Tensors of 10 and 1,000 entries (1 operation an evaluation; full: 2,020 > the limit 1,000):
    the 10 are checked whole (20) and the large one takes k entries and 2 probes, 20 + 2k + 4 ≤
    1,000: k = 488, far beyond the small tensor's 10 entries."""
    est = choose([10, 1000], [1.0, 1.0], samples=4, probes=2, grow=True, limit=1000.0)
    assert est.chosen == "sample" and est.samples == 488 and est.sample == 1000.0


def test_auto_grows_the_sample_to_the_largest_size_whose_work_fits() -> None:
    """One tensor of 100, 2 probes, a limit of 20: k entries cost 2k + 4, so 8 fit exactly (20);
    auto takes 8, neither 7 (it would leave work on the table) nor 9 (22, over the limit)."""
    est = choose([100], [1.0], samples=4, probes=2, grow=True, limit=20.0)
    assert est.chosen == "sample" and est.samples == 8 and est.sample == 20.0


# -- which mode auto picks where the counts sit side by side ------------------------------------


def test_sample_and_directional_costing_the_same_picks_the_more_thorough_sample() -> None:
    """A 1-entry tensor beside one of 100, 4 samples, 5 probes: sample 2 + 8 + 10 = 20, directional
    2·5·2 = 20, full 202; none fits a limit of 10. At equal work sample mode is chosen."""
    est = choose([1, 100], [1.0, 1.0], samples=4, probes=5, grow=False, limit=10.0)
    assert (est.full, est.sample, est.directional) == (202.0, 20.0, 20.0)
    assert est.chosen == "sample"


def test_full_is_kept_when_it_fits_even_where_sampling_is_cheaper_than_directional() -> None:
    """The same tensors with 10 probes: sample (30) is cheaper than directional (40), but full
    (202) fits the limit and checks every entry: full is chosen."""
    est = choose([1, 100], [1.0, 1.0], samples=4, probes=10, grow=False, limit=1e9)
    assert (est.full, est.sample, est.directional) == (202.0, 30.0, 40.0)
    assert est.chosen == "full"


def test_sample_is_not_replaced_by_full_because_full_costs_less_than_directional() -> None:
    """Ten 1-entry tensors and one of 100, 4 samples, 11 probes: full 220 is over the limit of
    100, sample (20 + 8 + 22 = 50) fits; directional would cost 242, more than full, but sample
    mode, not directional, is the choice: it stays (full replaces only a dearer chosen mode)."""
    est = choose([1] * 10 + [100], [1.0] * 11, samples=4, probes=11, grow=False, limit=100.0)
    assert (est.full, est.sample, est.directional) == (220.0, 50.0, 242.0)
    assert est.chosen == "sample"


def test_a_network_of_the_loss_alone_is_checked_in_auto_mode() -> None:
    """No layers, a 1-D input straight into MSE (library use): auto counts no layer work for
    the input, picks full and checks its 4 entries instead of failing on the count."""
    x = np.random.default_rng(0).standard_normal(4)
    res = check_network(Network([], MSE(), x=x, target=np.zeros(4)), mode="auto")
    assert res.estimate is not None and res.estimate.chosen == "full"
    assert res.passed and [(p.name, p.checked) for p in res.params] == [("input", 4)]


def test_directional_is_not_replaced_by_a_full_check_dearer_than_it() -> None:
    """One tensor of 100, 99 samples, 2 probes: full 200, sample 198 + 4 = 202, directional 4;
    none fits a limit of 3. Full costs less than sampling but 50 times directional's work:
    directional stays (full replaces it only when full costs no more than directional)."""
    est = choose([100], [1.0], samples=99, probes=2, grow=False, limit=3.0)
    assert (est.full, est.sample, est.directional) == (200.0, 202.0, 4.0)
    assert est.chosen == "directional"


def test_a_full_check_costing_exactly_what_directional_costs_replaces_it() -> None:
    """One tensor of 100, 100 probes: directional's 100·2 evaluations equal full's 100·2 (sample,
    2·99 + 2·100 = 398, is dearer); none fits a limit of 3. At equal work the check of every
    entry is chosen."""
    est = choose([100], [1.0], samples=99, probes=100, grow=False, limit=3.0)
    assert (est.full, est.sample, est.directional) == (200.0, 398.0, 200.0)
    assert est.chosen == "full"


# -- preflight_plan: what the time and memory limits count for each mode ------------------------


def _counted(**given: object) -> dict[str, object]:
    from gradcheck_cli.options import CheckOptions
    from gradcheck_cli.plan.modes import preflight_plan

    return preflight_plan(CheckOptions.build(**given))


def test_the_complex_step_is_counted_as_one_evaluation_an_entry_with_no_second_looks() -> None:
    """--method complex evaluates each entry once (one complex step, no ± pair) at a step of
    1e-20, never needs representable real steps and takes no second looks; central: two."""
    complex_ = _counted(method="complex", mode="full")
    assert complex_["evals_per_entry"] == 1 and complex_["eps"] == 1e-20
    assert complex_["real_steps"] is False and complex_["second_looks"] is False
    central = _counted(method="central", mode="full")
    assert central["evals_per_entry"] == 2 and central["second_looks"] is True


def test_a_given_eps_is_the_step_the_limits_check() -> None:
    assert _counted(mode="full", eps=1e-4)["eps"] == 1e-4
    assert _counted(mode="full")["eps"] == 1e-5


def test_sample_mode_counts_the_samples_asked_for_and_at_most_a_tensors_entries() -> None:
    """--samples 5: a tensor of 100 entries counts 5, one of 3 counts its 3; with no --samples,
    the default 16."""
    entries = _counted(mode="sample", samples=5)["entries"]
    assert callable(entries) and (entries(100), entries(3)) == (5, 3)
    default = _counted(mode="sample")["entries"]
    assert callable(default) and (default(100), default(3)) == (16, 3)


def test_auto_counts_the_probes_asked_for_and_bounds_its_own_time() -> None:
    """Auto (which may choose directional) is held to the memory of the --probes asked for,
    7 here, and is not timed against the limit: it bounds its own work. --mode full is timed,
    unless a --budget bounds it."""
    auto = _counted(mode="auto", probes=7)
    assert auto["probes"] == 7 and auto["timed"] is False
    assert _counted(mode="full")["timed"] is True
    assert _counted(mode="full", budget=30)["timed"] is False


def test_with_no_mode_only_checks_up_to_20000_entries_are_held_to_the_time_limit() -> None:
    """No --mode: a check of more than 20,000 entries runs auto (it bounds its own work), so the
    time limit applies only up to 20,000; a given --mode full is held to it at any size."""
    assert _counted()["auto_above"] == 20_000
    assert _counted(mode="full")["auto_above"] is None
