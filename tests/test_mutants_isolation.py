"""Survivors of the exhaustive run over safety/isolation.py (issue 28), pinned by behaviour: how a
run that ends without a verdict is described (the child's own exit status or the signal that
killed it, the running user code named up to 1,022 bytes), the exit code the supervisor gives
after Ctrl-C (130) and after SIGTERM (143), the half-second window in which a second SIGTERM is
an echo of the first (measured on an injected clock), and the report written in the encoding
stdout declares."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from gradcheck_cli.errors import EXIT_INTERRUPTED
from gradcheck_cli.safety import isolation

forks = pytest.mark.skipif(not hasattr(os, "fork"), reason="the supervisor forks")


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No page from an earlier supervised run; the caller's signal handlers restored after."""
    monkeypatch.setattr(isolation, "_where", None)
    monkeypatch.setattr(isolation, "_last", "")
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)


def _dies(where: str, end: Callable[[], None]) -> Callable[[], int]:
    def run() -> int:
        with isolation.user_code(where):
            end()
        return 0

    return run


# -- a run that ends without a verdict: how it ended, inside what ------------------------------


@forks
@pytest.mark.usefixtures("fresh")
def test_a_run_ended_by_os_exit_reports_the_status_it_exited_with(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """User code calls os._exit(7): exit 2, and the message gives the child's own status 7."""
    code = isolation.supervise(_dies("layer 3 (Quits).forward", lambda: os._exit(7)))
    err = capsys.readouterr().err
    assert code == 2
    assert (
        "the process ended (exit status 7) inside layer 3 (Quits).forward before a verdict" in err
    )


@forks
@pytest.mark.usefixtures("fresh")
def test_a_run_killed_by_a_signal_names_the_signal(capsys: pytest.CaptureFixture[str]) -> None:
    """User code is killed (SIGKILL): exit 2, and the message names the signal, not a status."""
    kill = _dies("layer 1 (Crash).backward", lambda: os.kill(os.getpid(), signal.SIGKILL))
    code = isolation.supervise(kill)
    err = capsys.readouterr().err
    assert code == 2
    assert "the process ended (signal SIGKILL) inside layer 1 (Crash).backward before" in err


@forks
@pytest.mark.usefixtures("fresh")
def test_the_user_code_a_run_died_in_is_named_up_to_1022_bytes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The page holding the label is 1,024 bytes: a flag, the label, a NUL. A label of 1,022
    bytes is named whole; of a 1,500-byte label, the first 1,022 bytes."""
    whole = "layer 0 (" + "W" * 1004 + ").forward"
    assert len(whole) == 1022
    isolation.supervise(_dies(whole, lambda: os._exit(0)))
    assert f"inside {whole} before a verdict" in capsys.readouterr().err
    long = "layer 0 (" + "L" * 1482 + ").forward"
    isolation.supervise(_dies(long, lambda: os._exit(0)))
    assert f"inside {long[:1022]} before a verdict" in capsys.readouterr().err


# -- Ctrl-C and SIGTERM sent to the supervisor ------------------------------------------------


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def _signalled(monkeypatch: pytest.MonkeyPatch, *signums: int, verdict: int | None = None) -> int:
    """Supervise a command that waits to be interrupted; once it runs (it says so through a
    pipe), the supervisor itself receives ``signums``, as from a terminal or `kill`. With
    ``verdict``, the command ends with that code when interrupted (its verdict was out). The
    command's clock stands still: every SIGTERM forwarded after the first is its echo."""
    ready_r, ready_w = os.pipe()
    ends = [ready_r, ready_w]
    real_waitpid = os.waitpid

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        os.close(ready_w)  # the child's copy only: a child that never runs the command is EOF
        ends.remove(ready_w)
        os.read(ready_r, 1)  # the child runs the command (its handlers are set)
        for signum in signums:
            os.kill(os.getpid(), signum)
        return real_waitpid(pid, options)

    def command() -> int:
        signal.alarm(30)  # never hang the suite: SIGALRM ends a child nobody interrupted
        try:  # (the signal may come as soon as the byte is written)
            os.write(ready_w, b"r")
            while True:
                signal.pause()
        except KeyboardInterrupt:
            if verdict is None:
                raise
            return verdict

    try:
        with monkeypatch.context() as patch:  # undone after each run
            patch.setattr(os, "waitpid", waitpid)
            patch.setattr(isolation, "time", _Clock(1000.0))
            patch.setattr(isolation, "_interrupted_at", -1.0)
            return isolation.supervise(command)
    finally:
        for fd in ends:
            os.close(fd)


@forks
@pytest.mark.usefixtures("fresh")
def test_ctrl_c_sent_to_the_supervisor_ends_the_run_as_interrupted_130(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGINT (Ctrl-C) reaches the supervisor, which passes it on as SIGTERM; the command stops
    with its partial report (130), and the supervisor keeps 130: it was Ctrl-C, not SIGTERM."""
    assert _signalled(monkeypatch, signal.SIGINT) == EXIT_INTERRUPTED == 130


@forks
@pytest.mark.usefixtures("fresh")
def test_sigterm_sent_to_the_supervisor_ends_the_run_with_143(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM to the supervisor: the same partial report, but the exit code a shell gives a
    process ended by SIGTERM, 128 + 15 = 143."""
    assert _signalled(monkeypatch, signal.SIGTERM) == 143


@forks
@pytest.mark.usefixtures("fresh")
def test_the_last_of_ctrl_c_and_sigterm_decides_the_exit_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C, then SIGTERM (a terminal, then a service manager): the run ends as terminated,
    143; SIGTERM, then Ctrl-C: as interrupted, 130. One partial report either way."""
    assert _signalled(monkeypatch, signal.SIGINT, signal.SIGTERM) == 143
    assert _signalled(monkeypatch, signal.SIGTERM, signal.SIGINT) == 130


@forks
@pytest.mark.usefixtures("fresh")
def test_a_command_that_ends_with_its_verdict_after_sigterm_keeps_the_verdicts_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SIGTERM arrives as the command writes its verdict (a gradient is wrong: 1) and the command
    ends with that verdict: the supervisor returns 1, not 143 (only an interrupted run is)."""
    assert _signalled(monkeypatch, signal.SIGTERM, verdict=1) == 1


@forks
@pytest.mark.usefixtures("fresh")
def test_a_command_interrupted_without_any_signal_to_the_supervisor_ends_130() -> None:
    """The command stops on its own KeyboardInterrupt (Ctrl-C seen by the child alone, e.g. from
    an in-process caller): 130, nothing sent to the supervisor, nothing turned into 143."""

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert isolation.supervise(interrupted) == EXIT_INTERRUPTED


# -- the echo of one SIGTERM (injected clock) --------------------------------------------------


def test_a_second_sigterm_exactly_half_a_second_later_interrupts_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The echo window is shorter than half a second: a SIGTERM 0.5 s after the first is a new
    request and interrupts (the partial report of the first has had its half second)."""
    clock = _Clock(1000.0)
    monkeypatch.setattr(isolation, "time", clock)
    monkeypatch.setattr(isolation, "_interrupted_at", -1.0)
    with pytest.raises(KeyboardInterrupt):
        isolation._interrupt(signal.SIGTERM, None)
    clock.now = 1000.5
    with pytest.raises(KeyboardInterrupt):
        isolation._interrupt(signal.SIGTERM, None)


def test_the_first_sigterm_interrupts_whatever_the_clock_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The monotonic clock's reference point is undefined: read as 0.0 (or 0.3), the very first
    SIGTERM of a run still interrupts; none was seen before it to be an echo of."""
    monkeypatch.setattr(isolation, "_interrupted_at", isolation._interrupted_at)  # restored after
    monkeypatch.setattr(isolation, "time", _Clock(0.3))
    with pytest.raises(KeyboardInterrupt):
        isolation._interrupt(signal.SIGTERM, None)


# -- the report's encoding ----------------------------------------------------------------------

REPORT = """
from gradcheck_cli.safety import isolation
isolation.claim_stdout()
isolation.report_stream().write("caf\\u00e9 \\u2713\\n")
isolation.report_stream().flush()
"""


def test_the_report_is_written_in_the_encoding_stdout_declares() -> None:
    """stdout declared Latin-1 (PYTHONIOENCODING): the report's é is the one Latin-1 byte, and
    ✓, which Latin-1 cannot hold, is escaped rather than failing the report."""
    env = {**os.environ, "PYTHONIOENCODING": "latin-1"}
    out = subprocess.run(
        [sys.executable, "-c", REPORT], capture_output=True, env=env, timeout=60
    ).stdout
    assert out == b"caf\xe9 \\u2713\n"


# -- output the child wrote before it ended ------------------------------------------------------

_PARTIAL = """
import sys
from gradcheck_cli.safety import isolation
print("before the fork", end="")  # buffered: a pipe is not a terminal
def run():
    print("report without a newline", end="")
    sys.stderr.write("a warning without a newline")
    return 1
sys.exit(isolation.supervise(run))
"""


@forks
def test_what_the_run_printed_reaches_the_pipe_once_even_without_a_newline() -> None:
    """stdout to a pipe is block-buffered and the child ends with os._exit (no interpreter
    shutdown flushes for it): everything printed before the fork appears once (flushed before
    forking, not copied into the child's buffer), and what the run printed, with no newline,
    still arrives; the run's exit code is kept."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as usual
    proc = subprocess.run([sys.executable, "-c", _PARTIAL], capture_output=True, text=True,
                          timeout=60, check=False, env=env)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "before the forkreport without a newline"
    assert "a warning without a newline" in proc.stderr
