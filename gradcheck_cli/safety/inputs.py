"""The files a run reads, registered where they are opened: ``read_*`` and ``open_input`` are the
one way gradcheck reads a file named by a config, a flag or a plugin reference, and each of them
records the file (``note_input``) before opening it. ``outputs.write_outputs`` refuses to replace
any recorded file, so a loader added later (``--data``, ``args_from:``) is covered by calling
these readers — there is no separate list to remember. A test (tests/test_hardening3.py) fails if
a module outside this one opens or loads a file itself.

Stable names for loaders: ``open_input``, ``read_bytes``, ``read_array`` (.npy), ``read_arrays``
(.npz → dict, .npy → {"arr_0": …}), ``read_json``, ``npy_header`` (shape and dtype without the
data), ``note_input`` (for files another library opens, e.g. Python's import system).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

_inputs: set[Path] = set()


def note_input(path: str | Path | None) -> None:
    """Record a file this run reads (a config, plugin or data file): no output may replace it."""
    if path is None:
        return
    with contextlib.suppress(OSError, RuntimeError, ValueError):
        _inputs.add(Path(path).resolve())


def inputs() -> frozenset[Path]:
    """Every file recorded so far in this process."""
    return frozenset(_inputs)


@contextlib.contextmanager
def open_input(path: str | Path) -> Iterator[IO[bytes]]:
    """Record ``path`` as an input, then open it for binary reading. Only a regular file is
    opened (a FIFO or a device would block or never end): anything else is an ``OSError``
    ("not a regular file"), as a missing file is ``FileNotFoundError``."""
    p = Path(path)
    note_input(p)
    if p.exists() and not p.is_file():
        what = "a directory" if p.is_dir() else "not a regular file (a device, pipe or socket)"
        raise OSError(f"{p} is {what}")
    with p.open("rb") as fh:
        yield fh


def read_bytes(path: str | Path, limit: int | None = None) -> bytes:
    """The file's bytes (at most ``limit`` + 1 of them, so a caller can tell it was longer)."""
    with open_input(path) as fh:
        return fh.read() if limit is None else fh.read(limit + 1)


def read_json(path: str | Path) -> Any:
    """A JSON file as plain data (``ValueError`` on bad JSON or text that is not UTF-8)."""
    return json.loads(read_bytes(path).decode("utf-8-sig"))


def read_array(path: str | Path) -> Any:
    """A ``.npy`` array, never unpickling (``allow_pickle=False``)."""
    import numpy as np

    with open_input(path) as fh:
        return np.load(fh, allow_pickle=False)


def read_arrays(path: str | Path) -> dict[str, Any]:
    """The arrays of a ``.npz`` archive by name (a ``.npy`` gives ``{"arr_0": array}``), read in
    full while the file is open; never unpickling."""
    import numpy as np

    with open_input(path) as fh:
        got = np.load(fh, allow_pickle=False)
        if isinstance(got, np.ndarray):
            return {"arr_0": got}
        with got:
            return {name: got[name] for name in got.files}


def npy_header(path: str | Path) -> tuple[tuple[int, ...], Any] | None:
    """(shape, dtype) from a ``.npy`` header, without reading the data; None if it is not one."""
    import numpy as np

    try:
        with open_input(path) as fh:
            major, _ = np.lib.format.read_magic(fh)
            if major == 1:
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except Exception:
        return None
    return tuple(int(d) for d in shape), dtype
