"""Start-up stays light (issue 13): `gradcheck --version` and `--help` import no NumPy, pydantic,
checker, YAML or progress bar; commands import what they use when they run. And the help reads
well: no type tags Python leaks, ranges that match what CheckOptions enforces."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradcheck_cli import options
from gradcheck_cli.cli import app

HEAVY = (
    "numpy",
    "pydantic",
    "yaml",
    "rich.progress",
    "gradcheck_cli.checker",
    "gradcheck_cli.spec.config",
    "gradcheck_cli.suite",
    "gradcheck_cli.engine.network",
    "gradcheck_cli.engine.build",
    "gradcheck_cli.report.tables",
)
COMMANDS = ["run", "layer", "fn", "sweep", "list", "validate", "init", "schema"]


def imported_by(*args: str) -> set[str]:
    """Every module the real command (supervisor, fork and all) imports, from -X importtime."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gradcheck_cli", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "cumulative" not in line
    }


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--version"], ()),
        (["--help"], ()),
        # Typer converts arguments with pydantic, but not a declared default (commands/flags.py)
        (["run", "--help"], ()),
    ],
    ids=["--version", "--help", "run --help"],
)
def test_version_and_help_import_nothing_heavy(args: list[str], allowed: tuple[str, ...]) -> None:
    modules = imported_by(*args)
    assert "gradcheck_cli.cli" in modules  # the measurement sees the CLI's own imports
    heavy = sorted(
        m
        for m in modules
        if (m in HEAVY or m.split(".")[0] in ("numpy", "pydantic"))
        and m.split(".")[0] not in allowed
    )
    assert not heavy, f"`gradcheck {' '.join(args)}` imports {heavy}"


def test_version_is_answered_before_typer_and_rich() -> None:
    """`gradcheck --version` (the whole command line) costs a bare Python plus cli.py: no Typer,
    no Rich; with another argument it goes through the Typer app (the negative twin)."""
    modules = imported_by("--version")
    assert "gradcheck_cli.cli" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in ("typer", "rich", "click"))
    assert not loaded, f"`gradcheck --version` imports {loaded}"
    assert "typer" in imported_by("--version", "--help")
    proc = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", "--version"], capture_output=True, text=True
    )
    from gradcheck_cli import __version__

    assert (proc.returncode, proc.stdout) == (0, f"gradcheck {__version__}\n")


def test_a_check_imports_the_core_it_needs() -> None:
    """The negative twin: the measurement does see heavy imports when a command uses them (a
    config file of the user's is read with YAML and validated with pydantic)."""
    modules = imported_by("run", str(Path(__file__).parents[1] / "configs" / "seed_mlp.yaml"), "-q")
    assert {"numpy", "pydantic", "gradcheck_cli.checker", "yaml"} <= modules


def test_package_import_is_lazy_and_the_api_still_works() -> None:
    code = (
        "import sys, gradcheck_cli as g; assert 'numpy' not in sys.modules, 'eager';"
        "f = g.check_network; assert 'numpy' in sys.modules;"
        "from gradcheck_cli import check_layer, CheckOptions, make_layer;"
        "print(f.__module__, check_layer.__module__, CheckOptions.__module__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "gradcheck_cli.checker",
        "gradcheck_cli.checker",
        "gradcheck_cli.options",
    ]
    import gradcheck_cli

    with pytest.raises(AttributeError):
        _ = gradcheck_cli.no_such_name  # type: ignore[attr-defined]
    assert set(gradcheck_cli.__all__) <= set(dir(gradcheck_cli))


def help_text(command: str) -> str:
    r = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "300"})
    assert r.exit_code == 0, r.output
    return r.output


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_python_type_leaks(command: str) -> None:
    text = help_text(command)
    for leak in ("<bool>", "<list[", "<str>", "<path>", "{", "<float range>", "<int range>"):
        assert leak not in text, f"`gradcheck {command} --help` shows {leak}"


def test_root_help_has_no_bool_tags() -> None:
    r = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "300"})
    assert r.exit_code == 0 and "<bool>" not in r.output and "--version" in r.output


def test_help_ranges_are_the_enforced_ones() -> None:
    text = help_text("run")
    assert f"step ε, in (0, {options.MAX_EPS:g}]" in text
    assert f"sample mode, in [1, {options.MAX_SAMPLES}]" in text
    assert f"directional and sample mode, in [1, {options.MAX_PROBES}]" in text
    assert "Relative tolerance, in [0, 1]" in text and "Absolute tolerance, ≥ 0" in text
    # ... and what the help says is what is enforced, at both ends
    build = options.CheckOptions.build
    for good in ({"eps": options.MAX_EPS}, {"rtol": 1.0}, {"samples": options.MAX_SAMPLES}):
        build(flags=True, **good)
    for bad in (
        {"eps": 0.0},
        {"eps": options.MAX_EPS * 1.01},
        {"rtol": 1.01},
        {"atol": -1e-9},
        {"samples": 0},
        {"samples": options.MAX_SAMPLES + 1},
        {"probes": options.MAX_PROBES + 1},
    ):
        with pytest.raises(Exception, match=re.escape(next(iter(bad)))):
            build(flags=True, **bad)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_descriptions_have_no_hard_line_breaks(command: str) -> None:
    """A paragraph of a docstring or option help is one line: Rich wraps it to the terminal."""
    info = next(
        c
        for c in app.registered_commands
        if (c.name or c.callback.__name__) in (command, f"{command}_")
    )
    doc = info.callback.__doc__ or ""
    for paragraph in doc.strip().split("\n\n"):
        assert "\n" not in paragraph.strip(), f"{command}: {paragraph!r}"


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["--version"]], ids=" ".join)
def test_help_and_version_go_to_stdout(args: list[str]) -> None:
    """stdout is claimed for the report (isolation.py); help and version are output too, so
    `gradcheck --help | less` shows them."""
    proc = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr  # click echoes one newline there
    assert "Usage" in proc.stdout or proc.stdout.startswith("gradcheck ")


def test_user_code_runs_with_the_garbage_collector_on(tmp_path: Path) -> None:
    """Start-up runs without garbage collection (cli.main); a command turns it back on once its
    imports are done, before any user code runs (commands/delivery.py: loaded). A user layer
    records gc.isenabled() in every forward; with `run` and `layer`, all must be True."""
    (tmp_path / "probe.py").write_text(
        "import gc, sys\n"
        "import numpy as np\n\n\n"
        "class Probe:\n"
        "    def __init__(self, input_shape, rng):\n"
        "        self.params = {'a': np.ones(input_shape)}\n"
        "        self.grads = {'a': np.zeros(input_shape)}\n\n"
        "    def forward(self, x):\n"
        "        sys.stderr.write(f'gc-enabled={gc.isenabled()}\\n')\n"
        "        self.x = x\n"
        "        return x * self.params['a']\n\n"
        "    def backward(self, dout):\n"
        "        self.grads['a'] = (dout * self.x).sum(axis=0)\n"
        "        return dout * self.params['a']\n"
    )
    (tmp_path / "gradcheck.yaml").write_text(
        "name: gc-probe\nseed: 0\ninput: {shape: [3, 2]}\n"
        "target: {kind: classes, classes: 2}\n"
        'layers:\n  - {type: "probe.py:Probe"}\n'
        "loss: {type: softmax_cross_entropy}\n"
    )
    for args in (["run", "-q"], ["layer", "probe.py:Probe", "--shape", "3x2", "-q"]):
        proc = subprocess.run(
            [sys.executable, "-m", "gradcheck_cli", *args],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        seen = re.findall(r"gc-enabled=(\w+)", proc.stderr)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert seen and set(seen) == {"True"}, (args, proc.stderr[-500:])
