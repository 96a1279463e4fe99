"""What every benchmark figure is printed with: the CPU's SIMD level as NumPy uses it, the path
forced by ``NPY_DISABLE_CPU_FEATURES`` (and torch's ``ATEN_CPU_CAPABILITY``), library versions,
and the kernels gradcheck chose on this path (gradcheck_cli/engine/kernels.py).

NumPy's transcendental functions differ most between CPU classes (``np.tanh`` ~1 ns an element
with AVX-512's SVML, ~6–14 ns with AVX2), so a figure means little without its class. To measure
the AVX2 path on an AVX-512 machine:

    NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL AVX512_SPR" ATEN_CPU_CAPABILITY=avx2 python ...
"""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np


def simd() -> dict[str, list[str]]:
    """NumPy's ``show_config()`` "SIMD Extensions" (what this process's NumPy dispatches to)."""
    info: dict[str, Any] = np.show_config(mode="dicts")  # type: ignore[func-returns-value]
    found: dict[str, list[str]] = info.get("SIMD Extensions", {})
    return found


def cpu_class() -> str:
    """ "AVX-512" when NumPy dispatches to X86_V4 or an AVX512 target, "AVX2" for X86_V3 (or
    AVX2), else the highest target found (or the machine)."""
    found = simd().get("found", [])
    if any(f == "X86_V4" or f.startswith("AVX512") for f in found):
        return "AVX-512"
    if any(f in ("X86_V3", "AVX2") for f in found):
        return "AVX2"
    return found[-1] if found else platform.machine()


def describe(torch: Any = None) -> str:
    """One line: CPU class, NumPy's SIMD targets, the forced path, versions, kernel choices."""
    from gradcheck_cli import __version__
    from gradcheck_cli.engine import kernels

    s = simd()
    parts = [
        f"{cpu_class()} path (NumPy SIMD found: {' '.join(s.get('found', [])) or '—'}; "
        f"not found: {' '.join(s.get('not found', [])) or '—'})",
    ]
    forced = os.environ.get("NPY_DISABLE_CPU_FEATURES")
    if forced:
        parts.append(f'forced by NPY_DISABLE_CPU_FEATURES="{forced}"')
    parts.append(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__}, gradcheck {__version__}"
    )
    if torch is not None:
        cap = torch.backends.cpu.get_cpu_capability()
        env = os.environ.get("ATEN_CPU_CAPABILITY")
        parts.append(
            f"torch {torch.__version__} ({cap}" + (f", ATEN_CPU_CAPABILITY={env})" if env else ")")
        )
    else:
        parts.append("torch not installed")
    chosen = kernels.chosen()
    parts.append("kernels: " + ", ".join(f"{k}={v}" for k, v in chosen.items()))
    return "; ".join(parts)


if __name__ == "__main__":
    try:
        import torch as _torch
    except ImportError:
        _torch = None
    print(describe(_torch))
