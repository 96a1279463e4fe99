"""Gradient checks inside a test suite: ``assert_gradients`` raises an AssertionError whose message
is a plain-text table of the tensors that disagree and their worst entries (what pytest shows).

    from gradcheck_cli.testing import assert_gradients

    def test_my_layer():
        assert_gradients(MyLayer(4, 3), shape=(5, 4))        # a layer on a random input
        assert_gradients(MyLayer, shape=(5, 4), args={"out": 3})   # a class, built as in a config
        assert_gradients(layer, x, rtol=1e-5)                 # a layer on your input
        assert_gradients("configs/net.yaml")                  # a config file
        assert_gradients(build_network(cfg))                  # a network
        assert_gradients(affine_forward, backward=affine_backward,   # a function pair
                         shapes={"x": (4, 5), "w": (5, 3), "b": (3,)})
        assert_gradients(softmax_loss, shapes={"x": (5, 10)}, integers={"y": 10})  # (loss, dx)
        assert_gradients(f, grad=df, shapes={"x": (10,)})     # SciPy style

The pytest plugin (gradcheck_cli/pytest_plugin.py) wraps this as the ``gradcheck`` fixture and the
``@pytest.mark.gradcheck`` marker.

Relative paths (config files, ``"file.py:Class"``, ``"file.py:NAME"``, ``backward=``, ``grad=``,
``args_from=``, ``data=`` files) are relative to the folder of the file that calls
``assert_gradients``/``check`` (the test file), as for the fixture and the marker; ``base_dir=``
changes it. A missing file is one line naming the path it resolved to.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck_cli.checker import check_layer, check_network
from gradcheck_cli.engine.network import Network, rng_for
from gradcheck_cli.errors import ConfigError
from gradcheck_cli.layers.registry import check_layer_contract, instantiate, resolve
from gradcheck_cli.report.text import failure_report
from gradcheck_cli.results import CheckResult
from gradcheck_cli.spec.config import Config
from gradcheck_cli.suite import check_config, run_config


def random_input(shape: Sequence[int], seed: int = 0, dtype: str = "float64") -> np.ndarray:
    """The input gradcheck draws for ``shape`` (batch first) and ``seed``: standard normal."""
    return rng_for(seed, "input").standard_normal(tuple(shape)).astype(dtype)


def build_layer(
    layer: Any,
    input_shape: Sequence[int],
    *,
    args: Mapping[str, Any] | None = None,
    seed: int = 0,
    dtype: str = "float64",
    base_dir: str | Path = ".",
) -> Any:
    """A layer from a class, a registry name / plugin reference ("file.py:Class"), a zero-argument
    factory, or an instance (returned as is). Classes get ``args`` plus the ``input_shape``
    (batch axis excluded), ``rng`` and ``dtype`` they accept, exactly as in a config."""
    if isinstance(layer, str):
        cls: Any = resolve(layer, "layer", Path(base_dir))
        label = layer
    elif isinstance(layer, type):
        cls, label = layer, layer.__name__
    elif callable(layer) and not hasattr(layer, "forward"):
        obj = layer()
        check_layer_contract(obj, getattr(layer, "__name__", "factory"))
        return obj
    else:
        check_layer_contract(layer, type(layer).__name__)
        return layer
    obj = instantiate(
        cls,
        label,
        dict(args or {}),
        input_shape=tuple(input_shape),
        rng=rng_for(seed, "layer0"),
        dtype=dtype,
    )
    check_layer_contract(obj, label)
    return obj


def is_config_path(target: Any) -> bool:
    """The one rule for what names a config (fixture, marker, assert_gradients alike): a Path, or
    a string ending in .yaml / .yml / .json. Any other string is a layer: a built-in name
    (``"relu"``) or a plugin reference (``"file.py:Class"``)."""
    if isinstance(target, Path):
        return True
    return isinstance(target, str) and target.lower().endswith((".yaml", ".yml", ".json"))


#: Keywords that make ``check`` take its target as a function (gradcheck_cli/functions/check.py).
FUNCTION_KEYS = frozenset({"backward", "grad", "shapes", "integers", "values", "data", "args_from"})


def _check_function(target: Any, *, seed: int | None, **options: Any) -> CheckResult:
    from gradcheck_cli.functions.check import check_function

    forward, backward = target if isinstance(target, tuple) else (target, None)
    backward = options.pop("backward", backward)
    return check_function(forward, backward, seed=0 if seed is None else seed, **options)


def caller_dir(depth: int = 1) -> Path:
    """The folder of the file ``depth`` frames above the caller (the test file), else the
    working directory (an interactive session)."""
    frame = sys._getframe(depth + 1)
    file = frame.f_globals.get("__file__")
    return Path(file).resolve().parent if file else Path.cwd()


def _file_part(ref: str) -> str | None:
    """The file a reference names: ``"dir/f.py:NAME"`` → ``"dir/f.py"``; ``"pkg.mod:NAME"``,
    ``"relu"`` → None."""
    module, sep, _ = ref.rpartition(":")
    if sep and (module.endswith(".py") or "/" in module or "\\" in module):
        return module
    return None


def _must_exist(path: Path) -> None:
    __tracebackhide__ = True
    if not path.is_file():
        raise ConfigError(
            f"no such file: {path.resolve()} (relative paths are relative to the test file's "
            "folder; base_dir= changes it)"
        )


def resolve_paths(target: Any, options: dict[str, Any], base_dir: Path) -> Any:
    """``target`` with a relative config path made absolute against ``base_dir``; every file a
    target or option names is checked to exist (one-line error naming the resolved path)."""
    __tracebackhide__ = True
    if is_config_path(target):
        path = Path(target)
        target = path if path.is_absolute() else base_dir / path
        _must_exist(target)
        return target
    refs = [target] + [options.get(k) for k in ("backward", "grad", "args_from")]
    for ref in refs:
        part = _file_part(ref) if isinstance(ref, str) else None
        if part is not None:
            _must_exist(base_dir / part)
    for value in (options.get("data") or {}).values():
        if isinstance(value, (str, Path)):
            head, sep, _ = str(value).rpartition(":")
            _must_exist(base_dir / (head if sep and head.endswith(".npz") else str(value)))
    return target


def check(
    target: Any,
    x: Any = None,
    *,
    shape: Sequence[int] | None = None,
    seed: int | None = None,
    args: Mapping[str, Any] | None = None,
    base_dir: str | Path | None = None,
    **options: Any,
) -> CheckResult:
    """Check ``target`` (a layer, a layer class, a built-in name or plugin reference, a Network, a
    Config or a config file path: see :func:`is_config_path`) and return the result. A layer
    class or name is built with ``args`` (see :func:`build_layer`).

    A layer is checked on ``x`` or, without it, on a random input of ``shape`` (batch first) drawn
    from ``seed`` (default 0; for configs, default: the config's own seed). ``options`` go to the
    checker: eps, rtol, atol, inputs, include, exclude, …

    Functions: a pair ``(forward, backward)`` or a function with any of ``backward=``, ``grad=``,
    ``shapes=``, ``integers=``, ``values=``, ``data=``, ``args_from=`` is checked by
    ``check_function`` (``args`` are then the function's other arguments).

    Relative paths are relative to ``base_dir``, by default the folder of the calling file.
    """
    __tracebackhide__ = True
    base = Path(base_dir) if base_dir is not None else caller_dir()
    target = resolve_paths(target, options, base)
    if isinstance(target, tuple) or FUNCTION_KEYS & set(options):
        return _check_function(target, seed=seed, args=args, base_dir=base, **options)
    if is_config_path(target):
        return run_config(target, seed=seed, **options)
    if isinstance(target, str):  # a built-in layer name or a plugin "file.py:Class"
        if shape is None and x is None:
            raise TypeError(f"checking the layer {target!r} needs shape=(batch, ...) or x")
        sample = shape if shape is not None else np.shape(x)
        target = build_layer(
            target, tuple(sample)[1:], args=args, seed=0 if seed is None else seed, base_dir=base
        )
        args = None
    if isinstance(target, Config):
        return check_config(target, seed=seed, **options)
    seed = 0 if seed is None else seed
    if isinstance(target, type):
        sample = shape if shape is not None else np.shape(x)
        if len(sample) < 2:
            raise TypeError("a layer class needs shape=(batch, ...) or x to size it")
        target = build_layer(target, tuple(sample)[1:], args=args, seed=seed)
    elif args is not None:
        raise TypeError("args= builds a layer class; the target is already built")
    if isinstance(target, Network):
        if x is None and shape is not None:
            x = random_input(shape, seed)
        return check_network(target, x, seed=seed, **options)
    if x is None:
        if shape is None:
            raise TypeError("assert_gradients needs an input: pass x or shape=(batch, ...)")
        x = random_input(shape, seed)
    return check_layer(target, np.asarray(x), seed=seed, **options)


def assert_gradients(
    target: Any,
    x: Any = None,
    *,
    shape: Sequence[int] | None = None,
    seed: int | None = None,
    args: Mapping[str, Any] | None = None,
    base_dir: str | Path | None = None,
    **options: Any,
) -> CheckResult:
    """Like :func:`check`, but raise AssertionError (a table of the failing tensors and their
    worst entries) unless every gradient agrees. Returns the result when they do. Relative paths
    are relative to ``base_dir``, by default the folder of the calling (test) file."""
    __tracebackhide__ = True
    base = Path(base_dir) if base_dir is not None else caller_dir()
    result = check(target, x, shape=shape, seed=seed, args=args, base_dir=base, **options)
    if not result.passed:
        raise AssertionError(failure_report(result))
    return result
