"""Every command-line option, declared once; the commands share them by name.

Ranges are stated in the help text and enforced by CheckOptions (options.py), so a bad value gets
the same message from a flag, a config and the API (tests/test_startup.py compares the ranges
shown here with the ones options.py enforces). Nothing heavy is imported here: `--help` and
`--version` must start fast.
"""

from __future__ import annotations

from contextlib import redirect_stdout
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from gradcheck_cli.safety import isolation


class Format(str, Enum):
    table = "table"
    json = "json"
    github = "github"


class SweepFormat(str, Enum):
    table = "table"
    json = "json"


class SchemaKind(str, Enum):
    report = "report"
    config = "config"


class Mode(str, Enum):
    full = "full"
    sample = "sample"
    directional = "directional"
    auto = "auto"


class Method(str, Enum):
    central = "central"
    forward = "forward"
    five_point = "five-point"
    complex = "complex"


def _plain_help(params: list[Any]) -> list[Any]:
    """--help without type tags where they say nothing: none after a flag (it takes no value),
    none after an argument named by its metavar (CONFIG, NAME: `<list[Path]>` is Python)."""
    for p in params:
        if getattr(p, "is_flag", False) and p.metavar is None:
            p.metavar = ""
        elif p.param_type_name == "argument" and p.metavar:
            if not getattr(getattr(p, "type_descriptor", None), "is_choice", False):
                p.display_type_rich = _no_type
            p._usage_display_name = _usage_name(p)  # NAME, not Typer's {NAME}
    return params


def _no_type(ctx: Any) -> None:
    return None


def _usage_name(p: Any) -> Any:
    """How an argument appears in the usage line: NAME (required), [NAME] (optional), then ...
    when it repeats."""
    name = p.metavar if p.required else f"[{p.metavar}]"
    text = name + ("..." if p.nargs != 1 else "")
    return lambda: text


class _DefaultsAsDeclared:
    """A Typer parameter's coercion, with pydantic left out where it has nothing to do.

    Typer (≥ 0.2x) coerces every parameter through a pydantic TypeAdapter it builds on first
    use: for `gradcheck run` with no flags, 22 adapters and pydantic's import (~0.1 s) only to
    hand back each option's own default. A value that is absent (None: Typer's own coercion
    returns it before using the adapter) or that *is* the option's declared default (not a
    string from the command line or the environment) and already of the option's type is
    returned as Typer's pass-through coercion returns it; everything else goes to the
    TypeAdapter, built then (tests/test_startup.py checks both give the same values)."""

    def __init__(self, param: Any, cheap: Any, build: Any) -> None:
        self._param, self._cheap, self._build = param, cheap, build
        self._real: Any = None

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None or self._is_declared_default(value, ctx):
            return self._cheap.coerce(value, param=param, ctx=ctx)
        if self._real is None:
            self._real = self._build(self._param.type_descriptor)
        return self._real.coerce(value, param=param, ctx=ctx)

    def _is_declared_default(self, value: Any, ctx: Any) -> bool:
        source = ctx.get_parameter_source(self._param.name)
        annotation = self._param.type_descriptor.annotation
        return (
            getattr(source, "name", None) == "DEFAULT"
            and value is self._param.default
            and isinstance(annotation, type)
            and isinstance(value, annotation)
        )


def defer_adapters(params: list[Any]) -> list[Any]:
    """Give each Typer parameter a :class:`_DefaultsAsDeclared` coercion (once). A Typer without
    pydantic adapters (no ``typer._coercion``) is left as it is."""
    try:
        from typer._coercion import PassThroughRuntimeParam, build_runtime_param
    except ImportError:  # pragma: no cover - older Typer: click types, no pydantic
        return params
    for p in params:
        descriptor = getattr(p, "type_descriptor", None)
        if descriptor is None or getattr(p, "_runtime_param", False) is not None:
            continue  # not a Typer parameter, or its coercion is already set
        cheap = PassThroughRuntimeParam(
            parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
        )
        p._runtime_param = _DefaultsAsDeclared(p, cheap, build_runtime_param)
    return params


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_help(super().get_params(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        defer_adapters(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with redirect_stdout(
            isolation.report_stream()
        ):  # stdout, as `gradcheck --help | less` wants
            super().format_help(ctx, formatter)


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_help(super().get_params(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        defer_adapters(self.get_params(ctx))
        return super().parse_args(ctx, args)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        with redirect_stdout(isolation.report_stream()):
            super().format_help(ctx, formatter)


#: The lookup order of a command's config when none is given (README "Which config runs").
DEFAULT_CONFIG_HELP = "Default: ./gradcheck.yaml if it exists, else the built-in demo MLP."

Eps = Annotated[
    float | None,
    typer.Option("--eps", metavar="FLOAT", help="Finite-difference step ε, in (0, 1]."),
]
Rtol = Annotated[
    float | None,
    typer.Option("--rtol", metavar="FLOAT", help="Relative tolerance, in [0, 1]."),
]
Atol = Annotated[
    float | None, typer.Option("--atol", metavar="FLOAT", help="Absolute tolerance, ≥ 0.")
]
Seed = Annotated[
    int | None,
    typer.Option("--seed", min=0, max=2**32 - 1, metavar="N", help="Random seed, in [0, 2³²−1]."),
]
Fmt = Annotated[
    Format,
    typer.Option(
        "--format", help="Report on stdout: table, json, or github (workflow annotations)."
    ),
]
SweepFmt = Annotated[SweepFormat, typer.Option("--format", help="Report on stdout: table or json.")]
Debug = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")]
JunitXml = Annotated[
    Path | None,
    typer.Option(
        "--junit-xml",
        metavar="FILE",
        help="Also write a JUnit XML file (one testcase per tensor).",
        dir_okay=False,
    ),
]
ExportHtml = Annotated[
    Path | None,
    typer.Option(
        "--export-html",
        metavar="FILE",
        help="Also write the coloured report as HTML.",
        dir_okay=False,
    ),
]
ExportSvg = Annotated[
    Path | None,
    typer.Option(
        "--export-svg",
        metavar="FILE",
        help="Also write the coloured report as SVG.",
        dir_okay=False,
    ),
]
OnlyFailures = Annotated[
    bool, typer.Option("--only-failures", help="Hide tensors (and configs) that pass.")
]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print no report; only the exit code (and errors).")
]
Include = Annotated[
    list[str] | None,
    typer.Option(
        "--include",
        metavar="GLOB",
        help="Check only tensors matching this glob, e.g. '*.W' (repeatable).",
    ),
]
Exclude = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        metavar="GLOB",
        help="Skip tensors matching this glob, e.g. input (repeatable).",
    ),
]
NoInputs = Annotated[bool, typer.Option("--no-inputs", help="Do not check ∂L/∂input.")]
NoPlugins = Annotated[
    bool,
    typer.Option(
        "--no-plugins",
        help="Refuse any plugin ('file.py:Class', 'pkg.mod:Class'): for configs from elsewhere.",
    ),
]
Force = Annotated[
    bool,
    typer.Option("--force", help="Run even when the memory or time estimate is over the limit."),
]
ModeOpt = Annotated[
    Mode | None,
    typer.Option(
        "--mode",
        help="full: every entry; sample: --samples entries and --probes random directions per "
        "tensor; directional: --probes random directions per tensor; auto: the most thorough "
        "whose counted work fits a fixed limit (the same plan on any machine). "
        "Default: full for small checks, else auto.",
    ),
]
Samples = Annotated[
    int | None,
    typer.Option(
        "--samples",
        metavar="N",
        help="Entries per tensor in sample mode, in [1, 100000]; without --mode, selects sample "
        "mode.",
    ),
]
Probes = Annotated[
    int | None,
    typer.Option(
        "--probes",
        metavar="N",
        help="Random directions per tensor in directional and sample mode, in [1, 10000]; without "
        "--mode (or --samples), selects directional mode.",
    ),
]
Budget = Annotated[
    float | None,
    typer.Option(
        "--budget",
        metavar="SECONDS",
        help="Seconds the check may spend (> 0): every tensor gets a cheap look (random "
        "directions) first, then entries in the time left; tensors it cut short are named and "
        "not verified (--strict fails them).",
    ),
]
Jobs = Annotated[
    str | None,
    typer.Option(
        "--jobs",
        "-j",
        metavar="N",
        help="Check the configs in N worker processes ('auto': one per CPU); the report, JSON, "
        "JUnit and exit code are those of a serial run.",
    ),
]
MethodOpt = Annotated[
    Method | None,
    typer.Option("--method", help="Numerical method (default central; complex = complex step)."),
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict", help="Kinks and inconclusive tensors fail too (a 'zero' verdict never fails)."
    ),
]
Top = Annotated[
    int,
    typer.Option(
        "--top", min=1, max=10_000, metavar="N", help="Worst entries shown per failing tensor."
    ),
]
ShowEntries = Annotated[
    bool,
    typer.Option("--show-entries", help="Per-entry |a−n|/tolerance heatmap of every tensor."),
]
