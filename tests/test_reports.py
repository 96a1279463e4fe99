"""Reports for machines and people, as CI meets them: JSON against its schema, GitHub annotations,
JUnit XML parsed back, exports, several configs with one summary, include/exclude, quiet, colour."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.report.github import escape_data, escape_property
from gradcheck_cli.spec.schemas import config_schema, report_schema

from .conftest import CONFIGS

BUGGY = Path(__file__).with_name("buggy_layers.py")
runner = CliRunner()


@pytest.fixture(autouse=True)
def _not_in_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own CI may run in GitHub Actions: keep the tests off its real step summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


REPORT_VALIDATOR = jsonschema.Draft202012Validator(report_schema())

BAD_NET = f"""
name: buggy
seed: 0
input: {{shape: [5, 4]}}
target: {{kind: classes, classes: 3}}
layers:
  - {{type: '{BUGGY}:LinearBiasMean', out: 6}}
  - {{type: linear, out: 3}}
loss: {{type: softmax_cross_entropy}}
"""
MISSING_GRAD_NET = BAD_NET.replace("LinearBiasMean", "LinearMissingGrad")
INVALID_NET = "input: {shape: [4, 3]}\nlayers: [{type: lienar}]\n"


def gc(*args: str):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture
def bad(write) -> Path:
    return write("bad.yaml", BAD_NET)


@pytest.fixture
def invalid(write) -> Path:
    return write("invalid.yaml", INVALID_NET)


GOOD = CONFIGS / "seed_mlp.yaml"


# -- JSON and its schema ------------------------------------------------------------------------


def test_report_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(report_schema())
    assert report_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    "argv",
    [
        ["run"],
        ["run", str(CONFIGS / "custom_layer.yaml")],
        ["layer", "linear", "--shape", "2x3", "--arg", "out=4"],
        ["layer", f"{BUGGY}:ReLUNoMask", "--shape", "6x5"],
    ],
    ids=["default", "custom", "layer", "layer-bug"],
)
def test_json_reports_follow_the_schema(argv: list[str]) -> None:
    r = gc(*argv, "--format", "json")
    assert r.exit_code in (0, 1), r.output
    doc = json.loads(r.stdout)
    REPORT_VALIDATOR.validate(doc)
    assert doc["schema_version"] == 1 and "configs" not in doc


def test_failing_and_structural_reports_follow_the_schema(write, bad: Path) -> None:
    doc = json.loads(gc("run", bad, "--format", "json").stdout)
    REPORT_VALIDATOR.validate(doc)
    assert [p["name"] for p in doc["results"] if not p["passed"]] == ["0.LinearBiasMean.b"]
    missing = write("missing.yaml", MISSING_GRAD_NET)
    doc = json.loads(gc("run", missing, "--format", "json").stdout)
    REPORT_VALIDATOR.validate(doc)
    b = next(p for p in doc["results"] if p["name"] == "0.LinearMissingGrad.b")
    assert b["rel_error"] is None and b["reason"] == "backward did not set grads['b']"


def test_schema_rejects_what_it_should() -> None:
    """The schema is not a rubber stamp: a report missing a key or with a wrong type fails."""
    doc = json.loads(gc("run", "--format", "json").stdout)
    for broken in (
        {k: v for k, v in doc.items() if k != "results"},
        doc | {"passed": "yes"},
        doc | {"schema_version": 2},
        doc | {"results": [doc["results"][0] | {"shape": [-1]}]},
        doc | {"results": [{k: v for k, v in doc["results"][0].items() if k != "worst"}]},
    ):
        assert not REPORT_VALIDATOR.is_valid(broken)


def test_json_keeps_the_documented_keys() -> None:
    doc = json.loads(gc("run", "--format", "json").stdout)
    assert set(doc) >= {
        *("passed", "name", "seed", "method", "eps", "rtol", "atol", "dtype", "loss"),
        *("results", "schema_version"),
    }
    assert set(doc["results"][0]) >= {
        *("name", "shape", "passed", "rel_error", "max_abs_error", "worst_index", "analytic"),
        *("numeric", "checked", "failed", "reason", "worst"),
    }
    assert set(doc["results"][0]["worst"][0]) >= {
        "index",
        "analytic",
        "numeric",
        "abs_error",
        "tolerance",
    }


@pytest.mark.parametrize("seed", ["0", "7"])
def test_same_seed_same_json(bad: Path, invalid: Path, seed: str) -> None:
    for argv in (
        ["run", str(bad)],
        ["run", str(bad), str(GOOD), str(invalid)],
        ["layer", "tanh", "--shape", "3x4"],
    ):
        first = gc(*argv, "--format", "json", "--seed", seed).stdout
        assert first == gc(*argv, "--format", "json", "--seed", seed).stdout
    a = gc("run", str(GOOD), "--format", "json", "--seed", "1").stdout
    assert a != gc("run", str(GOOD), "--format", "json", "--seed", "2").stdout


def test_schema_command_prints_the_shipped_report_schema() -> None:
    r = gc("schema", "report")
    assert r.exit_code == 0
    shipped = Path(__file__).parents[1] / "gradcheck_cli" / "spec" / "data" / "report.schema.json"
    assert json.loads(r.stdout) == json.loads(shipped.read_text())


def test_config_schema_has_no_internal_fields_and_validates_the_examples(write) -> None:
    r = gc("schema", "config")
    assert r.exit_code == 0
    schema = json.loads(r.stdout)
    assert schema == config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "base_dir" not in schema["properties"] and "source" not in schema["properties"]
    assert "base_dir" not in r.stdout and '"source"' not in r.stdout
    validator = jsonschema.Draft202012Validator(schema)
    import yaml

    for path in sorted(CONFIGS.glob("*.yaml")):
        validator.validate(yaml.safe_load(path.read_text()))
    # and it rejects what `run` rejects
    for text in (
        "input: {shape: [4, 3]}\nlayers: [relu]\nlayres: []\n",
        "input: {shape: [4, 3]}\nlayers: []\n",
        "input: {shape: [4, 3]}\nlayers: [relu]\ndtype: float16\n",
        "layers: [relu]\n",
        "input: {shape: [4, 3]}\nlayers: [relu]\ncheck: {rtoll: 1}\n",
        "input: {shape: [4, 3]}\nlayers: [{type: lineer, out: 5}]\n",  # from the registry
        "input: {shape: [4, 3]}\nlayers: [{type: linear, outt: 5}]\n",
        "input: {shape: [4, 3]}\nlayers: [{type: linear}]\n",  # out is required
        "input: {shape: [4, 3]}\nlayers: [{type: residual, layers: [{type: relu, p: 1}]}]\n",
        "input: {shape: [4, 3]}\nlayers: [relu]\nloss: {type: huber, delt: 2}\n",
    ):
        assert not validator.is_valid(yaml.safe_load(text)), text
        assert gc("run", str(write("x.yaml", text))).exit_code == 2
    for text in (  # and accepts plugins and nested built-ins
        "input: {shape: [4, 3]}\nlayers: [a.py:B, {type: a.py:B, z: 1}, {type: leaky_relu}]\n",
        "input: {shape: [4, 3]}\nlayers: [{type: residual, layers: [relu, {type: linear, out: 3}]}]\n",
    ):
        assert validator.is_valid(yaml.safe_load(text)), text


# -- GitHub annotations -------------------------------------------------------------------------


def test_github_escaping_follows_the_runner_rules() -> None:
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_data("a: b, c") == "a: b, c"
    assert escape_property("gradcheck: a,b%\n") == "gradcheck%3A a%2Cb%25%0A"


ANNOTATION = re.compile(r"^::(error|warning|notice)(?: ([^:]*))?::(.*)$")


def _unescape(text: str) -> str:
    for code, char in (("%0A", "\n"), ("%0D", "\r"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(code, char)
    return text


def parse_annotations(stdout: str) -> list[tuple[str, dict[str, str], str]]:
    found = []
    for line in stdout.splitlines():
        m = ANNOTATION.match(line)
        assert m, f"not a workflow command: {line!r}"
        props = dict(p.split("=", 1) for p in m.group(2).split(",")) if m.group(2) else {}
        found.append(
            (m.group(1), {k: _unescape(v) for k, v in props.items()}, _unescape(m.group(3)))
        )
    return found


def test_github_format_annotates_each_failing_parameter(bad: Path) -> None:
    r = gc("run", bad, "--format", "github")
    assert r.exit_code == 1
    found = parse_annotations(r.stdout)
    errors = [a for a in found if a[0] == "error"]
    assert len(errors) == 1
    _, props, message = errors[0]
    assert props == {"file": str(bad), "title": "gradcheck: 0.LinearBiasMean.b"}
    assert message.startswith("0.LinearBiasMean.b: 6 of 6 entries disagree")
    assert "analytic" in message and "numeric" in message and "> tolerance" in message
    assert found[-1][0] == "notice" and "1 of 5 gradients disagree" in found[-1][2]


def test_github_format_passing_run_prints_a_notice_only() -> None:
    r = gc("run", GOOD, "--format", "github")
    assert r.exit_code == 0
    ((kind, props, message),) = parse_annotations(r.stdout)
    assert kind == "notice" and "all 5 gradients agree" in message and props["file"] == str(GOOD)


def test_github_format_default_network_has_no_file() -> None:
    r = gc("run", "--format", "github")
    assert r.exit_code == 0
    ((kind, props, _),) = parse_annotations(r.stdout)
    assert kind == "notice" and props == {"title": "gradcheck"}


def test_github_format_invalid_config(invalid: Path) -> None:
    r = gc("run", invalid, "--format", "github")
    assert r.exit_code == 2
    ((kind, props, message),) = parse_annotations(r.stdout)
    assert kind == "error" and props["file"] == str(invalid)
    assert "unknown layer 'lienar'" in message


def test_github_format_suite(bad: Path, invalid: Path) -> None:
    r = gc("run", bad, GOOD, invalid, "--format", "github")
    assert r.exit_code == 2
    found = parse_annotations(r.stdout)
    errors = {a[1]["file"]: a for a in found if a[0] == "error"}
    assert set(errors) == {str(bad), str(invalid)}
    assert errors[str(invalid)][1]["title"] == "gradcheck: invalid config"
    assert found[-1][2] == "3 configs: 1 passed, 1 failed, 1 invalid"


def test_github_format_appends_a_step_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: Path, invalid: Path
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert gc("run", bad, GOOD, invalid, "--format", "github").exit_code == 2
    assert gc("run", GOOD, "--format", "github").exit_code == 0
    text = summary.read_text()
    assert text.startswith("earlier step\n### gradcheck") and text.count("### gradcheck") == 2
    rows = [ln for ln in text.splitlines() if ln.startswith("| `")]
    assert rows[0] == f"| `{bad}` | 4/5 | ❌ FAIL | `0.LinearBiasMean.b` |"
    assert "⚠️ ERROR" in rows[2] and "unknown layer" in rows[2]
    assert "[3]: analytic" in text  # the worst entries, in a <details> block
    assert gc("run", GOOD).exit_code == 0 and text == summary.read_text()  # table format: untouched


# -- JUnit XML ----------------------------------------------------------------------------------


def test_junit_one_testcase_per_parameter(tmp_path: Path, bad: Path, invalid: Path) -> None:
    xml_path = tmp_path / "out" / "gradcheck.xml"
    xml_path.parent.mkdir()
    r = gc("run", bad, GOOD, invalid, "--junit-xml", xml_path)
    assert r.exit_code == 2
    root = ET.parse(xml_path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("11", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["buggy", "seed-mlp", str(invalid)]
    buggy = suites[0]
    assert [c.get("name") for c in buggy.findall("testcase")] == [
        "input",
        "0.LinearBiasMean.W",
        "0.LinearBiasMean.b",
        "1.linear.W",
        "1.linear.b",
    ]
    assert {c.get("classname") for c in buggy.findall("testcase")} == {"buggy"}
    (failed,) = [c for c in buggy.iter("testcase") if c.find("failure") is not None]
    failure = failed.find("failure")
    assert failure is not None and failure.text is not None
    assert "6 of 6 entries disagree" in (failure.get("message") or "")
    assert "worst entries of 0.LinearBiasMean.b" in failure.text
    lines = failure.text.strip().splitlines()
    # the diagnosis, title, header, 5 worst entries, the layer to blame
    assert len(lines) == 1 + 2 + 5 + 1 and lines[0].startswith("diagnosis (scale)")
    assert all(ln.endswith("fail") for ln in lines[3:8])
    assert lines[-1].startswith("→ layer 0") and "fails on its own" in lines[-1]
    props = {p.get("name"): p.get("value") for p in buggy.iter("property")}
    assert props["seed"] == "0" and props["method"] == "central" and props["config"] == str(bad)
    assert [c.find("failure") for c in suites[1].iter("testcase")] == [None] * 5
    error = suites[2].find("testcase/error")
    assert error is not None and "unknown layer 'lienar'" in (error.get("message") or "")


def test_junit_for_one_layer_and_for_an_invalid_single_config(
    tmp_path: Path, invalid: Path
) -> None:
    path = tmp_path / "layer.xml"
    assert gc("layer", f"{BUGGY}:ReLUNoMask", "--shape", "6x5", "--junit-xml", path).exit_code == 1
    cases = ET.parse(path).getroot().findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == ["input"] and cases[0].find("failure") is not None
    r = gc("run", invalid, "--junit-xml", path)
    assert r.exit_code == 2 and "unknown layer" in r.output
    assert ET.parse(path).getroot().get("errors") == "1"


def test_junit_unwritable_path_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")  # a parent folder that is a file cannot be created
    r = gc("run", "--junit-xml", tmp_path / "afile" / "sub" / "j.xml")
    assert r.exit_code == 2 and "cannot write" in r.output and "Traceback" not in r.output


def test_junit_parent_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "deep" / "j.xml"
    assert gc("run", "--junit-xml", path).exit_code == 0
    assert ET.parse(path).getroot().findall(".//testcase")


# -- several configs ----------------------------------------------------------------------------


def test_several_configs_one_summary_and_exit_codes(bad: Path, invalid: Path) -> None:
    r = gc("run", GOOD, CONFIGS / "custom_layer.yaml")
    assert r.exit_code == 0 and "summary" in r.output and "all 2 configs pass" in r.output
    r = gc("run", GOOD, bad)
    assert r.exit_code == 1 and "1 of 2 configs do not pass (1 failed, 0 invalid)" in r.output
    summary_rows = r.output.split("summary")[-1]
    assert re.search(
        rf"{re.escape(str(bad))}\s+4/5\s+6\.67e-01\s+FAIL\s+0\.LinearBiasMean\.b", summary_rows
    )
    assert re.search(rf"{re.escape(str(GOOD))}\s+5/5\s+\S+e-1\d\s+pass", summary_rows)
    r = gc("run", invalid, bad, GOOD)  # the invalid one first: the others still run
    assert r.exit_code == 2
    assert "unknown layer 'lienar'" in r.output and "ERROR" in r.output
    assert "0.LinearBiasMean.b: worst entries" in r.output and "seed-mlp" in r.output


def test_directory_and_glob(tmp_path: Path, write, bad: Path) -> None:
    (tmp_path / "sub").mkdir()
    write("sub/a.yaml", GOOD.read_text())
    write("sub/b.yml", GOOD.read_text().replace("seed: 0", "seed: 3"))
    write("sub/notes.txt", "not a config")
    doc = json.loads(gc("run", tmp_path / "sub", "--format", "json").stdout)
    REPORT_VALIDATOR.validate(doc)
    assert [c["config"] for c in doc["configs"]] == [
        str(tmp_path / "sub" / "a.yaml"),
        str(tmp_path / "sub" / "b.yml"),
    ]
    assert doc["exit_code"] == 0 and doc["counts"] == {"pass": 2, "fail": 0, "error": 0}
    # a glob (quoted, so the shell did not expand it), recursive with **, de-duplicated
    doc = json.loads(
        gc("run", f"{tmp_path}/**/*.y*ml", tmp_path / "sub", "--format", "json").stdout
    )
    assert sorted(c["config"] for c in doc["configs"]) == sorted(
        [str(bad), str(tmp_path / "sub" / "a.yaml"), str(tmp_path / "sub" / "b.yml")]
    )
    assert doc["exit_code"] == 1 and doc["passed"] is False


def test_a_glob_or_directory_that_finds_nothing_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    doc = json.loads(
        gc("run", GOOD, f"{tmp_path}/*.nope.yaml", tmp_path / "empty", "--format", "json").stdout
    )
    REPORT_VALIDATOR.validate(doc)
    assert [c["status"] for c in doc["configs"]] == ["pass", "error", "error"]
    assert "no file matches" in doc["configs"][1]["error"]
    assert "no config files" in doc["configs"][2]["error"]
    assert doc["exit_code"] == 2


def test_a_directory_named_like_a_config_is_a_mistaken_file(tmp_path: Path) -> None:
    (tmp_path / "net.yaml").mkdir()
    r = gc("run", tmp_path / "net.yaml")
    assert r.exit_code == 2 and "is a directory" in r.output and "summary" not in r.output


def test_a_directory_with_one_config_still_reports_as_a_suite(tmp_path: Path, write) -> None:
    """The JSON shape depends on the arguments, not on how many files a directory holds."""
    (tmp_path / "only").mkdir()
    write("only/a.yaml", GOOD.read_text())
    doc = json.loads(gc("run", tmp_path / "only", "--format", "json").stdout)
    assert "configs" in doc and len(doc["configs"]) == 1


def test_one_config_keeps_the_single_report(bad: Path) -> None:
    r = gc("run", bad)
    assert r.exit_code == 1
    assert "summary" not in r.output and "configs" not in r.output
    assert "replay: gradcheck run" in r.output


# -- include / exclude --------------------------------------------------------------------------


def _names(*argv: str | Path) -> list[str]:
    r = gc(*argv, "--format", "json")
    assert r.exit_code in (0, 1), r.output
    return [p["name"] for p in json.loads(r.stdout)["results"]]


def test_include_and_exclude_options() -> None:
    assert _names("run", "--include", "*.W") == ["0.linear.W", "2.linear.W"]
    assert _names("run", "--exclude", "input", "--exclude", "*.b") == ["0.linear.W", "2.linear.W"]
    assert _names("run", "--include", "0.*", "--exclude", "*.b") == ["0.linear.W"]
    assert _names("layer", "linear", "--arg", "out=2", "--include", "*.b") == ["0.linear.b"]


def test_include_and_exclude_in_the_config(write, bad: Path) -> None:
    cfg = write("sel.yaml", BAD_NET + "check: {exclude: ['*.b']}\n")
    r = gc("run", cfg)
    assert r.exit_code == 0, r.output  # the buggy bias is not checked
    assert "0.LinearBiasMean.b" not in r.output
    assert _names("run", cfg, "--exclude", "input") == [  # the option replaces the config's list
        "0.LinearBiasMean.W",
        "0.LinearBiasMean.b",
        "1.linear.W",
        "1.linear.b",
    ]
    cfg = write("inc.yaml", BAD_NET + "check: {include: ['*.b']}\n")
    assert _names("run", cfg) == ["0.LinearBiasMean.b", "1.linear.b"]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--include", "*.w"], ["include pattern '*.w' matches no parameter", "0.linear.W"]),
        (["--exclude", "*"], ["leave no parameter to check"]),
    ],
)
def test_selection_mistakes_are_usage_errors(args: list[str], needles: list[str]) -> None:
    r = gc("run", GOOD, *args)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert str(GOOD) in r.output
    for needle in needles:
        assert needle in r.output


# -- human output: only failures, quiet, exports, colour ----------------------------------------


def test_only_failures_hides_passing_rows(bad: Path) -> None:
    r = gc("run", bad, "--only-failures")
    assert r.exit_code == 1
    assert "0.LinearBiasMean.b" in r.output and "1.linear.W" not in r.output
    assert "1 of 5 gradients disagree" in r.output
    r = gc("run", bad, GOOD, "--only-failures")
    assert "seed-mlp" not in r.output and "buggy" in r.output
    r = gc("run", GOOD, "--only-failures")
    assert r.exit_code == 0 and "0.linear.W" not in r.output and "all 5 gradients agree" in r.output


def test_quiet_prints_nothing_and_keeps_the_exit_code(tmp_path: Path, bad: Path) -> None:
    for argv, code in (([GOOD], 0), ([bad], 1), ([bad, GOOD], 1)):
        r = gc("run", *argv, "--quiet", "--junit-xml", tmp_path / "q.xml")
        assert r.exit_code == code and r.stdout == ""
        assert ET.parse(tmp_path / "q.xml").getroot().tag == "testsuites"


@pytest.mark.parametrize("kind", ["html", "svg"])
def test_exports_hold_the_coloured_report(tmp_path: Path, bad: Path, kind: str) -> None:
    path = tmp_path / f"report.{kind}"
    r = gc("run", bad, f"--export-{kind}", path, "--format", "json")
    assert r.exit_code == 1 and json.loads(r.stdout)["passed"] is False
    text = path.read_text()
    assert "0.LinearBiasMean.b" in text.replace("&#160;", " ").replace("\u00a0", " ")
    assert "FAIL" in text
    if kind == "html":
        assert text.lstrip().startswith("<!DOCTYPE html>") and "color: #" in text
    else:
        assert text.lstrip().startswith("<svg") and "fill: #" in text


COLOUR_SGR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])(?:;[0-9;]*)?m")


def _run_subprocess(env_extra: dict[str, str], *argv: str) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")
    }
    proc = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", "run", *argv],
        capture_output=True,
        text=True,
        env=env | env_extra,
        check=False,
    )
    return proc.stdout + proc.stderr


def test_no_colour_off_a_tty_and_with_no_color(bad: Path, invalid: Path) -> None:
    assert COLOUR_SGR.search(_run_subprocess({"FORCE_COLOR": "1"}, str(bad)))  # the control
    assert "\x1b[" not in _run_subprocess({}, str(bad), str(invalid))  # piped: plain text
    assert not COLOUR_SGR.search(_run_subprocess({"FORCE_COLOR": "1", "NO_COLOR": "1"}, str(bad)))


NOISY = """
import numpy as np


class NoisyDropout:
    \"\"\"Bug: draws a new mask on every forward, so L is not a function of θ.\"\"\"

    def __init__(self):
        self.params, self.grads, self.rng = {}, {}, np.random.default_rng()

    def forward(self, x):
        self.mask = self.rng.random(x.shape) > 0.5
        return x * self.mask

    def backward(self, dout):
        return dout * self.mask
"""


def test_whole_network_problems_reach_every_format(write, tmp_path: Path) -> None:
    """A failure of the network as a whole (not of one tensor) is a failure everywhere."""
    write("noisy.py", NOISY)
    cfg = write(
        "noisy.yaml",
        "name: noisy\ninput: {shape: [4, 3]}\nlayers: [{type: linear, out: 3}, "
        "{type: 'noisy.py:NoisyDropout'}]\n",
    )
    xml_path = tmp_path / "n.xml"
    r = gc("run", cfg, "--format", "github", "--junit-xml", xml_path)
    assert r.exit_code == 1
    found = parse_annotations(r.stdout)
    assert found[0][0] == "error" and found[0][1]["title"] == "gradcheck: noisy"
    assert "forward is not deterministic" in found[0][2]
    assert found[-1][0] == "notice" and "not deterministic" in found[-1][2]
    (case,) = [c for c in ET.parse(xml_path).iter("testcase") if c.get("name") == "(network)"]
    failure = case.find("failure")
    assert failure is not None and "not deterministic" in (failure.get("message") or "")
    doc = json.loads(gc("run", cfg, "--format", "json").stdout)
    REPORT_VALIDATOR.validate(doc)
    assert doc["passed"] is False and "not deterministic" in doc["problems"][0]
    r = gc("run", cfg, GOOD)
    assert r.exit_code == 1 and re.search(r"FAIL\s+forward is not deterministic", r.output)
    from gradcheck_cli.testing import assert_gradients

    with pytest.raises(AssertionError, match="forward is not deterministic"):
        assert_gradients(cfg)


# -- the layer command and forward compatibility ------------------------------------------------


def test_layer_command_github_and_only_failures() -> None:
    r = gc("layer", f"{BUGGY}:ReLUNoMask", "--shape", "6x5", "--format", "github")
    assert r.exit_code == 1
    (error, notice) = parse_annotations(r.stdout)
    assert error[0] == "error" and error[1] == {"title": "gradcheck: input"}  # no file for a layer
    assert notice[0] == "notice"
    r = gc("layer", "linear", "--arg", "out=2", "--only-failures")
    assert r.exit_code == 0 and "0.linear.W" not in r.output and "all 3 gradients agree" in r.output
    doc = json.loads(
        gc("layer", "linear", "--arg", "out=2", "--only-failures", "--format", "json").stdout
    )
    assert len(doc["results"]) == 3  # machine formats stay complete


def test_new_result_fields_reach_the_json_and_still_validate() -> None:
    """Fields the result model may grow show up in the JSON without touching the formatter (bulk
    fields declared repr=False, like the per-entry ratios, stay out), and the schema lets them
    through."""
    from dataclasses import make_dataclass, replace

    from gradcheck_cli.results import ParamResult
    from gradcheck_cli.testing import check

    result = check(build_linear(), shape=(3, 4))
    assert all(p.ratios is not None for p in result.params)
    Richer = make_dataclass(
        "Richer",
        [("curvature", float, float("nan")), ("hint", str, "")],
        bases=(ParamResult,),
        frozen=True,
    )
    richer = replace(
        result,
        params=tuple(Richer(**{**p.__dict__, "hint": "h"}) for p in result.params),
    )
    from gradcheck_cli.report import jsondoc

    doc = jsondoc.to_json_dict(richer)
    REPORT_VALIDATOR.validate(doc)
    assert {p["hint"] for p in doc["results"]} == {"h"}
    assert {p["curvature"] for p in doc["results"]} == {None}  # NaN → null, as everywhere
    assert all("ratios" not in p for p in doc["results"])
    json.dumps(doc, allow_nan=False)


def build_linear():
    from gradcheck_cli.layers.linear import Linear
    from gradcheck_cli.testing import build_layer

    return build_layer(Linear, (4,), args={"out": 2})


def test_show_entries_with_several_configs_and_only_failures(bad: Path) -> None:
    r = gc("run", bad, GOOD, "--show-entries")
    assert r.exit_code == 1
    assert "0.LinearBiasMean.b 6: |a−n| / tolerance" in r.output
    assert "2.linear.W 5×3: |a−n| / tolerance" in r.output  # the passing config's maps too
    r = gc("run", bad, GOOD, "--show-entries", "--only-failures")
    assert "0.LinearBiasMean.b 6: |a−n| / tolerance" in r.output
    assert "|a−n| / tolerance" not in r.output.replace(
        "0.LinearBiasMean.b 6: |a−n| / tolerance", ""
    )


CTRL_C = """
import numpy as np


class CtrlC:
    \"\"\"Presses Ctrl-C on the 8th forward pass (build, first passes and a few checks done).\"\"\"

    calls = 0

    def __init__(self):
        self.params, self.grads = {}, {}

    def forward(self, x):
        type(self).calls += 1
        if type(self).calls == 8:
            raise KeyboardInterrupt
        return x

    def backward(self, dout):
        return dout
"""


def test_ctrl_c_stops_the_suite_with_a_partial_report(write, bad: Path) -> None:
    write("ctrlc.py", CTRL_C)
    cfg = write(
        "ctrlc.yaml",
        "name: ctrlc\ninput: {shape: [4, 3]}\n"
        "layers: [{type: linear, out: 3}, {type: 'ctrlc.py:CtrlC'}]\n"
        "check: {mode: full}\n",
    )
    r = gc("run", cfg, bad, GOOD, "--format", "json")
    assert r.exit_code == 130, r.output
    doc = json.loads(r.stdout)
    REPORT_VALIDATOR.validate(doc)
    assert doc["exit_code"] == 130 and [c["config"] for c in doc["configs"]] == [str(cfg)]
    assert doc["configs"][0]["report"]["interrupted"] is True
    write("ctrlc2.py", CTRL_C)  # a fresh module, counting from 0
    cfg2 = write("ctrlc2.yaml", cfg.read_text().replace("ctrlc.py", "ctrlc2.py"))
    r = gc("run", cfg2, bad)
    assert r.exit_code == 130 and "interrupted (Ctrl-C) after 1 configs" in r.output
