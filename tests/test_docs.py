"""The docs cannot go stale: every command output shown in README.md and docs/*.md is what the
tool prints now (docs/regenerate.py; `python docs/regenerate.py` rewrites them)."""

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
    assert re.fullmatch(r"intro\n<!-- output: gradcheck --version -->\n```\ngradcheck \S+\n```\nafter\n", new)
