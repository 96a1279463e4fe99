"""Real code without adapters (issue 25), its arguments: fixed data (--data / data:, read-only,
never differentiated, counted before it is read, an input no output may replace) and objects built
by --args-from / args_from:. Each point has its wrong twin: a planted bug that must be caught, or a
wrong name that must be refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import check_function
from gradcheck_cli.cli import app

from .conftest import CONFIGS

FUNCS = CONFIGS / "functions"
runner = CliRunner()


def gc(*args: str) -> Any:
    r = runner.invoke(app, list(args), env={"COLUMNS": "240"})
    r.text = " ".join(r.output.split())  # type: ignore[attr-defined]
    return r


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
