"""`list`, `validate`, `init` and `schema`: the commands that check no gradient."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gradcheck_cli.commands import delivery as d
from gradcheck_cli.commands.flags import Debug, NoPlugins, Quiet, SchemaKind


def list_(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME", help="One layer or loss to show in full.", show_default=False
        ),
    ] = None,
    debug: Debug = False,
) -> None:
    """Built-in layers and losses: arguments with defaults, forward and backward formulas."""

    def job() -> int:
        import difflib

        from gradcheck_cli.errors import ConfigError
        from gradcheck_cli.layers.catalog import catalog
        from gradcheck_cli.layers.registry import LAYERS, LOSSES
        from gradcheck_cli.report import tables as report

        infos = catalog(LAYERS, LOSSES)
        if name is None:
            d.show(report.catalogue(infos))
            return 0
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
        d.show(report.catalogue_entry(match[0]))
        return 0

    d.guarded(debug, job)


def validate(
    configs: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="CONFIG",
            help="Configs, directories of them, or quoted globs. Default: ./gradcheck.yaml.",
            show_default=False,
        ),
    ] = None,
    quiet: Quiet = False,
    no_plugins: NoPlugins = False,
    debug: Debug = False,
) -> None:
    """Check configs without running them: schema, layer names, plugins, shapes.

    Builds each network (imports plugins, one forward pass) but checks no gradient; refuses what run would refuse before checking (memory, probes, ε), with the same words, all but the time estimate. Exit 2 if any config is invalid.
    """

    def job() -> int:
        from gradcheck_cli import suite
        from gradcheck_cli.errors import EXIT_PASS, EXIT_USAGE, ConfigError
        from gradcheck_cli.report import console

        if not configs and not Path(d.LOCAL_CONFIG).is_file():
            raise ConfigError(
                f"no CONFIG given and no ./{d.LOCAL_CONFIG} here",
                hint="give configs, directories or globs to validate, or run `gradcheck init`",
            )
        items = suite.validate(configs or [Path(d.LOCAL_CONFIG)], no_plugins=no_plugins)
        if not quiet:
            d.show(console.validation(items))
        return EXIT_USAGE if any(v.error for v in items) else EXIT_PASS

    d.guarded(debug, job)


def init(
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIRECTORY",
            help="Where to write the files (created if missing).",
            file_okay=False,
        ),
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    debug: Debug = False,
) -> None:
    """Write a starter config (gradcheck.yaml) and a custom-layer template (my_layer.py) that pass as written.

    If either file exists, nothing is written (exit 2) unless --force, which overwrites both.
    """

    def job() -> int:
        from gradcheck_cli.commands import scaffold
        from gradcheck_cli.report import console

        paths = scaffold.write_starter(directory, force=force)
        d.show(console.written(paths, paths[0]))
        return 0

    d.guarded(debug, job)


def schema(
    kind: Annotated[
        SchemaKind,
        typer.Argument(
            metavar="KIND", help="report: the --format json output; config: a config file."
        ),
    ],
) -> None:
    """Print a JSON Schema (draft 2020-12), e.g. for an editor's YAML validation."""
    import json

    from gradcheck_cli.spec import schemas

    doc = schemas.report_schema() if kind is SchemaKind.report else schemas.config_schema()
    d.echo(json.dumps(doc, indent=2, ensure_ascii=False))
