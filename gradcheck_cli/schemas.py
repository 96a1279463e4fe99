"""The two JSON Schemas gradcheck publishes (draft 2020-12): its JSON report and its config format.

The report schema is a file shipped in the package (gradcheck_cli/data/report.schema.json); the
config schema is generated from the pydantic models, so it cannot drift from what `run` accepts.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from gradcheck_cli.config import Config, LayerSpec, LossSpec

DIALECT = "https://json-schema.org/draft/2020-12/schema"


def report_schema() -> dict[str, Any]:
    """The schema of `--format json` (a report, or a suite of several)."""
    text = resources.files("gradcheck_cli").joinpath("data/report.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def config_schema() -> dict[str, Any]:
    """The schema of a config file, for editors (YAML language server) and other validators."""
    schema = Config.model_json_schema()
    for name, field in Config.model_fields.items():  # internal fields (base_dir, source)
        if field.exclude:
            schema["properties"].pop(name, None)
            if name in schema.get("required", []):
                schema["required"].remove(name)
    # A layer or loss may be written as a bare name: `- relu` is short for `- {type: relu}`.
    for spec in (LayerSpec, LossSpec):
        # `{fn: "file.py:NAME"}` (functions) stands for type: the config needs one of them.
        defn = schema["$defs"][spec.__name__]
        defn["required"] = [r for r in defn.get("required", []) if r != "type"]
        defn["anyOf"] = [{"required": ["type"]}, {"required": ["fn"]}]
        ref = f"#/$defs/{spec.__name__}"
        _replace_ref(schema, ref, {"anyOf": [{"type": "string", "minLength": 1}, {"$ref": ref}]})
    return {"$schema": DIALECT, **schema, "title": "gradcheck config"}


def _replace_ref(node: Any, ref: str, replacement: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and value.get("$ref") == ref and len(value) == 1:
                node[key] = replacement
            else:
                _replace_ref(value, ref, replacement)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, dict) and value.get("$ref") == ref and len(value) == 1:
                node[i] = replacement
            else:
                _replace_ref(value, ref, replacement)
