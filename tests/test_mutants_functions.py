"""Function pairs (issue 28, gap 11 and its neighbours): which forward a name finds, which backward
goes with it, how a function's arguments are drawn and passed. Each test pins a behaviour a user
relies on (the pair checked, the exit code, the message) and fails when the mechanism breaks;
small and fast, since benchmarks/mutate.py runs this file first for functions/*.py."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from gradcheck_cli import check_function
from gradcheck_cli.cli import app
from gradcheck_cli.errors import ConfigError, PluginError
from gradcheck_cli.functions.pairs import (
    API_FIELDS,
    CLI_FIELDS,
    Arguments,
    arguments,
    find,
    forwards_for,
    parameters,
)

runner = CliRunner()


def gc(*args: str) -> Any:
    r = runner.invoke(app, list(args), env={"COLUMNS": "240"})
    r.text = " ".join(r.output.split())  # type: ignore[attr-defined]
    return r


GOOD = "    x, w = cache\n    return dout * w, (dout * x).sum(0)\n"
BAD = "    x, w = cache\n    return dout * w, (dout * x).mean(0)\n"


def _pair(name: str, body: str = GOOD, back: str | None = None) -> str:
    back = back or name.replace("forward", "backward")
    return f"def {name}(x, w):\n    return x * w, (x, w)\n\ndef {back}(dout, cache):\n{body}\n"


def _write(tmp_path: Path, text: str, name: str = "ops") -> Path:
    ops = tmp_path / f"{name}.py"
    ops.write_text("import numpy as np\n\n" + text)
    return ops


SCALE = ["--shape", "x=3x4", "--shape", "w=4", "-q"]


# -- which forwards a name means ------------------------------------------------------------------


def test_forwards_for_prefers_exact_then_suffixed_then_any() -> None:
    f = {
        "affine_forward": 1, "affine_backward": 1, "affine_forward_fast": 1,
        "affine_relu_forward": 1, "affine_helper": 1, "affinex_forward": 1,
    }  # fmt: skip
    assert forwards_for("affine", f) == ["affine_forward"]
    del f["affine_forward"]
    assert forwards_for("affine", f) == ["affine_forward_fast"]
    del f["affine_forward_fast"]
    # a helper without a forward word is never a forward; another prefix (affinex) is not NAME_
    assert forwards_for("affine", f) == ["affine_relu_forward"]
    assert forwards_for("affine", {"affine_fwd": 1, "affine_fwd_x": 1}) == ["affine_fwd"]


def test_a_name_with_two_forwards_is_refused_naming_both(tmp_path: Path) -> None:
    ops = _write(tmp_path, _pair("lin_step_forward") + _pair("lin_cell_forward"))
    r = gc("fn", f"{ops}:lin", *SCALE)
    assert r.exit_code == 2, r.output
    assert "matches several forward functions" in r.text
    assert "lin_step_forward" in r.text and "lin_cell_forward" in r.text


def test_a_forward_without_backward_counts_only_when_the_backward_is_given(
    tmp_path: Path,
) -> None:
    """`--backward` names the backward: a forward with no `_backward` next to it is then found
    (and a wrong given backward is caught: exit 1)."""
    text = "def lin_forward(x, w):\n    return x * w, (x, w)\n\n"
    text += "def grad_good(dout, cache):\n" + GOOD + "\ndef grad_bad(dout, cache):\n" + BAD
    ops = _write(tmp_path, text)
    r = gc("fn", f"{ops}:lin", "--backward", "grad_good", *SCALE)
    assert r.exit_code == 0, r.output
    r = gc("fn", f"{ops}:lin", "--backward", "grad_bad", *SCALE)
    assert r.exit_code == 1, r.output
    r = gc("fn", f"{ops}:lin", *SCALE)  # no backward given, none next to it
    assert r.exit_code == 2 and "lin_forward has no lin_backward" in r.text, r.output


def test_a_label_keeps_the_object_path(tmp_path: Path) -> None:
    text = (
        "class Ops:\n    @staticmethod\n    def lin_forward(x, w):\n        return x * w, (x, w)\n"
        "    @staticmethod\n    def lin_backward(dout, cache):\n        return dout, dout\n"
    )
    ops = _write(tmp_path, text)
    found = find(f"{ops}:Ops.lin")
    assert found.kind == "pair" and found.label == "Ops.lin_forward"
    assert found.backward is not None and found.backward.__name__ == "lin_backward"


def test_an_unknown_name_suggests_the_close_forward(tmp_path: Path) -> None:
    ops = _write(tmp_path, _pair("affine_forward"))
    with pytest.raises(PluginError) as e:
        find(f"{ops}:afine")
    assert "did you mean 'affine_forward'" in (e.value.hint or "")


def test_grad_given_with_a_missing_function_is_refused(tmp_path: Path) -> None:
    ops = _write(tmp_path, "def f(x):\n    return (x**2).sum()\n\ndef df(x):\n    return 2*x\n")
    with pytest.raises(PluginError):
        find(f"{ops}:g", grad="df")
    found = find(f"{ops}:f", grad="df")
    assert found.kind == "f" and found.backward is not None and found.backward.__name__ == "df"


def test_a_callable_finds_its_backward_by_its_own_name(tmp_path: Path) -> None:
    """A forward given as a Python callable finds `…_backward` in its module; a full name
    `lin_forward` given as a string too; a plain function is a loss."""
    ops = _write(tmp_path, _pair("lin_forward") + "def plain(x):\n    return x.sum(), x\n")
    space_found = find(f"{ops}:lin_forward")
    assert space_found.kind == "pair"
    assert space_found.backward is not None and space_found.backward.__name__ == "lin_backward"
    fwd = space_found.forward
    alias = find(fwd)
    assert alias.kind == "pair" and alias.backward is space_found.backward
    assert find(f"{ops}:plain").kind == "loss"


def test_a_wrong_pair_reached_by_its_forward_name_is_caught(tmp_path: Path) -> None:
    ops = _write(tmp_path, _pair("lin_forward", BAD))
    r = gc("fn", f"{ops}:lin_forward", *SCALE)
    assert r.exit_code == 1, r.output
    ops = _write(tmp_path, _pair("lin_forward"), "good")
    r = gc("fn", f"{ops}:lin_forward", *SCALE)
    assert r.exit_code == 0, r.output


# -- how arguments are drawn and passed ----------------------------------------------------------


def _fn(x, w, b=None, *rest, scale=1.0, **kw):  # type: ignore[no-untyped-def]
    return x


def test_parameters_leave_out_star_args() -> None:
    assert [p.name for p in parameters(_fn)] == ["x", "w", "b", "scale"]


def test_after_a_default_left_out_the_rest_go_by_keyword() -> None:
    seen: dict[str, Any] = {}

    def f(x, b=7, w=None, *, k=0):  # type: ignore[no-untyped-def]
        seen.update(x=x, b=b, w=w, k=k)
        return x

    argv = Arguments("f", parameters(f), arrays={"x": np.ones(2), "w": np.zeros(2)},
                     values={"k": [1]})  # fmt: skip
    argv.call(f, {})
    assert seen["b"] == 7 and np.array_equal(seen["w"], np.zeros(2)) and seen["k"] == [1]
    # values are deep-copied for every call: a forward that writes into them changes nothing
    assert seen["k"] is not argv.values["k"]
    override = np.full(2, 5.0)
    argv.call(f, {"x": override})
    assert seen["x"] is override


def test_integer_ids_take_the_first_float_shape_without_its_last_axis() -> None:
    def loss(x, y):  # type: ignore[no-untyped-def]
        return 0.0, x

    argv = arguments(loss, shapes={"x": (5, 3)}, integers={"y": 3}, seed=1)
    y = argv.arrays["y"]
    assert y.shape == (5,) and y.dtype.kind == "i" and y.min() >= 0 and y.max() <= 2
    assert argv.float_names == ["x"]
    big = arguments(loss, shapes={"x": (400, 3)}, integers={"y": 3}, seed=1).arrays["y"]
    assert set(big.tolist()) == {0, 1, 2}  # every id in [0, n) can be drawn, n itself never
    with pytest.raises(ConfigError, match="give the shape of the ids"):
        arguments(loss, shapes={"x": (5,)}, integers={"y": 3})  # 1-d: no labels axis


def test_ids_given_their_own_shape_and_before_any_float() -> None:
    def loss(y, x):  # type: ignore[no-untyped-def]
        return 0.0, x

    with pytest.raises(ConfigError, match="give the shape of the ids"):
        arguments(loss, shapes={"x": (5, 3)}, integers={"y": 3})
    argv = arguments(loss, shapes={"x": (5, 3), "y": (2, 2)}, integers={"y": 3})
    assert argv.arrays["y"].shape == (2, 2) and argv.array_names == ["y", "x"]
    assert argv.float_names == ["x"]


def test_the_input_and_the_other_arrays_come_from_different_streams() -> None:
    def f(x, w):  # type: ignore[no-untyped-def]
        return x

    argv = arguments(f, shapes={"x": (4,), "w": (4,)}, seed=3)
    assert not np.array_equal(argv.arrays["x"], argv.arrays["w"])
    assert argv.arrays["x"].dtype == np.float64
    again = arguments(f, shapes={"x": (4,), "w": (4,)}, seed=3)
    assert np.array_equal(again.arrays["w"], argv.arrays["w"])
    f32 = arguments(f, shapes={"x": (4,), "w": (4,)}, seed=3, dtype="float32")
    assert f32.arrays["w"].dtype == np.float32


def test_values_data_and_args_are_kept_apart() -> None:
    def f(x, d, a, v, e):  # type: ignore[no-untyped-def]
        return x

    data = np.arange(3)
    argv = arguments(
        f, shapes={"x": (3,)}, data={"d": data}, args={"a": 1}, values={"v": [1.0, 2.0]},
        extra={"e": "E"},
    )  # fmt: skip
    assert argv.data == {"d": data} and argv.values == {"a": 1, "e": "E"}
    assert argv.float_names == ["x", "v"] and np.array_equal(argv.arrays["v"], [1.0, 2.0])


def test_names_given_twice_or_unknown_are_refused() -> None:
    def f(x, y):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(ConfigError, match="given both"):
        arguments(f, shapes={"x": (3,)}, args={"x": 1})
    # a shape for ids is the one allowed pair
    argv = arguments(f, shapes={"x": (3, 2), "y": (3,)}, integers={"y": 2})
    assert argv.arrays["y"].shape == (3,)
    with pytest.raises(ConfigError, match="has no argument 'z'") as e:
        arguments(f, shapes={"x": (3,), "z": (1,)})
    assert e.value.field == "--shape"
    with pytest.raises(ConfigError, match="has no argument") as e:
        arguments(f, shapes={"x": (3,)}, integers={"yy": 2}, fields=API_FIELDS)
    assert e.value.field == "integers" and "did you mean 'y'" in (e.value.hint or "")


def test_every_missing_argument_is_named_and_defaults_are_not() -> None:
    def f(x, a, b, c=1):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(ConfigError) as e:
        arguments(f, shapes={"x": (3,)})
    assert "'a', 'b'" in str(e.value) and "'c'" not in str(e.value)
    assert "--shape a=… --shape b=…" in (e.value.hint or "")
    with pytest.raises(ConfigError) as e:
        arguments(f, shapes={"x": (3,)}, args={"a": 1}, fields=API_FIELDS)
    assert "argument 'b'" in str(e.value) and "under shapes" in (e.value.hint or "")
    assert CLI_FIELDS.shape == "--shape"


def test_no_float_array_means_nothing_to_differentiate() -> None:
    def f(x):  # type: ignore[no-untyped-def]
        return x

    with pytest.raises(ConfigError, match="nothing to differentiate"):
        arguments(f, integers={"x": 3}, shapes={"x": (3,)})
    assert inspect.signature(f)


def test_check_function_catches_a_wrong_pair_and_passes_a_right_one(tmp_path: Path) -> None:
    ops = _write(tmp_path, _pair("lin_forward") + _pair("bad_forward", BAD))
    shapes = {"x": (3, 4), "w": (4,)}
    assert check_function(f"{ops}:lin", shapes=shapes).passed
    assert not check_function(f"{ops}:bad", shapes=shapes).passed


def test_a_forward_without_its_backward_is_a_loss_function(tmp_path: Path) -> None:
    """`lone_forward` returning (loss, dx) with no lone_backward next to it: checked as a loss."""
    ops = _write(tmp_path, "def lone_forward(x):\n    return (x**2).sum(), 2 * x\n", "lone")
    assert find(f"{ops}:lone_forward").kind == "loss"
    assert check_function(f"{ops}:lone_forward", shapes={"x": (3,)}).passed


def test_a_callable_outside_any_module_needs_its_backward_as_a_function() -> None:
    def fwd(x):  # type: ignore[no-untyped-def]
        return x, x

    fwd.__module__ = "no_such_module_anywhere"
    with pytest.raises(PluginError, match="cannot find 'fwd_backward'"):
        find(fwd, backward="fwd_backward")
    assert find(fwd).kind == "loss"


def test_positional_only_and_keyword_only_arguments_are_passed_as_they_must_be() -> None:
    def f(x, w, /, *, k):  # type: ignore[no-untyped-def]
        return x * w * k

    argv = arguments(f, shapes={"x": (2,), "w": (2,)}, args={"k": 3.0})
    out = argv.call(f, {})
    assert np.array_equal(out, argv.arrays["x"] * argv.arrays["w"] * 3.0)


def test_the_input_is_drawn_as_gradcheck_draws_a_layer_input() -> None:
    """The first array is `gradcheck.testing.random_input(shape, seed)` whatever its name, so a
    user can rebuild it; the other arrays come from their own streams."""
    from gradcheck_cli.testing import random_input

    def f(inp, w):  # type: ignore[no-untyped-def]
        return inp

    argv = arguments(f, shapes={"inp": (3, 2), "w": (3, 2)}, seed=5)
    assert np.array_equal(argv.arrays["inp"], random_input((3, 2), seed=5))
    assert not np.array_equal(argv.arrays["w"], random_input((3, 2), seed=5))


def test_ids_take_the_first_float_shape_not_a_later_one() -> None:
    def loss(c, x, w, y):  # type: ignore[no-untyped-def]
        return 0.0, x

    argv = arguments(
        loss, values={"c": [[1, 2], [3, 4], [5, 6]]}, shapes={"x": (5, 3), "w": (7, 2)},
        integers={"y": 3},
    )  # fmt: skip
    # c is an integer array (data, not floats): the labels axis is x's, not c's nor w's
    assert argv.arrays["y"].shape == (5,)


# -- what a reference names (functions/targets.py) -----------------------------------------------

SPACE = """
import numpy as np

class Boom:
    @property
    def bad(self):
        raise RuntimeError("no")

    def lin_forward(self, x, w):
        return x * w, (x, w)

    def lin_backward(self, dout, cache):
        x, w = cache
        return dout * w, (dout * x).sum(0)

    def _private(self, x):
        return x

boom = Boom()

class Shape:
    pass

def _hidden(x):
    return x

def visible(x):
    return (x**2).sum(), 2 * x

CONST = 3
"""


def _space(tmp_path: Path, name: str = "space") -> Path:
    return _write(tmp_path, SPACE, name)


def test_a_space_lists_public_functions_only(tmp_path: Path) -> None:
    from gradcheck_cli.functions.targets import load

    space, last = load(f"{_space(tmp_path)}:visible", tmp_path)
    assert last == "visible" and space.where.endswith("space.py")
    funcs = space.functions()
    assert "visible" in funcs and "_hidden" not in funcs and "Shape" not in funcs
    assert "CONST" not in funcs and "np" not in funcs  # a module is not a function either
    assert space.get("Shape") is None and space.get("visible") is not None
    assert space.get("CONST") is None
    obj, _ = load(f"{_space(tmp_path)}:boom.lin_forward", tmp_path)
    # a property that raises is not a function; private and dunder names are left out
    assert sorted(obj.functions()) == ["lin_backward", "lin_forward"]
    assert obj.where.endswith("space.py:boom")


def test_a_class_named_as_a_function_is_refused_with_a_hint(tmp_path: Path) -> None:
    r = gc("fn", f"{_space(tmp_path)}:Shape", "--shape", "x=3")
    assert r.exit_code == 2, r.output
    assert "'Shape' is a class" in r.text and "gradcheck layer" in r.text
    r = gc("fn", f"{_space(tmp_path, 'sp2')}:visibl", "--shape", "x=3")
    assert r.exit_code == 2 and "did you mean 'visible'" in r.text, r.output
    assert "'visibl' is a class" not in r.text


def test_a_method_pair_of_an_object_is_checked(tmp_path: Path) -> None:
    r = gc("fn", f"{_space(tmp_path)}:boom.lin", *SCALE)
    assert r.exit_code == 0, r.output
    found = find(f"{_space(tmp_path, 'sp3')}:boom.lin")
    assert found.label == "boom.lin_forward" and found.backward is not None


def test_walk_names_the_missing_part_and_a_raising_property(tmp_path: Path) -> None:
    from gradcheck_cli.functions.targets import load, walk

    mod = _space(tmp_path)
    with pytest.raises(PluginError) as e:
        load(f"{mod}:bom.lin_forward", tmp_path)
    assert str(e.value).splitlines()[0] == f"no 'bom' in {mod}"
    assert "did you mean 'boom'" in (e.value.hint or "")
    with pytest.raises(PluginError, match=r"no 'nope' in .*space.py:boom \(boom\)"):
        load(f"{mod}:boom.nope.f", tmp_path)
    with pytest.raises(PluginError, match=r"reading .*boom\.bad raised RuntimeError: no"):
        load(f"{mod}:boom.bad.f", tmp_path)
    import types

    m = types.ModuleType("m")
    m.a = types.SimpleNamespace(b=types.SimpleNamespace(c=1))  # type: ignore[attr-defined]
    space, last = walk(m, "m", "a.b.f")
    assert last == "f" and space.where == "m:a.b" and space.obj is m.a.b  # type: ignore[attr-defined]


def test_a_reference_must_name_file_and_function(tmp_path: Path) -> None:
    from gradcheck_cli.functions.targets import load

    for bad in ("space.py", ":f", "space.py:1f", "space.py:a..b"):
        with pytest.raises(ConfigError, match="must look like"):
            load(bad, tmp_path)
    with pytest.raises(PluginError, match="no file") as e:
        load("nothere.py:f", tmp_path)
    assert str(tmp_path.resolve()) in (e.value.hint or "")
    with pytest.raises(PluginError, match="no file"):
        load("sub/nothere:f", tmp_path)
    space, _ = load("json:dumps", tmp_path)
    assert space.where == "module json" and space.get("dumps") is not None


def test_space_of_a_bound_method_is_its_object() -> None:
    from gradcheck_cli.functions.targets import space_of

    class Ops:
        def f_forward(self, x):  # type: ignore[no-untyped-def]
            return x, x

        def f_backward(self, d, c):  # type: ignore[no-untyped-def]
            return d

    ops = Ops()
    space = space_of(ops.f_forward)
    assert space is not None and space.obj is ops and space.where == "Ops"
    assert find(ops.f_forward).kind == "pair"
    import json as json_mod

    space = space_of(json_mod.dumps)
    assert space is not None and space.obj is json_mod and space.where == "module json"


def test_args_from_gets_the_seed_only_when_it_takes_one(tmp_path: Path) -> None:
    from gradcheck_cli.functions.targets import extra_args

    assert extra_args(lambda seed: {"s": seed}, tmp_path, 7, "args_from") == {"s": 7}
    assert extra_args(lambda: {"s": 1}, tmp_path, 7, "args_from") == {"s": 1}
    assert extra_args(dict, tmp_path, 7, "args_from") == {}  # no readable signature: no seed
    with pytest.raises(ConfigError, match="returned dict, not a dict of arguments") as e:
        extra_args(lambda: {1: 2}, tmp_path, 0, "--args-from")
    assert e.value.field == "--args-from"
    with pytest.raises(ConfigError, match="returned list"):
        extra_args(lambda: [1], tmp_path, 0, "args_from")
    (tmp_path / "mk.py").write_text("def make(seed):\n    return {'k': seed + 1}\n")
    assert extra_args("mk.py:make", tmp_path, 2, "args_from") == {"k": 3}


def test_a_builtin_function_sits_in_its_module() -> None:
    """A C function's ``__self__`` is its module: the space is the module, by its name."""
    import math

    from gradcheck_cli.functions.targets import space_of

    space = space_of(math.sin)
    assert space is not None and space.obj is math and space.where == "module math"
    assert space.module is math


def test_a_dotted_backward_next_to_a_method_is_looked_up_on_its_object() -> None:
    class Ops:
        def f_forward(self, x):  # type: ignore[no-untyped-def]
            return x, x

    with pytest.raises(PluginError) as e:
        find(Ops().f_forward, backward="helper.f_backward")
    assert str(e.value).splitlines()[0] == "no function 'helper.f_backward' in Ops"


# -- checking functions (functions/check.py) ------------------------------------------------------

LOSSES = """
import numpy as np

def float_labels(x, y):
    dx = np.zeros_like(x)
    dx[np.arange(len(y)), y] = 1.0
    return x[np.arange(len(y)), y].sum(), dx

def raises_value(x, y):
    raise ValueError("boom")

def raises_type(x, y):
    raise TypeError("unsupported operand")
"""


def test_labels_drawn_as_floats_get_the_integers_hint_naming_them(tmp_path: Path) -> None:
    ops = _write(tmp_path, LOSSES, "losses")
    with pytest.raises(PluginError) as e:
        check_function(f"{ops}:float_labels", shapes={"x": (5, 4), "y": (5,)})
    assert (e.value.hint or "").startswith("y is drawn as floats")
    assert "--integers y=N" in (e.value.hint or "")
    for other in ("raises_value", "raises_type"):  # not an indexing error: no such hint
        with pytest.raises(PluginError) as e:
            check_function(f"{ops}:{other}", shapes={"x": (5, 4), "y": (5,)})
        assert "drawn as floats" not in (e.value.hint or "")
    assert check_function(f"{ops}:float_labels", shapes={"x": (5, 4)}, integers={"y": 4}).passed


SWAPS = """
import numpy as np

def mul_forward(x, w):
    return x * w, (x, w)

def mul_backward(dout, cache):
    x, w = cache
    return dout * x, dout * w  # dx and dw swapped

def mix_forward(x, w):
    return x * w.sum(), (x, w)

def mix_backward(dout, cache):
    x, w = cache
    return 2 * dout * w.sum(), np.full_like(w, 2 * (dout * x).sum())  # both wrong, other shapes
"""


def test_swapped_gradients_get_a_note_only_when_the_numbers_tell(tmp_path: Path) -> None:
    ops = _write(tmp_path, SWAPS, "swaps")
    r = check_function(f"{ops}:mul", shapes={"x": (3, 4), "w": (3, 4)})
    assert [p.name for p in r.failures] == ["x", "w"]
    assert [n.split(":")[0] for n in r.notes if "swapped" in n] == ["dx and dw look swapped"]
    # x = 1.005 w: swapped or not, the derivatives along any v differ by 0.5 %, too close to
    # tell (the note needs a 1 % gap): no note, still a failure
    w = np.random.default_rng(0).standard_normal((3, 4))
    x = w * 1.005
    r = check_function(f"{ops}:mul", values={"x": x, "w": w})
    assert not r.passed and not [n for n in r.notes if "swapped" in n]
    # two failing tensors of different shapes: no swap to test, a verdict without a crash
    r = check_function(f"{ops}:mix", shapes={"x": (3, 4), "w": (2,)})
    assert [p.name for p in r.failures] == ["x", "w"] and not r.notes


@pytest.mark.parametrize("bad", [5, "make_args", ["f.py:make"]])
def test_args_from_in_a_config_must_name_file_and_function(tmp_path: Path, bad: Any) -> None:
    from gradcheck_cli.functions.check import layer_factory, loss_factory

    ops = _write(tmp_path, _pair("lin_forward") + "def loss(p, t):\n    return 0.0, p\n")
    build = layer_factory(f"{ops}:lin", tmp_path, "layers[0]")
    with pytest.raises(ConfigError, match=r"args_from must look like 'file\.py:NAME'") as e:
        build(input_shape=(4,), rng=np.random.default_rng(0), params={"w": [4]}, args_from=bad)
    assert e.value.field == "layers[0].args_from"
    with pytest.raises(ConfigError, match="args_from must look like") as e:
        loss_factory(f"{ops}:loss", tmp_path, "loss")(args_from=bad)
    assert e.value.field == "loss.args_from"


def test_a_loss_function_is_checked_on_its_own_value(tmp_path: Path) -> None:
    """L is the value a loss function returns (not a random multiple of it): the report's loss
    is that value, and its label is the function's name."""
    from gradcheck_cli.testing import random_input

    ops = _write(tmp_path, "def sq(x):\n    return (x**2).sum(), 2 * x\n", "sq")
    r = check_function(f"{ops}:sq", shapes={"x": (3, 2)}, seed=4)
    assert r.passed
    assert r.loss == pytest.approx(float((random_input((3, 2), seed=4) ** 2).sum()), rel=1e-12)


class _StopOnB:
    """mul3: dx and dw swapped; Ctrl-C (KeyboardInterrupt) as soon as b is perturbed, i.e. after
    x and w were judged. ``db_scale`` ≠ 1 makes db wrong too."""

    def __init__(self, stop: bool, db_scale: float = 1.0) -> None:
        self.stop, self.db_scale, self.b0 = stop, db_scale, None

    def forward(self, x, w, b):  # type: ignore[no-untyped-def]
        if self.b0 is None:
            self.b0 = b.copy()
        if self.stop and not np.array_equal(b, self.b0):
            raise KeyboardInterrupt
        return x * w + b, (x, w)

    def backward(self, dout, cache):  # type: ignore[no-untyped-def]
        x, w = cache
        return dout * x, dout * w, self.db_scale * dout.sum(0)


MUL3 = {"x": (3, 4), "w": (3, 4), "b": (4,)}


def test_an_interrupted_check_gets_no_swap_probe() -> None:
    """Ctrl-C during b, after x and w failed: the partial result comes back as it is (no user
    code runs after the interrupt, no note)."""
    f = _StopOnB(stop=True)
    r = check_function(f.forward, f.backward, shapes=MUL3)
    assert r.interrupted and [p.name for p in r.failures] == ["x", "w"] and not r.notes


def test_the_swap_is_found_among_three_failing_tensors() -> None:
    f = _StopOnB(stop=False, db_scale=2.0)
    r = check_function(f.forward, f.backward, shapes=MUL3)
    assert [p.name for p in r.failures] == ["x", "w", "b"]
    assert [n.split(":")[0] for n in r.notes if "swapped" in n] == ["dx and dw look swapped"]


@pytest.mark.parametrize(
    ("value", "message", "field"),
    [
        ("w", "a parameter is a shape like", "p"),
        (3, "a parameter is a shape like", "p"),  # a number: no keys to look at, not a crash
        ({"shape": [2], "values": [1, 2]}, "a parameter is a shape like", "p"),
        ({"scale": 2.0}, "a parameter is a shape like", "p"),
        ({"shape": [2], "sigma": 1}, "unknown key 'sigma'", "p"),
        ({"shape": [0]}, "shape must be a list of positive sizes", "p"),
        ({"shape": []}, "shape must be a list of positive sizes", "p"),
        ({"shape": [2.0]}, "shape must be a list of positive sizes", "p"),
        ({"shape": [2], "scale": "big"}, "scale must be a number", "p.scale"),
        ({"shape": [2], "scale": float("inf")}, "scale must be a number", "p.scale"),
        ({"file": "missing.npy"}, "cannot read this parameter", "p"),
        ({"values": [[1, 2], [3]]}, "cannot read this parameter", "p"),
    ],
)
def test_a_config_parameter_entry_is_refused_by_its_field(
    tmp_path: Path, value: Any, message: str, field: str
) -> None:
    from gradcheck_cli.functions.check import _param_array

    with pytest.raises(ConfigError, match=message) as e:
        _param_array(value, np.random.default_rng(0), "float64", tmp_path, "p")
    assert e.value.field == field


def test_a_config_parameter_entry_is_drawn_scaled_or_read(tmp_path: Path) -> None:
    from gradcheck_cli.functions.check import _param_array

    def draw(value: Any, dtype: str = "float64") -> Any:
        return _param_array(value, np.random.default_rng(3), dtype, tmp_path, "p")

    base = np.random.default_rng(3).standard_normal((2, 3))
    assert np.array_equal(draw([2, 3]), base)
    assert np.allclose(draw({"shape": [2, 3], "scale": 0.5}), 0.5 * base, rtol=0, atol=0)
    assert draw({"shape": [2, 3]}, "float32").dtype == np.float32
    assert np.array_equal(draw({"values": [1, 2]}), [1.0, 2.0])
    np.save(tmp_path / "w.npy", np.arange(3))
    got = draw({"file": "w.npy"}, "float32")
    assert got.dtype == np.float32 and np.array_equal(got, [0, 1, 2])
