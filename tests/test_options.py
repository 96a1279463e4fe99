"""One options object: the same validation and messages from a config, CLI flags, the API and
pytest; integer inputs are ids only when something says so; the report carries what ran."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import CheckOptions, ConfigError, check_layer, check_network, make_layer
from gradcheck_cli.cli import app
from gradcheck_cli.engine.build import build_network
from gradcheck_cli.layers.linear import Linear
from gradcheck_cli.report.jsondoc import to_json_dict
from gradcheck_cli.spec.config import parse_config
from gradcheck_cli.testing import assert_gradients

runner = CliRunner()
pytest_plugins = ["pytester"]


class DxBug(Linear):
    """linear with dx 50 % too large."""

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return super().backward(dout) * 1.5


def _dxbug() -> DxBug:
    return DxBug((3,), np.random.default_rng(1), out=2)


def _x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((4, 3))


# (option values, the message every surface must give)
BAD = {
    "samples-0": ({"mode": "sample", "samples": 0}, "samples", "greater than or equal to 1"),
    "probes-0": ({"mode": "directional", "probes": 0}, "probes", "greater than or equal to 1"),
    "probes-10M": ({"mode": "directional", "probes": 10**7}, "probes", "less than or equal to"),
    "atol-inf": ({"atol": float("inf")}, "atol", "must be a finite number"),
    "rtol-nan": ({"rtol": float("nan")}, "rtol", "must be a finite number"),
    "rtol-2": ({"rtol": 2.0}, "rtol", "must lie in [0, 1]"),
    "eps-0": ({"eps": 0.0}, "eps", "must lie in (0, 1]"),
    "eps-5": ({"eps": 5.0}, "eps", "must lie in (0, 1]"),
    "budget-0": ({"budget": 0.0}, "budget", "must be > 0"),
    "samples-full": ({"mode": "full", "samples": 3}, "mode", "samples applies to mode sample"),
    "probes-full": ({"mode": "full", "probes": 3}, "mode", "probes applies to mode directional or sample"),
    "include-empty": ({"include": [""]}, "include", "non-empty"),
    "exclude-none": ({"exclude": []}, "exclude", "non-empty list"),
    "method": ({"method": "backward"}, "method", "'backward'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_api_refuses_what_a_config_refuses(case: str) -> None:
    values, field, needle = BAD[case]
    with pytest.raises(ConfigError) as api:
        check_layer(_dxbug(), _x(), **values)
    assert api.value.field == field and needle in api.value.message
    cfg = {"input": {"shape": [4, 3]}, "layers": [{"type": "linear", "out": 2}], "check": values}
    with pytest.raises(ConfigError) as conf:
        parse_config(json.loads(json.dumps(cfg, allow_nan=True)), source="c.yaml")
    assert needle in conf.value.message, conf.value.message
    assert conf.value.field is not None and conf.value.field.startswith("check")


@pytest.mark.parametrize("case", ["samples-0", "atol-inf", "samples-full", "eps-5"])
def test_pytest_marker_refuses_it_too(case: str, pytester: pytest.Pytester) -> None:
    values, _, needle = BAD[case]
    kwargs = ", ".join(f"{k}={v!r}" for k, v in values.items()).replace("inf", 'float("inf")')
    pytester.makepyfile(
        f"""
        import pytest
        @pytest.mark.gradcheck(layer="linear", shape=(4, 3), args={{"out": 2}}, {kwargs})
        def test_it():
            pass
        """
    )
    res = pytester.runpytest("-q", "-p", "no:cacheprovider")
    res.assert_outcomes(failed=1)
    assert needle in res.stdout.str()


@pytest.mark.parametrize(
    ("flags", "field", "needle"),
    [
        (["--mode", "sample", "--samples", "0"], "--samples", "1"),
        (["--mode", "full", "--samples", "3"], "--mode", "samples applies to mode sample"),
        (["--include", ""], "--include", "non-empty"),
        (["--budget", "0"], "--budget", "must be > 0"),
    ],
)
def test_cli_flags_meet_the_same_rules(flags: list[str], field: str, needle: str) -> None:
    for command in (["run"], ["layer", "linear", "--arg", "out=2"]):
        r = runner.invoke(app, [*command, *flags], env={"COLUMNS": "240"})
        assert r.exit_code == 2, r.output
        assert field in r.output and needle in r.output and "Traceback" not in r.output


def test_samples_alone_selects_sample_mode() -> None:
    """--samples without --mode is not ignored: it selects sample mode (said in --help)."""
    r = runner.invoke(app, ["run", "--samples", "3", "--format", "json"])
    doc = json.loads(r.stdout)
    assert doc["mode"] == "sample" and doc["samples"] == 3
    assert all(p["checked"] <= 3 for p in doc["results"])
    r = runner.invoke(app, ["run", "--probes", "1", "--format", "json"])
    assert json.loads(r.stdout)["mode"] == "directional"


def test_config_eps_dropped_when_another_method_is_asked() -> None:
    base = CheckOptions.build(eps=1e-5)
    assert CheckOptions.build(base, method="forward").eps is None
    assert CheckOptions.build(base, method="forward", eps=1e-7).eps == 1e-7
    assert CheckOptions.build(base, rtol=1e-3).eps == 1e-5


def test_options_are_immutable() -> None:
    opts = CheckOptions.build(samples=3)
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        opts.samples = 0  # type: ignore[misc]


# -- integer inputs --------------------------------------------------------------------------


def test_integer_x_is_converted_and_dx_checked() -> None:
    """C8: an integer-valued x to a float layer is not silently taken as ids."""
    x_int = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 0, 2]])
    res = check_layer(_dxbug(), x_int)
    assert "input" in [p.name for p in res.params]
    assert not res.passed and [p.name for p in res.failures] == ["input"]
    assert any("converted to float64" in n for n in res.notes)
    with pytest.raises(AssertionError):
        assert_gradients(_dxbug(), x=x_int)


def test_ids_when_the_call_or_the_layer_says_so() -> None:
    x_int = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 0, 2]])
    res = check_layer(_dxbug(), x_int, discrete=True)
    assert [p.name for p in res.params] == ["0.DxBug.W", "0.DxBug.b"]
    emb = make_layer("embedding", input_shape=(3,), vocab=10, dim=4)
    res = check_layer(emb, x_int)
    assert res.passed and [p.name for p in res.params] == ["0.embedding.W"]


def test_config_integers_are_ids() -> None:
    cfg = parse_config(
        {
            "input": {"shape": [4, 3], "integers": 10},
            "layers": [
                {"type": "embedding", "vocab": 10, "dim": 2},
                {"type": "flatten"},
                {"type": "linear", "out": 2},
            ],
        }
    )
    res = check_network(build_network(cfg))
    assert res.passed and "input" not in [p.name for p in res.params]


# -- one naming, one document ------------------------------------------------------------------


def test_api_names_built_ins_as_the_cli_does() -> None:
    lay = make_layer("linear", input_shape=(3,), out=2)
    res = check_layer(lay, _x(), include=["0.linear.*"])
    assert [p.name for p in res.params] == ["0.linear.W", "0.linear.b"]
    r = runner.invoke(
        app, ["layer", "linear", "--arg", "out=2", "--include", "0.linear.*", "--format", "json"]
    )
    assert [p["name"] for p in json.loads(r.stdout)["results"]] == ["0.linear.W", "0.linear.b"]


def test_to_dict_is_the_json_report() -> None:
    res = check_layer(make_layer("linear", input_shape=(3,), out=2), _x())
    assert res.to_dict() == to_json_dict(res)
    assert "results" in res.to_dict() and "params" not in res.to_dict()


def test_report_carries_the_options_that_ran(tmp_path: Path) -> None:
    """The JSON's options (defaults filled in) replay the run: same numbers."""
    r = runner.invoke(app, ["run", "--format", "json", "--exclude", "input"])
    doc = json.loads(r.stdout)
    opts = doc["options"]
    assert opts["eps"] == 1e-5 and opts["rtol"] == 1e-7 and opts["mode"] == "full"
    assert opts["exclude"] == ["input"] and opts["method"] == "central"
    again = runner.invoke(
        app,
        [
            "run", "--format", "json", "--eps", str(opts["eps"]), "--rtol", str(opts["rtol"]),
            "--mode", opts["mode"], "--exclude", "input", "--seed", str(doc["seed"]),
        ],
    )  # fmt: skip
    assert json.loads(again.stdout)["results"] == doc["results"]


def test_replay_command_states_the_selection() -> None:
    buggy = str(Path(__file__).with_name("buggy_layers.py")) + ":LinearBiasMean"
    args = ["layer", buggy, "--arg", "out=2", "--exclude", "input", "--samples", "4"]
    r = runner.invoke(app, args, env={"COLUMNS": "400"})
    assert r.exit_code == 1, r.output
    flat = " ".join(r.output.split())
    assert "--exclude input" in flat and "--mode sample --samples 4" in flat
    assert "sample: 4 entries and 2 probe(s) per tensor · exclude input" in flat  # and the header says so


def test_one_rule_for_strings_fixture_marker_and_api(pytester: pytest.Pytester) -> None:
    """"relu" is a layer and "net.yaml" a config, for the fixture and the marker alike."""
    pytester.makefile(
        ".yaml", net="input: {shape: [4, 3]}\nlayers: [{type: linear, out: 2}]\n"
    )
    pytester.makepyfile(
        """
        import pytest

        def test_fixture_layer(gradcheck):
            assert gradcheck("relu", shape=(4, 3)).params[0].name == "input"

        def test_fixture_config(gradcheck):
            assert gradcheck("net.yaml").name == "network"

        @pytest.mark.gradcheck(layer="relu", shape=(4, 3))
        def test_marker_layer():
            pass

        @pytest.mark.gradcheck(layer="net.yaml")
        def test_marker_config():
            pass
        """
    )
    res = pytester.runpytest("-q", "-p", "no:cacheprovider")
    res.assert_outcomes(passed=4)
    with pytest.raises(TypeError, match="needs shape"):
        assert_gradients("relu")


def test_header_says_where_eps_came_from(tmp_path: Path) -> None:
    cfg = tmp_path / "net.yaml"
    cfg.write_text("input: {shape: [4, 3]}\nlayers: [{type: linear, out: 2}]\ncheck: {eps: 1.0e-5}\n")
    wide = {"COLUMNS": "300"}
    r = runner.invoke(app, ["run", str(cfg), "--method", "forward"], env=wide)
    assert "ε=1e-08 (default; the config's ε=1e-05 is for central)" in r.output
    assert "ε=1e-05 (config)" in runner.invoke(app, ["run", str(cfg)], env=wide).output
    assert "ε=0.0001 (--eps)" in runner.invoke(app, ["run", str(cfg), "--eps", "1e-4"], env=wide).output
    res = check_layer(make_layer("linear", input_shape=(3,), out=2), _x())
    assert res.options["eps_source"] == "default"


def test_a_mode_flag_drops_the_config_sizes_of_another_mode(tmp_path: Path) -> None:
    """check: {samples: 3} in a config and --mode full: the flag wins, the sizes do not apply."""
    base = CheckOptions.build(samples=3)
    assert CheckOptions.build(base, mode="full").samples is None
    assert CheckOptions.build(base, mode="sample").samples == 3
    with pytest.raises(ConfigError, match="samples applies to mode sample"):
        CheckOptions.build(base, mode="full", samples=3)  # the same source says both
    cfg = tmp_path / "net.yaml"
    cfg.write_text("input: {shape: [4, 3]}\nlayers: [{type: linear, out: 2}]\ncheck: {samples: 3}\n")
    r = runner.invoke(app, ["run", str(cfg), "--mode", "full", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["mode"] == "full"
