"""gradcheck: check NumPy backward passes against numerical gradients.

Public API::

    from gradcheck_cli import load_config, build_network, make_layer, check_network, check_layer
    from gradcheck_cli import check_function   # function pairs, (loss, dx), f + grad

The names are loaded on first use (module ``__getattr__``), so ``import gradcheck_cli`` — and
``gradcheck --version`` — does not import NumPy, pydantic or the checker.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from gradcheck_cli.checker import check_layer, check_network
    from gradcheck_cli.engine.build import build_network
    from gradcheck_cli.engine.network import Network
    from gradcheck_cli.errors import ConfigError, GradcheckError, PluginError, ShapeError
    from gradcheck_cli.functions.check import check_function
    from gradcheck_cli.options import CheckOptions
    from gradcheck_cli.results import CheckResult, Entry, ParamResult
    from gradcheck_cli.spec.config import Config, load_config

__version__ = "0.1.0"

#: Public name → the module that defines it.
_LAZY = {
    "check_layer": "checker",
    "check_network": "checker",
    "Config": "spec.config",
    "load_config": "spec.config",
    "ConfigError": "errors",
    "GradcheckError": "errors",
    "PluginError": "errors",
    "ShapeError": "errors",
    "check_function": "functions.check",
    "Network": "engine.network",
    "build_network": "engine.build",
    "CheckOptions": "options",
    "CheckResult": "results",
    "Entry": "results",
    "ParamResult": "results",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gradcheck_cli' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"gradcheck_cli.{module}"), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


def make_layer(
    name: str,
    /,
    input_shape: tuple[int, ...],
    rng: np.random.Generator | None = None,
    *,
    dtype: str = "float64",
    base_dir: str | Path = ".",
    **kwargs: Any,
) -> Any:
    """Build a layer by registry name or plugin reference ("file.py:Class") for per-sample
    ``input_shape`` (batch axis excluded); ``kwargs`` are the layer's own arguments, whatever
    their names: ``name`` is positional-only here, so ``name="sigmoid"`` reaches the layer (the
    other parameters are the values gradcheck sets, which no layer argument may set)."""
    from gradcheck_cli.engine.network import rng_for
    from gradcheck_cli.layers.registry import check_layer_contract, instantiate, resolve

    cls = resolve(name, "layer", Path(base_dir))
    layer = instantiate(
        cls,
        name,
        kwargs,
        input_shape=tuple(input_shape),
        rng=rng if rng is not None else rng_for(0, "layer0"),
        dtype=dtype,
        base_dir=Path(base_dir),
    )
    check_layer_contract(layer, name)
    return layer


__all__ = [
    "CheckOptions",
    "CheckResult",
    "Config",
    "ConfigError",
    "Entry",
    "GradcheckError",
    "Network",
    "ParamResult",
    "PluginError",
    "ShapeError",
    "__version__",
    "build_network",
    "check_function",
    "check_layer",
    "check_network",
    "load_config",
    "make_layer",
]
