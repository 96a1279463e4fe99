"""The two JSON Schemas gradcheck publishes (draft 2020-12): its JSON report and its config format.

The report schema is a file shipped in the package (gradcheck_cli/spec/data/report.schema.json); the
config schema is generated from the pydantic models, so it cannot drift from what `run` accepts.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from gradcheck_cli.layers.catalog import catalog, spec_schema
from gradcheck_cli.layers.registry import LAYERS, LOSSES
from gradcheck_cli.spec.config import Config, LayerSpec, LossSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: A plugin reference names a file or module and a class: ``file.py:Class``, ``pkg.mod:Class``.
PLUGIN_PATTERN = "^[^:]+:[A-Za-z_][A-Za-z0-9_]*$"
#: A function reference may be an attribute path: ``file.py:obj.method``, ``pkg.mod:Class.fn``.
FUNCTION_PATTERN = "^[^:]+:[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*$"


def report_schema() -> dict[str, Any]:
    """The schema of `--format json` (a report, or a suite of several)."""
    text = resources.files("gradcheck_cli").joinpath("spec/data/report.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def config_schema() -> dict[str, Any]:
    """The schema of a config file, for editors (YAML language server) and other validators.
    Generated from the pydantic models and, for layers and losses, from the registry: a
    misspelt type (``lineer``) or argument (``outt``) of a built-in is flagged."""
    schema = Config.model_json_schema()
    for name, field in Config.model_fields.items():  # internal fields (base_dir, source)
        if field.exclude:
            schema["properties"].pop(name, None)
            if name in schema.get("required", []):
                schema["required"].remove(name)
    infos = catalog(LAYERS, LOSSES)
    for spec, kind in ((LayerSpec, "layer"), (LossSpec, "loss")):
        mine = [i for i in infos if i.kind == kind]
        schema["$defs"][spec.__name__] = {
            "title": f"a {kind}: a built-in by name, or a plugin 'file.py:Class' / 'pkg.mod:Class'",
            "anyOf": [
                # `- relu` is short for `- {type: relu}`.
                {"type": "string", "enum": [i.name for i in mine]},
                {"type": "string", "pattern": PLUGIN_PATTERN},
                *[spec_schema(i, f"#/$defs/{LayerSpec.__name__}") for i in mine],
                {
                    "type": "object",
                    "properties": {"type": {"type": "string", "pattern": PLUGIN_PATTERN}},
                    "required": ["type"],
                },
                {  # functions: {fn: "file.py:NAME", params: ..., args: ...}
                    "type": "object",
                    "properties": {"fn": {"type": "string", "pattern": FUNCTION_PATTERN}},
                    "required": ["fn"],
                },
            ],
        }
    return {"$schema": DIALECT, **schema, "title": "gradcheck config"}
