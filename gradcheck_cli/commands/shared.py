"""The flags every single check (`layer`, `fn`) shares, declared once: ``@check_flags`` adds them
to a command's own parameters and hands them over as one :class:`Shared`, which builds the
options and delivers the report."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradcheck_cli.commands import delivery as d
from gradcheck_cli.commands.flags import (
    Atol,
    Budget,
    Eps,
    Exclude,
    ExportHtml,
    ExportSvg,
    Fmt,
    Format,
    Include,
    JunitXml,
    Method,
    MethodOpt,
    Mode,
    ModeOpt,
    OnlyFailures,
    Probes,
    Quiet,
    Rtol,
    Samples,
    Seed,
    ShowEntries,
    Strict,
    Top,
)

if TYPE_CHECKING:
    from gradcheck_cli.options import CheckOptions
    from gradcheck_cli.results import CheckResult


def _template(
    eps: Eps = None,
    rtol: Rtol = None,
    atol: Atol = None,
    seed: Seed = None,
    include: Include = None,
    exclude: Exclude = None,
    method: MethodOpt = None,
    strict: Strict = False,
    top: Top = 5,
    mode: ModeOpt = None,
    samples: Samples = None,
    probes: Probes = None,
    budget: Budget = None,
    show_entries: ShowEntries = False,
    fmt: Fmt = Format.table,
    junit_xml: JunitXml = None,
    export_html: ExportHtml = None,
    export_svg: ExportSvg = None,
    only_failures: OnlyFailures = False,
    quiet: Quiet = False,
) -> None:
    """The shared flags, in the order `--help` lists them."""


@dataclass(frozen=True)
class Shared:
    """The values of the shared flags of one command line."""

    eps: float | None
    rtol: float | None
    atol: float | None
    seed: int | None
    include: list[str] | None
    exclude: list[str] | None
    method: Method | None
    strict: bool
    top: int
    mode: Mode | None
    samples: int | None
    probes: int | None
    budget: float | None
    show_entries: bool
    fmt: Format
    junit_xml: Path | None
    export_html: Path | None
    export_svg: Path | None
    only_failures: bool
    quiet: bool

    @property
    def seed0(self) -> int:
        return 0 if self.seed is None else self.seed

    def options(self) -> CheckOptions:
        from gradcheck_cli.options import CheckOptions

        return CheckOptions.build(
            flags=True, eps=self.eps, rtol=self.rtol, atol=self.atol, strict=self.strict,
            top=self.top, samples=self.samples, probes=self.probes, budget=self.budget,
            include=self.include, exclude=self.exclude, seed=self.seed0,
            **enums(self.method, self.mode),
        )  # fmt: skip

    def deliver(self, label: str, words: list[str], check: Callable[[Any], CheckResult]) -> int:
        """Run ``check`` (given the progress bar), then report it as ``label`` with the replay
        line ``words`` + the options that ran; the exit code."""
        from gradcheck_cli.suite import Outcome

        result = d.checked(self.fmt, check, quiet=self.quiet)
        opts = d.output_options(
            self.fmt, self.only_failures, self.junit_xml, self.export_html, self.export_svg,
            self.show_entries,
        )  # fmt: skip
        replay = d.replay(words, result)
        return d.emit_one(Outcome(label, result=result), opts, replay, self.quiet)


_SHARED = list(inspect.signature(_template, eval_str=True).parameters.values())
_NAMES = [f.name for f in fields(Shared)]
assert [p.name for p in _SHARED] == _NAMES


def check_flags(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` (whose parameter ``shared: Shared`` receives them) the shared flags, listed
    before its trailing ``no_plugins``/``force``/``debug``."""
    own = [
        p
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.name != "shared"
    ]
    cut = next((i for i, p in enumerate(own) if p.name in ("no_plugins", "force", "debug")), len(own))
    kw = inspect.Parameter.KEYWORD_ONLY  # Typer passes every value by name
    params = [p.replace(kind=kw) for p in (*own[:cut], *_SHARED, *own[cut:])]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        shared = Shared(**{n: kwargs.pop(n) for n in _NAMES})
        command(shared=shared, **kwargs)

    wrapper.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__  # Typer reads the signature above, not the command's own
    return wrapper


def enums(method: Method | None, mode: Mode | None) -> dict[str, Any]:
    """The --method and --mode choices as CheckOptions values (None: not given)."""
    return {"method": method.value if method else None, "mode": mode.value if mode else None}
