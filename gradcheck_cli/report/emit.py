"""Choose what goes to stdout and which files to write for one result or a suite of configs.

Returns text/renderables and file contents; cli.py prints and writes them. Machine formats (JSON,
JUnit) always hold every tensor; ``only_failures`` trims the human views (terminal, HTML, SVG).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import RenderableType
from rich.text import Text

from gradcheck_cli.report import console
from gradcheck_cli.report import tables as report
from gradcheck_cli.suite import Outcome, SuiteResult


@dataclass(frozen=True)
class OutputOptions:
    fmt: str = "table"  # table | json | github
    only_failures: bool = False
    junit_xml: Path | None = None
    export_html: Path | None = None
    export_svg: Path | None = None
    #: With ``github``: append a Markdown summary here ($GITHUB_STEP_SUMMARY in Actions).
    step_summary: Path | None = None
    #: `--show-entries`: per-entry |a − n| / tolerance maps in the human views.
    show_entries: bool = False


@dataclass(frozen=True)
class Rendered:
    #: What to print: a Rich renderable (table) or plain text (json, github); None for nothing.
    stdout: RenderableType | str | None
    files: dict[Path, str] = field(default_factory=dict)
    #: Files to append to (not overwrite).
    appends: dict[Path, str] = field(default_factory=dict)


def _outcome_view(o: Outcome, replay: str | None, opts: OutputOptions) -> RenderableType:
    if o.result is None:  # a single invalid config: its message goes to stderr
        return Text(f"error: {o.error}", style="red")
    return report.render(o.result, replay, opts.show_entries, only_failures=opts.only_failures)


def _exports(view: RenderableType, opts: OutputOptions, suite: SuiteResult) -> dict[Path, str]:
    files: dict[Path, str] = {}
    if opts.junit_xml:
        from gradcheck_cli.report import junit

        files[opts.junit_xml] = junit.to_junit(suite)
    if opts.export_html:
        files[opts.export_html] = console.export(view, "html")
    if opts.export_svg:
        files[opts.export_svg] = console.export(view, "svg")
    return files


def _appends(opts: OutputOptions, suite: SuiteResult) -> dict[Path, str]:
    if opts.fmt == "github" and opts.step_summary is not None:
        from gradcheck_cli.report import github

        return {opts.step_summary: github.step_summary(suite)}
    return {}


def single(
    outcome: Outcome, replay: str | None, opts: OutputOptions, *, file: str | None = None
) -> Rendered:
    """One config (or one layer): today's report. An invalid config prints here only in
    ``github`` format (as an annotation); its message goes to stderr as for any usage error, and
    with ``json`` the CLI prints the error document (commands/delivery.py). ``file`` is the config
    path GitHub annotations point at."""
    suite = SuiteResult((outcome,))
    view = _outcome_view(outcome, replay, opts)
    from gradcheck_cli.report import github, jsondoc

    stdout: RenderableType | str | None
    if outcome.result is None:
        stdout = None
        if opts.fmt == "github":
            stdout = github.command(
                "error", str(outcome.error), file=file, title="gradcheck: error"
            )
    elif opts.fmt == "json":
        stdout = jsondoc.to_json(outcome.result)
    elif opts.fmt == "github":
        stdout = github.render(outcome.result, file)
    else:
        stdout = view
    return Rendered(stdout, _exports(view, opts, suite), _appends(opts, suite))


def suite(suite: SuiteResult, replays: Mapping[str, str], opts: OutputOptions) -> Rendered:
    """Several configs: each report, then one summary table (or one JSON/annotation stream)."""
    from gradcheck_cli.report import github, json_suite

    view = console.render_suite(
        suite,
        lambda o: _outcome_view(o, replays.get(o.config), opts),
        only_failures=opts.only_failures,
    )
    stdout: RenderableType | str
    if opts.fmt == "json":
        stdout = json_suite.suite_to_json(suite)
    elif opts.fmt == "github":
        stdout = github.render_suite(suite)
    else:
        stdout = view
    return Rendered(stdout, _exports(view, opts, suite), _appends(opts, suite))
