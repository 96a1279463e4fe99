"""Domain exceptions. The library raises these; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

from pathlib import Path

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_USAGE = 2
#: Ctrl-C stopped the run (a partial report is still shown).
EXIT_INTERRUPTED = 130


class GradcheckError(Exception):
    """A user-facing error: bad usage, config or plugin. Exit code 2, never a traceback."""

    exit_code = EXIT_USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.field = field
        self.hint = hint

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.file, self.field) if p)
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(GradcheckError):
    """The config file cannot be read or does not follow the schema."""


class PluginError(GradcheckError):
    """A user layer or loss cannot be imported, built, or breaks the layer contract."""


class ShapeError(GradcheckError):
    """Layers, input, target and loss do not fit together."""


class NumericError(GradcheckError):
    """The unperturbed pass is not finite (NaN/Inf), or ε cannot be represented: no verdict is
    possible, so this is exit 2, not a failed check."""


class LimitError(GradcheckError):
    """The check would need unreasonable memory or time; refused before allocating."""


#: What calling user code may raise that must become a message: ``SystemExit`` too, since a
#: plugin calling ``sys.exit(0)`` must not end the run with a passing exit code.
USER_CODE_ERRORS = (Exception, SystemExit)


def user_code_error(exc: BaseException, context: str) -> PluginError:
    """Wrap an exception raised inside user (or layer) code: say what, where, and the error line."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        where = f" (at {Path(last.filename).name}:{last.lineno} in {last.name}"
        where += f": {last.line.strip()})" if last.line else ")"
    return PluginError(f"{context} raised {type(exc).__name__}: {exc}{where}")
