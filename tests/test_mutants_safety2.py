"""Safety pinned by behaviour (issue 28, third round): what is recorded and read as an input,
what the supervisor says about a run that ended without a verdict, how a failed write names
its file."""

from __future__ import annotations

import mmap
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from gradcheck_cli.errors import GradcheckError
from gradcheck_cli.safety import inputs, isolation, outputs


@pytest.fixture(autouse=True)
def _fresh_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "_inputs", set())


def test_no_path_is_no_input() -> None:
    inputs.note_input(None)
    assert inputs.inputs() == frozenset()


def test_a_directory_or_a_pipe_is_refused_as_an_input_by_what_it_is(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="is a directory"):
        inputs.read_bytes(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match=r"is not a regular file \(a device, pipe or socket\)"):
        inputs.read_bytes(fifo)  # refused before opening: never blocks
    assert {tmp_path.resolve(), fifo.resolve()} <= inputs.inputs()


def test_a_limited_read_returns_one_byte_past_the_limit(tmp_path: Path) -> None:
    f = tmp_path / "data.bin"
    f.write_bytes(b"0123456789")
    assert inputs.read_bytes(f, limit=3) == b"0123"  # longer than 3: the caller can tell
    assert inputs.read_bytes(f, limit=10) == b"0123456789"
    assert inputs.read_bytes(f) == b"0123456789"


def test_a_single_npy_array_reads_as_arr_0(tmp_path: Path) -> None:
    f = tmp_path / "x.npy"
    np.save(f, np.arange(6.0).reshape(2, 3))
    got = inputs.read_arrays(f)
    assert list(got) == ["arr_0"] and got["arr_0"].shape == (2, 3)


# -- the page the supervisor reads: what user code runs -----------------------------------------


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch) -> mmap.mmap:
    where = mmap.mmap(-1, isolation._WHERE_BYTES)
    monkeypatch.setattr(isolation, "_where", where)
    monkeypatch.setattr(isolation, "_last", None)
    return where


def _label(page: mmap.mmap) -> bytes:
    return bytes(page[1:]).split(b"\0", 1)[0]


def test_a_long_label_is_cut_to_the_page_and_the_running_flag_cleared(page: mmap.mmap) -> None:
    long = "layer 0 (" + "X" * 5000 + ").forward"
    with isolation.user_code(long):
        assert page[0] == 1
        assert _label(page) == long.encode()[: isolation._WHERE_BYTES - 2]
    assert page[0] == 0
    with isolation.user_code("layer 1 (Y).backward"):
        assert _label(page) == b"layer 1 (Y).backward"
    assert page[0] == 0


def _supervised(run: object, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = isolation.supervise(run)  # type: ignore[arg-type]
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)
    return code, capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the supervisor forks")
def test_a_run_that_ends_without_a_verdict_says_inside_which_user_code_only_while_it_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(isolation, "_where", None)
    monkeypatch.setattr(isolation, "_last", None)

    def inside() -> int:
        with isolation.user_code("layer 0 (Quits).forward"):
            os._exit(0)

    def after() -> int:
        with isolation.user_code("layer 0 (Quits).forward"):
            pass
        os._exit(0)

    code, err = _supervised(inside, capsys)
    assert code == 2 and "ended (exit status 0) inside layer 0 (Quits).forward" in err
    code, err = _supervised(after, capsys)
    assert code == 2 and "ended (exit status 0) before a verdict" in err and "inside" not in err


def test_a_failed_write_names_the_file_as_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").write_text("a file, not a folder")
    with pytest.raises(GradcheckError) as err:
        outputs.write_atomic(Path("reports/junit.xml"), "<x/>")
    assert str(err.value.file) == "reports/junit.xml"


def test_no_plugins_refuses_every_import_inside_and_none_outside() -> None:
    """refusing_code(True) refuses the loader's imports, by name; an inner refusing_code(False)
    (a job run without --no-plugins from inside one with it) does not lift the refusal; after the
    block nothing is refused."""
    from gradcheck_cli.errors import ConfigError
    from gradcheck_cli.spec import trust

    trust.check_import("mine.py:Layer")  # not refusing: allowed
    with trust.refusing_code(True):
        with pytest.raises(ConfigError, match=r"'mine\.py:Layer' names code, and --no-plugins"):
            trust.check_import("mine.py:Layer")
        with trust.refusing_code(False), pytest.raises(ConfigError):
            trust.check_import("mine.py:Layer")
    trust.check_import("mine.py:Layer")
    assert trust.refusing(True, lambda: 7)() == 7
    with pytest.raises(ConfigError):
        trust.refusing(True, lambda: trust.check_import("mine.py:Layer"))()
