"""Function pairs, loss functions and f + grad (`gradcheck fn`, check_function, configs): the
correct example functions pass over many seeds, every wrong twin is caught (exit 1, or exit 2 with
a message naming the function for a broken contract)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import ConfigError, PluginError, check_function
from gradcheck_cli.cli import app
from gradcheck_cli.testing import assert_gradients

from .conftest import CONFIGS

LAYERS = CONFIGS / "functions" / "layers.py"
BUGGY = Path(__file__).with_name("buggy_functions.py")
runner = CliRunner()


def gc(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "240"})


CONV = {"stride": 2, "pad": 1}
#: name → (shapes, integers, args) of the examples in configs/functions/layers.py
CASES: dict[str, tuple[dict[str, Any], dict[str, int], dict[str, Any]]] = {
    "affine": ({"x": (4, 2, 3), "w": (6, 5), "b": (5,)}, {}, {}),
    "relu": ({"x": (4, 5)}, {}, {}),
    "conv": ({"x": (2, 3, 5, 5), "w": (2, 3, 3, 3), "b": (2,)}, {}, {"conv_param": CONV}),
    "batchnorm": ({"x": (6, 4), "gamma": (4,), "beta": (4,)}, {}, {"bn_param": {}}),
    "rnn_step": (
        {"x": (3, 4), "prev_h": (3, 5), "Wx": (4, 5), "Wh": (5, 5), "b": (5,)},
        {},
        {},
    ),
    "softmax_loss": ({"x": (5, 4)}, {"y": 4}, {}),
    "svm_loss": ({"x": (5, 4)}, {"y": 4}, {}),
}


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("name", sorted(CASES))
def test_example_functions_pass(name: str, seed: int) -> None:
    shapes, integers, args = CASES[name]
    r = check_function(f"{LAYERS}:{name}", shapes=shapes, integers=integers, args=args, seed=seed)
    assert r.passed, [(p.name, p.verdict, p.reason) for p in r.params]
    floats = [n for n in shapes if n not in integers]
    assert [p.name for p in r.params] == floats  # argument names, in signature order


@pytest.mark.parametrize("seed", range(8))
def test_scipy_style_f_and_grad_pass(seed: int) -> None:
    r = check_function(f"{LAYERS}:rosen", grad=f"{LAYERS}:rosen_der", shapes={"x": (7,)}, seed=seed)
    assert r.passed and [p.name for p in r.params] == ["x"]


#: wrong twin → (case it mirrors, the tensors that must fail)
WRONG = {
    "affine_mean_db": ("affine", ["b"]),
    "relu_nomask": ("relu", ["x"]),
    "conv_nopad": ("conv", ["w"]),
    "batchnorm_nomean": ("batchnorm", ["x"]),
    "rnn_step_tanh": ("rnn_step", ["x", "prev_h", "Wx", "Wh", "b"]),
    "softmax_loss_no_n": ("softmax_loss", ["x"]),
    "svm_loss_no_correct": ("svm_loss", ["x"]),
}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("twin", sorted(WRONG))
def test_wrong_twins_fail(twin: str, seed: int) -> None:
    case, failing = WRONG[twin]
    shapes, integers, args = CASES[case]
    r = check_function(f"{BUGGY}:{twin}", shapes=shapes, integers=integers, args=args, seed=seed)
    assert not r.passed
    assert [p.name for p in r.failures] == failing


@pytest.mark.parametrize("seed", range(5))
def test_same_shape_gradients_swapped_are_caught_by_the_numbers(seed: int) -> None:
    shapes = {"x": (3, 5), "prev_h": (3, 5), "Wx": (5, 5), "Wh": (5, 5), "b": (5,)}
    r = check_function(f"{BUGGY}:rnn_step_swap", shapes=shapes, seed=seed)
    assert [p.name for p in r.failures] == ["Wx", "Wh"]
    assert any(n.startswith("dWx and dWh look swapped") for n in r.notes)
    r = check_function(f"{BUGGY}:rnn_step_tanh", shapes=shapes, seed=seed)  # none swapped
    assert len(r.failures) == 5 and not [n for n in r.notes if "swapped" in n]


def test_wrong_scipy_grad_fails() -> None:
    r = check_function(f"{LAYERS}:rosen", grad=f"{BUGGY}:rosen_der_half", shapes={"x": (5,)})
    assert [p.name for p in r.failures] == ["x"]


def test_scipy_style_with_several_arrays() -> None:
    def f(x, w, scale):
        return scale * float(np.sum(np.tanh(x @ w)))

    def df(x, w, scale):
        s = scale * (1 - np.tanh(x @ w) ** 2)
        return s @ w.T, x.T @ s

    def df_wrong(x, w, scale):
        s = scale * (1 - np.tanh(x @ w) ** 2)
        return s @ w.T, x.T @ s * 1.001

    shapes = {"x": (3, 4), "w": (4, 2)}
    r = check_function(f, grad=df, shapes=shapes, args={"scale": 0.5})
    assert r.passed and [p.name for p in r.params] == ["x", "w"]
    r = check_function(f, grad=df_wrong, shapes=shapes, args={"scale": 0.5})
    assert [p.name for p in r.failures] == ["w"]


AFFINE = ["--shape", "x=4x2x3", "--shape", "w=6x5", "--shape", "b=5"]
BN = ["--shape", "x=6x4", "--shape", "gamma=4", "--shape", "beta=4", "--arg", "bn_param={}"]


@pytest.mark.parametrize(
    ("twin", "options", "message"),
    [
        ("affine_flat_dx", AFFINE, "returned dx of shape (4, 6), expected (4, 2, 3)"),
        ("affine_flat_dx", AFFINE, "reshape it back"),
        ("affine_order", AFFINE, "returned the gradients in the order (dw, dx, db) — expected (dx, dw, db)"),
        ("affine_two", AFFINE, "returned 2 values, expected 3 arrays (dx, dw, db)"),
        ("affine_nocache", AFFINE, "affine_nocache_forward returned an array of shape (4, 5), expected (out, cache)"),
        ("batchnorm_inplace", BN, "batchnorm_inplace_backward modifies its cache (cache[0] changed in place)"),
        ("loss_value_only", ["--shape", "x=5x4", "--integers", "y=4"], "returned a number, not (loss, dx)"),
    ],
)  # fmt: skip
def test_contract_problems_exit_2_naming_the_function(
    twin: str, options: list[str], message: str
) -> None:
    r = gc("fn", f"{BUGGY}:{twin}", *options)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()), r.output
    assert "Traceback" not in r.output


def test_cli_pass_json_names_and_replay() -> None:
    r = gc("fn", f"{LAYERS}:affine", *AFFINE, "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [p["name"] for p in doc["results"]] == ["x", "w", "b"] and doc["passed"] is True


def test_cli_wrong_gradient_exit_1_with_replay() -> None:
    r = gc("fn", f"{BUGGY}:affine_mean_db", *AFFINE, "--seed", "3")
    assert r.exit_code == 1, r.output
    text = " ".join(r.output.split())
    assert "1 of 3 gradients disagree: b" in text
    assert f"replay: gradcheck fn {BUGGY}:affine_mean_db --shape x=4x2x3" in text
    assert "--seed 3" in text


def test_cli_github_and_junit_outputs(tmp_path: Path) -> None:
    junit = tmp_path / "fn.xml"
    r = gc(
        "fn", f"{BUGGY}:affine_mean_db", *AFFINE, "--format", "github", "--junit-xml", str(junit)
    )
    assert r.exit_code == 1, r.output
    assert r.stdout.startswith("::error") and "b" in r.stdout.splitlines()[0]
    xml = junit.read_text()
    assert 'tests="3" failures="1"' in xml and 'name="b"' in xml


def test_cli_loss_with_labels_and_scipy_grad() -> None:
    r = gc("fn", f"{LAYERS}:softmax_loss", "--shape", "x=5x10", "--integers", "y=10", "-q")
    assert r.exit_code == 0, r.output
    r = gc("fn", f"{LAYERS}:rosen", "--grad", "rosen_der", "--shape", "x=6", "-q")
    assert r.exit_code == 0, r.output
    r = gc("fn", f"{LAYERS}:rosen", "--grad", f"{BUGGY}:rosen_der_half", "--shape", "x=6", "-q")
    assert r.exit_code == 1, r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["layers.py"], "must name a file and a function"),
        (["{L}:afine", "--shape", "x=4x3"], "did you mean 'affine_forward'?"),
        (["{L}:affine", "--shape", "x=4x3", "--shape", "W=3x2"], "affine_forward has no argument 'W'"),
        (["{L}:affine", "--shape", "x=4x3", "--shape", "w=3x2"], "affine_forward needs a value for its argument 'b'"),
        (["{L}:affine", "--shape", "x=4x0"], "must be positive sizes"),
        (["{L}:conv", "--shape", "x=2x3x5x5", "--shape", "w=2x3x3x3", "--shape", "b=2"], "needs a value for its argument 'conv_param'"),
        (["{L}:softmax_loss", "--shape", "x=5", "--integers", "y=3"], "give the shape of the ids 'y'"),
        (["{L}:relu", "--integers", "x=3", "--shape", "x=4x3"], "nothing to differentiate"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    r = gc("fn", *[a.replace("{L}", str(LAYERS)) for a in args])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()), r.output


def test_discovery_of_pairs(tmp_path: Path) -> None:
    mod = tmp_path / "mixed.py"
    mod.write_text(
        "def sq_fwd(x):\n    return x**2, x\n\n"
        "def sq_bwd(dout, x):\n    return 2 * x * dout\n\n"
        "def conv_forward_naive(x):\n    return x * 3.0, None\n\n"
        "def conv_backward_naive(dout, cache):\n    return 3.0 * dout\n\n"
        "def conv_forward_fast(x):\n    return x * 3.0, None\n\n"
        "def conv_backward_fast(dout, cache):\n    return 3.0 * dout\n\n"
        "def cube(x):\n    return x**3, x\n\n"
        "def cube_grad(dout, x):\n    return 3 * x**2 * dout\n"
    )
    shapes = {"x": (3, 2)}
    assert check_function(f"{mod}:sq", shapes=shapes).passed  # _fwd / _bwd
    assert check_function(f"{mod}:conv_forward_fast", shapes=shapes).passed
    with pytest.raises(ConfigError, match="conv_forward_naive, conv_forward_fast"):
        check_function(f"{mod}:conv", shapes=shapes)
    assert check_function(f"{mod}:cube", "cube_grad", shapes=shapes).passed  # --backward
    r = gc("fn", f"{mod}:cube", "--backward", "cube_grad", "--shape", "x=3x2", "-q")
    assert r.exit_code == 0, r.output


def test_a_forward_callable_finds_its_backward_in_its_module() -> None:
    from . import buggy_functions

    r = check_function(buggy_functions.affine_mean_db_forward, shapes=CASES["affine"][0])
    assert [p.name for p in r.failures] == ["b"]
    with pytest.raises(PluginError, match="needs its backward"):
        check_function(lambda x: (2 * x, None), shapes={"x": (3, 2)})


def test_non_array_arguments_are_fresh_copies_per_call() -> None:
    """A forward that writes into a dict argument (running averages, counters) gets a fresh deep
    copy on every call: the check stays deterministic and the caller's dict is untouched."""
    state = {"calls": 0}

    def counted_forward(x, w, state):
        state["calls"] += 1
        return x * w * state["calls"], (x, w, state["calls"])

    def counted_backward(dout, cache):
        x, w, k = cache
        return dout * w * k, (dout * x * k).sum(axis=0)

    r = check_function(
        counted_forward, counted_backward, shapes={"x": (4, 3), "w": (3,)}, args={"state": state}
    )
    assert r.passed and not r.problems and state == {"calls": 0}
    bn_param: dict[str, Any] = {"momentum": 0.5}
    shapes, _, _ = CASES["batchnorm"]
    assert check_function(f"{LAYERS}:batchnorm", shapes=shapes, args={"bn_param": bn_param}).passed
    assert bn_param == {"momentum": 0.5}


def test_given_values_and_integer_input() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4))
    r = check_function(
        f"{LAYERS}:affine", values={"x": x, "w": rng.standard_normal((4, 2)), "b": np.zeros(2)}
    )
    assert r.passed

    def embed_forward(ids, W):
        return W[ids], (ids, W.shape)

    def embed_backward(dout, cache):
        ids, shape = cache
        dW = np.zeros(shape)
        np.add.at(dW, ids, dout)
        return dW

    r = check_function(
        embed_forward, embed_backward, shapes={"ids": (2, 3), "W": (5, 4)}, integers={"ids": 5}
    )
    assert r.passed and [p.name for p in r.params] == ["W"]


def test_assert_gradients_accepts_functions() -> None:
    mod: dict[str, Any] = {}
    exec(LAYERS.read_text(), mod)
    assert_gradients((mod["affine_forward"], mod["affine_backward"]), shapes=CASES["affine"][0])
    assert_gradients(mod["softmax_loss"], shapes={"x": (5, 4)}, integers={"y": 4})
    assert_gradients(mod["rosen"], grad=mod["rosen_der"], shapes={"x": (4,)})
    with pytest.raises(AssertionError, match="b"):
        assert_gradients(f"{BUGGY}:affine_mean_db", shapes=CASES["affine"][0])


pytest_plugins = ["pytester"]


def test_pytest_marker_checks_functions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        fns=LAYERS.read_text(),
        test_fns=f"""
import pytest


@pytest.mark.gradcheck(fn="fns.py:affine", shapes={{"x": (4, 3), "w": (3, 2), "b": (2,)}})
def test_affine():
    pass


@pytest.mark.gradcheck(fn="{BUGGY}:affine_mean_db", shapes={{"x": (4, 3), "w": (3, 2), "b": (2,)}})
def test_buggy():
    pass
""",
    )
    res = pytester.runpytest("-p", "no:cacheprovider")
    res.assert_outcomes(passed=1, failed=1)
    assert "gradient check of @pytest.mark.gradcheck" in res.stdout.str()


# -- configs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", sorted((CONFIGS / "functions").glob("*.yaml")), ids=str)
def test_function_configs_pass(config: Path) -> None:
    r = gc("run", str(config))
    assert r.exit_code == 0, r.output


def test_function_configs_follow_the_config_schema() -> None:
    import jsonschema
    import yaml

    from gradcheck_cli.spec.schemas import config_schema

    validator = jsonschema.Draft202012Validator(config_schema())
    for path in sorted((CONFIGS / "functions").glob("*.yaml")):
        validator.validate(yaml.safe_load(path.read_text()))
    assert not validator.is_valid(yaml.safe_load("input: {shape: [4, 3]}\nlayers: [{params: {}}]"))


def test_function_config_names_and_buggy_layer(write: Any) -> None:
    cfg = write(
        "net.yaml",
        f"""
input: {{shape: [6, 5]}}
target: {{kind: classes, classes: 3}}
layers:
  - {{fn: "{LAYERS}:affine", params: {{w: [5, 4], b: [4]}}}}
  - {{fn: "{LAYERS}:relu"}}
  - {{fn: "{BUGGY}:affine_mean_db", params: {{w: {{shape: [4, 3], scale: 0.5}}, b: {{values: [0.1, 0.0, -0.1]}}}}}}
loss: {{fn: "{LAYERS}:softmax_loss"}}
""",
    )
    r = gc("run", str(cfg), "--format", "json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    bad = [p["name"] for p in doc["results"] if not p["passed"]]
    assert bad == ["2.affine_mean_db.b"]


def test_function_config_params_from_values_and_file(write: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "w.npy", rng.standard_normal((3, 2)))
    cfg = write(
        "c.yaml",
        f"""
input: {{shape: [4, 3]}}
layers:
  - {{fn: "{LAYERS}:affine", params: {{w: {{file: w.npy}}, b: {{values: [0.5, -0.5]}}}}}}
""",
    )
    r = gc("run", str(cfg), "--format", "json")
    assert r.exit_code == 0, r.output
    assert [p["name"] for p in json.loads(r.stdout)["results"]] == [
        "input",
        "0.affine.w",
        "0.affine.b",
    ]


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ('{fn: "layers.py:affine", params: {w: [3, 2], b: [2]}}', "layers[0].fn"),
        ('{type: "layers.py:Thing"}', "layers[0].type"),
    ],
)
@pytest.mark.parametrize("command", ["run", "validate"])
def test_no_plugins_refuses_fn(write: Any, layer: str, field: str, command: str) -> None:
    cfg = write("c.yaml", f"input: {{shape: [4, 3]}}\nlayers: [{layer}]\n")
    r = gc(command, "--no-plugins", str(cfg))
    assert r.exit_code == 2, r.output
    assert field in r.output and "--no-plugins" in r.output
    cfg = write("l.yaml", 'input: {shape: [4, 3]}\nlayers: [relu]\nloss: {fn: "x.py:loss"}\n')
    r = gc(command, "--no-plugins", str(cfg))
    assert r.exit_code == 2 and "loss.fn" in r.output, r.output


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ('{fn: "L:affine", params: {w: [3, 2]}}', "needs a value for its argument 'b'"),
        ('{fn: "L:affine", params: {w: [3, 2], b: [2], W: [1]}}', "affine_forward has no argument 'W'"),
        ('{fn: "L:affine", params: {w: [3, 2], b: [0]}}', "layers[0].params.b"),
        ('{fn: "L:affine", parms: {w: [3, 2], b: [2]}}', "did you mean 'params'?"),
        ('{fn: "L:affine", type: relu}', "not both"),
        ('{fn: "L:softmax_loss"}', "names no forward/backward pair"),
        ('{fn: "affine"}', "fn must look like 'file.py:NAME'"),
    ],
)  # fmt: skip
def test_function_config_errors(write: Any, layer: str, message: str) -> None:
    cfg = write(
        "c.yaml", f"input: {{shape: [4, 3]}}\nlayers: [{layer.replace('L:', f'{LAYERS}:')}]\n"
    )
    r = gc("run", str(cfg))
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split()), r.output


def test_plugin_error_types() -> None:
    with pytest.raises(PluginError, match="no function 'nothing'"):
        check_function(f"{LAYERS}:nothing", shapes={"x": (2, 2)})
