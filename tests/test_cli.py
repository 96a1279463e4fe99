"""The CLI as a user meets it: exit codes, reports, wrong backwards caught, bad input explained."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.spec.config import default_config_path

from .conftest import CONFIGS

BUGGY = Path(__file__).with_name("buggy_layers.py")
runner = CliRunner()


def gc(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "240"})


def test_default_network_passes() -> None:
    r = gc("run")
    assert r.exit_code == 0, r.output
    assert "seed-mlp" in r.output and "all 5 gradients agree" in r.output


def test_default_network_is_the_seed_config() -> None:
    assert default_config_path().read_text() == (CONFIGS / "seed_mlp.yaml").read_text()


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_pass(config: Path) -> None:
    r = gc("run", str(config))
    assert r.exit_code == 0, r.output


def test_json_report_fields() -> None:
    r = gc("run", "--format", "json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    assert doc["passed"] is True and doc["seed"] == 0 and doc["eps"] == 1e-5
    names = [p["name"] for p in doc["results"]]
    assert names == ["input", "0.linear.W", "0.linear.b", "2.linear.W", "2.linear.b"]
    first = doc["results"][1]
    for key in (
        "name",
        "shape",
        "rel_error",
        "max_abs_error",
        "worst_index",
        "analytic",
        "numeric",
    ):
        assert key in first
    assert first["shape"] == [3, 5] and first["passed"] is True


def test_json_is_identical_across_runs() -> None:
    assert gc("run", "--format", "json").stdout == gc("run", "--format", "json").stdout


def test_seed_changes_the_problem() -> None:
    a = json.loads(gc("run", "--format", "json", "--seed", "1").stdout)
    b = json.loads(gc("run", "--format", "json", "--seed", "2").stdout)
    assert a["seed"] == 1 and a["results"][1]["analytic"] != b["results"][1]["analytic"]


def test_no_inputs_skips_the_input() -> None:
    doc = json.loads(gc("run", "--format", "json", "--no-inputs").stdout)
    assert "input" not in [p["name"] for p in doc["results"]]


NET = """
name: buggy
seed: {seed}
input: {{shape: [5, 4]}}
target: {{kind: {kind}, {extra}}}
layers:
{layers}
loss: {{type: {loss}}}
"""


def buggy_config(
    write, layers: str, *, loss="softmax_cross_entropy", kind="classes", extra="classes: 3", seed=0
):
    return write(
        "net.yaml", NET.format(layers=layers, loss=loss, kind=kind, extra=extra, seed=seed)
    )


@pytest.mark.parametrize(
    ("layers", "bad_param"),
    [
        (
            f"  - {{type: linear, out: 6}}\n  - {{type: '{BUGGY}:ReLUNoMask'}}\n  - {{type: linear, out: 3}}",
            "0.linear.W",
        ),
        (
            f"  - {{type: '{BUGGY}:LinearNoTranspose', out: 4}}\n  - {{type: linear, out: 3}}",
            "0.LinearNoTranspose.W",
        ),
        (
            f"  - {{type: '{BUGGY}:LinearBiasMean', out: 6}}\n  - {{type: linear, out: 3}}",
            "0.LinearBiasMean.b",
        ),
        (
            f"  - {{type: '{BUGGY}:LinearWrongShape', out: 6}}\n  - {{type: linear, out: 3}}",
            "0.LinearWrongShape.b",
        ),
        (
            f"  - {{type: '{BUGGY}:LinearMissingGrad', out: 6}}\n  - {{type: linear, out: 3}}",
            "0.LinearMissingGrad.b",
        ),
        (
            f"  - {{type: linear, out: 6}}\n  - {{type: '{BUGGY}:LinearScaled', out: 3}}",
            "1.LinearScaled.W",
        ),
    ],
    ids=["relu-no-mask", "no-transpose", "bias-mean", "wrong-shape", "missing-grad", "rel-1e-4"],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wrong_backward_is_caught(write, layers: str, bad_param: str, seed: int) -> None:
    r = gc("run", str(buggy_config(write, layers, seed=seed)), "--format", "json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    failing = {p["name"] for p in doc["results"] if not p["passed"]}
    assert bad_param in failing


def test_missing_factor_two_in_mse_is_caught(write) -> None:
    cfg = buggy_config(
        write, "  - {type: linear, out: 2}", loss=f"'{BUGGY}:MSENoFactor2'", kind="values", extra=""
    )
    r = gc("run", str(cfg))
    assert r.exit_code == 1
    assert "disagree" in r.output and "replay: gradcheck run" in r.output


def test_reasons_are_shown_for_structural_failures(write) -> None:
    cfg = buggy_config(write, f"  - {{type: '{BUGGY}:LinearMissingGrad', out: 3}}")
    r = gc("run", str(cfg))
    assert r.exit_code == 1 and "backward did not set grads['b']" in r.output
    cfg = buggy_config(write, f"  - {{type: '{BUGGY}:LinearWrongShape', out: 3}}")
    assert "gradient has shape (5, 3), expected (3,)" in gc("run", str(cfg)).output


def test_layer_command() -> None:
    r = gc("layer", "relu", "--shape", "4x3")
    assert r.exit_code == 0, r.output
    r = gc("layer", "linear", "--shape", "2x3", "--arg", "out=4", "--format", "json")
    doc = json.loads(r.stdout)
    assert [p["name"] for p in doc["results"]] == ["input", "0.linear.W", "0.linear.b"]


def test_layer_command_plugin_and_bug() -> None:
    r = gc("layer", f"{BUGGY}:ReLUNoMask", "--shape", "6x5")
    assert r.exit_code == 1 and "input" in r.output
    r = gc("layer", f"{CONFIGS}/my_layers.py:ScaledTanh", "--shape", "3x4")
    assert r.exit_code == 0, r.output


def test_list_shows_arguments_and_one_layer_in_full() -> None:
    r = gc("list")
    assert "out_channels, kernel, stride=1, padding=0" in r.output  # conv2d, defaults shown
    assert "input_shape" not in r.output and "rng" not in r.output  # context is not an argument
    r = gc("list", "leaky_relu")
    assert r.exit_code == 0 and "slope: float (default 0.01)" in r.output and "dx =" in r.output
    r = gc("list", "lineer")
    assert r.exit_code == 2 and "did you mean 'linear'" in r.output


def test_list_shows_formulas() -> None:
    r = gc("list")
    assert r.exit_code == 0
    for name in (
        "linear",
        "relu",
        "leaky_relu",
        "sigmoid",
        "tanh",
        "softmax",
        "mse",
        "softmax_cross_entropy",
    ):
        assert name in r.output
    assert "dW = xᵀ·dout" in r.output


BAD_CONFIGS = {
    "unknown-key": (
        "input: {shape: [4, 3]}\nlayers: [relu]\nlayres: []\n",
        ["unknown key 'layres'", "did you mean 'layers'"],
    ),
    "wrong-type": (
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 5}]\nseed: abc\n",
        ["seed"],
    ),
    "unknown-layer": (
        "input: {shape: [4, 3]}\nlayers: [{type: lienar, out: 5}]\n",
        ["unknown layer 'lienar'", "did you mean 'linear'", "layers[0]"],
    ),
    "bad-arg": (
        "input: {shape: [4, 3]}\nlayers: [{type: linear, outt: 5}]\n",
        ["takes no argument 'outt'", "did you mean 'out'"],
    ),
    "classes-mismatch": (
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 5}]\ntarget: {kind: classes, classes: 3}\nloss: {type: softmax_cross_entropy}\n",
        ["target.classes", "5 columns"],
    ),
    "loss-needs-target": (
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 5}]\nloss: {type: mse}\n",
        ["target.kind", "values"],
    ),
    "malformed-yaml": ("input: {shape: [4, 3]\nlayers: [relu]\n", ["invalid YAML at line"]),
    "not-a-mapping": ("- relu\n- tanh\n", ["must be a mapping"]),
    "empty": ("", ["it is empty"]),
    "negative-shape": ("input: {shape: [4, -3]}\nlayers: [relu]\n", ["positive sizes"]),
    "bad-eps": ("input: {shape: [4, 3]}\nlayers: [relu]\ncheck: {eps: 0}\n", ["check.eps"]),
    "python-tag": (
        "input: !!python/object/apply:os.system ['echo hi']\nlayers: [relu]\n",
        ["invalid YAML"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exit_2_with_message(write, case: str) -> None:
    text, needles = BAD_CONFIGS[case]
    path = write("bad.yaml", text)
    r = gc("run", str(path))
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert str(path) in r.output
    for needle in needles:
        assert needle in r.output


def test_missing_file_and_json_errors(write, tmp_path: Path) -> None:
    r = gc("run", str(tmp_path / "nope.yaml"))
    assert r.exit_code == 2 and "file not found" in r.output
    r = gc("run", str(write("bad.json", '{"input": {"shape": [4, 3]},\n "layers": [}')))
    assert r.exit_code == 2 and "invalid JSON at line 2" in r.output


PLUGIN_CASES = {
    "no-file": ("missing.py:Foo", None, ["plugin file not found"]),
    "syntax": ("p.py:Foo", "class Foo:\n  def f(:\n", ["syntax error in plugin p.py:2"]),
    "import-error": (
        "p.py:Foo",
        "import not_a_module_xyz\n",
        ["No module named 'not_a_module_xyz'", "p.py:1"],
    ),
    "no-class": ("p.py:Foo", "class Bar:\n    pass\n", ["no class 'Foo'", "classes found: Bar"]),
    "ctor-raises": (
        "p.py:Foo",
        "class Foo:\n    def __init__(self):\n        raise ValueError('boom')\n",
        ["constructing", "ValueError: boom", "p.py:3"],
    ),
    "contract": (
        "p.py:Foo",
        "class Foo:\n    def forward(self, x):\n        return x\n",
        ["missing backward, params, grads"],
    ),
    "forward-raises": (
        "p.py:Foo",
        "class Foo:\n    params = {}\n    grads = {}\n    def forward(self, x):\n        return 1 / 0\n    def backward(self, d):\n        return d\n",
        ["layer 0 (p.py:Foo).forward raised ZeroDivisionError", "p.py:5"],
    ),
    "module-missing": ("nopkg.mod:Foo", None, ["cannot import plugin module 'nopkg.mod'"]),
}


@pytest.mark.parametrize("case", sorted(PLUGIN_CASES))
def test_broken_plugin_exit_2(write, case: str) -> None:
    ref, source, needles = PLUGIN_CASES[case]
    if source is not None:
        write("p.py", source)
    cfg = write("net.yaml", f"input: {{shape: [4, 3]}}\nlayers: [{{type: '{ref}'}}]\n")
    r = gc("run", str(cfg))
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    for needle in needles:
        assert needle in r.output


def test_plugin_gets_input_shape_and_rng_and_package_reference(write) -> None:
    write("mylib.py", (CONFIGS / "my_layers.py").read_text())
    cfg = write(
        "net.yaml",
        "input: {shape: [3, 4]}\nlayers: [{type: 'mylib:ScaledTanh', init_scale: 2.0}]\n",
    )
    r = gc("run", str(cfg))
    assert r.exit_code == 0, r.output


def test_debug_shows_traceback(write) -> None:
    cfg = write("net.yaml", "input: {shape: [4, 3]}\nlayers: [{type: nope}]\n")
    r = gc("run", str(cfg), "--debug")
    assert r.exit_code != 0 and r.exception is not None


def test_usage_error_is_exit_2() -> None:
    assert gc("run", "--eps", "abc").exit_code == 2
    assert gc("layer", "relu", "--shape", "4").exit_code == 2


@pytest.mark.parametrize("argv", [["run"], ["run", "/nonexistent.yaml"]])
def test_python_dash_m_entry_point(argv: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", *argv], capture_output=True, text=True
    )
    assert proc.returncode == (0 if len(argv) == 1 else 2), proc.stderr
    assert "Traceback" not in proc.stderr


def test_show_entries_draws_a_map_per_tensor(write) -> None:
    cfg = buggy_config(
        write,
        f"  - {{type: linear, out: 6}}\n  - {{type: '{BUGGY}:ReLUNoMask'}}\n  - {{type: linear, out: 3}}",
    )
    r = gc("run", str(cfg), "--show-entries")
    assert r.exit_code == 1
    assert (
        "0.linear.W 4×6: |a−n| / tolerance" in r.output
        and "2.linear.b 3: |a−n| / tolerance" in r.output
    )
    assert "█ ≥ 1: 0   (3 entries)" in r.output  # the last bias is right
    assert "|a−n| / tolerance" not in gc("run", str(cfg)).output


def test_layer_command_with_integer_ids() -> None:
    args = ["--shape", "4x6", "--integers", "3", "--arg", "vocab=3", "--arg", "dim=2"]
    r = gc("layer", "embedding", *args, "--format", "json")
    assert r.exit_code == 0, r.output
    assert [p["name"] for p in json.loads(r.stdout)["results"]] == ["0.embedding.W"]
    r = gc(
        "layer", f"{Path(__file__).with_name('buggy_layers_more.py')}:EmbeddingOverwrites", *args
    )
    assert r.exit_code == 1, r.output  # repeated ids: overwriting instead of accumulating is caught
    assert "--integers 3" in r.output  # the replay line keeps the integer input


# -- a newcomer's first hour (issue 16) ----------------------------------------------------------


def _break_template(directory: Path) -> None:
    layer = directory / "my_layer.py"
    layer.write_text(layer.read_text().replace("dz.sum(axis=0)", "dz.mean(axis=0)"))


def test_bare_run_checks_the_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After `gradcheck init`, a bare `gradcheck run` (and the pre-commit hook without args)
    checks ./gradcheck.yaml: a broken my_layer.py fails, it is not the demo that passes."""
    good, broken = tmp_path / "good", tmp_path / "broken"  # plugin modules are cached per path
    for directory in (good, broken):
        directory.mkdir()
        monkeypatch.chdir(directory)
        assert gc("init").exit_code == 0
    monkeypatch.chdir(good)
    r = gc("run")
    assert r.exit_code == 0 and "0.MyDense.W" in r.stdout and "demo" not in r.output, r.output
    _break_template(broken)
    monkeypatch.chdir(broken)
    for args in (["run"], ["run", "--only-failures"]):  # the hook's entry, no args
        r = gc(*args)
        assert r.exit_code == 1, r.output
        assert "0.MyDense.b" in r.stdout and "replay: gradcheck run gradcheck.yaml" in r.stdout


def test_bare_run_elsewhere_says_it_checks_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = gc("run")
    assert r.exit_code == 0, r.output
    assert "built-in demo network" in r.stderr and "demo" not in r.stdout
    assert "seed-mlp" in r.stdout
    q = gc("run", "-q")
    assert q.exit_code == 0 and q.output == ""


def test_bare_validate_uses_the_local_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = gc("validate")
    assert r.exit_code == 2 and "no ./gradcheck.yaml here" in r.output
    assert gc("init").exit_code == 0
    r = gc("validate")
    assert r.exit_code == 0 and "gradcheck.yaml" in r.output, r.output


def test_report_off_a_terminal_is_as_wide_as_its_content(monkeypatch: pytest.MonkeyPatch) -> None:
    """Piped (CliRunner is not a TTY) with no COLUMNS: no cell wraps, the verdict is whole, the
    replay command is one line. With COLUMNS the table fits it, and the replay is still whole."""
    monkeypatch.delenv("COLUMNS", raising=False)
    args = ["layer", f"{BUGGY}:LinearBiasMean", "--shape", "4x3", "--arg", "out=2"]
    r = runner.invoke(app, args)
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    row = [line for line in lines if line.lstrip().startswith("0.LinearBiasMean.b ")]
    assert len(row) == 1 and row[0].split()[-1] == "FAIL", r.stdout
    (replay,) = [line for line in lines if "replay:" in line]
    assert replay.rstrip().endswith("--mode full") and str(BUGGY) in replay
    assert any("|a−n| / tol" in line for line in lines)  # the worst entries' sort key is shown
    narrow = runner.invoke(app, args, env={"COLUMNS": "70"})
    table = [line for line in narrow.stdout.splitlines() if "replay:" not in line]
    assert max(len(line.rstrip()) for line in table) <= 70
    (replay,) = [line for line in narrow.stdout.splitlines() if "replay:" in line]
    assert replay.rstrip().endswith("--mode full")


def test_json_is_one_document_even_for_an_invalid_config(tmp_path: Path) -> None:
    from gradcheck_cli.spec.schemas import report_schema

    jsonschema = pytest.importorskip("jsonschema")
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: {shape: [4, 3]}\nlayers: [{type: lineer}]\n")
    for args in (["run", str(bad)], ["run", str(CONFIGS / "seed_mlp.yaml"), "--eps", "2"]):
        r = gc(*args, "--format", "json")
        assert r.exit_code == 2, r.output
        doc = json.loads(r.stdout)
        jsonschema.validate(doc, report_schema())
        (entry,) = doc["configs"]
        assert entry["status"] == "error" and doc["exit_code"] == 2 and not doc["passed"]
        assert entry["error"] and entry["error"].split("\n")[0] in r.stderr
    assert (
        "lineer"
        in json.loads(gc("run", str(bad), "--format", "json").stdout)["configs"][0]["error"]
    )


def test_sweep_quiet_and_formats() -> None:
    r = gc("sweep", str(CONFIGS / "seed_mlp.yaml"), "-q")
    assert r.exit_code == 0 and r.output == ""
    r = gc("sweep", str(CONFIGS / "seed_mlp.yaml"), "--format", "github")
    assert r.exit_code == 2 and "github" in r.output  # not offered, not silently ignored


@pytest.mark.parametrize(
    ("name", "shape", "args", "wanted"),
    [
        ("conv2d", "4x3", ["out_channels=2", "kernel=3"], "give --shape 4 sizes, NxCxHxW"),
        ("conv1d", "4x3", ["out_channels=2", "kernel=1"], "give --shape 3 sizes, NxCxL"),
        ("linear", "2x3x4x4", ["out=3"], "give --shape 2 sizes, NxD"),
    ],
)
def test_layer_shape_errors_speak_the_shape_option(
    name: str, shape: str, args: list[str], wanted: str
) -> None:
    r = gc("layer", name, "--shape", shape, *[w for a in args for w in ("--arg", a)])
    assert r.exit_code == 2 and wanted in r.output, r.output
    assert "give the input" not in r.output and "[batch" not in r.output


def test_a_shape_error_mid_network_names_the_previous_layer(tmp_path: Path) -> None:
    cfg = tmp_path / "net.yaml"
    cfg.write_text(
        "input: {shape: [2, 3, 8, 8]}\n"
        "layers: [{type: conv2d, out_channels: 4, kernel: 3}, {type: linear, out: 3}]\n"
    )
    r = gc("run", str(cfg))
    assert r.exit_code == 2, r.output
    assert (
        "layers[1]" in r.output
        and "layers[0] (conv2d) outputs per-sample shape (4, 6, 6)" in r.output
    )
    assert "give the input" not in r.output and "flatten" in r.output
