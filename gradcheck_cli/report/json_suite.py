"""The JSON document for several configs (a "suite"); one config keeps the plain report."""

from __future__ import annotations

import json
from typing import Any

from gradcheck_cli.report.jsondoc import SCHEMA_VERSION, to_json_dict
from gradcheck_cli.suite import SuiteResult


def suite_to_json_dict(suite: SuiteResult) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "passed": suite.passed,
        "exit_code": suite.exit_code,
        "counts": {
            s: sum(o.status == s for o in suite.outcomes) for s in ("pass", "fail", "error")
        },
        "verified": suite.verified,
        "tensor_counts": suite.tensor_counts,
        "configs": [
            {
                "config": o.config,
                "status": o.status,
                "error": None if o.error is None else str(o.error),
                "report": None if o.result is None else to_json_dict(o.result),
            }
            for o in suite.outcomes
        ],
    }


def suite_to_json(suite: SuiteResult) -> str:
    return json.dumps(suite_to_json_dict(suite), indent=2, allow_nan=False)
