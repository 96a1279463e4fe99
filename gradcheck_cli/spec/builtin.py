"""The built-in default network, validated once: `gradcheck run` with no config and no option
checks it without importing pydantic (issue 26: start-up).

The source of truth stays the packaged YAML (a copy of configs/seed_mlp.yaml) and the pydantic
models: ``spec.config.builtin_snapshot`` validates the YAML with them and writes what it validated
to (the config, and the options a check of it with nothing given runs with) as tagged JSON, with
the SHA-256 of the YAML text. :func:`prevalidated` uses the snapshot only when the YAML is still
that text (else a stale snapshot is ignored and the YAML is validated as any config is) and
nothing given could change the options. tests/test_builtin_snapshot.py checks that the snapshot
is exactly what the models produce today (re-write it after changing them: see
``spec.config.write_builtin_snapshot``), that its records answer as the models do, and that both
paths give the same report.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradcheck_cli.safety.inputs import read_bytes, read_json
from gradcheck_cli.spec.records import RECORDS, Record

if TYPE_CHECKING:
    from gradcheck_cli.options import CheckOptions
    from gradcheck_cli.spec.config import Config

DATA = Path(__file__).parent / "data"
#: The built-in default network (a copy of configs/seed_mlp.yaml shipped in the package).
BUILTIN_CONFIG = DATA / "seed_mlp.yaml"
#: What it validates to (written by ``spec.config.builtin_snapshot``).
SNAPSHOT = DATA / "seed_mlp.validated.json"
#: Options whose giving changes others in ``CheckOptions.build`` (ε's source, the mode's sizes):
#: given at all, they take the usual path.
_ENTANGLED = frozenset({"eps", "method", "mode"})
_ABSENT = object()


def digest(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()


def encode(value: Any) -> Any:
    """A validated model (and what it holds) as tagged JSON that :func:`decode` reads back into
    records: models, tuples, paths and mappings are tagged, lists and scalars are themselves."""
    fields = getattr(type(value), "model_fields", None)
    if isinstance(fields, dict):  # a pydantic model
        extra = value.model_extra
        return {
            "record": type(value).__name__,
            "values": {name: encode(getattr(value, name)) for name in fields},
            "extra": None if extra is None else {k: encode(v) for k, v in extra.items()},
            "hidden": sorted(name for name, f in fields.items() if f.exclude),
        }
    if isinstance(value, tuple):
        return {"tuple": [encode(v) for v in value]}
    if isinstance(value, Path):
        return {"path": str(value)}
    if isinstance(value, dict):
        return {"dict": {k: encode(v) for k, v in value.items()}}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot snapshot a {type(value).__name__}: {value!r}")


def decode(data: Any) -> Any:
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "record" in data:
        cls = RECORDS.get(data["record"], Record)
        extra = data["extra"]
        return cls(
            {k: decode(v) for k, v in data["values"].items()},
            None if extra is None else {k: decode(v) for k, v in extra.items()},
            data["hidden"],
        )
    if "tuple" in data:
        return tuple(decode(v) for v in data["tuple"])
    if "path" in data:
        return Path(data["path"])
    return {k: decode(v) for k, v in data["dict"].items()}


def prevalidated(
    path: str | Path, *, no_plugins: bool = False, seed: int | None = None, **given: Any
) -> tuple[Config, CheckOptions] | None:
    """The built-in network's config and check options from the snapshot (records standing for
    the models, spec/records.py), when ``path`` is the built-in config, its text is the one the
    snapshot was made from, and nothing given changes the options (``seed`` None; each given
    option None, or the very value, of the same type, that the snapshot's options hold, and not
    one of eps, method, mode); else None: validate as usual."""
    if Path(path) != BUILTIN_CONFIG or seed is not None:
        return None
    try:
        text = read_bytes(BUILTIN_CONFIG)  # registers it as an input of this run, as load_config
        snap = read_json(SNAPSHOT)
        if snap.get("sha256") != digest(text):
            return None  # the YAML changed since the snapshot: it is validated as any config is
        opts = decode(snap["options"])
        cfg = decode(snap["config"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # no snapshot, or not one this version wrote: the usual path
    for name, value in given.items():
        if value is None:
            continue
        held = getattr(opts, name, _ABSENT)
        if name in _ENTANGLED or type(held) is not type(value) or held != value:
            return None
    update = {"base_dir": BUILTIN_CONFIG.parent, "source": str(BUILTIN_CONFIG)}
    return cfg.model_copy(update={**update, "no_plugins": no_plugins}), opts
