"""Real code without adapters (issue 25): fixed data (--data / data:), attribute paths and module
targets, names as people write them (D7), every missing argument at once, --args-from. Each point
has its wrong twin: a planted bug that must be caught, or a wrong name that must be refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import check_function, make_layer
from gradcheck_cli.cli import app
from gradcheck_cli.errors import ConfigError

from .conftest import CONFIGS, ROOT

FUNCS = CONFIGS / "functions"
runner = CliRunner()


def gc(*args: str) -> Any:
    r = runner.invoke(app, list(args), env={"COLUMNS": "240"})
    r.text = " ".join(r.output.split())  # type: ignore[attr-defined]
    return r


# -- D7: NAME means NAME_forward/NAME_backward when both exist ------------------------------------

OPS = """
import numpy as np

def scale_step_forward(x, w):
    return x * w, (x, w)

def scale_step_backward(dout, cache):
    x, w = cache
    return dout * w, STEP_DW(dout * x)

def scale_forward(x, w):
    return x * w, (x, w)

def scale_backward(dout, cache):
    x, w = cache
    return dout * w, WHOLE_DW(dout * x)

def conv_step_forward_naive(x, w):
    return x * w, (x, w)

def conv_step_backward_naive(dout, cache):
    x, w = cache
    return dout * w, STEP_DW(dout * x)

def conv_forward_naive(x, w):
    return x * w, (x, w)

def conv_backward_naive(dout, cache):
    x, w = cache
    return dout * w, WHOLE_DW(dout * x)

def rnn_step_forward(x, w):
    return x * w, (x, w)

def rnn_step_backward(dout, cache):
    x, w = cache
    return dout * w, WHOLE_DW(dout * x)

def lone_forward(x, w):
    return x * w, (x, w)

def lone_step_forward(x, w):
    return x * w, (x, w)

def lone_step_backward(dout, cache):
    x, w = cache
    return dout * w, (dout * x).sum(axis=0)
"""
SUM, MEAN = "(lambda a: a.sum(axis=0))", "(lambda a: a.mean(axis=0))"
SCALE = ["--shape", "x=3x4", "--shape", "w=4"]


@pytest.mark.parametrize("name", ["scale", "conv"])
def test_name_means_the_exact_pair_not_a_longer_prefix(tmp_path: Path, name: str) -> None:
    """`scale` is scale_forward/scale_backward even with scale_step_* next to it (CS231n's
    rnn/rnn_step); `conv` is conv_forward_naive, not conv_step_forward_naive."""
    ops = tmp_path / "ops.py"
    ops.write_text(OPS.replace("STEP_DW", MEAN).replace("WHOLE_DW", SUM))  # the step pair is wrong
    r = gc("fn", f"{ops}:{name}", *SCALE, "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["passed"] is True
    # wrong twin: the same names with the bug in the exact pair are caught
    bad = tmp_path / "bad.py"
    bad.write_text(OPS.replace("STEP_DW", SUM).replace("WHOLE_DW", MEAN))
    r = gc("fn", f"{bad}:{name}", *SCALE, "-q")
    assert r.exit_code == 1, r.output


def test_a_prefix_match_only_when_there_is_no_exact_pair(tmp_path: Path) -> None:
    ops = tmp_path / "ops.py"
    ops.write_text(OPS.replace("STEP_DW", MEAN).replace("WHOLE_DW", SUM))
    r = gc("fn", f"{ops}:rnn", *SCALE, "-q")  # only rnn_step_*: the prefix match is it
    assert r.exit_code == 0, r.output
    # an exact forward without its backward is named, never silently replaced by lone_step
    r = gc("fn", f"{ops}:lone", *SCALE)
    assert r.exit_code == 2 and "lone_forward has no lone_backward" in r.text, r.output


def test_d7_case_passes() -> None:
    case = ROOT.parent / "shared" / "cases" / "D7_function_and_arg_names"
    if not case.is_dir():
        pytest.skip("the shared D7 case is not on this machine")
    r = gc("fn", f"{case}/ops.py:scale", *SCALE, "-q")
    assert r.exit_code == 0, r.output


ACT = """
import numpy as np

class Activation:
    def __init__(self, name):
        self.params, self.grads = {}, {}
        self.name = name
        self.fn = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh}[name]

    def forward(self, x):
        self.out = self.fn(x)
        return self.out

    def backward(self, dout):
        o = self.out
        return dout * o * (1 - o)  # the sigmoid's derivative, whatever the name
"""


def test_any_constructor_argument_name_works_in_arg(tmp_path: Path) -> None:
    (tmp_path / "act.py").write_text(ACT)
    ref = f"{tmp_path}/act.py:Activation"
    r = gc("layer", ref, "--shape", "4x5", "--arg", 'name="sigmoid"', "-q")
    assert r.exit_code == 0, r.output
    # wrong twin: the argument really reaches the constructor (tanh with sigmoid's derivative)
    r = gc("layer", ref, "--shape", "4x5", "--arg", 'name="tanh"', "-q")
    assert r.exit_code == 1, r.output
    r = gc("layer", ref, "--shape", "4x5", "--arg", 'nme="tanh"')  # a wrong name is refused
    assert r.exit_code == 2 and "takes no argument 'nme'" in r.text, r.output
    layer = make_layer(ref, (5,), None, name="tanh")  # the API: name= is the layer's
    assert layer.name == "tanh"


ECHO = """
class Echo:
    def __init__(self, **kw):
        self.params, self.grads, self.kw = {}, {}, kw
        self.k = 2.0 if kw == {"name": "a", "shape": 1, "seed": 2, "label": 3, "kwargs": 4} else 3.0

    def forward(self, x):
        return 2.0 * x

    def backward(self, dout):
        return self.k * dout  # right only when every argument arrived as given
"""


def test_constructor_arguments_named_like_the_tools_own_parameters(tmp_path: Path) -> None:
    (tmp_path / "echo.py").write_text(ECHO)
    ref = f"{tmp_path}/echo.py:Echo"
    given = {"name": "a", "shape": 1, "seed": 2, "label": 3, "kwargs": 4}
    assert make_layer(ref, (3,), None, **given).kw == given
    args = [w for k, v in given.items() for w in ("--arg", f"{k}={json.dumps(v)}")]
    assert gc("layer", ref, "--shape", "2x3", *args, "-q").exit_code == 0
    r = gc("layer", ref, "--shape", "2x3", *args[:-2], "-q")  # twin: one argument fewer
    assert r.exit_code == 1, r.output
    r = gc("layer", ref, "--shape", "2x3", "--arg", "rng=1")  # what gradcheck sets is refused
    assert r.exit_code == 2 and "'rng' is set by gradcheck" in r.text, r.output


# -- --data and data: -----------------------------------------------------------------------------

RIDGE_BUGS = """
import numpy as np
ALPHA = 0.1

def grad_l2(w, X, y):
    # planted: the L2 term 1e-5 too large (the bug scipy's check_grad missed)
    return X.T @ (X @ w - y) / len(y) + ALPHA * (1 + 1e-5) * w

def loss_writes(w, X, y):
    X *= 1.0
    return 0.0
"""
RIDGE = [
    "--shape", "w=5",
    "--data", f"X={FUNCS}/ridge.npz:X",
    "--data", f"y={FUNCS}/ridge.npz:y",
]  # fmt: skip


def test_data_arguments_are_given_and_never_differentiated(tmp_path: Path) -> None:
    r = gc("fn", f"{FUNCS}/ridge.py:loss", "--grad", "grad", *RIDGE, "--format", "json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [p["name"] for p in doc["results"]] == ["w"]  # X and y are data
    (tmp_path / "bugs.py").write_text(RIDGE_BUGS)
    r = gc("fn", f"{FUNCS}/ridge.py:loss", "--grad", f"{tmp_path}/bugs.py:grad_l2", *RIDGE)
    assert r.exit_code == 1, r.output
    assert f"--data X={FUNCS}/ridge.npz:X --data y=" in r.text  # the replay line has the data


@pytest.mark.parametrize("seed", range(5))
def test_data_from_npy_npz_and_json_agree(tmp_path: Path, seed: int) -> None:
    with np.load(FUNCS / "ridge.npz") as z:
        X, y = z["X"], z["y"]
    np.save(tmp_path / "X.npy", X)
    (tmp_path / "y.json").write_text(json.dumps(y.tolist()))
    r = check_function(
        f"{FUNCS}/ridge.py:loss",
        grad="grad",
        shapes={"w": (5,)},
        data={"X": "X.npy", "y": "y.json"},
        base_dir=tmp_path,
        seed=seed,
    )
    assert r.passed and [p.name for p in r.params] == ["w"]
    r2 = check_function(
        f"{FUNCS}/ridge.py:loss", grad="grad", shapes={"w": (5,)}, data={"X": X, "y": y}, seed=seed
    )
    assert r2.params[0].max_abs_error == r.params[0].max_abs_error  # the same numbers either way


def test_a_float_argument_differentiated_by_mistake_names_data() -> None:
    r = gc(
        "fn", f"{FUNCS}/ridge.py:loss", "--grad", "grad", "--shape", "w=5", "--shape", "X=40x5",
        "--data", f"y={FUNCS}/ridge.npz:y",
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert "expected 2 arrays (dw, dX)" in r.text and "--data X=FILE.npy" in r.text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("Z={F}/ridge.npz:X", "loss has no argument 'Z'"),
        ("X={F}/ridge.npz:Q", "no array 'Q' in"),
        ("X={F}/ridge.npz", "name the array of"),
        ("X={F}/nothing.npy", "no data file"),
        ("X={F}/ridge.py", "give a .npy file"),
        ("X", "--data must look like NAME=FILE"),
    ],
)
def test_wrong_data_is_refused(data: str, message: str) -> None:
    r = gc(
        "fn", f"{FUNCS}/ridge.py:loss", "--grad", "grad", "--shape", "w=5",
        "--data", data.replace("{F}", str(FUNCS)), "--data", f"y={FUNCS}/ridge.npz:y",
    )  # fmt: skip
    assert r.exit_code == 2, r.output
    assert message in r.text, r.output
    assert "Traceback" not in r.output


def test_data_is_read_only_so_a_function_cannot_change_it(tmp_path: Path) -> None:
    (tmp_path / "bugs.py").write_text(RIDGE_BUGS)
    r = gc("fn", f"{tmp_path}/bugs.py:loss_writes", "--grad", "grad_l2", *RIDGE)
    assert r.exit_code == 2 and "read-only" in r.text, r.output


def test_data_counts_in_the_memory_estimate_before_it_is_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.npy"  # a header for 80 GB, no data: never read
    with open(huge, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)}
        )
    args = ["fn", f"{FUNCS}/ridge.py:loss", "--grad", "grad", "--shape", "w=5"]
    r = gc(*args, "--data", f"X={huge}", "--data", f"y={FUNCS}/ridge.npz:y")
    assert r.exit_code == 2 and "refused before allocating" in r.text and "data X" in r.text
    r = gc(*args, *RIDGE[2:], "-q")  # twin: the real data fits
    assert r.exit_code == 0, r.output


def test_config_data_counts_in_the_memory_estimate(write: Any, tmp_path: Path) -> None:
    cfg = """
input: {shape: [5, 6]}
layers:
  - {fn: "%s:masked_affine", params: {w: [6, 3], b: [3]}, data: {mask: %s}}
"""
    np.save(tmp_path / "mask.npy", np.ones(6))  # twin: a mask that fits passes
    r = gc("run", str(write("c.yaml", cfg % (FUNCS / "layers.py", "mask.npy"))), "-q")
    assert r.exit_code == 0, r.output
    big = tmp_path / "big.npy"
    with open(big, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)}
        )
    r = gc("run", str(write("d.yaml", cfg % (FUNCS / "layers.py", "big.npy"))))
    assert r.exit_code == 2 and "refused before allocating" in r.text, r.output
    assert "layers[0]" in r.text


def test_a_data_file_is_an_input_no_output_may_replace(tmp_path: Path) -> None:
    with np.load(FUNCS / "ridge.npz") as z:
        np.save(tmp_path / "X.npy", z["X"])
    before = (tmp_path / "X.npy").read_bytes()
    r = gc(
        "fn", f"{FUNCS}/ridge.py:loss", "--grad", "grad", "--shape", "w=5",
        "--data", f"X={tmp_path}/X.npy", "--data", f"y={FUNCS}/ridge.npz:y",
        "--junit-xml", str(tmp_path / "X.npy"),
    )  # fmt: skip
    assert r.exit_code == 2 and "an input of this run" in r.text, r.output
    assert (tmp_path / "X.npy").read_bytes() == before


def test_config_data_for_a_function_layer(write: Any, tmp_path: Path) -> None:
    r = gc("run", str(FUNCS / "masked.yaml"), "--format", "json")
    assert r.exit_code == 0, r.output
    names = [p["name"] for p in json.loads(r.stdout)["results"]]
    assert names == ["input", "0.masked_affine.w", "0.masked_affine.b"]  # mask: data
    # wrong twin: a backward that ignores the mask is caught
    (tmp_path / "bad.py").write_text(
        (FUNCS / "layers.py").read_text().replace("(dout @ w.T) * mask", "(dout @ w.T)")
    )
    (tmp_path / "mask.json").write_text((FUNCS / "mask.json").read_text())
    cfg = (FUNCS / "masked.yaml").read_text().replace("layers.py:", "bad.py:")
    r = gc("run", str(write("masked.yaml", cfg)), "--format", "json")
    assert r.exit_code == 1, r.output
    bad = [p["name"] for p in json.loads(r.stdout)["results"] if not p["passed"]]
    assert bad == ["input"]
    # wrong names are refused with the field
    r = gc("run", str(write("m2.yaml", cfg.replace("{mask: mask.json}", "{mask: nope.json}"))))
    assert r.exit_code == 2 and "layers[0].data.mask" in r.text and "no data file" in r.text


# -- attribute paths and module targets ------------------------------------------------------------

MODEL = """
import numpy as np


class Ridge:
    def __init__(self, alpha):
        self.alpha = alpha

    def loss(self, w, X, y):
        r = X @ w - y
        return 0.5 * float(r @ r) + 0.5 * self.alpha * float(w @ w)

    def grad(self, w, X, y):
        return X.T @ (X @ w - y) + self.alpha * w

    def loss_gradient(self, w, X, y):
        return self.loss(w, X, y), self.grad(w, X, y)

    def _grad_bug(self, w, X, y):
        return X.T @ (X @ w - y) + 1.00001 * self.alpha * w


class Ops:
    @staticmethod
    def affine_forward(x, w, b):
        return x @ w + b, (x, w)

    @staticmethod
    def affine_backward(dout, cache):
        x, w = cache
        return dout @ w.T, x.T @ dout, DB

    @staticmethod
    def rosen(x):
        return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


model = Ridge(0.5)
"""


@pytest.fixture
def pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package `mypkg.models` importable from the working directory, and a file `models.py`."""
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "models.py").write_text(MODEL.replace("DB", "dout.sum(axis=0)"))
    (tmp_path / "models.py").write_text(MODEL.replace("DB", "dout.mean(axis=0)"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("where", ["models.py", "mypkg.models"])
def test_methods_of_module_level_objects(pkg: Path, where: str) -> None:
    data = ["--data", f"X={FUNCS}/ridge.npz:X", "--data", f"y={FUNCS}/ridge.npz:y"]
    r = gc("fn", f"{where}:model.loss", "--grad", "model.grad", "--shape", "w=5", *data, "-q")
    assert r.exit_code == 0, r.output
    r = gc("fn", f"{where}:model.loss_gradient", "--shape", "w=5", *data, "-q")  # (loss, grad)
    assert r.exit_code == 0, r.output
    r = gc("fn", f"{where}:model.loss", "--grad", f"{where}:model._grad_bug", "--shape", "w=5",
           *data, "-q")  # fmt: skip
    assert r.exit_code == 1, r.output  # the planted 1e-5 L2 bug
    r = gc("fn", f"{where}:modle.loss", "--grad", "model.grad", "--shape", "w=5", *data)
    assert r.exit_code == 2 and "no 'modle'" in r.text and "did you mean 'model'" in r.text
    r = gc("fn", f"{where}:model.los", "--grad", "model.grad", "--shape", "w=5", *data)
    assert r.exit_code == 2 and "no function 'los'" in r.text and "did you mean 'loss'" in r.text


def test_static_methods_and_pairs_on_a_class(pkg: Path) -> None:
    shapes = ["--shape", "x=4x3", "--shape", "w=3x2", "--shape", "b=2"]
    r = gc("fn", "mypkg.models:Ops.affine", *shapes, "-q")  # Ops.affine_forward/_backward
    assert r.exit_code == 0, r.output
    r = gc("fn", "models.py:Ops.affine", *shapes, "-q")  # the twin: db averaged
    assert r.exit_code == 1, r.output
    fwd = "models.py:Ops.affine_forward"  # --backward by attribute path, here or elsewhere
    r = gc("fn", fwd, "--backward", "mypkg.models:Ops.affine_backward", *shapes, "-q")
    assert r.exit_code == 0, r.output
    r = gc("fn", fwd, "--backward", "Ops.affine_backward", *shapes, "-q")  # models.py's: db bug
    assert r.exit_code == 1, r.output
    r = gc("fn", "mypkg.models:Ops.rosen", "--grad", "Ops.rosen", "--shape", "x=4")
    assert r.exit_code == 2, r.output  # rosen is no gradient of itself: a contract error
    r = gc("fn", "mypkg.models:Ridge", "--shape", "x=4")
    assert r.exit_code == 2 and "is a class" in r.text, r.output


def test_attribute_paths_in_configs(pkg: Path, write: Any) -> None:
    cfg = """
input: {shape: [4, 3]}
layers:
  - {fn: "%s:Ops.affine", params: {w: [3, 2], b: [2]}}
"""
    (pkg / "good.yaml").write_text(cfg % "mypkg/models.py")
    (pkg / "bad.yaml").write_text(cfg % "models.py")
    assert gc("run", "good.yaml", "-q").exit_code == 0
    assert gc("run", "bad.yaml", "-q").exit_code == 1


def test_scipy_module_targets() -> None:
    pytest.importorskip("scipy")
    r = gc("fn", "scipy.optimize:rosen", "--grad", "scipy.optimize:rosen_der", "--shape", "x=6")
    assert r.exit_code == 0, r.output
    r = gc("fn", "scipy.optimize:rosen", "--grad", "rosen_der", "--shape", "x=6", "-q")
    assert r.exit_code == 0, r.output  # a bare --grad name is looked up next to f
    bugs = FUNCS.parent.parent / "tests" / "buggy_functions.py"
    r = gc("fn", "scipy.optimize:rosen", "--grad", f"{bugs}:rosen_der_half", "--shape", "x=6")
    assert r.exit_code == 1, r.output
    r = gc("fn", "scipy.optimize:rosen", "--grad", "scipy.optimize:rosen_dr", "--shape", "x=6")
    assert r.exit_code == 2 and "did you mean 'rosen_der'" in r.text, r.output


# -- every missing argument in one run --------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "line"),
    [
        ([], "--shape x=… --shape w=… --shape b=…"),
        (["--shape", "x=4x3"], "--shape w=… --shape b=…"),
        (["--shape", "w=3x2"], "--shape x=… --shape b=…"),
    ],
)
def test_every_missing_shape_is_named_in_one_run(given: list[str], line: str) -> None:
    r = gc("fn", f"{FUNCS}/layers.py:affine", *given)
    assert r.exit_code == 2, r.output
    assert line in r.text and "--data NAME=FILE" in r.text, r.output
    names = line.replace("--shape ", "").replace("=…", "").split()
    assert "'" + "', '".join(names) + "'" in r.text or f"'{names[0]}'" in r.text


def test_the_pasted_line_runs() -> None:
    """Twin: with the named shapes filled in, the check runs."""
    r = gc("fn", f"{FUNCS}/layers.py:affine", "--shape", "x=4x3", "--shape", "w=3x2",
           "--shape", "b=2", "-q")  # fmt: skip
    assert r.exit_code == 0, r.output
    with pytest.raises(ConfigError, match="values for its arguments 'x', 'w', 'b'"):
        check_function(f"{FUNCS}/layers.py:affine")


# -- --args-from ---------------------------------------------------------------------------------

W2V = """
import numpy as np


class Dataset:
    '''A seeded sampler, like CS224n's word2vec dataset: each call advances its state.'''

    def __init__(self, seed, vocab):
        self.rng = np.random.default_rng(seed)
        self.vocab = vocab

    def sample(self, k):
        return self.rng.integers(0, self.vocab, k)


CALLS = []


def make_args(seed):
    CALLS.append(seed)
    return {"dataset": Dataset(seed, 6), "k": 3}


def neg_loss(v, U, dataset, k):
    '''Σ over k sampled rows u of log σ(−u·v); the samples come from the dataset.'''
    idx = dataset.sample(k)
    z = U[idx] @ v
    loss = -np.sum(np.log(1 / (1 + np.exp(z))))
    s = 1 / (1 + np.exp(-z))
    dv = U[idx].T @ s
    dU = np.zeros_like(U)
    np.add.at(dU, idx, SCALE * np.outer(s, v))
    return loss, (dv, dU)
"""


def test_args_from_builds_objects_once_and_copies_them_per_call(tmp_path: Path) -> None:
    (tmp_path / "w2v.py").write_text(W2V.replace("SCALE", "1.0"))
    shapes = ["--shape", "v=4", "--shape", "U=6x4"]
    ref = f"{tmp_path}/w2v.py"
    for seed in range(4):
        r = gc("fn", f"{ref}:neg_loss", *shapes, "--args-from", f"{ref}:make_args",
               "--seed", str(seed), "-q")  # fmt: skip
        assert r.exit_code == 0, r.output
    # wrong twin: the planted bug in dU is caught
    (tmp_path / "bad.py").write_text(W2V.replace("SCALE", "1.001"))
    r = gc("fn", f"{tmp_path}/bad.py:neg_loss", *shapes, "--args-from",
           f"{tmp_path}/bad.py:make_args", "--format", "json")  # fmt: skip
    assert r.exit_code == 1, r.output
    assert [p["name"] for p in json.loads(r.stdout)["results"] if not p["passed"]] == ["U"]


def test_args_from_is_called_once_with_the_seed() -> None:
    calls: list[int] = []
    mod: dict[str, Any] = {}
    exec(W2V.replace("SCALE", "1.0"), mod)

    def make(seed: int) -> dict[str, Any]:
        calls.append(seed)
        return {"dataset": mod["Dataset"](seed, 6), "k": 3}

    r = check_function(mod["neg_loss"], shapes={"v": (4,), "U": (6, 4)}, args_from=make, seed=7)
    assert r.passed and calls == [7]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return [1, 2]", "returned list, not a dict of arguments"),
        ("return {'dataset': 1, 'kk': 3}", "neg_loss has no argument 'kk'"),
        ("raise RuntimeError('no corpus')", "RuntimeError: no corpus"),
    ],
)
def test_args_from_mistakes_are_refused(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "w2v.py").write_text(W2V.replace("SCALE", "1.0") + f"\n\ndef bad():\n    {body}\n")
    r = gc("fn", f"{tmp_path}/w2v.py:neg_loss", "--shape", "v=4", "--shape", "U=6x4",
           "--args-from", f"{tmp_path}/w2v.py:bad")  # fmt: skip
    assert r.exit_code == 2 and message in r.text, r.output
    assert "Traceback" not in r.output


def test_args_from_in_configs(write: Any, tmp_path: Path) -> None:
    (tmp_path / "fns.py").write_text(
        (FUNCS / "layers.py").read_text()
        + "\n\ndef bn_args(seed):\n    return {'bn_param': {'momentum': 0.5, 'seed': seed}}\n"
    )
    cfg = """
input: {shape: [6, 4]}
layers:
  - {fn: "fns.py:batchnorm", params: {gamma: [4], beta: [4]}, args_from: "fns.py:%s"}
"""
    assert gc("run", str(write("c.yaml", cfg % "bn_args")), "-q").exit_code == 0
    r = gc("run", str(write("d.yaml", cfg % "bn_argz")))
    assert r.exit_code == 2 and "did you mean 'bn_args'" in r.text, r.output
    r = gc("run", "--no-plugins", str(write("c.yaml", cfg % "bn_args")))
    assert r.exit_code == 2 and "--no-plugins" in r.text


def test_config_data_values_and_loss_data(write: Any, tmp_path: Path) -> None:
    np.save(tmp_path / "cw.npy", np.array([1.0, 2.0, 0.5]))
    (tmp_path / "fns.py").write_text(
        "import numpy as np\n\n"
        "def weighted_mse(pred, target, weights):\n"
        "    d = (pred - target) * weights\n"
        "    return 0.5 * float(np.sum(d * (pred - target))), GRAD\n"
    )
    cfg = """
input: {shape: [4, 2]}
target: {kind: values}
layers: [{type: linear, out: 3}]
loss: {fn: "fns.py:weighted_mse", data: {weights: cw.npy}}
"""
    fns = (tmp_path / "fns.py").read_text()
    (tmp_path / "fns.py").write_text(fns.replace("GRAD", "d"))
    r = gc("run", str(write("c.yaml", cfg)), "-q")
    assert r.exit_code == 0, r.output
    (tmp_path / "bad.py").write_text(fns.replace("GRAD", "(pred - target)"))  # weights forgotten
    r = gc("run", str(write("c2.yaml", cfg.replace("fns.py", "bad.py"))), "-q")
    assert r.exit_code == 1, r.output
    r = gc("run", str(write("c3.yaml", cfg.replace("weights: cw", "wts: cw"))))
    assert r.exit_code == 2 and "has no argument 'wts'" in r.text, r.output


def test_a_missing_file_names_the_resolved_path_and_the_folder(tmp_path: Path) -> None:
    r = gc("fn", f"{tmp_path}/nope.py:f", "--shape", "x=3")
    assert r.exit_code == 2 and f"no file {tmp_path}/nope.py" in r.text, r.output
    assert "config file" not in r.text  # not the config hint: this is the command line
    (tmp_path / "yes.py").write_text("def f(x):\n    return float((x**2).sum())\n")
    r = gc("fn", f"{tmp_path}/yes.py:f", "--grad", f"{tmp_path}/nope.py:g", "--shape", "x=3")
    assert r.exit_code == 2 and f"no file {tmp_path}/nope.py" in r.text, r.output
