"""The `gradcheck` command: :func:`main` (the console script) and the Typer ``app``.

`gradcheck --version` is answered here before Typer, Rich or anything else is imported (its
start-up is a bare Python's plus this module); every other command goes to the Typer app in
gradcheck_cli/commands/app.py, loaded on first use (``app`` here is that app).
"""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

from gradcheck_cli import __version__

if TYPE_CHECKING:
    from gradcheck_cli.commands.app import app as app


def __getattr__(name: str) -> Any:
    if name == "app":
        from gradcheck_cli.commands.app import app

        return app
    raise AttributeError(f"module 'gradcheck_cli.cli' has no attribute {name!r}")


def main() -> None:
    if sys.argv[1:] == ["--version"]:  # the whole command line: no Typer needed to answer it
        sys.stdout.write(f"gradcheck {__version__}\n")
        sys.stdout.flush()
        sys.exit(0)
    # No garbage collection during start-up: a command's imports create some 10⁵ long-lived
    # objects and the collections over them cost ~100 ms; each command turns it back on (and
    # freezes what was imported) once its imports are done (commands/delivery.py: loaded).
    gc.disable()
    from gradcheck_cli.commands.app import run

    sys.exit(run())
