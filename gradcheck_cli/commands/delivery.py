"""What every command shares: the consoles, error handling and exit codes, delivering a report
(stdout and files), the progress bar and the replay command.

Imports here stay light (Rich's console, the error types): the core is imported where it is used.
"""

from __future__ import annotations

import gc
import os
import shlex
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console, RenderableType
from rich.markup import escape

from gradcheck_cli.commands.flags import Format
from gradcheck_cli.errors import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_PASS,
    EXIT_USAGE,
    GradcheckError,
)
from gradcheck_cli.safety import isolation, outputs

if TYPE_CHECKING:
    from gradcheck_cli.report import emit
    from gradcheck_cli.results import CheckResult
    from gradcheck_cli.suite import Outcome

# emoji=False: a message quoting 'ok.yaml:x' must not turn ':x' into an emoji.
err = Console(stderr=True, emoji=False)
#: The name of the config a bare `gradcheck run` (or `sweep`) checks when it exists here.
LOCAL_CONFIG = "gradcheck.yaml"


def report_console() -> Console:
    """A console on the report stream (the real stdout), made when a report is printed so that
    it sees the stream and the environment (``COLUMNS``) of this run."""
    return Console(file=isolation.report_stream(), emoji=False)


#: The widest a report gets off a terminal (a pipe, a CI log, a pre-commit hook) without COLUMNS.
PIPED_WIDTH = 160


def show(renderable: RenderableType) -> None:
    """Print a report on stdout. On a terminal, or with ``COLUMNS`` set, at that width; otherwise
    (a pipe, a CI log, a pre-commit hook) as wide as the content up to ``PIPED_WIDTH``: narrow
    tables keep every cell on one line, a long cell (a note, a formula) wraps inside its column.
    The replay command is never split (tables.replay_line)."""
    from gradcheck_cli.report.console import content_width

    console = report_console()
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = min(max(content_width(renderable), 40), PIPED_WIDTH)
    console.print(renderable, crop=False)  # crop=False: the replay line is never cut


def echo(text: str) -> None:
    """Plain text (JSON, annotations) on the report stream."""
    typer.echo(text, file=isolation.report_stream())


def default_config(quiet: bool = False) -> Path:
    """The config of a command given none: ./gradcheck.yaml when it exists, else the built-in demo
    network (said on stderr, since a project's own layers are then not checked)."""
    local = Path(LOCAL_CONFIG)
    if local.is_file():
        return local
    from gradcheck_cli.spec.builtin import BUILTIN_CONFIG

    if not quiet:
        err.print(
            f"note: no ./{LOCAL_CONFIG} here: checking the built-in demo network "
            "(give a config, or run `gradcheck init`)",
            style="yellow",
            highlight=False,
            soft_wrap=True,
        )
    return BUILTIN_CONFIG


class Bar:
    """Rich progress bar with ETA on stderr, shown once a check has run for about a second;
    only when enabled (a terminal and the table format). It names the mode (auto's decision
    included) and the tensor being checked."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.monotonic()
        self.progress: Any = None
        self.task: Any = None
        self.doing = "checking"

    def stage(self, mode: str, tensor: str) -> None:
        """Called by the check as each tensor starts (plan.Plan.next_tensor)."""
        self.doing = f"{mode} · {tensor}" if tensor else mode
        if self.progress is not None:
            self.progress.update(self.task, description=self.doing)

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            if time.monotonic() - self.start < 1.0:
                return
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("evaluations"),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task(self.doing, total=total)
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def bar_for(fmt: Format, quiet: bool) -> Bar:
    return Bar(fmt is Format.table and not quiet and err.is_terminal)


def checked(fmt: Format, job: Callable[[Bar], CheckResult], *, quiet: bool = False) -> CheckResult:
    bar = bar_for(fmt, quiet)
    try:
        return job(bar)
    finally:
        bar.close()


def _warn_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Python warnings (from NumPy or plugin code) as one clean line each, not a source dump."""
    err.print(
        f"[yellow]warning:[/] {category.__name__}: {escape(str(message))} "
        f"({Path(filename).name}:{lineno})",
        highlight=False,
        soft_wrap=True,
    )


def print_error(exc: GradcheckError) -> None:
    err.print(
        f"[bold red]error:[/] {escape(outputs.printable(str(exc)))}",
        highlight=False,
        soft_wrap=True,
    )


def _json_error(exc: GradcheckError, subject: str) -> None:
    """`--format json` prints one document whatever happens: a usage error is a suite document
    whose one entry has status "error" (the shape `gradcheck schema report` describes)."""
    from gradcheck_cli.report.json_suite import suite_to_json
    from gradcheck_cli.suite import Outcome, SuiteResult

    echo(suite_to_json(SuiteResult((Outcome(subject, error=exc),))))


def loaded() -> None:
    """A command's imports are done: freeze what they created (the garbage collector no longer
    scans it) and turn collection back on. cli.main turns it off for start-up, where a command
    allocates some 10⁵ long-lived objects (NumPy, pydantic's schemas, Rich) and the collections
    over them cost about a fifth of `gradcheck run`'s start-up; user code then runs with the
    collector on. Idempotent; :func:`guarded` calls it after every job as well."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def guarded(debug: bool, job: Callable[[], int], *, json_subject: str | None = None) -> NoReturn:
    """Run ``job``; turn user errors into a message on stderr and exit code 2, Ctrl-C into 130.
    With ``json_subject`` (``--format json``), a user error also prints a JSON document naming it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _warn_line
            try:
                code = job()
            finally:
                loaded()
    except GradcheckError as exc:
        if debug:
            raise
        print_error(exc)
        if json_subject is not None:
            _json_error(exc, json_subject)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        if debug:
            raise
        err.print("interrupted (Ctrl-C): no verdict", highlight=False)
        code = EXIT_INTERRUPTED
    except SystemExit as exc:  # user code called sys.exit() somewhere not wrapped: no verdict
        if debug:
            raise
        err.print(
            f"[bold red]error:[/] plugin code called sys.exit({exc.code!r}); no verdict",
            highlight=False,
        )
        code = EXIT_USAGE
    except Exception as exc:  # a bug in gradcheck itself: still no traceback unless asked
        if debug:
            raise
        err.print(
            f"[bold red]internal error:[/] {escape(outputs.printable(f'{type(exc).__name__}: {exc}'))}\n"
            "  rerun with --debug for the traceback, and please report it",
            highlight=False,
        )
        code = EXIT_USAGE
    except BaseException as exc:  # e.g. asyncio.CancelledError from user code: no traceback
        if debug:
            raise
        err.print(
            f"[bold red]error:[/] {escape(outputs.printable(f'{type(exc).__name__}: {exc}'))} raised outside "
            "gradcheck's own code; no verdict",
            highlight=False,
        )
        code = EXIT_USAGE
    raise typer.Exit(code)


def deliver(rendered: emit.Rendered, quiet: bool) -> None:
    outputs.write_outputs(rendered.files, rendered.appends)
    if quiet or rendered.stdout is None:
        return
    if isinstance(rendered.stdout, str):
        echo(rendered.stdout)
    else:
        show(rendered.stdout)


def output_options(
    fmt: Format,
    only_failures: bool,
    junit: Path | None,
    html: Path | None,
    svg: Path | None,
    show_entries: bool = False,
) -> emit.OutputOptions:
    from gradcheck_cli.report import emit

    summary = os.environ.get("GITHUB_STEP_SUMMARY")  # set by GitHub Actions in every step
    return emit.OutputOptions(
        fmt.value,
        only_failures,
        junit,
        html,
        svg,
        Path(summary) if summary else None,
        show_entries=show_entries,
    )


def emit_one(
    outcome: Outcome, opts: emit.OutputOptions, replay: str, quiet: bool, file: str | None = None
) -> int:
    from gradcheck_cli.report import emit

    deliver(emit.single(outcome, replay, opts, file=file), quiet)
    if outcome.error is not None:
        raise outcome.error
    assert outcome.result is not None
    if outcome.result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_PASS if outcome.result.passed else EXIT_FAIL


def replay(words: list[str], result: CheckResult) -> str:
    """The command that repeats ``result``: ``words`` (command, config, shape…) plus every option
    that ran, as recorded in ``result.options`` (auto resolved to the mode it chose)."""
    from gradcheck_cli.defaults import DEFAULT_RTOL

    o = result.options
    words = ["gradcheck", *words, "--seed", str(result.seed or 0), "--method", result.method]
    words += ["--eps", f"{result.eps:g}"] + (["--strict"] if result.strict else [])
    if result.rtol != DEFAULT_RTOL[result.method, result.dtype]:
        words += ["--rtol", f"{result.rtol:g}"]
    words += ["--atol", f"{result.atol:g}"] if result.atol else []
    words += ["--no-inputs"] if o.get("inputs") is False else []
    words += [w for p in o.get("include") or [] for w in ("--include", p)]
    words += [w for p in o.get("exclude") or [] for w in ("--exclude", p)]
    words += ["--mode", result.mode]
    words += ["--budget", f"{o['budget']:g}"] if o.get("budget") else []
    if result.samples is not None:
        words += ["--samples", str(result.samples)]
    if result.probes is not None:
        words += ["--probes", str(result.probes)]
    return shlex.join(words)
