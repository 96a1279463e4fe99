"""Start-up time of the `gradcheck` command: wall-clock medians of repeated runs.

    python benchmarks/startup.py                 # 15 runs each of --version, --help, run
    python benchmarks/startup.py --repeats 31 --imports

Each command runs as a user runs it (the installed console script when it is on PATH next to this
Python, else ``python -m gradcheck_cli``), output discarded; the first run of each is a warm-up.
The median is reported with the min and max: on a shared machine other processes make single runs
slow, so compare medians. ``--imports`` adds the slowest imports of each command from
``python -X importtime`` (cumulative microseconds, one run: indicative only).

Targets (issue 13): --version and --help ≤ 0.2 s, `run` on the default network ≤ 0.35 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {
    "--version": ["--version"],
    "--help": ["--help"],
    "run (default network)": ["run"],
}
TARGETS = {"--version": 0.2, "--help": 0.2, "run (default network)": 0.35}


def _prefix() -> list[str]:
    script = Path(sys.executable).with_name("gradcheck")
    if script.exists():
        return [str(script)]
    found = shutil.which("gradcheck")
    return [found] if found else [sys.executable, "-m", "gradcheck_cli"]


#: As an installed package runs: with bytecode (a PYTHONDONTWRITEBYTECODE environment would
#: otherwise compile every gradcheck module from source on every run, ~0.3 s here).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def time_runs(argv: list[str], repeats: int, cwd: str) -> list[float]:
    times: list[float] = []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        subprocess.run(
            argv, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            check=False,
        )  # fmt: skip
        if i:  # the first run warms the file cache
            times.append(time.perf_counter() - t0)
    return times


def slowest_imports(args: list[str], cwd: str, n: int = 8) -> list[tuple[int, str]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gradcheck_cli", *args],
        cwd=cwd, capture_output=True, text=True, check=False,
    )  # fmt: skip
    rows: list[tuple[int, str]] = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if name.startswith(" ") and not name.startswith("  "):  # top-level imports only
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--imports", action="store_true", help="also list the slowest imports")
    ns = parser.parse_args()
    prefix = _prefix()
    # An empty directory: a bare `gradcheck run` there checks the built-in demo network.
    with tempfile.TemporaryDirectory() as cwd:
        sys.path.insert(0, str(Path(__file__).parent))
        from machine import describe

        print(describe())
        print(f"{' '.join(prefix)} · {ns.repeats} runs each · {os.cpu_count()} cores (shared?)")
        print(f"{'command':<24}{'median':>9}{'min':>9}{'max':>9}{'target':>9}")
        for label, args in COMMANDS.items():
            times = time_runs([*prefix, *args], ns.repeats, cwd)
            med = statistics.median(times)
            ok = "ok" if med <= TARGETS[label] else "OVER"
            print(
                f"{label:<24}{med:>8.3f}s{min(times):>8.3f}s{max(times):>8.3f}s"
                f"{TARGETS[label]:>8.2f}s {ok}"
            )
        if ns.imports:
            for label, args in COMMANDS.items():
                print(f"\nslowest top-level imports of {label} (cumulative, one run):")
                for us, name in slowest_imports(args, cwd):
                    print(f"  {us / 1000:8.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
