"""Hardening II (issue 12): nothing runs that was not asked for, nothing is overwritten, every limit
holds. Each test fails on commit 999798c (before the fix) and names the mechanism it guards.

Most tests run in-process (CliRunner); the ones about the process itself (os._exit, stdout at the
file-descriptor level, atexit, threads, SIGTERM) run the real entry point in a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.errors import ConfigError
from gradcheck_cli.layers import registry
from gradcheck_cli.spec import reading, trust

runner = CliRunner()
CONTEXT = ("base_dir", "input_shape", "dtype", "rng")

BASE = """
import numpy as np
class Base:
    def __init__(self, input_shape, rng):
        self.params = {"W": rng.standard_normal((input_shape[0], 3))}
        self.grads = {}
    def forward(self, x):
        self.x = x
        return x @ self.params["W"]
    def backward(self, d):
        self.grads = {"W": self.x.T @ d}
        return d @ self.params["W"].T
"""
#: A plugin whose import leaves a mark: --no-plugins must refuse before it exists.
EVIL = (
    "import pathlib\npathlib.Path(__file__).with_name('PWNED').write_text('x')\n"
    + BASE
    + ("class Evil(Base):\n    pass\n")
)


def gc(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})


def flat(text: str) -> str:
    return " ".join(text.split())


def clean(r, code: int, *needles: str) -> None:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    for needle in needles:
        assert needle in flat(r.output), f"{needle!r} not in {r.output}"


def cli(*args: str | Path, cwd: Path, timeout: float = 60, **kw):
    """The real entry point (supervisor + private stdout), as users run it."""
    return subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, NO_COLOR="1", COLUMNS="200"),
        **kw,
    )


# -- 1. --no-plugins: one walk, any depth, before any import --------------------------------------

NESTED = [
    ("{type: residual, layers: ['evil.py:Evil']}", "layers[0].layers[0]"),
    ("{type: residual, layers: [{type: 'evil.py:Evil'}]}", "layers[0].layers[0].type"),
    (
        "{type: residual, layers: [relu, {type: residual, layers: [tanh, 'evil.py:Evil']}]}",
        "layers[0].layers[1].layers[1]",
    ),
    ("{type: relu, fn: 'evil.py:f'}", "layers[0].fn"),
    ("{fn: 'evil.py:f'}", "layers[0].fn"),
]


@pytest.mark.parametrize("command", ["run", "validate", "sweep"])
@pytest.mark.parametrize(("entry", "field"), NESTED)
def test_no_plugins_refuses_code_at_any_depth(
    tmp_path: Path, command: str, entry: str, field: str
) -> None:
    (tmp_path / "evil.py").write_text(EVIL)
    cfg = tmp_path / "net.yaml"
    cfg.write_text(f"input: {{shape: [2, 3]}}\nlayers:\n  - {entry}\n")
    r = gc(command, "--no-plugins", cfg)
    clean(r, 2, field, "--no-plugins refuses code")
    assert not (tmp_path / "PWNED").exists()


def test_no_plugins_walks_layer_args(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "evil.py").write_text(EVIL)
    monkeypatch.chdir(tmp_path)
    for value in ('["evil.py:Evil"]', '[relu, {type: residual, layers: ["evil.py:Evil"]}]'):
        r = gc("layer", "residual", "--shape", "2x3", "--arg", f"layers={value}", "--no-plugins")
        clean(r, 2, "--arg layers[", "--no-plugins refuses code")
    assert not (tmp_path / "PWNED").exists()


def test_code_refs_finds_every_reference() -> None:
    spec = {
        "layers": [
            "relu",
            "a.py:A",
            {"type": "residual", "layers": ["b.mod:B", {"type": "residual", "layers": ["c.py:C"]}]},
            # Any ':' names code, as the loader reads it (issue 24): free text with one is refused
            # under --no-plugins too, rather than trusting a pattern narrower than the loader.
            {"type": "linear", "out": 3, "note": "ratio 1:2", "plain": "no colon"},
            {"fn": "d.py:f"},
            {"type": "future_block", "blocks": [{"inner": "e.py:E"}]},  # a built-in to come
        ],
        "loss": {"type": "f.py:Loss"},
    }
    assert trust.code_refs(spec) == [
        ("layers[1]", "a.py:A"),
        ("layers[2].layers[0]", "b.mod:B"),
        ("layers[2].layers[1].layers[0]", "c.py:C"),
        ("layers[3].note", "ratio 1:2"),
        ("layers[4].fn", "d.py:f"),
        ("layers[5].blocks[0].inner", "e.py:E"),
        ("loss.type", "f.py:Loss"),
    ]


# -- 2. context names ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONTEXT)
def test_context_names_are_refused_in_configs(tmp_path: Path, name: str) -> None:
    cfg = tmp_path / "net.yaml"
    for entry in (
        f"{{type: linear, out: 3, {name}: 1}}",
        f"{{type: residual, layers: [{{type: relu, {name}: 1}}]}}",
    ):
        cfg.write_text(f"input: {{shape: [2, 3]}}\nlayers:\n  - {entry}\n")
        clean(gc("run", cfg), 2, f"'{name}' is set by gradcheck")


@pytest.mark.parametrize("name", CONTEXT)
def test_context_names_are_refused_as_layer_args(name: str) -> None:
    r = gc("layer", "linear", "--shape", "2x3", "--arg", "out=3", "--arg", f"{name}=[5]")
    clean(r, 2, f"--arg.{name}", "is set by gradcheck")


def test_kwargs_constructor_gets_only_the_config_keys(tmp_path: Path) -> None:
    """A wrapper that forwards **kwargs to a strict library function must not receive dtype/rng."""
    (tmp_path / "wrap.py").write_text(
        BASE
        + "def library(scale=1.0):\n    return scale\n"
        + "class Wrapped(Base):\n"
        + "    def __init__(self, input_shape, rng, **kwargs):\n"
        + "        super().__init__(input_shape, rng)\n"
        + "        self.params['W'] *= library(**kwargs)\n"
    )
    cfg = tmp_path / "net.yaml"
    cfg.write_text("input: {shape: [4, 3]}\nlayers: [{type: 'wrap.py:Wrapped', scale: 0.5}]\n")
    clean(gc("run", cfg), 0, "gradients agree")


# -- 3. outputs never overwrite inputs; atomic; parents created ------------------------------------


@pytest.mark.parametrize("option", ["--junit-xml", "--export-html", "--export-svg"])
@pytest.mark.parametrize("target", ["net.yaml", "my.py", "helper.py", "x.npy", "link.yaml"])
def test_outputs_never_overwrite_inputs(tmp_path: Path, option: str, target: str) -> None:
    (tmp_path / "helper.py").write_text("SCALE = 1.0\n")
    (tmp_path / "my.py").write_text(
        "from helper import SCALE\n" + BASE + "class L(Base):\n    pass\n"
    )
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((4, 3)))
    cfg = tmp_path / "net.yaml"
    cfg.write_text("input: {file: x.npy}\nlayers: [{type: 'my.py:L'}]\n")
    (tmp_path / "link.yaml").symlink_to(cfg)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    r = gc("run", cfg, option, tmp_path / target, "-q")
    clean(r, 2, "an input of this run", "nothing was written")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_outputs_are_atomic_and_create_parents(tmp_path: Path) -> None:
    junit = tmp_path / "a" / "b" / "j.xml"
    html = tmp_path / "c" / "r.html"
    clean(gc("run", "--junit-xml", junit, "--export-html", html, "-q"), 0)
    assert ET.parse(junit).getroot().findall(".//testcase") and "<html" in html.read_text()
    left = [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert left == []


# -- 4. plugin modules per resolved path -----------------------------------------------------------

BUGGY = "class Dense(Base):\n    def backward(self, d):\n        dx = super().backward(d)\n        self.grads['W'] *= 1.5\n        return dx\n"


@pytest.mark.parametrize("style", ["module", "file", "sibling"])
def test_each_config_gets_its_own_plugin_modules(tmp_path: Path, style: str) -> None:
    for name, body in (("good", "class Dense(Base):\n    pass\n"), ("bad", BUGGY)):
        d = tmp_path / name
        d.mkdir()
        if style == "sibling":  # the layer lives in helper.py, imported by plug.py
            (d / "helper.py").write_text(BASE + body)
            (d / "plug.py").write_text("from helper import Dense\n")
            ref = "plug.py:Dense"
        else:
            (d / "layers.py").write_text(BASE + body)
            ref = "layers:Dense" if style == "module" else "layers.py:Dense"
        (d / "net.yaml").write_text(f"input: {{shape: [4, 3]}}\nlayers: [{{type: '{ref}'}}]\n")
    r = gc("run", tmp_path / "good" / "net.yaml", tmp_path / "bad" / "net.yaml", "--format", "json")
    assert r.exit_code == 1, r.output
    runs = {Path(c["config"]).parent.name: c["status"] for c in json.loads(r.stdout)["configs"]}
    assert runs == {"good": "pass", "bad": "fail"}


def test_plugin_module_names_follow_the_resolved_path(tmp_path: Path) -> None:
    a, b = tmp_path / "a" / "layers.py", tmp_path / "b" / "layers.py"
    assert registry._module_name(a) != registry._module_name(b)
    assert registry._module_name(a) == registry._module_name(tmp_path / "a" / "." / "layers.py")


# -- 5. user code cannot end the process silently or write into the report ------------------------

LEAKS = (
    BASE
    + """
import atexit, os, sys, threading, time, asyncio
class OsExit(Base):
    def backward(self, d):
        os._exit(0)
class Cancelled(Base):
    def forward(self, x):
        raise asyncio.CancelledError()
class DunderStdout(Base):
    def forward(self, x):
        sys.__stdout__.write("via sys.__stdout__\\n"); sys.__stdout__.flush()
        os.write(1, b"via fd 1\\n")
        return super().forward(x)
class PrintingProperty(Base):
    @property
    def row_independent(self):
        print("debug: row_independent queried")
        return False
class AtExit(Base):
    def __init__(self, input_shape, rng):
        super().__init__(input_shape, rng); atexit.register(print, "bye from atexit")
class ThreadPrint(Base):
    def __init__(self, input_shape, rng):
        super().__init__(input_shape, rng)
        def beat():
            for i in range(3000):
                print(f"heartbeat {i}"); os.write(1, b"raw\\n"); time.sleep(0.0005)
        threading.Thread(target=beat, daemon=True).start()
class BlocksExit(Base):
    def __init__(self, input_shape, rng):
        super().__init__(input_shape, rng)
        threading.Thread(target=time.sleep, args=(3600,)).start()
class F16Out(Base):
    def forward(self, x):
        return super().forward(x).astype(np.float16)
"""
)


@pytest.fixture(scope="module")
def leaks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("leaks")
    (d / "leaks.py").write_text(LEAKS)
    return d


@pytest.mark.parametrize(
    ("cls", "needle"), [("OsExit", "ended (exit status 0) inside"), ("Cancelled", "CancelledError")]
)
def test_user_code_cannot_end_the_run_without_a_verdict(leaks: Path, cls: str, needle: str) -> None:
    proc = cli("layer", f"leaks.py:{cls}", "--shape", "4x3", "--format", "json", cwd=leaks)
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr and needle in proc.stderr
    assert f"leaks.py:{cls}" in proc.stderr  # names the plugin
    assert proc.stdout == ""


@pytest.mark.parametrize("cls", ["DunderStdout", "PrintingProperty", "AtExit", "ThreadPrint"])
def test_stdout_stays_one_json_document(leaks: Path, cls: str) -> None:
    proc = cli("layer", f"leaks.py:{cls}", "--shape", "4x3", "--format", "json", cwd=leaks)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["passed"] is True


def test_a_thread_that_blocks_exit_does_not_hang_the_cli(leaks: Path) -> None:
    t0 = time.perf_counter()
    proc = cli("layer", "leaks.py:BlocksExit", "--shape", "4x3", cwd=leaks, timeout=30)
    assert proc.returncode == 0 and time.perf_counter() - t0 < 20


def test_float16_output_is_named_as_a_downcast(leaks: Path) -> None:
    r = gc("layer", str(leaks / "leaks.py") + ":F16Out", "--shape", "4x3")
    clean(r, 2, "downcasts its float64 input to float16")


def test_sigterm_gives_a_partial_report(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(
        BASE + "import time\nclass Slow(Base):\n    def forward(self, x):\n"
        "        time.sleep(0.002)\n        return super().forward(x)\n"
    )
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        "input: {shape: [16, 40]}\nlayers: [{type: 'slow.py:Slow'}, tanh]\ncheck: {mode: full}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradcheck_cli", "run", str(cfg), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert json.loads(out)["interrupted"] is True


# -- 6. a suite reports every config; messages are shown as written --------------------------------


def test_one_bad_config_does_not_abort_the_suite(tmp_path: Path) -> None:
    good = "input: {shape: [2, 3]}\nlayers: [{type: linear, out: 2}]\n"
    (tmp_path / "a.yaml").write_text(good)
    (tmp_path / "b.yaml").write_text(f"input: {{values: [[1{'0' * 400}, 2]]}}\nlayers: [relu]\n")
    (tmp_path / "c.yaml").write_text(good)
    junit = tmp_path / "out" / "s.xml"
    r = gc("run", tmp_path, "--junit-xml", junit)
    clean(r, 2, "input.values", "float64 can hold")
    names = {c.get("file") for c in ET.parse(junit).getroot().iter("testcase")}
    assert {Path(n).name for n in names} == {"a.yaml", "b.yaml", "c.yaml"}


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize(
    "name", ["a\\u001b[31mRED\\u0007\\u0001", "bad \\ud800 name", "x\\u001b[2J"]
)
def test_unprintable_names_are_refused_by_field(tmp_path: Path, name: str, suffix: str) -> None:
    """A config name with control characters or a lone surrogate (JSON allows both; YAML the
    former) is a config error naming the field: it never reaches a terminal, JUnit or HTML."""
    cfg = tmp_path / f"net{suffix}"
    cfg.write_text(f'{{"name": "{name}", "input": {{"shape": [2, 3]}}, "layers": ["relu"]}}')
    for fmt in ("table", "json") if suffix == ".json" else ("github",):
        proc = cli("run", cfg, "--format", fmt, "--junit-xml", tmp_path / "j.xml", cwd=tmp_path)
        assert proc.returncode == 2 and "internal error" not in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert ": name:" in proc.stderr or "invalid Unicode" in proc.stderr, proc.stderr
        assert "\x1b[" not in proc.stdout + proc.stderr
        root = ET.parse(tmp_path / "j.xml").getroot()  # well-formed, the config an error
        assert root.get("errors") == "1"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["layer", "relu", "--shape", "x".join(["1"] * 70)], "70 axes"),
        (["run", "ok.yaml:x"], "ok.yaml:x"),
    ],
)
def test_minor_inputs_get_messages(args: list[str], needle: str) -> None:
    r = gc(*args)
    clean(r, 2, needle)
    assert "❌" not in r.output


# -- 7. limits before work -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("check", "needle"),
    [
        ("{mode: directional, probes: 10000000}", "check.probes"),
        ("{mode: sample, samples: 100000000}", "check.samples"),
    ],
)
def test_probes_and_samples_are_bounded(tmp_path: Path, check: str, needle: str) -> None:
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        f"input: {{shape: [4, 3]}}\nlayers: [{{type: linear, out: 3}}]\ncheck: {check}\n"
    )
    clean(gc("run", cfg), 2, needle)
    clean(gc("layer", "linear", "--arg", "out=3", "--probes", "10000000"), 2)


def test_probe_memory_and_conv_temporaries_are_estimated(tmp_path: Path) -> None:
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 100000}]\n"
        "check: {mode: directional, probes: 10000}\n"
    )
    t0 = time.perf_counter()
    clean(gc("run", cfg), 2, "directional probes of 0.linear.W", "refused before drawing")
    cfg.write_text(
        "input: {shape: [32, 32, 128, 128]}\nlayers: [{type: conv2d, out_channels: 32, kernel: 7}]\n"
    )
    clean(gc("run", cfg), 2, "layer 0 temporaries 5.6 GB", "refused before allocating")
    assert time.perf_counter() - t0 < 10


def test_conv_estimate_matches_the_built_layer() -> None:
    import gradcheck_cli as api
    from gradcheck_cli.layers.conv import Conv2d

    args = {"out_channels": 4, "kernel": 3, "stride": 2, "padding": 1}
    lay = api.make_layer("conv2d", (2, 9, 7), **args)
    out = lay.forward(np.zeros((1, 2, 9, 7)))
    n, shape = Conv2d.estimate((2, 9, 7), **args)
    assert n == sum(v.size for v in lay.params.values()) and shape == out.shape[1:]
    assert Conv2d.workspace((2, 9, 7), **args) == lay.win[0].size


def test_merge_keys_are_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Merge expansion is bounded by the loader itself, whatever PyYAML does with merges."""
    monkeypatch.setattr(reading, "MAX_CONFIG_NODES", 500)
    lines = ["l0: &l0 {k0: 0, k1: 1, k2: 2, k3: 3}"]
    lines += [f"l{i}: &l{i} {{<<: [*l{i - 1}, *l{i - 1}], m{i}: {i}}}" for i in range(1, 200)]
    path = tmp_path / "merge.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="merge keys"):
        reading.read_data(path)


def test_big_configs_are_refused_or_parsed_quickly(tmp_path: Path) -> None:
    """Parsing cost is bounded: over the limit is refused unread; under it, libyaml's parser
    (the pure-Python one took ~10 s per MB, 3 minutes for 9.9 MB)."""
    row = "[" + ", ".join(["1.5"] * 1000) + "]"
    body = "input:\n  values:\n" + "".join(f"    - {row}\n" for _ in range(100))
    path = tmp_path / "big.yaml"
    path.write_text(body + "layers: [relu]\n")  # ~0.4 MB: under the limit
    t0 = time.perf_counter()
    assert len(reading.read_data(path)["input"]["values"]) == 100
    assert time.perf_counter() - t0 < 10
    path.write_text(body * 6 + "layers: [relu]\n")  # ~2.4 MB
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="refused before reading"):
        reading.read_data(path)
    assert time.perf_counter() - t0 < 1


# -- 8. interrupted runs look interrupted ----------------------------------------------------------


def test_junit_after_ctrl_c_is_not_green(tmp_path: Path) -> None:
    (tmp_path / "stop.py").write_text(
        BASE + "class Stop(Base):\n    calls = 0\n    def forward(self, x):\n"
        "        Stop.calls += 1\n        if Stop.calls > 5:\n            raise KeyboardInterrupt\n"
        "        return super().forward(x)\n"
    )
    cfg = tmp_path / "net.yaml"
    cfg.write_text("input: {shape: [3, 4]}\nlayers: [{type: 'stop.py:Stop'}]\n")
    junit = tmp_path / "j.xml"
    assert gc("run", cfg, "--junit-xml", junit).exit_code == 130
    root = ET.parse(junit).getroot()
    assert root.get("errors") == "1"
    assert [c.get("name") for c in root.iter("testcase") if c.find("error") is not None] == [
        "(interrupted)"
    ]


# -- 9. losses are blamed correctly ----------------------------------------------------------------

LOSSES = """
import numpy as np
class MSE:
    def forward(self, pred, target):
        self.d = pred - target
        return float((self.d ** 2).mean())
    def backward(self):
        return 2 * self.d / self.d.size
class BwdNone(MSE):
    def backward(self):
        2 * self.d / self.d.size
class FwdNone(MSE):
    def forward(self, pred, target):
        super().forward(pred, target)
class Clears(MSE):
    def forward(self, pred, target):
        v = super().forward(pred, target)
        pred[...] = 0.0
        return v
class ScalesTarget(MSE):
    def forward(self, pred, target):
        target *= 2
        return super().forward(pred, target)
"""


@pytest.mark.parametrize(
    ("cls", "needle"),
    [
        ("BwdNone", "(l.py:BwdNone).backward returned None"),
        ("FwdNone", "(l.py:FwdNone).forward returned None"),
        ("Clears", "(l.py:Clears).forward modified pred in place"),
        ("ScalesTarget", "(l.py:ScalesTarget).forward modified target in place"),
    ],
)
def test_losses_are_blamed_by_name(tmp_path: Path, cls: str, needle: str) -> None:
    (tmp_path / "l.py").write_text(LOSSES)
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 5}, tanh, {type: linear, out: 2}]\n"
        f"loss: {{type: 'l.py:{cls}'}}\ntarget: {{kind: values}}\n"
    )
    r = gc("run", cfg)
    clean(r, 2, "loss: loss", needle)
    assert "layer 0" not in r.output and "NaN" not in r.output
    cfg.write_text(cfg.read_text().replace(cls, "MSE"))
    clean(gc("run", cfg), 0, "gradients agree")
