"""gradcheck: check NumPy backward passes against numerical gradients.

Public API::

    from gradcheck_cli import load_config, build_network, make_layer, check_network, check_layer
    from gradcheck_cli import check_function   # function pairs, (loss, dx), f + grad
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gradcheck_cli.checker import check_layer, check_network
from gradcheck_cli.config import Config, load_config
from gradcheck_cli.errors import ConfigError, GradcheckError, PluginError, ShapeError
from gradcheck_cli.function_check import check_function
from gradcheck_cli.network import Network, build_network, rng_for
from gradcheck_cli.options import CheckOptions
from gradcheck_cli.registry import check_layer_contract, instantiate, resolve
from gradcheck_cli.results import CheckResult, Entry, ParamResult

__version__ = "0.1.0"


def make_layer(
    name: str,
    input_shape: tuple[int, ...],
    rng: np.random.Generator | None = None,
    *,
    dtype: str = "float64",
    base_dir: str | Path = ".",
    **kwargs: Any,
) -> Any:
    """Build a layer by registry name or plugin reference ("file.py:Class") for per-sample
    ``input_shape`` (batch axis excluded); ``kwargs`` are the layer's own arguments."""
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
