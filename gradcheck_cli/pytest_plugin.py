"""pytest plugin (entry point ``pytest11``): the ``gradcheck`` fixture and marker.

    def test_dense(gradcheck):
        gradcheck(Dense(4, 3), shape=(5, 4))            # raises with a table when gradients disagree

    @pytest.mark.gradcheck(layer=Dense, shape=(5, 4), args={"out": 3})
    def test_dense_marked():
        ...                                             # the layer is checked after the body runs

    pytestmark = pytest.mark.gradcheck(rtol=1e-5)       # defaults for every check in the module

Functions: ``@pytest.mark.gradcheck(fn=affine_forward, backward=affine_backward,
shapes={"x": (4, 5), "w": (5, 3), "b": (3,)})``, ``fn=softmax_loss, integers={"y": 10}`` or
``fn="layers.py:affine"``; ``args`` are then the function's arguments, ``data`` its fixed data,
``args_from`` a function building more of them.

Paths: the fixture, the marker and ``assert_gradients`` resolve relative paths (config files,
``"file.py:Class"``, ``"file.py:NAME"``, data files) the same way: relative to the test file's
folder. A missing file is one line naming the path it resolved to.

Marker keywords: ``layer`` (a class, registry name, "file.py:Class" relative to the test file, a
factory or an instance), ``shape`` (the input, batch first), ``args`` (the layer's arguments),
``x`` (an input array instead of ``shape``), ``seed``, ``dtype``; any other keyword is a check
option (eps, rtol, atol, inputs, include, exclude, …) and also becomes a default of the fixture.
Markers on the function, class and module merge; the closest wins.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import pytest

MARKER = "gradcheck"
#: Keywords that describe a function to check (see gradcheck_cli/functions/check.py).
FUNCTION_KEYS = ("fn", "backward", "grad", "shapes", "integers", "values", "data", "args_from")
BUILD_KEYS = ("layer", "shape", "args", "x", "dtype", *FUNCTION_KEYS)


class GradientCheckFailed(AssertionError):
    """A marker check failed; reported as plain text without a plugin traceback."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(layer=None, shape=None, args=None, x=None, seed=None, dtype='float64', "
        "**options): check the layer's gradients after the test body (with layer=), and set "
        "default options (eps, rtol, atol, inputs, include, exclude, ...) of the gradcheck fixture",
    )


def marker_kwargs(item: pytest.Item) -> dict[str, Any]:
    """The merged keywords of every gradcheck marker on ``item``, the closest winning."""
    merged: dict[str, Any] = {}
    for mark in reversed(list(item.iter_markers(MARKER))):  # farthest first
        if mark.args:
            pytest.fail(
                f"@pytest.mark.{MARKER} takes keywords only, e.g. "
                f"{MARKER}(layer=MyLayer, shape=(4, 3)); got positional {mark.args!r}",
                pytrace=False,
            )
        merged.update(mark.kwargs)
    return merged


def _check_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in BUILD_KEYS}


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``gradcheck(layer_or_network, x=None, *, shape=None, **options)``: assert that gradients
    agree (AssertionError with a table otherwise); returns the CheckResult. Defaults for the
    options come from @pytest.mark.gradcheck on the test, its class or module."""
    from gradcheck_cli.testing import assert_gradients

    defaults = _check_options(marker_kwargs(request.node))
    folder = request.node.path.parent  # relative paths: from the test file, as for the marker

    def check(target: Any, x: Any = None, **options: Any) -> Any:
        __tracebackhide__ = True
        return assert_gradients(target, x, **({"base_dir": folder} | defaults | options))

    return check


def _run_function_check(item: pytest.Item, kwargs: dict[str, Any]) -> None:
    from gradcheck_cli.errors import GradcheckError
    from gradcheck_cli.testing import assert_gradients

    how = {k: v for k, v in kwargs.items() if k in (*FUNCTION_KEYS[1:], "args")}
    options = _check_options(kwargs)
    try:
        assert_gradients(kwargs["fn"], base_dir=item.path.parent, **how, **options)
    except AssertionError as exc:
        raise GradientCheckFailed(str(exc)) from None
    except GradcheckError as exc:
        raise GradientCheckFailed(f"cannot run the gradient check: {exc}") from None


def _run_marker_check(item: pytest.Item, kwargs: dict[str, Any]) -> None:
    from gradcheck_cli.errors import GradcheckError

    try:
        _marker_check(item, kwargs)
    except AssertionError as exc:
        raise GradientCheckFailed(str(exc)) from None
    except GradcheckError as exc:
        raise GradientCheckFailed(f"cannot run the gradient check: {exc}") from None


def _marker_check(item: pytest.Item, kwargs: dict[str, Any]) -> None:
    from gradcheck_cli.testing import (
        assert_gradients,
        build_layer,
        is_config_path,
        random_input,
        resolve_paths,
    )

    options = _check_options(kwargs)
    folder = item.path.parent
    target = resolve_paths(kwargs["layer"], {}, folder)  # missing files: one line
    if is_config_path(target):  # the same rule as the fixture: a config file
        assert_gradients(target, base_dir=folder, **options)
        return
    x: Any = kwargs.get("x")
    shape: Any = kwargs.get("shape")
    if x is None and shape is None:
        pytest.fail(f"@pytest.mark.{MARKER}(layer=...) needs shape= or x=", pytrace=False)
    full_shape = tuple(shape) if shape is not None else tuple(x.shape)
    seed = options.pop("seed", None)
    layer = build_layer(
        kwargs["layer"],
        full_shape[1:],
        args=kwargs.get("args"),
        seed=seed or 0,
        dtype=kwargs.get("dtype", "float64"),
        base_dir=item.path.parent,
    )
    if x is None:
        x = random_input(full_shape, seed or 0, kwargs.get("dtype", "float64"))
    assert_gradients(layer, x, seed=seed, base_dir=folder, **options)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    outcome = yield  # the test body first; if it fails, that failure is the report
    kwargs = marker_kwargs(item)
    if kwargs.get("layer") is not None:
        _run_marker_check(item, kwargs)
    elif kwargs.get("fn") is not None:
        _run_function_check(item, kwargs)
    return outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(GradientCheckFailed):
        report.longrepr = f"gradient check of @pytest.mark.{MARKER}: {call.excinfo.value}"
    return report
