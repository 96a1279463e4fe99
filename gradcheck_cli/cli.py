"""The `gradcheck` command. Each command: parse → call the core → render → exit code."""

from __future__ import annotations

import difflib
import json
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gradcheck_cli import __version__, isolation, outputs, plot, report, scaffold, schemas, suite
from gradcheck_cli.checker import check_layer
from gradcheck_cli.config import (
    MAX_DIMS,
    default_config_path,
    load_config,
    load_yaml_text,
)
from gradcheck_cli.contracts import check_output_dtype
from gradcheck_cli.errors import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_PASS,
    EXIT_USAGE,
    ConfigError,
    GradcheckError,
)
from gradcheck_cli.formats import console, emit
from gradcheck_cli.limits import (
    Limits,
    MemoryPlan,
    array_bytes,
    estimate_layer,
    estimate_workspace,
    preflight,
)
from gradcheck_cli.network import Network, build_network, rng_for
from gradcheck_cli.options import DEFAULT_RTOL, CheckOptions
from gradcheck_cli.registry import LAYERS, LOSSES, is_plugin, resolve
from gradcheck_cli.results import CheckResult
from gradcheck_cli.suite import Outcome, preflight_plan
from gradcheck_cli.sweep import EPS_GRID, H_GRID, MAX_ENTRIES, sweep_network
from gradcheck_cli.trust import code_refs, refuse_code, refuse_context_args

app = typer.Typer(
    help="Check NumPy backward passes against numerical gradients, per parameter.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# emoji=False: a message quoting 'ok.yaml:x' must not turn ':x' into an emoji.
out = Console(emoji=False)
err = Console(stderr=True, emoji=False)


class Format(str, Enum):
    table = "table"
    json = "json"
    github = "github"


class SchemaKind(str, Enum):
    report = "report"
    config = "config"


class Mode(str, Enum):
    full = "full"
    sample = "sample"
    directional = "directional"
    auto = "auto"


Eps = Annotated[float | None, typer.Option("--eps", min=0.0, help="Finite-difference step ε.")]
Rtol = Annotated[float | None, typer.Option("--rtol", min=0.0, help="Relative tolerance.")]
Atol = Annotated[float | None, typer.Option("--atol", min=0.0, help="Absolute tolerance.")]
Seed = Annotated[int | None, typer.Option("--seed", min=0, max=2**32 - 1, help="Random seed.")]
Fmt = Annotated[
    Format,
    typer.Option(
        "--format", help="Report on stdout: table, json, or github (workflow annotations)."
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show Python tracebacks for errors.")]
JunitXml = Annotated[
    Path | None,
    typer.Option(
        "--junit-xml", help="Also write a JUnit XML file (one testcase per tensor).", dir_okay=False
    ),
]
ExportHtml = Annotated[
    Path | None,
    typer.Option("--export-html", help="Also write the coloured report as HTML.", dir_okay=False),
]
ExportSvg = Annotated[
    Path | None,
    typer.Option("--export-svg", help="Also write the coloured report as SVG.", dir_okay=False),
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
        "--include", help="Check only tensors matching this glob, e.g. '*.W' (repeatable)."
    ),
]
Exclude = Annotated[
    list[str] | None,
    typer.Option("--exclude", help="Skip tensors matching this glob, e.g. input (repeatable)."),
]
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
        help="full: every entry; sample: --samples entries per tensor; directional: --probes "
        "random directions per tensor; auto: the most thorough that fits --budget. "
        "Default: full for small checks, else auto.",
    ),
]
Samples = Annotated[
    int | None,
    typer.Option(
        "--samples", help="Entries per tensor in sample mode; without --mode, selects sample mode."
    ),
]
Probes = Annotated[
    int | None,
    typer.Option(
        "--probes",
        help="Directions per tensor in directional mode; without --mode, selects directional mode.",
    ),
]
Jobs = Annotated[
    str | None,
    typer.Option(
        "--jobs",
        "-j",
        help="Check the configs in N worker processes ('auto': one per CPU); the report, JSON, "
        "JUnit and exit code are those of a serial run.",
    ),
]
Budget = Annotated[
    float | None, typer.Option("--budget", help="Seconds auto mode may spend (> 0).")
]


class _Bar:
    """Rich progress bar with ETA on stderr, shown once a check has run for about a second;
    only when enabled (a terminal and the table format)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.monotonic()
        self.progress: Progress | None = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            if time.monotonic() - self.start < 1.0:
                return
            self.progress = Progress(
                TextColumn("checking"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("evaluations"),
                TimeRemainingColumn(),
                console=err,
                transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("check", total=total)
        self.progress.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _checked(
    fmt: Format, job: Callable[[_Bar], CheckResult], *, quiet: bool = False
) -> CheckResult:
    bar = _Bar(fmt is Format.table and not quiet and err.is_terminal)
    try:
        return job(bar)
    finally:
        bar.close()


class Method(str, Enum):
    central = "central"
    forward = "forward"
    five_point = "five-point"
    complex = "complex"


MethodOpt = Annotated[
    Method | None,
    typer.Option("--method", help="Numerical method (default central; complex = complex step)."),
]
Strict = Annotated[
    bool, typer.Option("--strict", help="Kinks and noise-dominated tensors fail too.")
]
Top = Annotated[int, typer.Option("--top", min=1, help="Worst entries shown per failing tensor.")]
ShowEntries = Annotated[
    bool,
    typer.Option("--show-entries", help="Per-entry |a−n|/tolerance heatmap of every tensor."),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"gradcheck {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """gradcheck: analytic vs numerical gradients for NumPy layers."""


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


def _guarded(debug: bool, job: Callable[[], int]) -> NoReturn:
    """Run ``job``; turn user errors into a message on stderr and exit code 2, Ctrl-C into 130."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _warn_line
            code = job()
    except GradcheckError as exc:
        if debug:
            raise
        err.print(
            f"[bold red]error:[/] {escape(outputs.printable(str(exc)))}",
            highlight=False,
            soft_wrap=True,
        )
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


def _deliver(rendered: emit.Rendered, quiet: bool) -> None:
    outputs.write_outputs(rendered.files, rendered.appends)
    if quiet or rendered.stdout is None:
        return
    if isinstance(rendered.stdout, str):
        typer.echo(rendered.stdout, file=isolation.report_stream())
    else:
        out.print(rendered.stdout)


def _output_options(
    fmt: Format,
    only_failures: bool,
    junit: Path | None,
    html: Path | None,
    svg: Path | None,
    show_entries: bool = False,
) -> emit.OutputOptions:
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


def _emit_one(
    outcome: Outcome, opts: emit.OutputOptions, replay: str, quiet: bool, file: str | None = None
) -> int:
    _deliver(emit.single(outcome, replay, opts, file=file), quiet)
    if outcome.error is not None:
        raise outcome.error
    assert outcome.result is not None
    if outcome.result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_PASS if outcome.result.passed else EXIT_FAIL


def _replay(words: list[str], result: CheckResult) -> str:
    """The command that repeats ``result``: ``words`` (command, config, shape…) plus every option
    that ran, as recorded in ``result.options`` (auto resolved to the mode it chose)."""
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
    if result.samples is not None:
        words += ["--samples", str(result.samples)]
    if result.probes is not None:
        words += ["--probes", str(result.probes)]
    return shlex.join(words)


@app.command()
def run(
    configs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Network specs (YAML/JSON), directories of them, or quoted globs "
            "('configs/**/*.yaml'). Default: the built-in seed MLP.",
            show_default=False,
        ),
    ] = None,
    eps: Eps = None,
    rtol: Rtol = None,
    atol: Atol = None,
    seed: Seed = None,
    no_inputs: Annotated[bool, typer.Option("--no-inputs", help="Do not check ∂L/∂input.")] = False,
    include: Include = None,
    exclude: Exclude = None,
    method: MethodOpt = None,
    strict: Strict = False,
    top: Top = 5,
    mode: ModeOpt = None,
    samples: Samples = None,
    probes: Probes = None,
    budget: Budget = None,
    jobs: Jobs = None,
    show_entries: ShowEntries = False,
    fmt: Fmt = Format.table,
    junit_xml: JunitXml = None,
    export_html: ExportHtml = None,
    export_svg: ExportSvg = None,
    only_failures: OnlyFailures = False,
    quiet: Quiet = False,
    no_plugins: NoPlugins = False,
    force: Force = False,
    debug: Debug = False,
) -> None:
    """Check every parameter (and the input) of the network in each CONFIG.

    Several configs (or a directory or glob) give one summary table; exit 2 if any config is
    invalid, else 1 if any check fails, else 0.
    """

    def job() -> int:
        flags: dict[str, Any] = dict(
            eps=eps, rtol=rtol, atol=atol, include=include, exclude=exclude,
            inputs=False if no_inputs else None, method=method.value if method else None,
            strict=True if strict else None, top=top,
            mode=mode.value if mode is not None else None, samples=samples, probes=probes,
            budget=budget,
        )  # fmt: skip
        CheckOptions.build(flags=True, **flags)  # bad flags: exit 2 before any config is read
        workers = suite.resolve_jobs(jobs)
        args = list(configs or [default_config_path()])
        bar = _Bar(fmt is Format.table and not quiet and err.is_terminal)
        opts = _output_options(fmt, only_failures, junit_xml, export_html, export_svg, show_entries)
        try:
            res = suite.run_suite(
                args, keep_going=not debug, seed=seed, progress=bar, no_plugins=no_plugins,
                force=force, flags=True, jobs=workers, **flags,
            )  # fmt: skip
        finally:
            bar.close()

        def replay(o: Outcome) -> str:
            assert o.result is not None
            return _replay(["run", *([o.config] if configs else [])], o.result)

        if suite.is_single(args):
            (only,) = res.outcomes
            replay_text = replay(only) if only.result else ""
            file = only.config if configs else None  # the built-in network is no file of yours
            return _emit_one(only, opts, replay_text, quiet, file=file)
        for o in res.outcomes:  # errors go to stderr even with --quiet, as in single mode
            if o.error is not None:
                err.print(
                    f"[bold red]error:[/] {escape(outputs.printable(str(o.error)))}",
                    highlight=False,
                    soft_wrap=True,
                )
        replays = {o.config: replay(o) for o in res.outcomes if o.result is not None}
        _deliver(emit.suite(res, replays, opts), quiet)
        return res.exit_code

    _guarded(debug, job)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.lower().replace(",", "x").split("x"))
    except ValueError:
        dims = ()
    if len(dims) < 2 or any(d < 1 or d > 2**62 for d in dims):
        raise ConfigError(
            f"--shape must be batch×features like 4x3 (or 2x3x8x8), got '{text}'", field="--shape"
        )
    if len(dims) > MAX_DIMS:
        raise ConfigError(
            f"--shape has {len(dims)} axes, more than the {MAX_DIMS} allowed", field="--shape"
        )
    return dims


def _parse_args(items: list[str]) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--arg must look like key=value, got '{item}'", field="--arg")
        try:
            args[key.strip()] = load_yaml_text(value)  # safe; 1e3 is a number
        except yaml.YAMLError:
            args[key.strip()] = value
    return args


@app.command()
def layer(
    name: Annotated[str, typer.Argument(help="Built-in layer name or plugin 'file.py:Class'.")],
    shape: Annotated[str, typer.Option("--shape", help="Input shape, batch first: 4x3.")] = "4x3",
    integers: Annotated[
        int | None,
        typer.Option(
            "--integers",
            min=1,
            max=2**62,
            help="Input of random integer ids in [0, N) (embedding).",
        ),
    ] = None,
    arg: Annotated[
        list[str] | None, typer.Option("--arg", help="Layer argument key=value (repeatable).")
    ] = None,
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
    no_plugins: NoPlugins = False,
    force: Force = False,
    debug: Debug = False,
) -> None:
    """Check one layer on a random input with a fixed random upstream gradient."""

    def job() -> int:
        from gradcheck_cli import make_layer

        options = CheckOptions.build(
            flags=True, eps=eps, rtol=rtol, atol=atol, strict=strict, top=top,
            method=method.value if method else None, mode=mode.value if mode else None,
            samples=samples, probes=probes, budget=budget, include=include, exclude=exclude,
            seed=0 if seed is None else seed,
        )  # fmt: skip
        if no_plugins and is_plugin(name):
            raise ConfigError(
                f"'{name}' is a plugin, and --no-plugins refuses user code", field="NAME"
            )
        dims = _parse_shape(shape)
        kwargs = _parse_args(arg or [])
        refuse_context_args(kwargs, field="--arg")
        if no_plugins:  # the same walk as for configs: code named at any depth of an --arg
            refuse_code([(f"--arg {f}", ref) for f, ref in code_refs(kwargs)])
        s = 0 if seed is None else seed
        limits = Limits.off() if force else Limits()
        plan = MemoryPlan(limits)
        plan.add("input", array_bytes(dims, "float64"), "--shape")
        cls = resolve(name, "layer", Path("."))
        est = estimate_layer(cls, dims[1:], kwargs)
        if est is not None:
            plan.add(f"{name} parameters", est[0] * 8.0, "--arg")
            plan.add(f"{name} output", array_bytes((dims[0], *est[1]), "float64"), "--arg")
        plan.peak(
            f"{name} temporaries",
            dims[0] * 8.0 * estimate_workspace(cls, dims[1:], kwargs),
            "--arg",
        )
        lay = make_layer(name, dims[1:], rng_for(s, "layer0"), **kwargs)
        draw = rng_for(s, "input")
        x = draw.integers(0, integers, dims) if integers else draw.standard_normal(dims)
        probe = Network([lay], None, labels=[name], x=x)
        probe.forward(x.copy())
        assert probe.output is not None
        check_output_dtype(probe, 0, x, probe.output)
        preflight(probe, inputs=True, **preflight_plan(options), limits=limits)
        if integers:
            options = options.model_copy(update={"discrete": True})
        result = _checked(
            fmt,
            lambda bar: check_layer(
                lay, x, seed=s, label=name, options=options, progress=bar
            ),
            quiet=quiet,
        )  # fmt: skip
        words = ["layer", name, "--shape", shape, *[w for a in arg or [] for w in ("--arg", a)]]
        words += ["--integers", str(integers)] if integers else []
        opts = _output_options(fmt, only_failures, junit_xml, export_html, export_svg, show_entries)
        replay = _replay(words, result)
        return _emit_one(Outcome(name, result=result), opts, replay, quiet)

    _guarded(debug, job)


@app.command("fn")
def fn_(
    function: Annotated[
        str, typer.Argument(help="FILE.py:NAME: a forward/backward pair, a loss, or f (--grad).")
    ],
    shape: Annotated[
        list[str] | None, typer.Option("--shape", help="Array argument shape: x=4x3 (repeatable).")
    ] = None,
    integers: Annotated[
        list[str] | None,
        typer.Option("--integers", help="Integer ids in [0, N): y=10 (repeatable)."),
    ] = None,
    arg: Annotated[
        list[str] | None, typer.Option("--arg", help="Other argument: name=JSON (repeatable).")
    ] = None,
    backward: Annotated[
        str | None, typer.Option("--backward", help="The backward's name (default: found).")
    ] = None,
    grad: Annotated[
        str | None,
        typer.Option("--grad", help="Gradient of f: FILE.py:NAME or NAME (SciPy style)."),
    ] = None,
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
    force: Force = False,
    debug: Debug = False,
) -> None:
    """Check a function pair (NAME_forward/NAME_backward), a loss (loss, dx) or f with --grad."""
    from gradcheck_cli import function_cli as fc
    from gradcheck_cli.function_check import run_check

    def job() -> int:
        s = 0 if seed is None else seed
        options = CheckOptions.build(
            flags=True, eps=eps, rtol=rtol, atol=atol, strict=strict, top=top,
            method=method.value if method else None, mode=mode.value if mode else None,
            samples=samples, probes=probes, budget=budget, include=include, exclude=exclude,
            seed=s,
        )  # fmt: skip
        lists = (shape or [], integers or [], arg or [])
        net = fc.prepare(
            function, backward=backward, grad=grad, shape=lists[0], integers=lists[1],
            arg=lists[2], seed=s, force=force, how=preflight_plan(options),
        )  # fmt: skip
        result = _checked(
            fmt, lambda bar: run_check(net, seed=s, options=options, progress=bar), quiet=quiet
        )
        words = fc.replay_words(function, backward, grad, *lists)
        opts = _output_options(fmt, only_failures, junit_xml, export_html, export_svg, show_entries)
        replay = _replay(words, result)
        return _emit_one(Outcome(function, result=result), opts, replay, quiet)

    _guarded(debug, job)


@app.command()
def sweep(
    config: Annotated[
        Path | None,
        typer.Argument(help="Network spec (YAML/JSON). Default: the built-in seed MLP."),
    ] = None,
    param: Annotated[
        str | None,
        typer.Option("--param", help="Only this tensor, by report name (0.linear.W, input)."),
    ] = None,
    taylor: Annotated[
        bool, typer.Option("--taylor", help="Also run the ε-free Taylor-remainder test.")
    ] = False,
    seed: Seed = None,
    fmt: Fmt = Format.table,
    no_plugins: NoPlugins = False,
    force: Force = False,
    debug: Debug = False,
) -> None:
    """Error against ε (1e-1 … 1e-12) per tensor: the V-curve, the ε used and the best one."""

    def job() -> int:
        cfg = load_config(config or default_config_path(), no_plugins=no_plugins)
        if seed is not None:
            cfg = cfg.model_copy(update={"seed": seed})
        limits = Limits.off() if force else Limits()
        net = build_network(cfg, limits=limits)
        preflight(  # 2 evaluations per ε of the grid, on at most MAX_ENTRIES entries per tensor
            net,
            inputs=cfg.check.inputs,
            eps=1e-5,
            evals_per_entry=2 * len(EPS_GRID) + (len(H_GRID) if taylor else 0),
            real_steps=False,
            entries=lambda n: min(n, MAX_ENTRIES),
            limits=limits,
            source=cfg.source,
        )
        central = cfg.check.method == "central"  # the V-curve is of central differences
        result = sweep_network(
            net,
            eps=cfg.check.eps if central else None,
            param=param,
            inputs=cfg.check.inputs,
            taylor=taylor,
            seed=cfg.seed,
        )
        if fmt is Format.json:
            typer.echo(plot.sweep_json(result), file=isolation.report_stream())
        else:
            out.print(plot.render_sweep(result))
        return EXIT_PASS if result.passed else EXIT_FAIL

    _guarded(debug, job)


@app.command("list")
def list_(
    name: Annotated[
        str | None, typer.Argument(help="One layer or loss to show in full.", show_default=False)
    ] = None,
    debug: Debug = False,
) -> None:
    """Built-in layers and losses: arguments with defaults, forward and backward formulas."""

    def job() -> int:
        from gradcheck_cli.catalog import catalog

        infos = catalog(LAYERS, LOSSES)
        if name is None:
            out.print(report.catalogue(infos))
            return EXIT_PASS
        match = [i for i in infos if i.name == name]
        if not match:
            names = [i.name for i in infos]
            close = difflib.get_close_matches(name, names, n=1)
            raise ConfigError(
                f"no built-in layer or loss named '{name}'",
                field="NAME",
                hint=(f"did you mean '{close[0]}'? " if close else "")
                + f"available: {', '.join(names)}",
            )
        out.print(report.catalogue_entry(match[0]))
        return EXIT_PASS

    _guarded(debug, job)


@app.command()
def validate(
    configs: Annotated[
        list[Path], typer.Argument(help="Configs, directories of them, or quoted globs.")
    ],
    quiet: Quiet = False,
    no_plugins: NoPlugins = False,
    debug: Debug = False,
) -> None:
    """Check configs without running them: schema, layer names, plugins, shapes.

    Builds each network (imports plugins, one forward pass) but checks no gradient. Exit 2 if any
    config is invalid.
    """

    def job() -> int:
        items = suite.validate(configs, no_plugins=no_plugins)
        if not quiet:
            out.print(console.validation(items))
        return EXIT_USAGE if any(v.error for v in items) else EXIT_PASS

    _guarded(debug, job)


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Where to write the files (created if missing).", file_okay=False)
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    debug: Debug = False,
) -> None:
    """Write a starter config and a custom-layer template that pass as written."""

    def job() -> int:
        paths = scaffold.write_starter(directory, force=force)
        out.print(console.written(paths, paths[0]))
        return EXIT_PASS

    _guarded(debug, job)


@app.command()
def schema(
    kind: Annotated[
        SchemaKind, typer.Argument(help="report: the --format json output; config: a config file.")
    ],
) -> None:
    """Print a JSON Schema (draft 2020-12), e.g. for an editor's YAML validation."""
    doc = schemas.report_schema() if kind is SchemaKind.report else schemas.config_schema()
    typer.echo(json.dumps(doc, indent=2, ensure_ascii=False), file=isolation.report_stream())


def main() -> None:
    # No global np.seterr: the core records floating-point events where they happen (network.py)
    # and reports them; anything else NumPy warns about is shown as one line by _guarded.
    def command() -> int:
        isolation.claim_stdout()
        out.file = isolation.report_stream()
        try:
            app(prog_name="gradcheck")
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return 0

    sys.exit(isolation.supervise(command))
