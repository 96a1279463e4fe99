"""Survivors of a fresh sample (seed 42, issue 28) in plan/, engine/probes.py and safety/, pinned
by behaviour: the supervised command runs in a child and its report reaches stdout when nothing
claimed it, a full check is never refused for directions it does not draw (directional is), a
layer that drops the imaginary part is refused by --method complex even at an all-zero input,
and a localisation judges at most MAX_LEAF_ENTRIES entries one by one."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import check_layer
from gradcheck_cli.cli import app
from gradcheck_cli.engine.network import Network
from gradcheck_cli.errors import GradcheckError, LimitError
from gradcheck_cli.layers.losses import MSE
from gradcheck_cli.options import CheckOptions
from gradcheck_cli.plan.limits import Limits, preflight
from gradcheck_cli.plan.localise import MAX_LEAF_ENTRIES
from gradcheck_cli.plan.modes import preflight_plan
from tests.test_mutants_fresh import Table  # out = x + mean(table): one large parameter

# -- safety/isolation.py: the command runs in the child; the caller gets its code back -------------

CHILD = """
import os, sys
from gradcheck_cli.safety import isolation
me = os.getpid()
code = isolation.supervise(lambda: (print("ran in", os.getpid(), flush=True), 1)[1])
print("caller", me, "got", code, flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the supervisor forks")
def test_the_supervised_command_runs_in_a_child_and_the_caller_gets_its_exit_code() -> None:
    """The command runs in another process than the caller's, and the caller (not the command)
    goes on to report the code: a command that ends the process cannot take the caller along."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    ).stdout.split("\n")
    ran = [line.split()[-1] for line in out if line.startswith("ran in")]
    caller = [line.split() for line in out if line.startswith("caller")]
    assert len(ran) == 1 and len(caller) == 1, out
    assert caller[0][1] != ran[0]
    assert caller[0][3] == "1"


def test_help_reaches_stdout_when_no_report_stream_was_claimed() -> None:
    """In-process (no supervisor, nothing claimed): `gradcheck --help` is printed on stdout."""
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    assert "Usage" in res.output


# -- plan/modes.py + plan/limits.py: only a mode that draws directions is held to their memory ----


def _preflight(n: int, **given: object) -> object:
    x = np.random.default_rng(0).standard_normal((2, 3))
    net = Network([Table(n)], MSE(), x=x, target=np.zeros((2, 3)))
    net.forward(x)
    how = preflight_plan(CheckOptions.build(**given))
    # one direction of 100,000 entries takes 3.2 MB: more than the 1 MB limit
    return preflight(net, inputs=True, limits=Limits(max_bytes=1e6, max_seconds=math.inf), **how)


def test_a_full_check_draws_no_directions_and_is_not_refused_for_their_memory() -> None:
    cost = _preflight(100_000, mode="full")
    assert cost.entries > 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", ["directional", "auto"])
def test_a_mode_that_draws_directions_is_refused_when_one_does_not_fit(mode: str) -> None:
    with pytest.raises(LimitError, match="directional probes") as err:
        _preflight(100_000, mode=mode)
    assert err.value.field == "check.probes"


# -- engine/probes.py: the complex probe's direction is not zero where the input is ---------------


class RealPart:
    """out = Re(x) · w: drops the imaginary part of a complex input (not complex-safe)."""

    row_independent = True

    def __init__(self, n: int) -> None:
        self.params = {"w": np.linspace(0.5, 1.5, n)}
        self.grads: dict[str, np.ndarray] = {}
        self.x = np.zeros(0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return np.real(x) * self.params["w"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"w": (dout * np.real(self.x)).sum(axis=0)}
        return dout * self.params["w"]


def test_complex_method_refuses_a_layer_dropping_the_imaginary_part_at_a_zero_input() -> None:
    """At x = 0 only a direction along x shows the gap (Re(x)·w is linear in x; along w its
    derivative is Re(x) = 0), and with w alone checked each complex step on w is exact (0):
    only the probe up front can refuse the layer, so its direction must not vanish where x does."""
    with pytest.raises(GradcheckError, match="imaginary part"):
        check_layer(
            RealPart(4), np.zeros((2, 4)), seed=0, method="complex", mode="full", inputs=False
        )


# -- plan/localise.py: a bounded localisation judges at most MAX_LEAF_ENTRIES entries ------------


class Doubled:
    """out = x · w with a backward that doubles every gradient of w: every entry is wrong."""

    row_independent = True

    def __init__(self, n: int) -> None:
        self.params = {"w": np.linspace(0.5, 1.5, n)}
        self.grads: dict[str, np.ndarray] = {}
        self.x = np.zeros(0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        return x * self.params["w"]

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"w": 2 * (dout * self.x).sum(axis=0)}
        return dout * self.params["w"]


def test_a_localisation_of_an_error_everywhere_judges_at_most_the_leaf_bound() -> None:
    """2,048 wrong entries: the failed probe is localised, and exactly MAX_LEAF_ENTRIES (1,024)
    entries are judged one by one (the bisection reaches blocks of 64 within its test budget)."""
    x = np.random.default_rng(1).standard_normal((1, 2048))
    res = check_layer(Doubled(2048), x, seed=0, mode="directional", inputs=False)
    (p,) = [p for p in res.params if p.name.endswith("w")]
    assert not p.passed and p.mode == "directional→localised"
    assert MAX_LEAF_ENTRIES == 1024
    assert p.checked == MAX_LEAF_ENTRIES, p.checked


def test_the_entries_a_localisation_judges_one_by_one_are_announced_before_they_run() -> None:
    """The 1,024 localised entries' first pass (2 evaluations each) is added to the progress
    total before it runs, so the bar is not stuck at done = planned through it. Only work
    counted as it runs (each block test of the bisection, the noise table: ~170 evaluations
    here) shows done = planned; announcing one evaluation per entry would add ~1,024 more."""
    calls: list[tuple[int, int]] = []
    x = np.random.default_rng(1).standard_normal((1, 2048))
    check_layer(Doubled(2048), x, seed=0, mode="directional", inputs=False,
                progress=lambda done, planned: calls.append((done, planned)))  # fmt: skip
    assert calls[-1][0] == calls[-1][1] > 2 * MAX_LEAF_ENTRIES
    at_full = sum(b[0] - a[0] for a, b in itertools.pairwise(calls[:-1]) if b[0] >= b[1])
    assert at_full < MAX_LEAF_ENTRIES // 2, at_full
