"""Every command output shown in README.md and docs/*.md is produced by the tool, here.

A block to keep in sync is a fenced code block right after a marker line naming the command:

    <!-- output: gradcheck run configs/seed_mlp.yaml -->
    ```
    (whatever the command prints: replaced by this script)
    ```

The command runs from the project root with a fixed terminal width and no colour; its stdout and
stderr are shown as a terminal would (write `<!-- output: CMD | head -N -->` to show the first N
lines). Exit codes do not matter: a failing check is a fine example. Every fenced block with no
language (or `text`) must carry a marker: it shows output, so the tool must have printed it.

    python docs/regenerate.py          # rewrite the blocks in place
    python docs/regenerate.py --check  # exit 1 and show the difference when a block is stale

tests/test_docs.py runs the check, so CI fails when the docs drift from what the tool prints.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!-- output: (?P<cmd>.+?) -->\s*$")
#: The width a reader's terminal is assumed to have; tables are laid out for it.
WIDTH = 100


def run(command: str) -> str:
    """What ``command`` prints (stdout then stderr), with ``| head -N`` applied."""
    head = None
    m = re.fullmatch(r"(?P<cmd>.+?)\s*\|\s*head -(?P<n>\d+)", command)
    if m:
        command, head = m["cmd"], int(m["n"])
    argv = shlex.split(command)
    if argv[0] == "gradcheck":  # the installed tool, as a reader would run it
        argv = [sys.executable, "-m", "gradcheck_cli", *argv[1:]]
    elif argv[0] == "python":
        argv[0] = sys.executable
    env = {
        **os.environ,
        "COLUMNS": str(WIDTH),
        "NO_COLOR": "1",
        "TERM": "dumb",
        "PYTHONHASHSEED": "0",
    }
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    lines = (proc.stdout + proc.stderr).rstrip().splitlines()
    if head is not None:
        lines = lines[:head]
    return "\n".join(line.rstrip() for line in lines)


def regenerate(text: str) -> str:
    """``text`` with every marked block replaced by its command's output."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        m = MARKER.match(lines[i])
        if m and i + 1 < len(lines) and lines[i + 1].startswith("```"):
            end = next(
                (j for j in range(i + 2, len(lines)) if lines[j].startswith("```")), len(lines)
            )
            out += [lines[i + 1], run(m["cmd"]), "```"]
            i = end + 1
            continue
        i += 1
    return "\n".join(out)


def stale() -> list[str]:
    """A unified diff per file whose blocks differ from what the tool prints now."""
    diffs = []
    for path in FILES:
        old = path.read_text(encoding="utf-8")
        new = regenerate(old)
        if new != old:
            name = str(path.relative_to(ROOT))
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        old.splitlines(keepends=True), new.splitlines(keepends=True), name, name
                    )
                )
            )
    return diffs


def main(argv: list[str]) -> int:
    if "--check" in argv:
        diffs = stale()
        sys.stdout.write("".join(diffs))
        if diffs:
            print("\ndocs are stale: run `python docs/regenerate.py`", file=sys.stderr)
        return 1 if diffs else 0
    for path in FILES:
        old = path.read_text(encoding="utf-8")
        new = regenerate(old)
        if new != old:
            path.write_text(new, encoding="utf-8")
            print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
