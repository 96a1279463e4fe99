"""Project tooling as a user meets it: init, validate, schema, version, completion, pre-commit."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from gradcheck_cli import __version__
from gradcheck_cli.cli import app
from gradcheck_cli.spec.schemas import config_schema

from .conftest import CONFIGS, ROOT

runner = CliRunner()


@pytest.fixture(autouse=True)
def _not_in_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own CI may run in GitHub Actions: keep the tests off its real step summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def gc(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


# -- init ---------------------------------------------------------------------------------------


def test_init_writes_files_that_pass(tmp_path: Path) -> None:
    target = tmp_path / "new" / "project"
    r = gc("init", target)
    assert r.exit_code == 0, r.output
    assert (target / "gradcheck.yaml").is_file() and (target / "my_layer.py").is_file()
    assert f"gradcheck run {target / 'gradcheck.yaml'}" in r.output
    r = gc("run", target / "gradcheck.yaml")
    assert r.exit_code == 0, r.output
    assert "0.MyDense.W" in r.output and "0.MyDense.b" in r.output and "input" in r.output
    jsonschema.validate(yaml.safe_load((target / "gradcheck.yaml").read_text()), config_schema())
    assert gc("validate", target).exit_code == 0


@pytest.mark.parametrize(
    ("correct", "bug", "caught"),
    [
        ('self.grads["b"] = dz.sum(axis=0)', 'self.grads["b"] = dz.mean(axis=0)', "0.MyDense.b"),
        ("dz = dout * (1 - self.out**2)", "dz = dout * (1 - self.out)", "0.MyDense.W"),
        ('return dz @ self.params["W"].T', "return dz @ self.params['W'].T * 1.001", "input"),
    ],
    ids=["bias-mean", "tanh-derivative", "dx-scaled"],
)
def test_a_bug_in_the_template_is_caught(
    tmp_path: Path, correct: str, bug: str, caught: str
) -> None:
    """The starter passes because its backward is right, not because nothing is checked."""
    assert gc("init", tmp_path).exit_code == 0
    layer = tmp_path / "my_layer.py"
    source = layer.read_text()
    assert correct in source
    layer.write_text(source.replace(correct, bug))
    r = gc("run", tmp_path / "gradcheck.yaml", "--format", "json")
    assert r.exit_code == 1, r.output
    failing = [p["name"] for p in json.loads(r.stdout)["results"] if not p["passed"]]
    assert caught in failing


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    (tmp_path / "my_layer.py").write_text("# mine\n")
    r = gc("init", tmp_path)
    assert r.exit_code == 2 and "would overwrite" in r.output and "--force" in r.output
    assert (tmp_path / "my_layer.py").read_text() == "# mine\n"
    assert not (tmp_path / "gradcheck.yaml").exists()  # nothing half-written
    assert gc("init", tmp_path, "--force").exit_code == 0
    assert "class MyDense" in (tmp_path / "my_layer.py").read_text()


def test_init_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert gc("init", f).exit_code == 2


# -- validate -----------------------------------------------------------------------------------


def test_validate_builds_without_checking(write) -> None:
    write(
        "p.py",
        "class Boom:\n"
        "    params = {}\n    grads = {}\n"
        "    def forward(self, x):\n        return x\n"
        "    def backward(self, dout):\n        raise RuntimeError('backward is never run')\n",
    )
    cfg = write("net.yaml", "input: {shape: [4, 3]}\nlayers: [{type: 'p.py:Boom'}]\n")
    r = gc("validate", cfg)
    assert r.exit_code == 0, r.output
    assert "1 layer, 1 tensor to check" in r.output and "the config is valid" in r.output
    r = gc("run", cfg)
    assert r.exit_code == 2 and "backward is never run" in r.output


def test_validate_reports_every_invalid_config(write, tmp_path: Path) -> None:
    bad_key = write("a.yaml", "input: {shape: [4, 3]}\nlayers: [relu]\nlayres: []\n")
    bad_shape = write(
        "b.yaml",
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 5}]\n"
        "target: {kind: classes, classes: 3}\nloss: {type: softmax_cross_entropy}\n",
    )
    r = gc("validate", bad_key, CONFIGS, bad_shape, tmp_path / "missing.yaml")
    assert r.exit_code == 2
    for needle in (
        f"{bad_key}: layres",
        "did you mean 'layers'",
        f"{bad_shape}: target.classes",
        "missing.yaml: file not found",
        "seed_mlp.yaml",
        f"3 of {3 + len(list(CONFIGS.glob('*.yaml')))} configs are invalid",
    ):
        assert needle in r.output
    assert gc("validate", CONFIGS, "--quiet").stdout == ""
    assert gc("validate", bad_key, "--quiet").exit_code == 2


def test_validate_and_run_refuse_plugins_on_request() -> None:
    custom = CONFIGS / "custom_layer.yaml"
    r = gc("validate", custom, CONFIGS / "seed_mlp.yaml", "--no-plugins")
    assert r.exit_code == 2 and "--no-plugins refuses" in r.output and "1 of 2" in r.output
    r = gc("run", custom, CONFIGS / "seed_mlp.yaml", "--no-plugins", "--format", "json")
    assert r.exit_code == 2
    statuses = [c["status"] for c in json.loads(r.stdout)["configs"]]
    assert statuses == ["error", "pass"]  # the others still run


def test_schema_needs_a_known_kind() -> None:
    r = gc("schema", "nope")
    assert r.exit_code == 2 and "report" in r.output and "config" in r.output


# -- version, completion, python -m -------------------------------------------------------------


def test_version_and_completion() -> None:
    r = gc("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"gradcheck {__version__}"
    r = runner.invoke(app, ["--show-completion", "bash"], prog_name="gradcheck")
    assert r.exit_code == 0 and "complete" in r.stdout and "gradcheck" in r.stdout


def test_help_lists_the_commands() -> None:
    r = gc("--help")
    for command in ("run", "layer", "list", "validate", "init", "schema"):
        assert f" {command} " in r.stdout


# -- pre-commit ---------------------------------------------------------------------------------


def test_pre_commit_hooks_manifest() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert [h["id"] for h in hooks] == ["gradcheck", "gradcheck-validate"]
    for hook in hooks:
        assert {"id", "name", "entry", "language"} <= set(hook)
        assert hook["language"] == "python" and hook["pass_filenames"] is False
        # the entry plus the documented args is a working command
        words = shlex.split(hook["entry"])
        assert words[0] == "gradcheck"
        r = gc(*words[1:], CONFIGS)
        assert r.exit_code == 0, r.output
        assert gc(*words[1:], CONFIGS / "nope.yaml").exit_code == 2
        assert re.search(hook["files"], "configs/net.yaml") and re.search(hook["files"], "x.py")
        assert not re.search(hook["files"], "README.md")


# -- the README's snippets work -----------------------------------------------------------------

README = (ROOT / "README.md").read_text()
#: The README with the API reference it links to (docs/api.md): signatures are checked in both.
API_DOCS = README + (ROOT / "docs" / "api.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def test_readme_workflow_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (workflow,) = [b for b in _blocks("yaml") if "runs-on" in b]
    steps = yaml.safe_load(workflow)["jobs"]["gradcheck"]["steps"]
    commands = [s["run"] for s in steps if s.get("run", "").startswith("gradcheck ")]
    assert commands, "the workflow runs gradcheck"
    (tmp_path / "configs").mkdir()
    for f in (f for f in CONFIGS.iterdir() if f.is_file()):  # not configs/functions/
        (tmp_path / "configs" / f.name).write_bytes(f.read_bytes())
    monkeypatch.chdir(tmp_path)
    for command in commands:
        r = gc(*shlex.split(command)[1:])
        assert r.exit_code == 0, r.output
        n = len(list(CONFIGS.glob("*.yaml")))
        assert r.stdout.splitlines()[-1] == (
            f"::notice title=gradcheck::{n} configs: {n} passed, 0 failed, 0 invalid"
        )
    uploaded = next(s for s in steps if "upload-artifact" in s.get("uses", ""))
    for name in uploaded["with"]["path"].split():
        assert (tmp_path / name).stat().st_size > 0


def test_readme_python_snippets_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert gc("init", tmp_path).exit_code == 0  # my_layer.py, as the README's tests import it
    monkeypatch.syspath_prepend(str(tmp_path))
    api, testing, plugin = _blocks("python")[-3:]
    monkeypatch.chdir(ROOT)
    exec(compile(api, "README:api", "exec"), {})
    namespace: dict[str, object] = {}
    exec(compile(testing, "README:testing", "exec"), namespace)
    namespace["test_my_layer"]()  # type: ignore[operator]
    assert "pytest.mark.gradcheck(layer=MyDense" in plugin


def test_readme_api_signatures_match_the_code() -> None:
    """The README's public API list names the real parameters, in order."""
    import inspect

    import gradcheck_cli
    from gradcheck_cli.testing import assert_gradients

    flat = " ".join(API_DOCS.split())
    for func in (
        gradcheck_cli.check_network,
        gradcheck_cli.check_layer,
        gradcheck_cli.make_layer,
        assert_gradients,
    ):
        match = re.search(rf"`(?:gradcheck_cli\.testing\.)?{func.__name__}\((.*?)\)", flat)
        assert match, func.__name__
        documented = [
            a.split("=")[0].strip().lstrip("*")
            for a in match.group(1).split(",")
            if a.strip() not in ("*", "") and not a.strip().startswith("**")
        ]
        real = [
            n for n, p in inspect.signature(func).parameters.items() if p.kind is not p.VAR_KEYWORD
        ]
        assert documented == real, func.__name__


def test_validate_counts_what_run_checks() -> None:
    """Integer ids have no gradient, and include/exclude apply: validate and run say the same."""
    from gradcheck_cli.suite import validate

    (v,) = validate([CONFIGS / "embedding_classifier.yaml"])
    r = runner.invoke(app, ["run", str(CONFIGS / "embedding_classifier.yaml"), "--format", "json"])
    assert list(v.tensors) == [p["name"] for p in json.loads(r.stdout)["results"]]
    assert "input" not in v.tensors


def test_directory_and_glob_scans_skip_hidden_files(tmp_path: Path) -> None:
    """A project folder holds .pre-commit-config.yaml and .github/: they are not configs."""
    from gradcheck_cli.suite import expand

    good = (CONFIGS / "seed_mlp.yaml").read_text()
    (tmp_path / "a.yaml").write_text(good)
    (tmp_path / ".pre-commit-config.yaml").write_text("repos: []\n")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "b.yaml").write_text("jobs: {}\n")
    assert expand([tmp_path]) == [tmp_path / "a.yaml"]
    assert expand([f"{tmp_path}/**/*.yaml"]) == [tmp_path / "a.yaml"]
    r = runner.invoke(app, ["run", str(tmp_path), "-q"])
    assert r.exit_code == 0, r.output
