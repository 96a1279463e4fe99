"""Fixed data arguments (``--data X=X.npy``, ``data: {X: X.npy}``): read from ``.npy``, a member of
an ``.npz`` (``FILE.npz:key``) or ``.json``; passed as they are, never differentiated.

Every data file goes through :func:`read_data` (the one place that registers it as an input of
the run) after :func:`data_bytes` has sized it from its header, so the memory estimate counts it
before anything is loaded.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from gradcheck_cli.errors import ConfigError
from gradcheck_cli.layers.base import Array
from gradcheck_cli.safety.inputs import open_input, read_array, read_arrays, read_json

SUFFIXES = (".npy", ".npz", ".json")
#: Bytes that parsing one byte of JSON may hold at once (Python floats and lists), an upper bound.
JSON_BYTES_PER_BYTE = 32


def split(ref: str, base_dir: Path) -> tuple[Path, str | None]:
    """``"d.npz:X"`` → (base_dir/d.npz, "X"); ``"X.npy"`` → (base_dir/X.npy, None)."""
    head, sep, key = ref.rpartition(":")
    if sep and head.lower().endswith(".npz") and key:
        return base_dir / head, key
    return base_dir / ref, None


def _refuse(message: str, field: str, hint: str | None = None) -> ConfigError:
    return ConfigError(message, field=field, hint=hint)


def _check(path: Path, field: str) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise _refuse(
            f"cannot read data from '{path.name}': give a .npy file, a member of a .npz "
            "(FILE.npz:key) or a .json array",
            field,
        )
    if not path.is_file():
        raise _refuse(f"no data file {path.resolve()}", field)


def _npy_bytes(header_of: Any) -> float:
    version = np.lib.format.read_magic(header_of)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(header_of)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(header_of)
    return float(np.prod([int(d) for d in shape], dtype=object) * np.dtype(dtype).itemsize)


def _member(names: list[str], key: str | None, path: Path, field: str) -> str:
    keys = [n[:-4] if n.endswith(".npy") else n for n in names]
    if key is None and len(keys) == 1:
        return names[0]
    if key is None or key not in keys:
        what = f"no array '{key}' in" if key is not None else "name the array of"
        raise _refuse(
            f"{what} {path.resolve()}",
            field,
            hint=f"its arrays: {', '.join(keys) or 'none'}; e.g. {path.name}:{keys[0] if keys else 'X'}",
        )
    return names[keys.index(key)]


def data_bytes(ref: str, base_dir: Path, field: str) -> float:
    """The memory ``ref`` will take once read, from its header alone (nothing is loaded)."""
    path, key = split(ref, base_dir)
    _check(path, field)
    try:
        if path.suffix.lower() == ".npy":
            with open_input(path) as f:
                return _npy_bytes(f)
        if path.suffix.lower() == ".npz":
            with open_input(path) as fh, zipfile.ZipFile(fh) as z:
                # the member's uncompressed size: its header and data, read from the zip index
                return float(z.getinfo(_member(z.namelist(), key, path, field)).file_size)
        return float(path.stat().st_size * JSON_BYTES_PER_BYTE)
    except ConfigError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise _refuse(f"cannot read {path.resolve()}: {exc}", field) from None


def read_data(ref: str, base_dir: Path, field: str) -> Array:
    """The array ``ref`` names (``FILE.npy``, ``FILE.npz:key``, ``FILE.json``), relative to
    ``base_dir``; registered as an input of the run (no output may replace it)."""
    path, key = split(ref, base_dir)
    _check(path, field)
    try:  # the registering readers (safety/inputs.py): no output may replace this file
        if path.suffix.lower() == ".npy":
            arr = read_array(path)
        elif path.suffix.lower() == ".npz":
            arrays = read_arrays(path)
            arr = arrays[_member(list(arrays), key, path, field)]
        else:
            arr = np.asarray(read_json(path))
    except ConfigError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
        raise _refuse(f"cannot read {path.resolve()}: {exc}", field) from None
    return as_data(arr, field, str(path.resolve()))


def as_data(value: Any, field: str, what: str = "it") -> Array:
    """A numeric array (numbers, booleans), read-only: a function that writes into its data would
    change it between the calls of one check."""
    try:
        arr = np.array(value, copy=True)
    except (TypeError, ValueError) as exc:
        raise _refuse(f"{what} is not an array: {exc}", field) from None
    if arr.dtype.kind not in "biufc":
        raise _refuse(
            f"{what} holds {arr.dtype} values, not numbers",
            field,
            hint="data is an array of numbers (ragged JSON lists and strings are not)",
        )
    arr.flags.writeable = False
    return arr


def _ref(value: Any, field: str) -> str | None:
    """The file a data entry names (``"X.npy"``, ``{file: X.npy}``), None for inline values."""
    if isinstance(value, (str, Path)):
        return str(value)
    if isinstance(value, dict):
        if set(value) == {"file"} and isinstance(value["file"], str):
            return value["file"]
        if set(value) == {"values"}:
            return None
        raise _refuse(
            "a data entry is a file (X.npy, d.npz:X, X.json), {file: …} or {values: [...]}",
            field,
        )
    return None


def _where(field: str, name: str) -> str:
    return f"{field} {name}" if field.startswith("--") else f"{field}.{name}"


def entries_bytes(given: dict[str, Any], base_dir: Path, field: str) -> list[tuple[str, float]]:
    """(field, bytes) of each data entry, from headers and inline sizes: for the memory plan."""
    out = []
    for name, value in given.items():
        where = _where(field, name)
        ref = _ref(value, where)
        if ref is not None:
            nbytes = data_bytes(ref, base_dir, where)
        else:
            nbytes = float(np.asarray(value["values"] if isinstance(value, dict) else value).nbytes)
        out.append((where, nbytes))
    return out


def load_entries(given: dict[str, Any], base_dir: Path, field: str) -> dict[str, Array]:
    """Each data entry as a read-only array: files read by :func:`read_data`, arrays and
    ``{values: …}`` as given."""
    out: dict[str, Array] = {}
    for name, value in given.items():
        where = _where(field, name)
        ref = _ref(value, where)
        if ref is not None:
            out[name] = read_data(ref, base_dir, where)
        else:
            out[name] = as_data(value["values"] if isinstance(value, dict) else value, where)
    return out
