"""The Typer app: every command registered, `--version`, and :func:`run` (the app under the
supervisor; gradcheck_cli/cli.py calls it).

Each command lives in gradcheck_cli/commands/ (parse → call the core → render → exit code) and is
registered here. Nothing heavy is imported at start-up: `gradcheck --help` loads no NumPy,
pydantic or checker (tests/test_startup.py).
"""

from __future__ import annotations

from typing import Annotated

import typer

from gradcheck_cli import __version__
from gradcheck_cli.commands import check, sweep, tools
from gradcheck_cli.commands.flags import Command, Group
from gradcheck_cli.safety import isolation

app = typer.Typer(
    help="Check NumPy backward passes against numerical gradients, per parameter.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    cls=Group,
)
app.command(cls=Command)(check.run)
app.command(cls=Command)(check.layer)
app.command("fn", cls=Command)(check.fn)
app.command(cls=Command)(sweep.sweep)
app.command("list", cls=Command)(tools.list_)
app.command(cls=Command)(tools.validate)
app.command(cls=Command)(tools.init)
app.command(cls=Command)(tools.schema)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradcheck {__version__}", file=isolation.report_stream())
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """gradcheck: analytic vs numerical gradients for NumPy layers."""


def run() -> int:
    """The app as the `gradcheck` command runs it (under ``isolation.supervise``): its exit code.
    No global np.seterr: the core records floating-point events where they happen (network.py)
    and reports them; anything else NumPy warns about is shown as one line by the commands."""

    def command() -> int:
        isolation.claim_stdout()
        try:
            app(prog_name="gradcheck")
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return 0

    return isolation.supervise(command)
