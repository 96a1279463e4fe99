"""Built-in layers and losses, one small module per family, and the tables that name them.

base.py       the layer/loss protocols and the Layer base class plugin authors subclass
table.py      name → class tables and the @register_layer / @register_loss decorators
builtin.py    every family (importing it registers them)
registry.py   names and plugin references ("file.py:Class", "pkg.mod:Class") → classes, instances
catalog.py    what each built-in is, read from the class (arguments, formulas) for `gradcheck list`

Imports go: families → table, base; registry → table (and the built-ins by name, once). This
``__init__`` imports nothing: ``from gradcheck_cli.layers import Layer`` is loaded on first use.
"""

from __future__ import annotations

from typing import Any

_BASE = ("Layer", "LayerProtocol", "Loss", "LossProtocol")


def __getattr__(name: str) -> Any:
    if name in _BASE:
        from gradcheck_cli.layers import base

        return getattr(base, name)
    raise AttributeError(f"module 'gradcheck_cli.layers' has no attribute {name!r}")
