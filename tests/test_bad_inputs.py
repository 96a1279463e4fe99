"""The bad-input catalogue (issue 7): every case ends in a clear message naming the file, field or
layer, and the documented exit code — never a traceback, never a hang, never a wrong verdict.

Cases already covered in test_cli.py (unknown top-level key, seed of the wrong type, unknown layer,
bad layer argument, classes mismatch, loss without target, malformed YAML, a list document, empty
file, negative shape, eps 0, missing file, malformed JSON, plugin: no file, syntax error, import
error, class not found, constructor raises, contract, forward raises, module missing) are not
repeated here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.plan import limits

from .conftest import CONFIGS

runner = CliRunner()
SEED_MLP = CONFIGS / "seed_mlp.yaml"


def gc(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "400"})


def assert_clean(r, code: int, needles: list[str]) -> None:
    """Exit ``code``, the needles in the output, no traceback, no internal error."""
    assert r.exit_code == code, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    assert "internal error" not in r.output
    assert "RuntimeWarning" not in r.output
    flat = " ".join(r.output.split())
    for needle in needles:
        assert needle in flat, f"{needle!r} not in:\n{r.output}"


GOOD = "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 3}, relu]\n"


# -- files ----------------------------------------------------------------------------------------


def _dir(tmp: Path) -> Path:
    (tmp / "cfg.yaml").mkdir()
    return tmp / "cfg.yaml"


def _bytes(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    return make


def _huge(tmp: Path) -> Path:
    path = tmp / "huge.yaml"
    with path.open("wb") as fh:
        fh.write(GOOD.encode())
        fh.write(b"# " + b"x" * (limits.MAX_BYTES // 1024) + b"\n")  # 2 MB of comment
        fh.truncate(11 * 2**20)  # sparse: 11 MB without writing them
    return path


def _fifo(tmp: Path) -> Path:
    path = tmp / "pipe.yaml"
    os.mkfifo(path)
    return path


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)

FILE_CASES: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    "directory": (_dir, ["cfg.yaml", "is a directory"]),
    "not-utf8": (
        _bytes("latin.yaml", "name: caf\xe9\n".encode("latin-1")),
        ["not UTF-8", "line 1"],
    ),
    "yaml-line-column": (
        _bytes("bad.yaml", b"input: {shape: [4, 3]}\nlayers:\n  - {type: relu\n"),
        ["invalid YAML at line 4, column 1"],
    ),
    "yaml-scalar": (_bytes("s.yaml", b"just a string\n"), ["must be a mapping", "it is a str"]),
    "yaml-number": (_bytes("n.yaml", b"42\n"), ["must be a mapping", "it is a int"]),
    "json-list": (_bytes("l.json", b"[1, 2]"), ["must be a mapping", "it is a list"]),
    "json-empty": (_bytes("e.json", b"  \n"), ["it is empty"]),
    "huge-file": (
        _huge,
        ["huge.yaml", "11.0 MB", "larger than the 2 MB", "refused before reading"],
    ),
    "not-a-regular-file": (_fifo, ["pipe.yaml", "not a regular file"]),
    "yaml-duplicate-key": (
        _bytes("d.yaml", b"input: {shape: [4, 3]}\nlayers: [relu]\nlayers: [tanh]\n"),
        ["duplicate key 'layers' (first at line 2)", "line 3"],
    ),
    "json-duplicate-key": (
        _bytes("d.json", b'{"input": {"shape": [4, 3]}, "layers": ["relu"], "layers": []}'),
        ["duplicate key 'layers'"],
    ),
    "alias-bomb": (_bytes("bomb.yaml", ALIAS_BOMB.encode()), ["expands to", "YAML aliases"]),
    "cyclic-alias": (_bytes("cyc.yaml", b"input: &a {shape: [4, 3], x: *a}\n"), ["cyclic alias"]),
    "deep-nesting": (_bytes("deep.json", b"[" * 100_000 + b"]" * 100_000), ["nested too deeply"]),
}


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_bad_file(tmp_path: Path, case: str) -> None:
    make, needles = FILE_CASES[case]
    path = make(tmp_path)
    r = gc("run", str(path))
    assert_clean(r, 2, [str(path), *needles])


@pytest.mark.parametrize(
    "tag",
    [
        "!!python/object/apply:builtins.open ['{marker}', 'w']",
        "!!python/object/new:pathlib.Path ['{marker}']",
        "!!python/name:os.system",
        "!!python/object/apply:os.system ['touch {marker}']",
    ],
    ids=["open", "new-Path", "name", "os.system"],
)
def test_yaml_python_tags_never_execute(tmp_path: Path, tag: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"input: {tag.format(marker=marker)}\nlayers: [relu]\n")
    r = gc("run", str(path))
    assert_clean(r, 2, [str(path), "line 1, column 8", "is not allowed", "safe loading"])
    assert not marker.exists()


def test_bom_and_yaml12_floats_are_read(tmp_path: Path) -> None:
    """Not errors: a UTF-8 BOM, and `1e-5` (a string in YAML 1.1, a float everywhere else)."""
    path = tmp_path / "ok.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode() + b"check: {eps: 1e-5, rtol: 1E-6}\n")
    r = gc("run", str(path), "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["eps"] == 1e-5 and doc["rtol"] == 1e-6


# -- fields ---------------------------------------------------------------------------------------

BASE = {"input": {"shape": [4, 3]}, "layers": [{"type": "linear", "out": 3}]}


def _with(**over: object) -> dict[str, object]:
    return {**BASE, **over}


FIELD_CASES: dict[str, tuple[dict[str, object], list[str]]] = {
    "nested-unknown-input": (
        {"input": {"shpe": [4, 3]}, "layers": ["relu"]},
        ["input.shpe", "unknown key 'shpe'", "did you mean 'shape'"],
    ),
    "nested-unknown-check": (
        _with(check={"epss": 1e-5}),
        ["check.epss", "did you mean 'eps'"],
    ),
    "nested-unknown-target": (
        _with(target={"kind": "classes", "clases": 3}),
        ["target.clases", "did you mean 'classes'"],
    ),
    "layer-type-typo": (
        {"input": {"shape": [4, 3]}, "layers": [{"tpye": "relu"}]},
        ["layers[0].type", "required", "where it says 'tpye'"],
    ),
    "layers-not-a-list": (_with(layers="relu"), ["layers:", "valid list", "'relu'"]),
    "layer-not-a-mapping": (_with(layers=[3]), ["layers[0]", "(a mapping)", "got 3"]),
    "shape-is-a-string": ({"input": {"shape": "4x3"}, "layers": ["relu"]}, ["input.shape"]),
    "shape-bool": (
        {"input": {"shape": [True, 3]}, "layers": ["relu"]},
        ["input.shape[0]", "valid integer", "True"],
    ),
    "shape-float": ({"input": {"shape": [4.5, 3]}, "layers": ["relu"]}, ["input.shape[0]"]),
    "shape-zero": ({"input": {"shape": [4, 0]}, "layers": ["relu"]}, ["positive sizes"]),
    "shape-empty": ({"input": {"shape": []}, "layers": ["relu"]}, ["non-empty"]),
    "shape-1d": ({"input": {"shape": [4]}, "layers": ["relu"]}, ["input", "batch axis"]),
    "seed-string": (_with(seed="3"), ["seed", "valid integer"]),
    "inputs-not-bool": (_with(check={"inputs": "maybe"}), ["check.inputs"]),
    "eps-negative": (_with(check={"eps": -1e-5}), ["check.eps", "must lie in (0, 1]"]),
    "eps-huge": (_with(check={"eps": 1e5}), ["check.eps", "must lie in (0, 1]", "got 100000"]),
    "eps-nan": (_with(check={"eps": float("nan")}), ["check.eps", "finite"]),
    "eps-inf": (_with(check={"eps": float("inf")}), ["check.eps", "finite"]),
    "rtol-negative": (_with(check={"rtol": -1e-6}), ["check.rtol", "must lie in [0, 1]"]),
    "rtol-nan": (_with(check={"rtol": float("nan")}), ["check.rtol", "finite"]),
    "atol-negative": (_with(check={"atol": -1.0}), ["check.atol"]),
    "atol-inf": (_with(check={"atol": float("inf")}), ["check.atol", "finite"]),
    "method-unknown": (
        _with(check={"method": "backward"}),
        ["check.method", "'central', 'forward', 'five-point' or 'complex'", "'backward'"],
    ),
    "dtype-unknown": (_with(dtype="float16"), ["dtype", "'float64' or 'float32'", "'float16'"]),
    "seed-negative": (_with(seed=-1), ["seed", "greater than or equal to 0"]),
    "seed-too-big": (_with(seed=2**32), ["seed", "less than or equal to 4294967295"]),
    "labels-out-of-range": (
        _with(
            target={"kind": "classes", "values": [0, 1, 3, 2]},
            loss={"type": "softmax_cross_entropy"},
        ),
        ["target", "lie in 0…2", "got 0…3"],
    ),
    "labels-negative": (
        _with(
            target={"kind": "classes", "values": [0, -1, 2, 2]},
            loss={"type": "softmax_cross_entropy"},
        ),
        ["target", "lie in 0…2"],
    ),
    "labels-not-integers": (
        _with(
            target={"kind": "classes", "values": [0, 1.5, 2, 2]},
            loss={"type": "softmax_cross_entropy"},
        ),
        ["target", "4 integers"],
    ),
    "labels-wrong-count": (
        _with(target={"kind": "classes", "values": [0, 1]}, loss={"type": "softmax_cross_entropy"}),
        ["target", "4 integers", "shape (2,)"],
    ),
    "values-ragged": (
        {"input": {"values": [[1, 2], [3]]}, "layers": ["relu"]},
        ["input.values", "rectangular"],
    ),
    "values-empty": ({"input": {"values": [[]]}, "layers": ["relu"]}, ["input", "empty"]),
    "input-nan": (
        {"input": {"values": [[1.0, float("nan")], [0.0, 1.0]]}, "layers": ["relu"]},
        ["input", "not finite", "1 of 4 values are NaN, first at (0, 1)"],
    ),
    "input-file-missing": (
        {"input": {"file": "nope.npy"}, "layers": ["relu"]},
        ["input.file", "file not found"],
    ),
    "input-file-is-a-pipe": (
        {"input": {"file": "pipe.npy"}, "layers": ["relu"]},
        ["input.file", "pipe.npy is not a regular file"],
    ),
    "input-file-not-npy": (
        {"input": {"file": "bad.json"}, "layers": ["relu"]},
        ["input.file", "cannot read"],
    ),
    "loss-arg-typo": (
        _with(target={"kind": "values"}, loss={"type": "mse", "reduction": "sum"}),
        ["loss", "takes no argument 'reduction'"],
    ),
    "unknown-loss": (
        _with(target={"kind": "values"}, loss={"type": "mze"}),
        ["loss", "unknown loss 'mze'", "did you mean 'mse'"],
    ),
    "layer-arg-wrong-type": (
        _with(layers=[{"type": "linear", "out": "five"}]),
        ["layers[0]", "'out' must be a positive integer", "'five'"],
    ),
    "layer-arg-zero": (
        _with(layers=[{"type": "linear", "out": 0}]),
        ["layers[0]", "'out' must be a positive integer", "0"],
    ),
}


@pytest.mark.parametrize("case", sorted(FIELD_CASES))
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_bad_field(tmp_path: Path, case: str, fmt: str) -> None:
    data, needles = FIELD_CASES[case]
    (tmp_path / "bad.json").write_text("{}")  # for input-file-not-npy
    os.mkfifo(tmp_path / "pipe.npy")  # for input-file-is-a-pipe: opening it would hang
    path = tmp_path / f"cfg.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps(data))
    else:
        import yaml

        path.write_text(yaml.safe_dump(data))
    r = gc("run", str(path))
    assert_clean(r, 2, [str(path), *needles])


OPTION_CASES: dict[str, tuple[list[str], list[str]]] = {
    "eps-zero": (["--eps", "0"], ["--eps", "must lie in (0, 1]", "got 0"]),
    "eps-nan": (["--eps", "nan"], ["--eps"]),
    "eps-inf": (["--eps", "inf"], ["--eps", "finite"]),
    "eps-huge": (["--eps", "5"], ["--eps", "must lie in (0, 1]"]),
    "eps-negative": (["--eps", "-1e-5"], ["--eps"]),
    "rtol-nan": (["--rtol", "nan"], ["--rtol"]),
    "rtol-big": (["--rtol", "2"], ["--rtol", "[0, 1]"]),
    "atol-inf": (["--atol", "inf"], ["--atol", "finite"]),
    "method-unknown": (["--method", "backward"], ["--method", "backward"]),
    "seed-negative": (["--seed", "-1"], ["--seed"]),
    "seed-too-big": (["--seed", str(2**32)], ["--seed"]),
    "eps-below-float-spacing": (
        ["--eps", "1e-300"],
        ["ε=1e-300 is below the spacing of float64 numbers at input[0, 0]", "rounds back"],
    ),
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
@pytest.mark.parametrize("command", [["run"], ["layer", "linear", "--arg", "out=2"]])
def test_bad_option(case: str, command: list[str]) -> None:
    extra, needles = OPTION_CASES[case]
    r = gc(*command, *extra)
    assert_clean(r, 2, needles)


def test_complex_step_takes_its_tiny_default_eps() -> None:
    """The ε representability check is for real steps only: complex step uses ε = 1e-20."""
    r = gc("run", "--method", "complex", "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["eps"] == 1e-20


# -- shapes ---------------------------------------------------------------------------------------

FIXED = """
import numpy as np

class Fixed:
    '''A layer that ignores input_shape: W is always (5, 2).'''
    def __init__(self):
        self.params = {"W": np.ones((5, 2))}
        self.grads = {"W": np.zeros((5, 2))}
    def forward(self, x):
        self.x = x
        return x @ self.params["W"]
    def backward(self, dout):
        self.grads["W"] = self.x.T @ dout
        return dout @ self.params["W"].T
"""

SHAPE_CASES: dict[str, tuple[str, list[str]]] = {
    "linear-on-3d-input": (
        "input: {shape: [2, 3, 4]}\nlayers: [{type: linear, out: 5}]\n",
        ["layers[0]", "linear expects per-sample input of shape (features,), got (3, 4)"],
    ),
    "plugin-does-not-fit": (
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 4}, {type: 'fixed.py:Fixed'}]\n",
        [
            "layers[1]",
            "layer 1 (fixed.py:Fixed) cannot take input of shape (4, 4)",
            "its parameters: W (5, 2)",
            "matmul",
        ],
    ),
    "class-target-on-3d-output": (
        "input: {shape: [2, 3, 4]}\nlayers: [relu]\ntarget: {kind: classes}\n"
        "loss: {type: softmax_cross_entropy}\n",
        ["target", "class targets need a network output of shape (batch, classes)", "(2, 3, 4)"],
    ),
    "mse-target-shape": (
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 2}]\n"
        "target: {kind: values, values: [[1, 2, 3], [1, 2, 3]]}\nloss: {type: mse}\n",
        ["target", "target values have shape (2, 3) but the network output has shape (4, 2)"],
    ),
    "mse-with-class-labels": (
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 2}]\n"
        "target: {kind: classes, classes: 2}\nloss: {type: mse}\n",
        ["target.kind", "loss 'mse' needs a target of kind values, got 'classes'"],
    ),
}


@pytest.mark.parametrize("case", sorted(SHAPE_CASES))
def test_shapes_that_do_not_fit(tmp_path: Path, case: str) -> None:
    text, needles = SHAPE_CASES[case]
    (tmp_path / "fixed.py").write_text(FIXED)
    path = tmp_path / "net.yaml"
    path.write_text(text)
    assert_clean(gc("run", str(path)), 2, [str(path), *needles])


# -- plugins --------------------------------------------------------------------------------------

LAYER = """
import numpy as np

class L:
    '''out = x * a; a: (D,). Each case below breaks one thing.'''
    def __init__(self, input_shape):
        self.params = {{"a": np.linspace(0.5, 1.5, input_shape[0])}}
        self.grads = {{"a": np.zeros(input_shape[0])}}
        self.calls = 0
    def forward(self, x):
        self.calls += 1
        self.x = x
        {forward}
        return x * self.params["a"]
    def backward(self, dout):
        self.grads["a"] = (dout * self.x).sum(axis=0)
        {backward}
        return dout * self.params["a"]
"""

PLUGIN_CASES: dict[str, tuple[str, str, int, list[str]]] = {
    # (forward snippet, backward snippet, exit code, needles)
    "backward-raises": (
        "",
        "raise RuntimeError('nope')",
        2,
        ["layer 1 (p.py:L).backward raised RuntimeError: nope", "p.py:17"],
    ),
    "backward-returns-none": (
        "",
        "return None",
        2,
        ["layer 1 (p.py:L).backward returned NoneType, not a NumPy array", "must return dx"],
    ),
    "backward-returns-list": (
        "",
        "return [0.0]",
        2,
        ["layer 1 (p.py:L).backward returned list, not a NumPy array"],
    ),
    "backward-wrong-dx-shape": (
        "",
        "return dout[:, :1]",
        1,
        ["1.L.a", "0.linear.W", "layer 1 (p.py:L).backward returned dx of shape (4, 1)"],
    ),
    "grads-extra-key": (
        "",
        "self.grads['c'] = np.zeros(2)",
        1,
        ["1.L.c", "grads['c'] has no matching params['c'] (params: a)", "same keys"],
    ),
    "grads-missing-key": (
        "",
        "del self.grads['a']",
        1,
        ["1.L.a", "backward did not set grads['a']"],
    ),
    "grads-not-a-dict": (
        "",
        "self.grads = None",
        2,
        ["layer 1 (p.py:L).grads is a NoneType after backward, not a dict"],
    ),
    "grads-not-numeric": (
        "",
        "self.grads['a'] = 'zero'",
        1,
        ["1.L.a", "not a numeric array"],
    ),
    "forward-returns-list": (
        "return [1.0]",
        "",
        2,
        ["layer 1 (p.py:L).forward returned list, not a NumPy array"],
    ),
    "forward-calls-sys-exit": (
        "import sys; sys.exit(0)",
        "",
        2,
        ["layer 1 (p.py:L).forward raised SystemExit: 0"],
    ),
    "forward-raises-later": (
        "if self.calls > 3: raise ValueError('tired')",
        "",
        2,
        ["layer 1 (p.py:L).forward raised ValueError: tired"],
    ),
    "params-replaced-by-list": (
        "",
        "",
        2,
        ["layer 1 (p.py:L): params['a'] is a list, not a NumPy array"],
    ),
    "params-integer": (
        "",
        "",
        2,
        ["params['a'] has dtype int64; it must be floating point"],
    ),
    "params-read-only": ("", "", 2, ["params['a'] is read-only"]),
}

PARAM_TWEAKS = {
    "params-replaced-by-list": 'self.params["a"] = [1.0, 2.0, 3.0]',
    "params-integer": 'self.params["a"] = np.arange(3)',
    "params-read-only": 'self.params["a"].flags.writeable = False',
}


def _plugin(tmp: Path, case: str) -> Path:
    forward, backward, _, _ = PLUGIN_CASES[case]
    source = LAYER.format(forward=forward or "pass", backward=backward or "pass")
    if case in PARAM_TWEAKS:
        source = source.replace(
            "        self.calls = 0", f"        self.calls = 0\n        {PARAM_TWEAKS[case]}"
        )
    (tmp / "p.py").write_text(source)
    path = tmp / "net.yaml"
    path.write_text(
        "input: {shape: [4, 3]}\ntarget: {kind: values}\nloss: {type: mse}\n"
        "layers: [{type: linear, out: 3}, {type: 'p.py:L'}]\n"
    )
    return path


@pytest.mark.parametrize("case", sorted(PLUGIN_CASES))
def test_broken_plugin(tmp_path: Path, case: str) -> None:
    code, needles = PLUGIN_CASES[case][2:]
    path = _plugin(tmp_path, case)
    assert_clean(gc("run", str(path)), code, needles)


LOSS = """
import numpy as np

class Loss:
    def forward(self, pred, target):
        self.pred = pred
        {forward}
    def backward(self):
        {backward}
"""

LOSS_CASES: dict[str, tuple[str, str, int, list[str]]] = {
    "forward-not-a-number": (
        "return pred",
        "return np.ones_like(self.pred)",
        2,
        ["loss (p.py:Loss).forward returned ndarray of shape (4, 3), expected one number"],
    ),
    "forward-raises": (
        "raise KeyError('y')",
        "return self.pred",
        2,
        ["loss (p.py:Loss).forward raised KeyError"],
    ),
    "backward-raises": (
        "return float((pred**2).sum())",
        "raise ValueError('no')",
        2,
        ["loss (p.py:Loss).backward raised ValueError: no"],
    ),
    "forward-nan": (
        "return float('nan')",
        "return self.pred",
        2,
        ["NaN/Inf in the unperturbed forward pass", "the loss (p.py:Loss)", "L = nan"],
    ),
}


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_broken_plugin_loss(tmp_path: Path, case: str) -> None:
    forward, backward, code, needles = LOSS_CASES[case]
    (tmp_path / "p.py").write_text(LOSS.format(forward=forward, backward=backward))
    path = tmp_path / "net.yaml"
    path.write_text(
        "input: {shape: [4, 3]}\ntarget: {kind: values}\nlayers: [relu]\nloss: {type: 'p.py:Loss'}\n"
    )
    assert_clean(gc("run", str(path)), code, ["loss", *needles])


# -- numbers --------------------------------------------------------------------------------------

EXP = """
import numpy as np

class Exp:
    '''out = exp(x)'''
    def __init__(self):
        self.params, self.grads = {}, {}
    def forward(self, x):
        self.out = np.exp(x)
        return self.out
    def backward(self, dout):
        return dout * self.out

class NaiveSigmoid:
    '''1 / (1 + exp(-x)): overflows in exp for x < -709 but the output is still right (0).'''
    def __init__(self):
        self.params, self.grads = {}, {}
    def forward(self, x):
        self.out = 1 / (1 + np.exp(-x))
        return self.out
    def backward(self, dout):
        return dout * self.out * (1 - self.out)

class NanGrad:
    '''A correct forward whose backward produces NaN (0 * inf).'''
    def __init__(self, input_shape):
        self.params = {"a": np.ones(input_shape[0])}
        self.grads = {"a": np.zeros(input_shape[0])}
    def forward(self, x):
        self.x = x
        return x * self.params["a"]
    def backward(self, dout):
        self.grads["a"] = (dout * self.x).sum(axis=0) * np.array([np.inf, 1.0, 1.0]) * 0
        return dout * self.params["a"]
"""

NUMBER_CASES: dict[str, tuple[str, int, list[str]]] = {
    "layer-output-overflows": (
        "input: {values: [[1.0, 800.0], [0.5, 1.0]]}\nlayers: [{type: 'exp.py:Exp'}]\n",
        2,
        [
            "layers[0]",
            "the output of layer 0 (exp.py:Exp) is not finite though its input is",
            "1 of 4 values are Inf, first at (0, 1)",
            "NumPy overflow in layer 0 (exp.py:Exp).forward",
        ],
    ),
    "nan-from-inf-minus-inf": (
        "input: {values: [[1.0, 800.0], [0.5, 1.0]]}\n"
        "layers: [{type: 'exp.py:Exp'}, {type: linear, out: 2}]\n",
        2,
        ["layers[0]", "layer 0 (exp.py:Exp)", "Inf, first at (0, 1)"],
    ),
    "loss-overflows": (
        "input: {values: [[1.0e200, 1.0], [0.5, 1.0]]}\ntarget: {kind: values}\n"
        "layers: [relu]\nloss: {type: mse}\n",
        2,
        ["loss", "the loss (mse), though the network output is finite", "L = inf"],
    ),
    "gradient-nan": (
        "input: {shape: [4, 3]}\nlayers: [{type: 'exp.py:NanGrad'}, {type: linear, out: 2}]\n",
        1,
        [
            "0.NanGrad.a",
            "gradient contains 1 NaN/Inf value(s), first at (0,)",
            "NaN/Inf first appear in layer 0 (exp.py:NanGrad).backward (grads['a'])",
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(NUMBER_CASES))
def test_non_finite_numbers_say_where(tmp_path: Path, case: str) -> None:
    text, code, needles = NUMBER_CASES[case]
    (tmp_path / "exp.py").write_text(EXP)
    path = tmp_path / "net.yaml"
    path.write_text(text)
    r = gc("run", str(path))
    assert_clean(r, code, needles)


def test_overflow_is_reported_not_spilled(tmp_path: Path) -> None:
    """A harmless overflow (exp → inf → 1/(1+inf) = 0, the right answer) passes, and the report
    says where it happened; NumPy prints nothing."""
    (tmp_path / "exp.py").write_text(EXP)
    path = tmp_path / "net.yaml"
    path.write_text(
        "input: {values: [[-800.0, 0.5], [0.3, -0.2]]}\n"
        "layers: [{type: 'exp.py:NaiveSigmoid'}, {type: linear, out: 2}]\n"
    )
    r = gc("run", str(path))
    assert_clean(r, 0, ["note: NumPy overflow in layer 0 (exp.py:NaiveSigmoid).forward"])
    assert "warning" not in r.stderr
    doc = json.loads(gc("run", str(path), "--format", "json").stdout)
    assert any("overflow in layer 0" in w for w in doc["notes"])


def test_python_warnings_from_plugins_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "w.py").write_text(
        "import warnings\nclass W:\n    params, grads = {}, {}\n"
        "    def forward(self, x):\n        warnings.warn('careful')\n        return x\n"
        "    def backward(self, d):\n        return d\n"
    )
    path = tmp_path / "net.yaml"
    path.write_text("input: {shape: [2, 2]}\nlayers: [{type: 'w.py:W'}]\n")
    r = gc("run", str(path))
    assert_clean(r, 0, ["warning: UserWarning: careful (w.py:5)"])
    assert r.stderr.count("careful") == 1  # once, not once per perturbation


# -- size -----------------------------------------------------------------------------------------

SIZE_CASES: dict[str, tuple[list[str], list[str]]] = {
    "input-100000x100000": (
        ["run", "{dir}/big.yaml"],
        [
            "input",
            "about 74.5 GB of memory",
            "input 74.5 GB",
            "refused before allocating",
            "--mode sample",
        ],
    ),
    "linear-out-1e9": (
        ["run", "{dir}/wide.yaml"],
        ["layers[0]", "layer 0 (linear) parameters 29.8 GB", "smaller input.shape"],
    ),
    "time": (
        ["run", "{dir}/slow.yaml", "--mode", "full"],
        ["this check would take about", "entries × 2 loss evaluations", "--force"],
    ),
    "layer-command-shape": (
        ["layer", "relu", "--shape", "100000x100000"],
        ["--shape", "74.5 GB"],
    ),
    "layer-command-arg": (
        ["layer", "linear", "--shape", "4x3", "--arg", "out=1000000000"],
        ["--arg", "linear parameters 29.8 GB"],
    ),
    "npy-header": (
        ["run", "{dir}/npy.yaml"],
        ["input", "74.5 GB"],
    ),
}


def _size_files(tmp: Path) -> None:
    (tmp / "big.yaml").write_text("input: {shape: [100000, 100000]}\nlayers: [relu]\n")
    (tmp / "wide.yaml").write_text(
        "input: {shape: [4, 3]}\nlayers: [{type: linear, out: 1000000000}]\n"
    )
    (tmp / "slow.yaml").write_text(
        "input: {shape: [256, 1000]}\nlayers: [{type: linear, out: 1000}, relu]\n"
    )
    # A .npy whose header promises 100000×100000 but holds no data: refused from the header.
    with (tmp / "big.npy").open("wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)}
        )
    (tmp / "npy.yaml").write_text("input: {file: big.npy}\nlayers: [relu]\n")


@pytest.mark.parametrize("case", sorted(SIZE_CASES))
def test_too_big_is_refused_before_allocating(tmp_path: Path, case: str) -> None:
    argv, needles = SIZE_CASES[case]
    _size_files(tmp_path)
    r = gc(*[a.format(dir=tmp_path) for a in argv])
    assert_clean(r, 2, needles)


def test_force_lifts_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "MAX_SECONDS", 1e-9)
    monkeypatch.setattr(limits, "UNTIMED_EVALUATIONS", 0)
    assert_clean(gc("run"), 2, ["this check would take", "the limit is 0.0 s"])
    assert_clean(gc("run", "--force"), 0, ["all 5 gradients agree"])
    monkeypatch.setattr(limits, "MAX_BYTES", 100.0)
    assert_clean(gc("run"), 2, ["of memory", "more than the 100 bytes limit"])
    assert_clean(gc("run", "--force"), 0, [])


def test_plugin_params_measured_after_construction(tmp_path: Path, monkeypatch) -> None:
    """A layer that offers no estimate is measured right after it is built, before any pass."""
    monkeypatch.setattr(limits, "MAX_BYTES", 5000.0)
    (tmp_path / "p.py").write_text(
        "import numpy as np\nclass Big:\n    def __init__(self):\n"
        "        self.params = {'W': np.ones((100, 100))}\n        self.grads = {}\n"
        "    def forward(self, x):\n        raise AssertionError('must not run')\n"
        "    def backward(self, d):\n        return d\n"
    )
    path = tmp_path / "net.yaml"
    path.write_text("input: {shape: [2, 3]}\nlayers: [{type: 'p.py:Big'}]\n")
    assert_clean(gc("run", str(path)), 2, ["layers[0]", "layer 0 (p.py:Big) parameters 78.1 KB"])


def test_nothing_to_check_is_not_a_pass() -> None:
    r = gc("layer", "relu", "--shape", "2x3")
    assert r.exit_code == 0
    path_text = "input: {shape: [4, 3]}\nlayers: [relu, tanh]\n"
    r = runner.invoke(app, ["run", "-", "--no-inputs"])  # '-' is not a file: exit 2 either way
    assert r.exit_code == 2
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "np.yaml"
        path.write_text(path_text)
        assert_clean(gc("run", str(path), "--no-inputs"), 2, ["nothing to check", "check.inputs"])


# -- Ctrl-C ---------------------------------------------------------------------------------------

INTERRUPT = """
import numpy as np
class Stop:
    def __init__(self, input_shape):
        self.params = {"a": np.ones(input_shape[0])}
        self.grads = {"a": np.zeros(input_shape[0])}
        self.calls = 0
    def forward(self, x):
        self.calls += 1
        if self.calls > 5:
            raise KeyboardInterrupt
        return x * self.params["a"]
    def backward(self, dout):
        return dout
"""


def test_ctrl_c_is_130_and_one_line(tmp_path: Path) -> None:
    """Ctrl-C before the check (here: in a plugin's constructor) is one line on stderr; during
    the check the engine reports what it finished, marked interrupted. Exit 130 either way."""
    (tmp_path / "stop.py").write_text(
        INTERRUPT + "\nclass StopEarly(Stop):\n"
        "    def __init__(self, input_shape):\n        raise KeyboardInterrupt\n"
    )
    early = tmp_path / "early.yaml"
    early.write_text("input: {shape: [3, 4]}\nlayers: [{type: 'stop.py:StopEarly'}]\n")
    r = gc("run", str(early))
    assert r.exit_code == 130 and r.stderr.strip() == "interrupted (Ctrl-C): no verdict"
    path = tmp_path / "net.yaml"
    path.write_text("input: {shape: [3, 4]}\nlayers: [{type: 'stop.py:Stop'}]\n")
    r = gc("run", str(path))
    assert r.exit_code == 130 and "interrupted" in r.output and "Traceback" not in r.output
    for cfg in (early, path):
        proc = subprocess.run(
            [sys.executable, "-m", "gradcheck_cli", "run", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 130 and "Traceback" not in proc.stderr
        assert "interrupted" in proc.stdout + proc.stderr


def test_interrupt_and_errors_restore_the_parameters(tmp_path: Path) -> None:
    """Whatever stops a check half-way, the parameter it was perturbing is restored exactly."""
    import gradcheck_cli as gc_api

    (tmp_path / "stop.py").write_text(INTERRUPT)
    lay = gc_api.make_layer("stop.py:Stop", (4,), base_dir=tmp_path)
    before = lay.params["a"].copy()
    result = gc_api.check_layer(lay, np.ones((3, 4)))  # the engine returns a partial result
    assert result.interrupted
    assert lay.params["a"].tobytes() == before.tobytes()


# -- security -------------------------------------------------------------------------------------

MARKER_PLUGIN = (
    "from pathlib import Path\nPath(__file__).with_name('imported').touch()\n"
    + (CONFIGS / "my_layers.py").read_text()
)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("layers: [relu, {type: 'm.py:ScaledTanh'}]", "layers[1].type"),
        ("layers: [relu]\ntarget: {kind: values}\nloss: {type: 'm.py:ScaledTanh'}", "loss.type"),
        ("layers: [{type: 'm:ScaledTanh'}]", "layers[0].type"),
    ],
    ids=["layer-file", "loss", "module"],
)
def test_no_plugins_refuses_before_importing(tmp_path: Path, text: str, field: str) -> None:
    (tmp_path / "m.py").write_text(MARKER_PLUGIN)
    path = tmp_path / "net.yaml"
    path.write_text(f"input: {{shape: [4, 3]}}\n{text}\n")
    r = gc("run", str(path), "--no-plugins")
    assert_clean(r, 2, [str(path), field, "--no-plugins refuses code from configs"])
    assert not (tmp_path / "imported").exists()
    assert gc("run", str(path)).exit_code in (0, 1, 2)
    assert (tmp_path / "imported").exists()  # the marker works: without the flag it is imported


def test_no_plugins_allows_builtins_and_refuses_layer_plugins(tmp_path: Path) -> None:
    assert gc("run", str(SEED_MLP), "--no-plugins").exit_code == 0
    assert gc("layer", "relu", "--no-plugins").exit_code == 0
    (tmp_path / "m.py").write_text(MARKER_PLUGIN)
    r = gc("layer", f"{tmp_path}/m.py:ScaledTanh", "--no-plugins")
    assert_clean(r, 2, ["NAME", "is a plugin, and --no-plugins refuses user code"])
    assert not (tmp_path / "imported").exists()


def test_debug_still_shows_the_traceback(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("input: {shape: [100000, 100000]}\nlayers: [relu]\n")
    r = gc("run", str(path), "--debug")
    assert r.exit_code != 0 and type(r.exception).__name__ == "LimitError"


def test_api_refuses_an_eps_below_float_spacing_too() -> None:
    """Not only the CLI: check_layer/check_network refuse θ ± ε == θ instead of dividing 0/0."""
    import gradcheck_cli as api
    from gradcheck_cli.errors import NumericError

    lay = api.make_layer("linear", (3,), out=2)
    x = np.full((2, 3), 1e12)  # spacing at 1e12 is 1.2e-4: the default ε = 1e-5 vanishes
    with pytest.raises(NumericError, match=r"ε=1e-05 is below the spacing .* at input\[0, 0\]"):
        api.check_layer(lay, x)
    assert api.check_layer(lay, x, method="complex").eps == 1e-20  # imaginary steps never vanish


def test_sweep_is_guarded_like_run(tmp_path: Path) -> None:
    """`sweep` also refuses plugins under --no-plugins and over-size checks before allocating."""
    r = gc("sweep", str(CONFIGS / "custom_layer.yaml"), "--no-plugins")
    assert_clean(r, 2, ["layers[1].type", "--no-plugins refuses code from configs"])
    path = tmp_path / "big.yaml"
    path.write_text("input: {shape: [100000, 100000]}\nlayers: [relu]\n")
    assert_clean(gc("sweep", str(path)), 2, ["74.5 GB", "refused before allocating"])


@pytest.mark.parametrize(
    ("name", "shape", "args"),
    [
        ("linear", (4, 3), {"out": 5}),
        ("embedding", (2, 3), {"vocab": 7, "dim": 4}),
        *[
            (n, (3, 4), {})
            for n in ("relu", "leaky_relu", "sigmoid", "tanh", "softmax", "gelu", "elu")
        ],
        *[(n, (3, 4), {}) for n in ("softplus", "silu", "log_softmax")],
    ],
)
def test_size_estimates_match_the_built_layer(name: str, shape: tuple[int, ...], args) -> None:
    """The memory guard's estimates are exact for the layers that offer one."""
    import gradcheck_cli as api
    from gradcheck_cli.layers.registry import LAYERS

    n_params, out_shape = LAYERS[name].estimate(shape[1:], **args)
    lay = api.make_layer(name, shape[1:], **args)
    x = np.random.default_rng(0).integers(0, 7, shape) if name == "embedding" else np.ones(shape)
    assert n_params == sum(v.size for v in lay.params.values())
    assert (shape[0], *out_shape) == lay.forward(x).shape


def test_plugin_prints_do_not_corrupt_the_json_report(tmp_path: Path) -> None:
    """What user code prints (at import, construction, forward, backward) goes to stderr."""
    (tmp_path / "noisy.py").write_text(
        "import numpy as np\nprint('importing')\n"
        "class Noisy:\n"
        "    def __init__(self, input_shape):\n        print('building')\n"
        "        self.params = {'a': np.ones(input_shape[0])}\n"
        "        self.grads = {'a': np.zeros(input_shape[0])}\n"
        "    def forward(self, x):\n        print('forward')\n        self.x = x\n"
        "        return x * self.params['a']\n"
        "    def backward(self, dout):\n        print('backward')\n"
        "        self.grads['a'] = (dout * self.x).sum(axis=0)\n"
        "        return dout * self.params['a']\n"
    )
    path = tmp_path / "net.yaml"
    path.write_text("input: {shape: [2, 3]}\nlayers: [{type: 'noisy.py:Noisy'}]\n")
    r = gc("run", str(path), "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["passed"] is True
    for word in ("importing", "building", "forward", "backward"):
        assert word in r.stderr


# -- Hardening II: huge integers, many axes, odd --arg values (issue 12) --------------------------

HUGE = "1" + "0" * 400


@pytest.mark.parametrize(
    ("spec", "needles"),
    [
        (f"input: {{values: [[{HUGE}, 2]]}}\nlayers: [relu]\n", ["input.values", "float64"]),
        (f"input: {{shape: [2, {HUGE}]}}\nlayers: [relu]\n", ["input", "below 2**62"]),
        (
            f"input: {{shape: [2, 3], integers: {HUGE}}}\nlayers: [{{type: embedding, vocab: 5, dim: 2}}]\n",
            ["input.integers"],
        ),
        ("input: {shape: [" + ", ".join(["1"] * 70) + "]}\nlayers: [relu]\n", ["70 axes"]),
        ("input: {shape: [2, 3]}\nlayers: [{type: linear, out: 3, dtype: float16}]\n", ["dtype"]),
    ],
    ids=["values", "shape", "integers", "70-axes", "dtype-arg"],
)
def test_huge_and_odd_values_name_their_field(tmp_path: Path, spec: str, needles) -> None:
    path = tmp_path / "net.yaml"
    path.write_text(spec)
    for extra in ([], ["--force"]):
        assert_clean(gc("run", str(path), *extra), 2, needles)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--shape", "x".join(["1"] * 70)], ["70 axes"]),
        (["--shape", f"2x{HUGE}", "--force"], ["--shape"]),
        (["--arg", "out=3", "--arg", "input_shape=[5]"], ["--arg.input_shape"]),
        (["--arg", "out=3", "--arg", "dtype=float16"], ["--arg.dtype"]),
        (["--arg", "out=3", "--arg", "rng=1"], ["--arg.rng"]),
    ],
    ids=["70-axes", "huge-dim", "input_shape", "dtype", "rng"],
)
def test_layer_command_odd_values(args: list[str], needles) -> None:
    assert_clean(gc("layer", "linear", *args), 2, needles)
