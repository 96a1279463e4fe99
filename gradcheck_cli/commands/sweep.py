"""`sweep`: the error of each tensor against ε (the V-curve), the ε used and the best one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gradcheck_cli.commands import delivery as d
from gradcheck_cli.commands.flags import (
    DEFAULT_CONFIG_HELP,
    Debug,
    Force,
    NoPlugins,
    Quiet,
    Seed,
    SweepFmt,
    SweepFormat,
)


def sweep(
    config: Annotated[
        Path | None,
        typer.Argument(
            metavar="CONFIG",
            help=f"Network spec (YAML/JSON). {DEFAULT_CONFIG_HELP}",
            show_default=False,
        ),
    ] = None,
    param: Annotated[
        str | None,
        typer.Option(
            "--param", metavar="NAME", help="Only this tensor, by report name (0.linear.W, input)."
        ),
    ] = None,
    taylor: Annotated[
        bool, typer.Option("--taylor", help="Also run the ε-free Taylor-remainder test.")
    ] = False,
    seed: Seed = None,
    fmt: SweepFmt = SweepFormat.table,
    quiet: Quiet = False,
    no_plugins: NoPlugins = False,
    force: Force = False,
    debug: Debug = False,
) -> None:
    """Error against ε (1e-1 … 1e-12) per tensor: the V-curve, the ε used and the best one."""

    def job() -> int:
        from gradcheck_cli.engine.build import build_network
        from gradcheck_cli.errors import EXIT_FAIL, EXIT_PASS
        from gradcheck_cli.plan.limits import Limits, preflight
        from gradcheck_cli.spec.config import load_config
        from gradcheck_cli.sweep import plot
        from gradcheck_cli.sweep.vcurve import EPS_GRID, H_GRID, MAX_ENTRIES, sweep_network

        d.loaded()
        cfg = load_config(config or d.default_config(quiet), no_plugins=no_plugins)
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
            second_looks=False,  # a sweep evaluates its grid, nothing more
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
        if quiet:
            pass
        elif fmt is SweepFormat.json:
            d.echo(plot.sweep_json(result))
        else:
            d.show(plot.render_sweep(result))
        return EXIT_PASS if result.passed else EXIT_FAIL

    d.guarded(debug, job)
