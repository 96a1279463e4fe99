"""Determinism and restoration (issue 7): same config and seed → byte-identical JSON; the checker
never reads or moves NumPy's global RNG; after a check every parameter and the caller's x are
bit-identical to before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gradcheck_cli import build_network, check_layer, check_network, load_config, make_layer
from gradcheck_cli.cli import app
from gradcheck_cli.errors import PluginError
from gradcheck_cli.spec.config import parse_config

from .conftest import CONFIGS

runner = CliRunner()
EXAMPLES = sorted(CONFIGS.glob("*.yaml"))


def json_report(*args: str) -> bytes:
    r = runner.invoke(app, [*args, "--format", "json"])
    assert r.exit_code == 0, r.output
    return r.stdout_bytes


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.name)
def test_same_config_same_bytes(config: Path) -> None:
    first = json_report("run", str(config), "--seed", "7")
    assert json_report("run", str(config), "--seed", "7") == first


def test_float32_and_layer_command_are_deterministic(tmp_path: Path) -> None:
    path = tmp_path / "f32.yaml"
    path.write_text((CONFIGS / "regression_mse.yaml").read_text() + "dtype: float32\n")
    assert json_report("run", str(path)) == json_report("run", str(path))
    cmd = ("layer", "linear", "--shape", "3x4", "--arg", "out=2", "--seed", "5")
    assert json_report(*cmd) == json_report(*cmd)


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.name)
def test_global_numpy_rng_is_neither_read_nor_moved(config: Path) -> None:
    np.random.seed(1)
    a = json_report("run", str(config))
    np.random.seed(2)
    state = np.random.get_state()
    b = json_report("run", str(config))
    after = np.random.get_state()
    assert a == b  # a user's np.random.seed changes nothing
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_api_leaves_global_rng_alone() -> None:
    np.random.seed(123)
    before = np.random.get_state()
    net = build_network(load_config(CONFIGS / "seed_mlp.yaml"))
    check_network(net)
    lay = make_layer("linear", (3,), out=2)
    check_layer(lay, np.ones((2, 3)))
    after = np.random.get_state()
    assert np.array_equal(before[1], after[1]) and before[2:] == after[2:]


# -- restoration ----------------------------------------------------------------------------------

ACTS = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "gelu", "elu", "softplus", "silu"]


def _snapshot(net: Any) -> list[bytes]:
    return [p.tobytes() for layer in net.layers for p in layer.params.values()]


@settings(max_examples=40, deadline=None)
@given(
    widths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    acts=st.lists(st.sampled_from(ACTS), min_size=3, max_size=3),
    shape=st.lists(st.integers(1, 4), min_size=2, max_size=2),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(["float64", "float32"]),
)
def test_parameters_and_input_are_bit_identical_after_a_check(widths, acts, shape, seed, dtype):
    layers: list[Any] = []
    for w, a in zip(widths, acts, strict=False):
        layers += [{"type": "linear", "out": w}, a]
    cfg = parse_config({"seed": seed, "dtype": dtype, "input": {"shape": shape}, "layers": layers})
    net = build_network(cfg)
    before = _snapshot(net)
    x = net.x.copy()
    caller_x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    caller_copy = caller_x.copy()
    check_network(net)
    check_network(net, caller_x)
    assert _snapshot(net) == before
    assert net.x.tobytes() == x.tobytes()
    assert caller_x.tobytes() == caller_copy.tobytes()


FLAKY = """
import numpy as np
class Flaky:
    '''Raises from forward on call number `fail_at` (in the middle of the perturbation loop).'''
    def __init__(self, input_shape, rng, fail_at=7):
        self.params = {"W": rng.standard_normal((input_shape[0], 2))}
        self.grads = {"W": np.zeros((input_shape[0], 2))}
        self.fail_at, self.calls = fail_at, 0
    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise ValueError("flaky")
        self.x = x
        return x @ self.params["W"]
    def backward(self, dout):
        self.grads["W"] = self.x.T @ dout
        return dout @ self.params["W"].T
"""


@pytest.mark.parametrize("fail_at", [3, 5, 8, 12])
def test_a_plugin_error_mid_check_leaves_parameters_restored(tmp_path: Path, fail_at: int) -> None:
    (tmp_path / "flaky.py").write_text(FLAKY)
    lay = make_layer("flaky.py:Flaky", (3,), base_dir=tmp_path, fail_at=fail_at)
    before = lay.params["W"].tobytes()
    x = np.arange(6.0).reshape(2, 3)
    with pytest.raises(PluginError, match="flaky"):
        check_layer(lay, x)
    assert lay.params["W"].tobytes() == before
    assert x.tobytes() == np.arange(6.0).reshape(2, 3).tobytes()
