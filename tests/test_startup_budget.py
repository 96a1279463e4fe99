"""What the default `gradcheck run` imports (issue 26): only what the command needs.

Structural, never a wall clock: the modules the real command (supervisor, fork and all) imports,
read from ``python -X importtime``; and the shortcuts that keep pydantic out give the same values
as the paths they skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from gradcheck_cli.commands.app import app
from gradcheck_cli.commands.flags import defer_adapters


def imported_by(*args: str, cwd: Path) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gradcheck_cli", *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "cumulative" not in line
    }


def _commands() -> list[tuple[str, Any]]:
    group: Any = typer.main.get_command(app)
    ctx = group.make_context("gradcheck", ["--help"], resilient_parsing=True)
    return [(name, group.get_command(ctx, name)) for name in group.list_commands(ctx)]


@pytest.mark.parametrize(("name", "command"), _commands(), ids=[n for n, _ in _commands()])
def test_declared_defaults_coerce_as_typer_would(name: str, command: Any) -> None:
    """The shortcut (a declared default is returned as it is, without building a pydantic
    TypeAdapter) gives what Typer's own adapter gives, for every option of every command."""
    from typer._click.core import ParameterSource
    from typer._coercion import build_runtime_param

    ctx = command.make_context(name, [], resilient_parsing=True)
    params = [p for p in command.get_params(ctx) if hasattr(p, "type_descriptor")]
    assert params
    defer_adapters(params)
    for p in params:
        ctx.set_parameter_source(p.name, ParameterSource.DEFAULT)
        if p.default is None or isinstance(p.default, bool):
            continue
        real = build_runtime_param(p.type_descriptor).coerce(p.default, param=p, ctx=ctx)
        shortcut = p.get_runtime_param().coerce(p.default, param=p, ctx=ctx)
        assert (type(shortcut), shortcut) == (type(real), real), f"{name} {p.name}"


def test_a_value_from_the_command_line_still_goes_through_typer() -> None:
    """The negative twin: a typed value is coerced (and refused) by Typer's adapter."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["run", "--top", "0", "--seed", "3"])
    assert result.exit_code == 2
    assert "--top" in result.output and "greater than or equal to 1" in result.output
    result = CliRunner().invoke(app, ["run", "--format", "xml"])
    assert result.exit_code == 2 and "xml" in result.output


@pytest.mark.parametrize("args", [["run", "--help"], ["layer", "--help"], ["sweep", "--help"]])
def test_parsing_flags_imports_no_pydantic(args: list[str], tmp_path: Path) -> None:
    modules = imported_by(*args, cwd=tmp_path)
    assert "gradcheck_cli.commands.app" in modules
    assert not {m for m in modules if m.split(".")[0] in ("pydantic", "pydantic_core")}


def test_the_default_run_imports_no_pydantic_and_no_yaml(tmp_path: Path) -> None:
    """`gradcheck run` with no config and no option checks the built-in network from its
    pre-validated snapshot (spec/builtin.py): neither pydantic nor YAML is imported. The twin,
    a config file of the user's, is test_startup.py's test_a_check_imports_the_core_it_needs."""
    modules = imported_by("run", "-q", cwd=tmp_path)
    assert {"numpy", "gradcheck_cli.checker", "gradcheck_cli.spec.builtin"} <= modules
    heavy = {m for m in modules if m.split(".")[0] in ("pydantic", "pydantic_core", "yaml")}
    assert not heavy | ({"gradcheck_cli.spec.config", "gradcheck_cli.options"} & modules)
    assert not {"multiprocessing", "concurrent.futures"} & modules  # only `--jobs` needs them
    with_option = imported_by("run", "-q", "--rtol", "1e-6", cwd=tmp_path)
    assert "pydantic" in with_option and "gradcheck_cli.options" in with_option
