"""Survivors of a fresh sample (seed 40, issue 28) in safety/ and verdict/, pinned by behaviour:
the exit code a supervised run reports, the report's encoding when stdout declares none, and
the diagnosis of one wrong entry of the smallest tensor it is made for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from gradcheck_cli import check_layer
from gradcheck_cli.errors import EXIT_INTERRUPTED
from gradcheck_cli.safety import isolation

# -- safety/isolation.py: the child's exit code reaches the shell intact -----------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the supervisor forks")
@pytest.mark.parametrize("code", [0, 1, 2, EXIT_INTERRUPTED])
def test_the_supervisor_returns_the_exit_code_the_command_ended_with(code: int) -> None:
    """0 (gradients agree), 1 (a gradient is wrong), 2 (a usage error), 130 (interrupted): the
    child's code crosses the pipe as one byte, every bit of it (an odd code must not turn
    into the even one below it: exit 1 → 0 would pass a wrong gradient in CI)."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        got = isolation.supervise(lambda: code)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    assert got == code


REPORT = """
import sys
from gradcheck_cli.safety import isolation

class Bare:  # a stdout that declares no encoding
    def write(self, s):
        return len(s)
    def flush(self):
        pass

sys.stdout = Bare()
isolation.claim_stdout()
isolation.report_stream().write("\\u2713 agrees\\n")
isolation.report_stream().flush()
"""


def test_the_report_is_utf8_when_stdout_declares_no_encoding() -> None:
    """In an ASCII locale (no UTF-8 mode, no locale coercion), a stdout without an encoding
    still gets the report in UTF-8, not the locale's encoding (✓ escaped as \\u2713)."""
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    env.pop("PYTHONIOENCODING", None)
    out = subprocess.run(
        [sys.executable, "-X", "utf8=0", "-c", REPORT],
        env=env, capture_output=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    assert out == "✓ agrees\n".encode(), out


# -- verdict/diagnosis.py: one wrong entry of a three-entry tensor --------------------------------


class Bias:
    """out = tanh(x + b), b of 3 entries; the backward's grad of b[1] is doubled (an indexing
    bug that hits one entry)."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"b": np.array([0.3, -0.2, 0.5])}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x + self.params["b"])
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        d = dout * (1 - self.y**2)
        g = d.sum(0)
        g[1] *= 2
        self.grads = {"b": g}
        return d


def test_one_wrong_entry_of_a_three_entry_tensor_is_named() -> None:
    """Three entries are enough to say the error is confined to one of them (the input, whose
    gradient is right, passes)."""
    x = np.random.default_rng(0).standard_normal((4, 3))
    res = check_layer(Bias(), x, seed=0)
    (b,) = [p for p in res.params if p.name.endswith(".b")]
    assert not res.passed and b.verdict == "fail"
    assert b.diagnosis is not None and b.diagnosis.kind == "few_entries", b.diagnosis
    assert b.diagnosis.params == {"entries": [[1]]}
    assert "confined to entry [1]" in b.diagnosis.sentence


# -- verdict/judge.py: a zero gradient with an entry at the domain's edge -----------------------


class Edge:
    """out = x + 0·√w: every gradient of w is 0, but w[2] = 1e-14 sits at the edge of √'s
    domain, so L is not finite on one side at every step tried there."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"w": np.array([1.0, 2.0, 1e-14])}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return x + 0.0 * np.sqrt(self.params["w"])

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self.grads = {"w": np.zeros_like(self.params["w"])}
        return dout


def test_a_vanishing_gradient_with_an_unmeasurable_entry_is_not_called_zero() -> None:
    """Two entries vanish on both sides, the third could not be measured: the tensor is
    inconclusive (so --strict fails), not "zero" (which would pass --strict)."""
    for strict in (False, True):
        res = check_layer(Edge(), np.ones((2, 3)), seed=0, strict=strict)
        (w,) = [p for p in res.params if p.name.endswith(".w")]
        assert w.verdict == "inconclusive" and "not finite at any step" in (w.note or "")
        assert res.passed is not strict


# -- verdict/judge.py: second looks go worst first ------------------------------------------------


class WideTanh:
    """out = tanh(x·w), w of 300 entries; grads['w'][7] = 0 (a dropped entry)."""

    row_independent = True

    def __init__(self) -> None:
        self.params = {"w": np.linspace(0.5, 1.5, 300)}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        self.y = np.tanh(x * self.params["w"])
        return self.y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        d = dout * (1 - self.y**2)
        g = (d * self.x).sum(0)
        g[7] = 0.0
        self.grads = {"w": g}
        return d * self.params["w"]


def test_second_looks_confirm_the_worst_entry_first_and_stop_there() -> None:
    """With ε = 1e-2 no first estimate resolves the promise, so all 300 entries want a second
    look, in chunks of 256: the dropped entry (the worst |a − n|/tol) is in the first, the
    tensor fails there, and the other 44 keep their first estimate, labelled as not re-checked
    (ordered by |a + n| instead, entry 7 would come last and all 300 be re-checked)."""
    from gradcheck_cli.verdict.judge import SECOND_LOOK_CHUNK

    x = np.random.default_rng(0).uniform(0.5, 1.5, (2, 300))
    res = check_layer(WideTanh(), x, seed=0, eps=1e-2, top=400)
    (w,) = [p for p in res.params if p.name.endswith(".w")]
    assert w.verdict == "fail" and w.worst[0].index == (7,)
    skipped = [e for e in w.worst if e.label == "not re-checked: the tensor already fails"]
    assert len(skipped) == 300 - SECOND_LOOK_CHUNK == 44


# -- verdict/noise.py: a level dropped, then the search goes on from where it stands -------------


def test_after_a_dropped_level_the_search_still_moves_up_past_a_flat_stretch() -> None:
    """L shows noise σ = 1e-6 at steps above 5e-4 and is flat below (a quantised loss). From
    h0 = 1e-3: a level, then a flat table at h0/16 (one table is not a level: dropped), a flat
    one at h0/256; the search then moves up ×100 twice (3.9e-4 is flat, 3.9e-2 is not) and
    accepts the level that holds over 2 tables down to where L turns flat: 7 tables of 6
    evaluations, the level σ shows — not the rounding floor after all 16 tables."""
    from .test_mutants_verdict4 import _search_on

    found = _search_on(lambda h: 1e-6 if h > 5e-4 else 0.0, 1e-3)
    one = _search_on(lambda h: 1e-6, 1e-3).measured
    assert found.measured == one > 0 and found.evaluations == 42, found


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the supervisor forks")
def test_a_run_that_dies_names_the_last_user_code_exactly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A long label, then a shorter one, then the child dies inside the shorter: the message
    names the shorter one alone — no tail of the longer label, no NUL bytes."""
    monkeypatch.setattr(isolation, "_where", None)
    monkeypatch.setattr(isolation, "_last", "")

    def dies() -> int:
        with isolation.user_code("layer 12 (SomethingLong).backward (called again)"):
            pass
        with isolation.user_code("layer 0 (Quits).forward"):
            os._exit(0)

    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = isolation.supervise(dies)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    err = capsys.readouterr().err
    assert code == 2
    assert "ended (exit status 0) inside layer 0 (Quits).forward before a verdict" in err, err
    assert "\0" not in err and "called again" not in err


def test_one_significant_entry_is_no_evidence_of_a_flipped_sign() -> None:
    """a = −n where one numeric value is 5 tol and the other four are within their tolerance of
    0 (0.6–0.9 tol): the one entry that shows anything cannot tell a flipped sign from any
    other error, so no scale or sign is claimed (the four small entries "depart" from n by
    2|n| > tol only because the model is −1)."""
    from gradcheck_cli.verdict.diagnosis import Context, diagnose

    n = np.array([5.0, 0.8, -0.9, 0.7, -0.6]) * 1e-6
    found = diagnose(-n, n, np.full(5, 1e-6), Context("b"))
    assert found is None or found.kind not in ("sign", "scale"), found
