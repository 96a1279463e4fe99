"""Keep user code from ending the process silently or writing into the report.

Two mechanisms, both only for the ``gradcheck`` command (the library and tests run in-process):

* **stdout belongs to the report.** ``claim_stdout`` moves the real standard output to a private
  descriptor used only by the report writer, points file descriptor 1 at stderr and sets
  ``sys.stdout`` to stderr. Whatever user code writes — ``print``, ``sys.__stdout__``,
  ``os.write(1, …)``, a C extension's ``printf``, a background thread, an ``atexit`` hook —
  lands on stderr, for the whole run, not just while a layer method runs. One ``dup``/``dup2``
  at start-up instead of two per call of user code.
* **A supervisor process.** ``supervise`` forks once: the child runs the command, the parent only
  waits. The child reports its exit code through a pipe just before it ends; a child that ends
  without doing so (``os._exit``, a signal, a crash inside user code) is reported by the parent as
  an error naming the user code that was running (recorded in a shared page by ``user_code``),
  exit 2: never exit 0 without a verdict. The child ends with ``os._exit`` after flushing, so a
  plugin's non-daemon thread cannot keep the process alive after the verdict, and its
  ``atexit`` hooks do not run. Ctrl-C (SIGINT) and SIGTERM sent to the parent are passed on as
  one SIGTERM, which the child turns into the same partial report as Ctrl-C.
"""

from __future__ import annotations

import io
import math
import mmap
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout, suppress
from typing import TextIO

from gradcheck_cli.errors import EXIT_INTERRUPTED, EXIT_USAGE

#: Exit code after SIGTERM (128 + 15, as a shell reports a process ended by it); a partial report
#: is still given, as after Ctrl-C (130).
EXIT_TERMINATED = 143
_WHERE_BYTES = 1024

_report: TextIO | None = None
_where: mmap.mmap | None = None
_last = ""
#: When the child last turned SIGTERM into an interrupt (never yet: the first always does).
_interrupted_at = -math.inf


def report_stream() -> TextIO:
    """Where the report goes: the claimed real stdout, else ``sys.stdout``."""
    return _report if _report is not None else sys.stdout


def _mark(where: str) -> None:
    """Write ``where`` into the shared page (only when it changed since the last write)."""
    global _last
    if _where is None:
        return
    if where != _last:
        _last = where
        data = where.encode("utf-8", "backslashreplace")[: _WHERE_BYTES - 2]
        _where[1 : len(data) + 2] = data + b"\0"
    # byte 0: user code is running now
    _where[0] = 1


@contextmanager
def user_code(where: str) -> Iterator[None]:
    """Around a call of user (or layer) code: record what runs (for the supervisor) and send what
    it prints to stderr even when stdout was not claimed (library use)."""
    _mark(where)
    try:
        # claimed: stdout is the report's alone already, for the whole run
        if _report is not None:
            yield
        else:
            with redirect_stdout(sys.stderr):
                yield
    finally:
        if _where is not None:
            _where[0] = 0


def claim_stdout() -> None:
    """Make the real stdout private to the report (see the module docstring)."""
    global _report
    sys.stdout.flush()
    private = os.dup(1)
    os.dup2(2, 1)
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    _report = io.TextIOWrapper(
        os.fdopen(private, "wb"),
        encoding=encoding,
        errors="backslashreplace",
        line_buffering=True,
    )
    sys.stdout = sys.stderr


def _flush() -> None:
    for stream in (_report, sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM in the child: Ctrl-C's partial report. A SIGTERM sent to the whole process group
    reaches the child twice (directly and forwarded by the parent): the second one, within half a
    second, must not interrupt the report of the first."""
    global _interrupted_at
    now = time.monotonic()
    if now - _interrupted_at < 0.5:
        return
    _interrupted_at = now
    raise KeyboardInterrupt


def supervise(run: Callable[[], int]) -> int:
    """Run ``run`` (returns an exit code) in a child process and return its exit code; when the
    child ends without one, say so on stderr and return 2. Without ``os.fork`` run inline."""
    global _where, _last
    if not hasattr(os, "fork"):
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        return run()
    _where, _last = mmap.mmap(-1, _WHERE_BYTES), ""  # a blank page: no label written yet
    _flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the command itself
        os.close(read_end)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches us once, via the parent
        signal.signal(signal.SIGTERM, _interrupt)
        code = EXIT_USAGE
        try:
            code = run()
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
        except BaseException:  # only with --debug: the command prints everything else itself
            traceback.print_exc()
        finally:
            _flush()
            os.write(write_end, bytes([code & 0xFF]))
            os._exit(code)
    os.close(write_end)
    got: list[int] = []

    def forward(signum: int, frame: object) -> None:
        got.append(signum)
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    _, status = os.waitpid(pid, 0)
    reported = os.read(read_end, 1)
    os.close(read_end)
    if reported:
        code = reported[0]
        if code == EXIT_INTERRUPTED and got and got[-1] == signal.SIGTERM:
            return EXIT_TERMINATED
        return code
    last = bytes(_where[1:_WHERE_BYTES]).split(b"\0", 1)[0].decode("utf-8", "replace")
    where = last if _where[0] else ""
    how = (
        f"exit status {os.waitstatus_to_exitcode(status)}"
        if os.WIFEXITED(status)
        else f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    )
    inside = f" inside {where}" if where else ""
    sys.stderr.write(
        f"error: the process ended ({how}){inside} before a verdict: user code called "
        "os._exit, or was killed or crashed; no verdict\n"
    )
    return EXIT_USAGE
