"""The `gradcheck fn` examples cannot go stale: every `gradcheck` command in a ```bash block of
docs/functions.md and every `gradcheck fn` example in README.md runs, with the exit code the docs
state (`# exit N`, else 0). Blocks after `<!-- needs: MODULE -->` are skipped when MODULE is not
installed (scikit-learn is not a dependency)."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app

from .conftest import ROOT

DOC = ROOT / "docs" / "functions.md"
README = ROOT / "README.md"
_EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")


def doc_commands(text: str) -> list[tuple[str, int, str | None]]:
    """(command, expected exit code, module it needs) for each `gradcheck` line of the ```bash
    blocks (a trailing backslash continues a line)."""
    out: list[tuple[str, int, str | None]] = []
    lines = text.split("\n")
    needs: str | None = None
    i = 0
    while i < len(lines):
        m = re.match(r"<!-- needs: (\w+) -->", lines[i].strip())
        if m:
            needs = m[1]
        elif lines[i].strip() == "```bash":
            i += 1
            while not lines[i].strip().startswith("```"):
                line = lines[i].strip()
                while line.endswith("\\"):
                    i += 1
                    line = line[:-1].rstrip() + " " + lines[i].strip()
                if line.startswith("gradcheck "):
                    code = _EXIT.search(line)
                    cmd = _EXIT.sub("", line) if code else line
                    out.append((cmd, int(code[1]) if code else 0, needs))
                i += 1
            needs = None
        elif lines[i].startswith("```"):
            needs = None
        i += 1
    return out


def readme_commands(text: str) -> list[str]:
    """The concrete `gradcheck fn …` commands in README.md (inline code, wrapped over lines, and
    output markers); templates with FILE.py / NAME placeholders are not commands."""
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", text, flags=re.S)
    found = [ln.strip() for b in blocks for ln in b.splitlines() if ln.startswith("gradcheck fn ")]
    flat = " ".join(text.split())
    found += re.findall(r"`(gradcheck fn [^`]+)`", flat)
    found += re.findall(r"<!-- output: (gradcheck fn .+?) -->", flat)
    return sorted({c for c in found if "FILE.py" not in c and "…" not in c})


def run(command: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.chdir(ROOT)
    argv = shlex.split(command)
    assert argv[0] == "gradcheck"
    r = CliRunner().invoke(app, argv[1:], env={"COLUMNS": "200"})
    return r.exit_code, r.output


DOCS = doc_commands(DOC.read_text(encoding="utf-8"))


def test_the_docs_have_the_recipes() -> None:
    commands = " ".join(c for c, _, _ in DOCS)
    for part in ("mlfs_check.py:dense", "sk_linear.py:logistic", "ridge.py:loss", "scipy.optimize"):
        assert part in commands
    assert {code for _, code, _ in DOCS} >= {0, 1, 2}  # passes, planted bugs, usage errors
    assert len(readme_commands(README.read_text(encoding="utf-8"))) >= 3


@pytest.mark.parametrize(("command", "code", "needs"), DOCS, ids=[c for c, _, _ in DOCS])
def test_docs_commands_run(
    command: str, code: int, needs: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if needs:
        pytest.importorskip(needs)
    if "scipy." in command:
        pytest.importorskip("scipy")
    got, output = run(command, monkeypatch)
    assert got == code, output
    assert "Traceback" not in output


@pytest.mark.parametrize("command", readme_commands(README.read_text(encoding="utf-8")))
def test_readme_fn_examples_run(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if "scipy." in command:
        pytest.importorskip("scipy")
    got, output = run(command, monkeypatch)
    assert got == 0, output


def test_the_extractors_see_what_the_docs_say() -> None:
    """Wrong twin of the harness: exit codes, continuation lines and `needs` are read, so a
    recipe that starts failing cannot hide as a non-command."""
    text = (
        "```bash\ngradcheck fn a.py:f \\\n  --shape x=3  # exit 1\n```\n"
        "<!-- needs: nosuchmodule -->\n```bash\ngradcheck fn b.py:g\n```\n"
        "```python\ngradcheck fn c.py:h\n```\n"
    )
    assert doc_commands(text) == [
        ("gradcheck fn a.py:f --shape x=3", 1, None),
        ("gradcheck fn b.py:g", 0, "nosuchmodule"),
    ]
    readme = (
        "run `gradcheck fn\n  x.py:f --shape x=3` or `gradcheck fn FILE.py:NAME --shape x=4x3 …`"
    )
    assert readme_commands(readme) == ["gradcheck fn x.py:f --shape x=3"]
