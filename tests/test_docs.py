"""The docs cannot go stale: every command output shown in README.md and docs/*.md is what the
tool prints now (docs/regenerate.py; `python docs/regenerate.py` rewrites them), every command
shown runs, every link resolves, and the README stays short and starts with its set-up commands."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("regenerate", ROOT / "docs" / "regenerate.py")
assert spec is not None and spec.loader is not None
regenerate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(regenerate)


def test_shown_outputs_are_what_the_tool_prints() -> None:
    diffs = regenerate.stale()
    assert not diffs, "".join(diffs) + "\nstale docs: run `python docs/regenerate.py`"


@pytest.mark.parametrize("path", regenerate.FILES, ids=lambda p: p.name)
def test_every_output_block_has_a_command(path: Path) -> None:
    """A fenced block with no language (or `text`) shows output: it must name its command."""
    lines = path.read_text(encoding="utf-8").split("\n")
    inside = False
    for i, line in enumerate(lines):
        if not line.startswith("```"):
            continue
        if not inside and line.strip() in ("```", "```text"):
            assert i and regenerate.MARKER.match(lines[i - 1]), (
                f"{path.name}:{i + 1}: an output block without `<!-- output: CMD -->` above it"
            )
        inside = not inside


def test_regenerate_replaces_a_block_and_keeps_the_rest() -> None:
    text = "intro\n<!-- output: gradcheck --version -->\n```\nold\n```\nafter\n"
    new = regenerate.regenerate(text)
    assert re.fullmatch(
        r"intro\n<!-- output: gradcheck --version -->\n```\ngradcheck \S+\n```\nafter\n", new
    )


# -- the README's shape -------------------------------------------------------------------------

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def test_readme_is_short_and_starts_with_the_two_set_up_commands() -> None:
    """≤ 400 lines; the first command lines in code blocks are exactly the two set-up commands
    (install and run, install and test), and CI (.ci/run) runs that same test command."""
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 400
    commands = [
        line.strip()
        for _, body in FENCE.findall(text)
        for line in body.splitlines()
        if re.match(r"\s*(python|pip|gradcheck)\b", line)
    ]
    install_run, install_test = commands[:2]
    assert "pip install" in install_run and install_run.endswith("gradcheck run")
    assert "pip install" in install_test and install_test.endswith("python -m pytest")
    first_blocks = [body.strip() for _, body in FENCE.findall(text)[:2]]
    assert first_blocks == [install_run, install_test]
    assert install_test in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


# -- links --------------------------------------------------------------------------------------


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("path", regenerate.FILES, ids=lambda p: p.name)
def test_every_link_resolves(path: Path) -> None:
    """Every relative link names a file that exists, and a #section that is one of its headings."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        where = (path.parent / file).resolve() if file else path
        assert where.exists(), f"{path.name}: link to {target}: no such file"
        if anchor:
            assert anchor in _anchors(where), f"{path.name}: link to {target}: no such heading"


def test_the_readme_links_the_reference_pages() -> None:
    text = README.read_text(encoding="utf-8")
    for page in ("error-model", "modes", "diagnosis", "config", "layers", "benchmarks",
                 "functions", "reports", "api", "sweep"):  # fmt: skip
        assert f"(docs/{page}.md" in text, page


# -- every command shown is run -----------------------------------------------------------------

#: Shown but not run here, each for a reason: the set-up commands install (the test environment
#: is what they make) or are this very suite (.ci/run runs it, checked above); shell completion
#: would edit the shell's start-up file; the benchmarks and surveys take minutes (benchmarks/,
#: not tests/): their scripts are checked to exist and to take the options shown.
NOT_RUN = re.compile(
    r"^(python -m pip install .*|python -m pytest|gradcheck --install-completion)$"
)
SCRIPT = re.compile(r"^(python (benchmarks/\S+\.py|-m tests\.\S+)|bash benchmarks/\S+\.sh)( .*)?$")
#: A placeholder makes a command a synopsis (`gradcheck run [CONFIG…]`, `gradcheck fn FILE.py:NAME`).
PLACEHOLDER = re.compile(r"[…<>\[\]|]|\b[A-Z]{2,}[A-Z0-9_]*\b|\.\.\.")


def shown_commands() -> list[tuple[str, str]]:
    """(file, command) for every command in a bash block or an inline `gradcheck …`/`python …`
    span of the README and docs (`A && B` is two commands)."""
    found = []
    for path in regenerate.FILES:
        text = path.read_text(encoding="utf-8")
        for lang, body in FENCE.findall(text):
            if lang in ("bash", "sh", "console"):
                found += [(path.name, line.split("  #")[0].strip()) for line in body.splitlines()
                          if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip
        prose = FENCE.sub("", text)
        found += [(path.name, " ".join(m.split()))
                  for m in re.findall(r"`((?:gradcheck|python)\s[^`]+)`", prose)]  # fmt: skip
        found += [(path.name, m) for m in re.findall(r"`(gradcheck)`", prose)]
    return [(name, part.strip()) for name, cmd in found for part in cmd.split("&&")]


def _help(argv: list[str]) -> str:
    from typer.testing import CliRunner

    from gradcheck_cli.cli import app

    r = CliRunner().invoke(app, [*argv, "--help"], env={"COLUMNS": "400"})
    assert r.exit_code == 0, f"gradcheck {' '.join(argv)}: no such command"
    return r.output


def _check_script(command: str) -> None:
    """A benchmark or survey: the script exists, compiles, and knows every --option shown."""
    words = command.split()
    path = ROOT / words[1] if words[1] != "-m" else ROOT / (words[2].replace(".", "/") + ".py")
    assert path.is_file(), f"{command}: no {path.relative_to(ROOT)}"
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".sh":  # a shell script: it exists and is shell (bash -n reads it)
        import subprocess

        assert subprocess.run(["bash", "-n", str(path)]).returncode == 0, command
        return
    compile(source, str(path), "exec")
    for option in re.findall(r"(?<!\S)--[\w-]+", command):
        assert f'"{option}"' in source, f"{command}: {path.name} has no {option}"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder where the repository's files are visible and whatever a command writes
    (gradcheck.xml, `gradcheck init demo`) lands in a temporary place."""
    for name in ("configs", "docs", "tests", "benchmarks"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return tmp_path


def test_every_command_shown_runs(project: Path) -> None:
    """Each concrete `gradcheck …` command ends in 0 or 1 (a failing check is a fine example;
    2 would mean the command no longer parses or a file it names is gone). A synopsis names a
    real subcommand and real options. Python commands are run too, but for NOT_RUN and SCRIPT."""
    import shlex
    import subprocess
    import sys

    from typer.testing import CliRunner

    from gradcheck_cli.cli import app

    commands = shown_commands()
    assert len(commands) > 20, commands  # the extraction finds them
    for name, command in dict.fromkeys(commands):
        where = f"{name}: {command}"
        if name == "functions.md":  # run with the exit code each states: test_docs_functions.py
            continue
        if "scipy." in command and importlib.util.find_spec("scipy") is None:
            continue  # a module target of SciPy's (not a dependency): test_docs_functions.py
        if SCRIPT.match(command):
            _check_script(command)
            continue
        if NOT_RUN.match(command):
            continue
        argv = shlex.split(command.split(" > ")[0])
        if PLACEHOLDER.search(command) or len(argv) == 1 or argv[1:] in (["fn"], ["sweep"]):
            sub = [w for w in argv[1:2] if not w.startswith("-") and not PLACEHOLDER.search(w)]
            text = _help(sub)
            for option in re.findall(r"(?<![\w-])--[a-z][\w-]*", command):
                assert option in text, f"{where}: no option {option}"
            continue
        if argv[0] == "gradcheck":
            r = CliRunner().invoke(app, argv[1:], env={"COLUMNS": "100"})
            assert r.exit_code in (0, 1), f"{where}: exit {r.exit_code}\n{r.output}"
        else:
            assert argv[0] == "python", where
            proc = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True,
                                  timeout=300)  # fmt: skip
            assert proc.returncode in (0, 1), f"{where}: exit {proc.returncode}\n{proc.stderr}"


def test_commands_found_include_each_kind() -> None:
    """The extraction sees bash blocks, inline spans and wrapped inline spans."""
    found = {cmd for _, cmd in shown_commands()}
    assert "gradcheck run configs/small_cnn.yaml" in found  # a README bash block
    assert "gradcheck validate configs/" in found  # inline
    assert "gradcheck fn configs/functions/layers.py:rosen --grad rosen_der --shape x=6" in found
    assert "python -m pytest" in found and NOT_RUN.match("python -m pytest")


def test_the_readme_config_and_pre_commit_snippets_are_valid(project: Path) -> None:
    """The README's example config validates (next to configs/my_layers.py, whose class it
    names), and its pre-commit snippet is a pre-commit config naming the hooks this repo has."""
    import yaml
    from typer.testing import CliRunner

    from gradcheck_cli.cli import app

    blocks = [
        body for lang, body in FENCE.findall(README.read_text(encoding="utf-8")) if lang == "yaml"
    ]
    (config,) = [b for b in blocks if b.startswith("name: seed-mlp")]
    (project / "my_layers.py").symlink_to(ROOT / "configs" / "my_layers.py")
    (project / "net.yaml").write_text(config, encoding="utf-8")
    r = CliRunner().invoke(app, ["validate", "net.yaml"])
    assert r.exit_code == 0, r.output
    (hooks,) = [yaml.safe_load(b) for b in blocks if b.startswith("repos:")]
    (repo,) = hooks["repos"]
    assert re.fullmatch(r"[0-9a-f]{40}", str(repo["rev"]))  # a full commit SHA: there are no tags
    known = {h["id"] for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert {h["id"] for h in repo["hooks"]} <= known


@pytest.mark.parametrize("path", regenerate.FILES, ids=lambda p: p.name)
def test_every_python_block_is_python(path: Path) -> None:
    """Python blocks at least parse (the README's are run: tests/test_tooling.py)."""
    for lang, body in FENCE.findall(path.read_text(encoding="utf-8")):
        if lang == "python":
            compile(body, f"{path.name}:python", "exec")
