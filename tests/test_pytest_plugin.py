"""The pytest plugin and assert_gradients as a user meets them: a throwaway project with a layer
file and a test file, run by pytest (pytester), including a buggy layer that must fail."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gradcheck_cli import ConfigError, build_network, load_config
from gradcheck_cli.layers.linear import Linear
from gradcheck_cli.options import DEFAULT_RTOL
from gradcheck_cli.testing import assert_gradients, build_layer

from .buggy_layers import LinearBiasMean, ReLUNoMask
from .conftest import CONFIGS

pytest_plugins = ["pytester"]

LAYERS = '''
import numpy as np


class Dense:
    """out = x·W + b. x: (N, D), W: (D, M), b: (M,)."""

    def __init__(self, input_shape, rng, out):
        (d,) = input_shape
        self.params = {"W": rng.standard_normal((d, out)) / np.sqrt(d), "b": np.zeros(out)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        self.grads["W"] = self.x.T @ dout
        self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["W"].T


class BuggyDense(Dense):
    """Bug: db averaged over the batch instead of summed."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.grads["b"] = dout.mean(axis=0)
        return dx
'''

TESTS = """
import numpy as np
import pytest

from mylayers import BuggyDense, Dense


def test_dense_fixture(gradcheck):
    result = gradcheck(Dense((4,), np.random.default_rng(0), out=3), shape=(5, 4))
    assert result.passed
    assert [p.name for p in result.params] == ["input", "0.Dense.W", "0.Dense.b"]


def test_buggy_fixture(gradcheck):
    gradcheck(BuggyDense((4,), np.random.default_rng(0), out=3), np.ones((5, 4)))


@pytest.mark.gradcheck(layer=Dense, shape=(5, 4), args={"out": 3})
def test_dense_marker():
    pass


@pytest.mark.gradcheck(layer="mylayers.py:BuggyDense", shape=(6, 4), args={"out": 2})
def test_buggy_marker():
    pass


@pytest.mark.gradcheck(include=["*.W"])
def test_marker_options_are_fixture_defaults(gradcheck):
    result = gradcheck(BuggyDense((4,), np.random.default_rng(0), out=3), shape=(5, 4))
    assert [p.name for p in result.params] == ["0.BuggyDense.W"]
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(mylayers=LAYERS, test_mylayers=TESTS)
    return pytester


def test_fixture_and_marker_in_a_user_project(project: pytest.Pytester) -> None:
    result = project.runpytest("--strict-markers", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=2)
    out = result.stdout.str()
    # the fixture: pytest shows the AssertionError message, a table of what disagrees
    result.stdout.fnmatch_lines(
        [
            "*test_buggy_fixture*",
            "E*gradients disagree for 1 of 3 tensors of 'BuggyDense'*",
            "E*parameter*shape*rel err*max|a−n|*bad*",
            "E*0.BuggyDense.b*3*6.67e-01*3/3*",  # batch 5: db = mean → rel err (5−1)/(5+1)
            "E*0.BuggyDense.b: worst entries*",
            "E*index*analytic*numeric*|a−n|*tolerance*",
        ]
    )
    # the marker: the same table, as plain text without a plugin traceback
    result.stdout.fnmatch_lines(
        [
            "*test_buggy_marker*",
            "gradient check of @pytest.mark.gradcheck: gradients disagree for 1 of 3 tensors*",
            "*0.BuggyDense.b*2*7.14e-01*2/2*",  # batch 6: rel err (6−1)/(6+1)
        ]
    )
    assert "pytest_plugin.py" not in out and "_hooks.py" not in out  # no plugin traceback
    assert "0.Dense" not in out  # nothing about the correct layer


def test_marker_defaults_merge_closest_wins_and_body_runs_first(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mylayers=LAYERS)
    pytester.makepyfile(
        test_merge="""
import pytest
from mylayers import BuggyDense

pytestmark = pytest.mark.gradcheck(include=["*.b"], shape=(5, 4), args={"out": 3})


@pytest.mark.gradcheck(layer=BuggyDense, include=["*.W", "input"])
def test_closest_include_skips_the_bug():
    pass


@pytest.mark.gradcheck(layer=BuggyDense)
def test_module_include_checks_the_bug():
    pass


@pytest.mark.gradcheck(layer=BuggyDense)
def test_failing_body_is_reported_first():
    assert 1 == 2, "the body's own failure"


@pytest.mark.gradcheck("positional")
def test_positional_is_refused(gradcheck):
    pass


@pytest.mark.gradcheck(layer=BuggyDense, shape=None, x=None)
def test_needs_an_input():
    pass


@pytest.mark.gradcheck(layer="mylayers.py:Nope", args={})
def test_unknown_class_is_explained():
    pass
"""
    )
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider", "-rfE")
    result.assert_outcomes(passed=1, failed=4, errors=1)  # the fixture refuses at setup
    out = result.stdout.str()
    sections = dict(
        re.findall(
            r"_{3,} (?:ERROR at setup of )?(test_\w+) _{3,}\n(.*?)(?=\n_{3,} |\n={3,})", out, re.S
        )
    )
    assert "test_closest_include_skips_the_bug" not in sections
    assert "gradients disagree for 1 of 1 tensors" in sections["test_module_include_checks_the_bug"]
    assert "0.BuggyDense.b" in sections["test_module_include_checks_the_bug"]
    body = sections["test_failing_body_is_reported_first"]
    assert "the body's own failure" in body and "gradients disagree" not in body
    assert "needs shape= or x=" in sections["test_needs_an_input"]
    unknown = sections["test_unknown_class_is_explained"]
    assert "cannot run the gradient check" in unknown and "no class 'Nope'" in unknown
    assert "takes keywords only" in sections["test_positional_is_refused"]


def test_entry_point_loads_in_a_fresh_process(project: pytest.Pytester) -> None:
    """Installed gradcheck registers itself with pytest (pytest11) — nothing to configure."""
    result = project.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3, failed=2)
    off = project.runpytest("-p", "no:gradcheck", "-p", "no:cacheprovider", "-q")  # by its name
    off.stdout.fnmatch_lines(["*fixture 'gradcheck' not found*"])


# -- assert_gradients directly ------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_assert_gradients_passes_correct_layers(seed: int) -> None:
    layer = build_layer(Linear, (4,), args={"out": 3}, seed=seed)
    result = assert_gradients(layer, shape=(5, 4), seed=seed)
    assert result.passed and len(result.params) == 3
    assert assert_gradients(build_layer("tanh", (4,)), np.linspace(-2, 2, 8).reshape(2, 4)).passed


@pytest.mark.parametrize("seed", range(5))
def test_assert_gradients_message_names_the_bug(seed: int) -> None:
    layer = build_layer(LinearBiasMean, (4,), args={"out": 3}, seed=seed)
    with pytest.raises(AssertionError) as info:
        assert_gradients(layer, shape=(6, 4), seed=seed)
    lines = str(info.value).splitlines()
    assert lines[0].startswith("gradients disagree for 1 of 3 tensors of 'LinearBiasMean'")
    assert f"seed {seed}" in lines[0] and f"rtol={DEFAULT_RTOL['central', 'float64']:g}" in lines[0]
    rows = [ln.split() for ln in lines if ln.strip().startswith("0.LinearBiasMean")]
    assert rows[0][0] == "0.LinearBiasMean.b" and rows[0][-2:] == ["3/3", "fail"]
    worst = lines[lines.index("  0.LinearBiasMean.b: worst entries") + 2 :]
    assert len(worst) == 3  # every entry of b, each with analytic ≈ numeric / 6 (mean, not sum)
    for row in worst:
        _index, analytic, numeric, _err, _tol, status = row.split()
        assert np.isclose(float(numeric), 6 * float(analytic), rtol=1e-6) and status == "fail"


def test_assert_gradients_on_networks_configs_and_options(write) -> None:
    assert assert_gradients(CONFIGS / "seed_mlp.yaml").passed
    assert assert_gradients(str(CONFIGS / "custom_layer.yaml"), seed=3).seed == 3
    net = build_network(load_config(CONFIGS / "seed_mlp.yaml"))
    assert [p.name for p in assert_gradients(net, include=["*.b"]).params] == [
        "0.linear.b",
        "2.linear.b",
    ]
    assert assert_gradients(Linear, shape=(5, 4), args={"out": 2}, seed=3).seed == 3
    with pytest.raises(AssertionError, match=r"0\.LinearBiasMean\.b"):
        assert_gradients(LinearBiasMean, np.ones((5, 4)), args={"out": 2})
    with pytest.raises(TypeError, match="already built"):
        assert_gradients(build_layer(Linear, (4,), args={"out": 2}), shape=(5, 4), args={"out": 2})
    relu_bug = ReLUNoMask()
    with pytest.raises(AssertionError, match="input"):
        assert_gradients(relu_bug, shape=(6, 5))
    with pytest.raises(ConfigError, match="nothing to check"):  # not a vacuous pass
        assert_gradients(relu_bug, shape=(6, 5), inputs=False)
    with pytest.raises(TypeError, match="pass x or shape"):
        assert_gradients(Linear((3,), np.random.default_rng(0), 2))


# -- relative paths: one rule for the fixture, the marker and assert_gradients ------------------

NET = """
input: {shape: [4, 3]}
layers: [{type: "../../mylayers.py:%s", out: 2}]
"""

PATHS = """
import pytest
from gradcheck_cli.testing import assert_gradients


def test_fixture_config(gradcheck):
    gradcheck("cfg/%(cfg)s.yaml")


def test_fixture_plugin(gradcheck):
    gradcheck("../mylayers.py:%(cls)s", shape=(4, 3), args={"out": 2})


@pytest.mark.gradcheck(layer="cfg/%(cfg)s.yaml")
def test_marker_config():
    pass


@pytest.mark.gradcheck(layer="../mylayers.py:%(cls)s", shape=(4, 3), args={"out": 2})
def test_marker_plugin():
    pass


def test_assert_config():
    assert_gradients("cfg/%(cfg)s.yaml")


def test_assert_plugin():
    assert_gradients("../mylayers.py:%(cls)s", shape=(4, 3), args={"out": 2})
"""


def _path_project(pytester: pytest.Pytester, cls: str, cfg: str) -> pytest.RunResult:
    """Tests in tests/ next to tests/cfg/, the layer file one folder up; pytest runs from the
    project root, so only "relative to the test file" finds them."""
    pytester.makepyfile(mylayers=LAYERS)
    tests = pytester.mkdir("tests")
    (tests / "cfg").mkdir()
    (tests / "cfg" / "net.yaml").write_text(NET % cls)
    (tests / "test_paths.py").write_text(PATHS % {"cls": cls, "cfg": cfg})
    return pytester.runpytest("-p", "no:cacheprovider", "-rf", "tests")


def test_fixture_marker_and_assert_resolve_paths_from_the_test_file(
    pytester: pytest.Pytester,
) -> None:
    _path_project(pytester, "Dense", "net").assert_outcomes(passed=6)


def test_paths_from_the_test_file_check_the_named_code(pytester: pytest.Pytester) -> None:
    """Wrong twin: the same paths naming the buggy layer fail all six (the files are found and
    really checked, not skipped)."""
    result = _path_project(pytester, "BuggyDense", "net")
    result.assert_outcomes(failed=6)
    assert result.stdout.str().count("0.BuggyDense.b") >= 6


def test_a_missing_file_is_one_line_naming_the_resolved_path(pytester: pytest.Pytester) -> None:
    result = _path_project(pytester, "Dense", "nope")
    result.assert_outcomes(passed=3, failed=3)
    out = result.stdout.str()
    wanted = str(pytester.path / "tests" / "cfg" / "nope.yaml")
    errors = [ln for ln in out.splitlines() if "no such file" in ln]
    assert len([ln for ln in errors if wanted in ln]) >= 3, out
    assert "gradcheck_cli/" not in out and "Traceback" not in out  # no internal traceback


def test_function_targets_and_data_files_resolve_from_the_test_file(
    pytester: pytest.Pytester,
) -> None:
    funcs = CONFIGS / "functions"
    pytester.makepyfile(ridge=(funcs / "ridge.py").read_text())
    (pytester.path / "ridge.npz").write_bytes((funcs / "ridge.npz").read_bytes())
    pytester.makepyfile(
        bugs="def grad(w, X, y):\n    return X.T @ (X @ w - y) / len(y) + 0.1 * 1.00001 * w\n"
    )
    tests = pytester.mkdir("tests")
    (tests / "test_fn.py").write_text(
        """
import pytest
from gradcheck_cli.testing import assert_gradients

DATA = {"X": "../ridge.npz:X", "y": "../ridge.npz:y"}


@pytest.mark.gradcheck(fn="../ridge.py:loss", grad="grad", shapes={"w": (5,)}, data=DATA)
def test_marker():
    pass


def test_fixture(gradcheck):
    gradcheck("../ridge.py:loss", grad="grad", shapes={"w": (5,)}, data=DATA)


def test_assert_bug():
    with pytest.raises(AssertionError, match="w"):
        assert_gradients("../ridge.py:loss", grad="../bugs.py:grad", shapes={"w": (5,)}, data=DATA)


def test_missing_data():
    assert_gradients("../ridge.py:loss", grad="grad", shapes={"w": (5,)}, data={"X": "../no.npz:X"})
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "tests")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([f"*no such file: {pytester.path / 'no.npz'}*"])
