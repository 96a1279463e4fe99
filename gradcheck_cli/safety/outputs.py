"""Files a run writes (JUnit, HTML, SVG, and any later output): never an input of the run, written
atomically, parent folders created.

The inputs of a run — config files, plugin files (and the sibling modules they import), data
files of any kind — are recorded where they are read (safety/inputs.py: its readers register every
file they open); ``write_outputs`` refuses any output path that is one of them (same resolved
path, or the same file through another link) before writing anything, then writes each file to a
temporary sibling and renames it into place, so a reader never sees half a report and an
interrupted write leaves the old file intact. A new file gets the mode any tool's output gets
(0666 less the umask: 0644 under umask 022); a file replaced keeps its own mode.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from gradcheck_cli.errors import GradcheckError
from gradcheck_cli.safety.inputs import inputs as inputs
from gradcheck_cli.safety.inputs import note_input as note_input  # the name loaders used first


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b or os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def refuse_inputs(paths: list[Path], option: str = "output") -> None:
    """Raise when any of ``paths`` is an input of this run."""
    for path in paths:
        for source in sorted(inputs()):
            if _same_file(path, source):
                raise GradcheckError(
                    f"the {option} file would overwrite {source}, an input of this run "
                    "(a config, plugin or data file); nothing was written",
                    file=path,
                    hint="write reports to another path, e.g. reports/junit.xml",
                )


def _umask() -> int:
    # the only way to read the mask is to set it: put it straight back
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: Path) -> int:
    """The permission bits ``path`` gets: its own when it exists, else 0666 less the umask (the
    temporary file ``mkstemp`` makes is 0600 whatever the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename;
    create missing parent folders. The file gets ``_mode_for(path)``. A symbolic link is followed
    (its target is replaced, the link stays), and a path that is not a regular file — a device or
    pipe such as /dev/stdout — is written in place: a rename would replace the device itself."""
    try:
        if path.is_dir():
            raise GradcheckError("is a directory; give a file path", file=path)
        if path.is_symlink():
            path = path.resolve()
        if path.exists() and not path.is_file():
            with path.open("w", encoding="utf-8", errors="backslashreplace") as fh:
                fh.write(text)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
                fh.write(text)
            os.chmod(tmp, _mode_for(path))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise GradcheckError(f"cannot write the file: {exc.strerror or exc}", file=path) from None


def append(path: Path, text: str) -> None:
    """Append to a file someone else owns (GitHub's step summary)."""
    try:
        with path.open("a", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
    except OSError as exc:
        raise GradcheckError(f"cannot write the file: {exc.strerror or exc}", file=path) from None


def write_outputs(files: Mapping[Path, str], appends: Mapping[Path, str]) -> None:
    """The one place a run writes files: refuse inputs first, then write everything."""
    refuse_inputs([*files, *appends])
    for path, text in files.items():
        write_atomic(path, text)
    for path, text in appends.items():
        append(path, text)


#: Control characters (but tab and newline), DEL, C1 controls and lone surrogates: shown as escapes
#: in messages, so a config name cannot move the cursor or recolour the terminal.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with control characters and lone surrogates written as ``\\x1b`` / ``\\ud800``."""
    return _UNPRINTABLE.sub(
        lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 256 else f"\\u{ord(m[0]):04x}", text
    )
