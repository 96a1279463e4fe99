"""Fuzzing the CLI (issue 7): whatever the config — valid, subtly invalid, or random bytes — the
CLI exits 0, 1 or 2 with a message, never a traceback or an internal error.

Runs in-process through CliRunner (fast); a few cases go through the real entry point. Budget:
each property has max_examples ≤ 60 and tiny shapes, so the file runs in a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gradcheck_cli.cli import app
from gradcheck_cli.layers.registry import LAYERS

from .conftest import CONFIGS

runner = CliRunner()
#: Examples per property: small in CI; GRADCHECK_FUZZ_EXAMPLES=1000 for a longer local hunt.
FUZZ_EXAMPLES = int(os.environ.get("GRADCHECK_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def run_text(text: str | bytes, suffix: str = ".yaml", *args: str):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"cfg{suffix}"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path, runner.invoke(app, ["run", str(path), *args], env={"COLUMNS": "200"})


def assert_answered(r, path: Path) -> None:
    """Exit 0/1 with a verdict, or exit 2 with an error naming the file; nothing else."""
    assert isinstance(r.exception, SystemExit) or r.exception is None, repr(r.exception)
    assert r.exit_code in (0, 1, 2), r.output
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    assert "RuntimeWarning" not in r.output, r.output
    if r.exit_code == 2:
        assert r.stderr.startswith("error:"), r.output
        assert str(path) in " ".join(r.output.split()) or "--" in r.output, r.output
    else:
        # the closing line counts outcomes: "… agree", "disagree", or "zero here" (L flat)
        assert "agree" in r.output or "zero here" in r.output, r.output


# -- strategies -----------------------------------------------------------------------------------

weird = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=4),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-3, 6),
    st.lists(st.integers(-1, 4), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2),
)
small = st.integers(1, 4)
maybe = lambda good: st.one_of(good, good, good, weird)  # noqa: E731  (mostly valid)

layer = st.one_of(
    st.sampled_from(sorted(LAYERS)),
    st.fixed_dictionaries(
        {"type": maybe(st.sampled_from([*sorted(LAYERS), "lienar", "Relu", "x.py:Y", ":"]))},
        optional={"out": maybe(small), "slope": maybe(st.floats(-1, 1)), "oot": small},
    ),
)
data_spec = st.fixed_dictionaries(
    {},
    optional={
        "shape": maybe(st.lists(maybe(small), min_size=2, max_size=3)),
        "values": maybe(st.lists(st.lists(st.floats(-3, 3), min_size=2, max_size=2), max_size=3)),
        "file": st.sampled_from(["x.npy", "", "/dev/null"]),
    },
)
check_spec = st.fixed_dictionaries(
    {},
    optional={
        "eps": maybe(st.floats(1e-8, 1e-2)),
        "rtol": maybe(st.floats(1e-8, 1e-2)),
        "atol": maybe(st.floats(0, 1e-6)),
        "inputs": maybe(st.booleans()),
        "epss": small,
    },
)
config = st.fixed_dictionaries(
    {"input": maybe(data_spec), "layers": maybe(st.lists(layer, min_size=0, max_size=3))},
    optional={
        "seed": maybe(st.integers(0, 2**32 - 1)),
        "dtype": maybe(st.sampled_from(["float64", "float32", "float16"])),
        "target": maybe(
            st.fixed_dictionaries(
                {"kind": maybe(st.sampled_from(["classes", "values", "none"]))},
                optional={"classes": maybe(small), "values": weird},
            )
        ),
        "loss": maybe(
            st.fixed_dictionaries(
                {"type": maybe(st.sampled_from(["mse", "softmax_cross_entropy", "mze"]))}
            )
        ),
        "check": maybe(check_spec),
        "name": st.text(max_size=8),
        "lyers": weird,
    },
)


def dump(data: Any, fmt: str) -> str:
    return json.dumps(data) if fmt == "json" else yaml.safe_dump(data, allow_unicode=True)


# -- properties -----------------------------------------------------------------------------------


valid_layer = st.one_of(
    st.sampled_from(["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "gelu", "silu"]),
    st.builds(lambda n: {"type": "linear", "out": n}, small),
)
valid_config = st.fixed_dictionaries(
    {
        "input": st.builds(lambda s: {"shape": s}, st.lists(small, min_size=2, max_size=2)),
        "layers": st.lists(valid_layer, min_size=1, max_size=3),
    },
    optional={
        "seed": st.integers(0, 2**32 - 1),
        "dtype": st.sampled_from(["float64", "float32"]),
        "check": check_spec.filter(lambda c: "epss" not in c),
        "name": st.text(max_size=8),
    },
)


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) in a parsed config, for mutation."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for k, v in list(items):
        out.append((node, k))
        if isinstance(v, (dict, list)):
            _slots(v, out)
    return out


@FUZZ
@given(base=valid_config, fmt=st.sampled_from(["yaml", "json"]), data=st.data())
def test_mutated_configs_always_get_an_answer(base: dict[str, Any], fmt: str, data) -> None:
    """A valid config with 0-2 subtle changes: a value swapped for a weird one, a key dropped,
    or a key misspelt. Whatever comes out, the answer is 0, 1 or 2 with a message."""
    for _ in range(data.draw(st.integers(0, 2))):
        slots = _slots(base, [])
        node, key = data.draw(st.sampled_from(slots))
        op = data.draw(st.sampled_from(["replace", "delete", "typo"]))
        if op == "replace" or isinstance(node, list):
            node[key] = data.draw(weird)
        elif op == "delete":
            del node[key]
        else:
            node[str(key)[:-1] + "x"] = node.pop(key)
    path, r = run_text(dump(base, fmt), f".{fmt}")
    assert_answered(r, path)


@FUZZ
@given(data=config, fmt=st.sampled_from(["yaml", "json"]))
def test_generated_configs_always_get_an_answer(data: dict[str, Any], fmt: str) -> None:
    path, r = run_text(dump(data, fmt), f".{fmt}")
    assert_answered(r, path)


SMOOTH = ["sigmoid", "tanh", "softmax"]


@FUZZ
@given(
    widths=st.lists(small, min_size=1, max_size=3),
    acts=st.lists(st.sampled_from(SMOOTH), min_size=3, max_size=3),
    batch=small,
    features=small,
    seed=st.integers(0, 2**32 - 1),
    loss=st.sampled_from(["mse", "softmax_cross_entropy", None]),
)
def test_valid_smooth_networks_pass(widths, acts, batch, features, seed, loss) -> None:
    """No false alarms: a correct network (built-ins, no kinks, float64) always passes."""
    layers: list[Any] = []
    for w, a in zip(widths, acts, strict=False):
        layers += [{"type": "linear", "out": w}, a]
    data: dict[str, Any] = {"seed": seed, "input": {"shape": [batch, features]}, "layers": layers}
    if loss:
        kind = "classes" if loss == "softmax_cross_entropy" else "values"
        data |= {"loss": {"type": loss}, "target": {"kind": kind}}
    path, r = run_text(dump(data, "yaml"))
    assert_answered(r, path)
    assert r.exit_code == 0, r.output


SEED_TEXT = (CONFIGS / "seed_mlp.yaml").read_text()


@FUZZ
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(SEED_TEXT) - 1),
            st.sampled_from(["delete", "insert", "replace"]),
            st.sampled_from(list("{}[]:,-'\"!&*#|>\n 0123456789.eaxyz\t%@`")),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_seed_config_gets_an_answer(edits) -> None:
    """Subtly invalid: the default config with a few characters changed."""
    text = SEED_TEXT
    for pos, op, ch in edits:
        pos = min(pos, len(text))
        if op == "delete":
            text = text[:pos] + text[pos + 1 :]
        elif op == "insert":
            text = text[:pos] + ch + text[pos:]
        else:
            text = text[:pos] + ch + text[pos + 1 :]
    path, r = run_text(text)
    assert_answered(r, path)


@FUZZ
@given(blob=st.binary(max_size=400), suffix=st.sampled_from([".yaml", ".json", ".txt"]))
def test_random_bytes_are_refused_cleanly(blob: bytes, suffix: str) -> None:
    path, r = run_text(blob, suffix)
    assert_answered(r, path)
    assert r.exit_code == 2


@pytest.mark.parametrize(
    "blob",
    [b"\x00\x01\x02", b"!!python/object/apply:os.system ['true']", b"[" * 500],
    ids=["nul", "python-tag", "deep"],
)
def test_real_entry_point_refuses_garbage(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_bytes(blob)
    proc = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr
    assert str(path) in " ".join(proc.stderr.split())


# -- Hardening II surfaces: nested specs, context names, output paths, fd-level writes ------------

EVIL = "import pathlib\npathlib.Path(__file__).with_name('PWNED').write_text('x')\nclass Evil:\n    pass\n"
plugin_ref = st.sampled_from(["evil.py:Evil", "./evil.py:Evil", "evil:Evil"])


def nest(inner: Any, depth: int, wrap: int) -> Any:
    """``inner`` placed ``depth`` residual blocks deep, among built-in siblings."""
    for _ in range(depth):
        inner = {"type": "residual", "layers": [*(["relu"] * wrap), inner]}
    return inner


@FUZZ
@given(
    ref=plugin_ref,
    depth=st.integers(0, 4),
    wrap=st.integers(0, 2),
    as_dict=st.booleans(),
    key=st.sampled_from(["type", "fn"]),
    command=st.sampled_from(["run", "validate", "sweep"]),
)
def test_no_plugins_finds_code_at_any_depth(
    ref: str, depth: int, wrap: int, as_dict: bool, key: str, command: str
) -> None:
    leaf: Any = {key: ref} if as_dict or key == "fn" else ref
    spec = {"input": {"shape": [2, 3]}, "layers": ["tanh", nest(leaf, depth, wrap)]}
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "evil.py").write_text(EVIL)
        path = Path(d) / "net.yaml"
        path.write_text(dump(spec, "yaml"))
        r = runner.invoke(app, [command, "--no-plugins", str(path)])
        assert r.exit_code == 2, r.output
        field = "layers[1]" + f".layers[{wrap}]" * depth
        field += f".{key}" if as_dict or key == "fn" else ""
        assert f"{field}: names the plugin" in " ".join(r.output.split()), r.output
        assert not (Path(d) / "PWNED").exists()


@FUZZ
@given(
    name=st.sampled_from(["base_dir", "input_shape", "dtype", "rng"]),
    value=weird,
    depth=st.integers(0, 3),
)
def test_context_names_are_never_layer_arguments(name: str, value: Any, depth: int) -> None:
    spec = {"input": {"shape": [2, 3]}, "layers": [nest({"type": "relu", name: value}, depth, 1)]}
    path, r = run_text(dump(spec, "json"), ".json")
    assert_answered(r, path)
    assert r.exit_code == 2 and name in r.output, r.output


@FUZZ
@given(
    option=st.sampled_from(["--junit-xml", "--export-html", "--export-svg"]),
    target=st.sampled_from(["net.yaml", "my.py", "x.npy"]),
    spelling=st.sampled_from(["{d}/{t}", "{d}/./{t}", "{d}/sub/../{t}"]),
)
def test_outputs_never_overwrite_inputs(option: str, target: str, spelling: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "sub").mkdir()
        (root / "my.py").write_text(
            "import numpy as np\nclass L:\n    def __init__(self):\n"
            "        self.params, self.grads = {}, {}\n"
            "    def forward(self, x):\n        return 2 * x\n"
            "    def backward(self, d):\n        return 2 * d\n"
        )
        np.save(root / "x.npy", np.ones((2, 3)))
        (root / "net.yaml").write_text("input: {file: x.npy}\nlayers: [{type: 'my.py:L'}]\n")
        before = {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()}
        out = spelling.format(d=d, t=target)
        r = runner.invoke(app, ["run", str(root / "net.yaml"), option, out, "-q"])
        assert r.exit_code == 2 and "an input of this run" in r.output, r.output
        assert {p.name: p.read_bytes() for p in root.iterdir() if p.is_file()} == before


@pytest.mark.parametrize(
    "write",
    [
        'os.write(1, b\'{"not": "the report"}\\n\')',
        "sys.__stdout__.write('junk'); sys.__stdout__.flush()",
        "os.system('echo from a child process')",
    ],
)
def test_fd_level_writes_never_reach_stdout(tmp_path: Path, write: str) -> None:
    (tmp_path / "w.py").write_text(
        "import os, sys, numpy as np\nclass W:\n    def __init__(self):\n"
        "        self.params, self.grads = {}, {}\n"
        f"    def forward(self, x):\n        {write}\n        return 2 * x\n"
        "    def backward(self, d):\n        return 2 * d\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gradcheck_cli", "layer", "w.py:W", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["passed"] is True
