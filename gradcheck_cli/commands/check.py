"""`run`, `layer` and `fn`: build the options from flags, check, report, exit code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gradcheck_cli.commands import delivery as d
from gradcheck_cli.commands.flags import (
    DEFAULT_CONFIG_HELP,
    Atol,
    Budget,
    Debug,
    Eps,
    Exclude,
    ExportHtml,
    ExportSvg,
    Fmt,
    Force,
    Format,
    Include,
    Jobs,
    JunitXml,
    MethodOpt,
    ModeOpt,
    NoInputs,
    NoPlugins,
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
from gradcheck_cli.commands.shared import Shared, check_flags, enums
from gradcheck_cli.spec.trust import refusing


def run(
    configs: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="CONFIG",
            help="Network specs (YAML/JSON), directories of them, or quoted globs "
            f"('configs/**/*.yaml'). {DEFAULT_CONFIG_HELP}",
            show_default=False,
        ),
    ] = None,
    eps: Eps = None,
    rtol: Rtol = None,
    atol: Atol = None,
    seed: Seed = None,
    no_inputs: NoInputs = False,
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

    Several configs (or a directory or glob) give one summary table; exit 2 if any config is invalid, else 1 if any check fails, else 0.
    """

    def job() -> int:
        from gradcheck_cli import suite
        from gradcheck_cli.report import emit
        from gradcheck_cli.suite import Outcome

        d.loaded()

        flags: dict[str, Any] = dict(
            eps=eps, rtol=rtol, atol=atol, include=include, exclude=exclude,
            inputs=False if no_inputs else None, strict=True if strict else None, top=top,
            samples=samples, probes=probes, budget=budget, **enums(method, mode),
        )  # fmt: skip
        if any(v is not None for k, v in flags.items() if k != "top"):  # Typer checks --top
            from gradcheck_cli.options import CheckOptions

            CheckOptions.build(flags=True, **flags)  # bad flags: exit 2 before any config is read
        workers = suite.resolve_jobs(jobs)
        args = list(configs or [d.default_config(quiet)])
        named = bool(configs) or args[0].name == d.LOCAL_CONFIG  # a file of the user's
        bar = d.bar_for(fmt, quiet)
        opts = d.output_options(
            fmt, only_failures, junit_xml, export_html, export_svg, show_entries
        )
        try:
            res = suite.run_suite(
                args, keep_going=not debug, seed=seed, progress=bar, no_plugins=no_plugins,
                force=force, flags=True, jobs=workers, **flags,
            )  # fmt: skip
        finally:
            bar.close()

        def replay(o: Outcome) -> str:
            assert o.result is not None
            return d.replay(["run", *([o.config] if named else [])], o.result)

        if suite.is_single(args):
            (only,) = res.outcomes
            replay_text = replay(only) if only.result else ""
            file = only.config if named else None  # the built-in network is no file of yours
            return d.emit_one(only, opts, replay_text, quiet, file=file)
        for o in res.outcomes:  # errors go to stderr even with --quiet, as in single mode
            if o.error is not None:
                d.print_error(o.error)
        replays = {o.config: replay(o) for o in res.outcomes if o.result is not None}
        d.deliver(emit.suite(res, replays, opts), quiet)
        return res.exit_code

    subject = " ".join(str(c) for c in configs) if configs else "gradcheck run"
    d.guarded(debug, job, json_subject=subject if fmt is Format.json else None)


def _parse_shape(text: str) -> tuple[int, ...]:
    from gradcheck_cli.errors import ConfigError
    from gradcheck_cli.spec.config import MAX_DIMS

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


#: Axis names in the layers' shape hints → the letters of the --shape syntax.
_AXIS_LETTERS = {"batch": "N", "channels": "C", "height": "H", "width": "W", "time": "T",
                 "features": "D", "length": "L"}  # fmt: skip


def _shape_hint(hint: str) -> str:
    """A layer's hint, said for `gradcheck layer`: "give the input a 4-D shape [batch, channels,
    height, width]" becomes "give --shape 4 sizes, NxCxHxW" (the config's YAML does not apply)."""
    import re

    def letters(m: re.Match[str]) -> str:
        axes = [a.strip() for a in m[2].split(",")]
        return f"give --shape {m[1]} sizes, {'x'.join(_AXIS_LETTERS.get(a, a) for a in axes)}"

    hint = hint.replace("flatten the input first, ", "")
    return re.sub(r"give the input a (\d+)-D shape \[([^\]]+)\]", letters, hint)


def _parse_args(items: list[str]) -> dict[str, Any]:
    import yaml

    from gradcheck_cli.errors import ConfigError
    from gradcheck_cli.spec.config import load_yaml_text

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


@check_flags
def layer(
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="Built-in layer name or plugin 'file.py:Class'."),
    ],
    shape: Annotated[
        str,
        typer.Option(
            "--shape", metavar="NxD…", help="Input shape, batch first: 4x3, or 2x3x8x8 (NxCxHxW)."
        ),
    ] = "4x3",
    integers: Annotated[
        int | None,
        typer.Option(
            "--integers",
            min=1,
            max=2**62,
            metavar="N",
            help="Input of random integer ids in [0, N) (embedding).",
        ),
    ] = None,
    arg: Annotated[
        list[str] | None,
        typer.Option("--arg", metavar="KEY=VALUE", help="Layer argument, e.g. out=5 (repeatable)."),
    ] = None,
    *,
    shared: Shared,
    no_plugins: NoPlugins = False,
    force: Force = False,
    debug: Debug = False,
) -> None:
    """Check one layer on a random input with a fixed random upstream gradient."""

    def job() -> int:
        from gradcheck_cli import make_layer
        from gradcheck_cli.checker import check_layer
        from gradcheck_cli.engine.contracts import check_output_dtype
        from gradcheck_cli.engine.network import Network, rng_for
        from gradcheck_cli.errors import ConfigError, ShapeError
        from gradcheck_cli.layers.registry import is_plugin, resolve
        from gradcheck_cli.plan.limits import (
            Limits,
            MemoryPlan,
            array_bytes,
            estimate_layer,
            estimate_workspace,
            preflight,
        )
        from gradcheck_cli.spec.trust import code_refs, refuse_code, refuse_context_args
        from gradcheck_cli.suite import preflight_plan

        d.loaded()
        options = shared.options()
        if no_plugins and is_plugin(name):
            raise ConfigError(
                f"'{name}' is a plugin, and --no-plugins refuses user code", field="NAME"
            )
        dims = _parse_shape(shape)
        kwargs = _parse_args(arg or [])
        refuse_context_args(kwargs, field="--arg")
        if no_plugins:  # the same walk as for configs: code named at any depth of an --arg
            refuse_code([(f"--arg {f}", ref) for f, ref in code_refs(kwargs)])
        s = shared.seed0
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
        try:
            lay = make_layer(name, dims[1:], rng_for(s, "layer0"), **kwargs)
        except ShapeError as exc:
            exc.hint = _shape_hint(exc.hint) if exc.hint else exc.hint
            raise
        draw = rng_for(s, "input")
        x = draw.integers(0, integers, dims) if integers else draw.standard_normal(dims)
        probe = Network([lay], None, labels=[name], x=x)
        probe.forward(x.copy())
        assert probe.output is not None
        check_output_dtype(probe, 0, x, probe.output)
        preflight(probe, inputs=True, **preflight_plan(options), limits=limits)
        if integers:
            options = options.model_copy(update={"discrete": True})
        words = ["layer", name, "--shape", shape, *[w for a in arg or [] for w in ("--arg", a)]]
        words += ["--integers", str(integers)] if integers else []
        return shared.deliver(
            name,
            words,
            lambda bar: check_layer(lay, x, seed=s, label=name, options=options, progress=bar),
        )

    d.guarded(debug, refusing(no_plugins, job))


@check_flags
def fn(
    function: Annotated[
        str,
        typer.Argument(
            metavar="FILE.py:NAME",
            help="A forward/backward pair (NAME_forward, NAME_backward), a loss returning "
            "(loss, dx), or f with --grad; also pkg.mod:NAME and attribute paths "
            "(file.py:obj.method, pkg.mod:Class.staticmethod).",
        ),
    ],
    shape: Annotated[
        list[str] | None,
        typer.Option(
            "--shape", metavar="NAME=NxD", help="Array argument shape: x=4x3 (repeatable)."
        ),
    ] = None,
    integers: Annotated[
        list[str] | None,
        typer.Option(
            "--integers", metavar="NAME=N", help="Integer ids in [0, N): y=10 (repeatable)."
        ),
    ] = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            metavar="NAME=FILE",
            help="Fixed data, never differentiated: X=X.npy, y=d.npz:y or X=X.json (repeatable).",
        ),
    ] = None,
    arg: Annotated[
        list[str] | None,
        typer.Option("--arg", metavar="NAME=JSON", help="Other argument: name=JSON (repeatable)."),
    ] = None,
    args_from: Annotated[
        str | None,
        typer.Option(
            "--args-from",
            metavar="FILE.py:NAME",
            help="A function returning a dict of more arguments (objects, datasets), called once "
            "(with seed= if it takes one); deep-copied for every call.",
        ),
    ] = None,
    backward: Annotated[
        str | None,
        typer.Option(
            "--backward", metavar="[FILE.py:]NAME", help="The backward's name (default: found)."
        ),
    ] = None,
    grad: Annotated[
        str | None,
        typer.Option("--grad", metavar="[FILE.py:]NAME", help="Gradient of f (SciPy style)."),
    ] = None,
    *,
    shared: Shared,
    force: Force = False,
    debug: Debug = False,
) -> None:
    """Check a function pair (NAME_forward/NAME_backward), a loss (loss, dx) or f with --grad."""

    def job() -> int:
        from gradcheck_cli.functions import arguments as fc
        from gradcheck_cli.functions.check import run_check
        from gradcheck_cli.suite import preflight_plan

        d.loaded()
        s, options = shared.seed0, shared.options()
        lists = (shape or [], integers or [], arg or [])
        net = fc.prepare(
            function, backward=backward, grad=grad, shape=lists[0], integers=lists[1],
            arg=lists[2], seed=s, force=force, how=preflight_plan(options), data=data or [],
            args_from=args_from,
        )  # fmt: skip
        words = fc.replay_words(function, backward, grad, *lists, data or [], args_from)
        return shared.deliver(
            function, words, lambda bar: run_check(net, seed=s, options=options, progress=bar)
        )

    d.guarded(debug, job)
