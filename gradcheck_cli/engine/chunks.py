"""How many perturbed copies the engine stacks at once (numeric.Perturber's chunks).

A chunk's stacked arrays stay within the caller's ``chunk_bytes`` (a hard cap, counting live
temporaries and room for complex) and are about :data:`CHUNK_TARGET` bytes each for speed
(:data:`CHUNK_TARGET_LEAN` for copies that never become dense). ``pert`` is a
:class:`gradcheck_cli.engine.numeric.Perturber`. Pure NumPy.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

import numpy as np

from gradcheck_cli.defaults import CHUNK_BYTES
from gradcheck_cli.engine import changes
from gradcheck_cli.engine.lowrank import ROWS_FRACTION, declares, rows_to_loss
from gradcheck_cli.engine.network import ParamRef
from gradcheck_cli.engine.taylor import fits
from gradcheck_cli.layers.base import Array

#: Stacked arrays alive at once per layer (input, output, a temporary or two).
_LIVE_ARRAYS = 4
#: Preferred size of one stacked array: small enough that a layer's arrays stay in L2 (1 MB per
#: core here), large enough that per-chunk Python overhead stays small. Measured (engine time of
#: every tensor, full mode) at 128 / 256 / 512 KB: bench `deep` 110 / 100 / 97 ms, a 6×64 tanh
#: MLP 2.04 / 1.82 / 1.70 s, a 4×48 GELU MLP 1.94 / 1.87 / 2.10 s, a small conv net 81 / 72 / 68 ms.
CHUNK_TARGET = 256 * 2**10
#: The same for copies that reach the loss as changed columns or a rank-1 form with no dense
#: layer on the way (only the loss's class-major array is stacked): measured on bench `small`,
#: full mode (before the base-max shift of softmax_ce_rank1), 31 ms at 256 KB, 29 at 512 KB and 1 MB.
CHUNK_TARGET_LEAN = 512 * 2**10
#: The same for copies that go on as changed rows after a ReLU (:func:`lean` = "rows"): the
#: dense estimate overstates them about twice, and per-chunk overhead dominates; measured on
#: bench `medium`, all tensors: 14.7 s at 1 MB, 13.1 at 2 MB, 12.5 at 4 MB.
CHUNK_TARGET_ROWS = 4 * 2**20
#: The same for dense copies whose every dense layer is a built-in linear layer or tanh (carried
#: as their change, changes.py: fewer temporaries, so per-chunk overhead weighs more): bench
#: deep, full mode, CPU time on the AVX2 path, 2 × 7 runs: 172-181 ms at 256 KB, 161 at 512 KB,
#: 164-168 at 1 MB.
CHUNK_TARGET_CHANGES = 512 * 2**10

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters
_M_MMAP_THRESHOLD = -3
#: Blocks from this size on are mapped (and unmapped when freed) instead of taken from the heap.
_MMAP_FROM = 16 * 2**20
_heap_settled = False


def settle_heap() -> None:
    """glibc only, once per process: let freed memory up to :data:`CHUNK_BYTES` stay at the top
    of the heap (M_TRIM_THRESHOLD; the default is 128 KiB), and take blocks below
    :data:`_MMAP_FROM` from the heap (M_MMAP_THRESHOLD: setting the first fixes this one at its
    default of 128 KiB). The engine allocates and frees chunk-sized temporaries
    (~:data:`CHUNK_TARGET`) thousands of times; mapped afresh, each costs its page faults again:
    the same check took 53 or 91 ms (bench small, full: 20,000 page faults per run instead of
    200), and bench `deep` with 256 KB chunks 396 ms instead of 92. Memory returned to the OS
    later is unchanged in total; nothing else is affected."""
    global _heap_settled
    if _heap_settled:
        return
    _heap_settled = True
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_TRIM_THRESHOLD, CHUNK_BYTES)  # returns 0 (ignored) on non-glibc libcs
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM)
    except (OSError, AttributeError):
        pass


def chunk_size(pert: Any, ref: ParamRef) -> int:
    """Copies per chunk: the stacked arrays of a chunk stay within ``chunk_bytes`` (a hard
    cap, counting live temporaries and room for complex), and each is about
    :data:`CHUNK_TARGET` bytes for speed. At least one."""
    largest = max(copy_bytes(pert, ref), 1)
    cap = pert.chunk_bytes // (_LIVE_ARRAYS * 2 * largest)
    kind = lean(pert, ref) or ("changes" if as_changes(pert, ref) else "")
    targets = {"": CHUNK_TARGET, "rows": CHUNK_TARGET_ROWS, "changes": CHUNK_TARGET_CHANGES}
    return max(1, min(cap, targets.get(kind, CHUNK_TARGET_LEAN) // largest))


def as_changes(pert: Any, ref: ParamRef) -> bool:
    """``ref`` is a parameter and every layer after its own is a built-in linear layer or tanh
    on real float64 2-D arrays (its dense copies then go on as their change: changes.py)."""
    layers, outs = pert.net.layers, pert.outputs
    if ref.key is None or not changes.enabled:
        return False
    return all(
        outs[i].ndim == 2
        and outs[i].dtype == np.float64
        and (declares(layers[i], "apply_change") or declares(layers[i], "shift_series"))
        for i in range(ref.layer + 1, len(layers))
    )


def lean(pert: Any, ref: ParamRef) -> str:
    """How copies of ``ref`` reach the loss without becoming dense, or "": after a layer with
    column short-cuts and elementwise layers, either "rank1" (the loss takes the form, with at
    most one linear layer, the last, on the way) or "rows" (a linear layer whose input is
    mostly zero, a ReLU's: on average at most ROWS_FRACTION of a column is non-zero, so that its
    rank-1 form goes on as changed rows, lowrank.rank1_through, to a loss with ``row_terms``)."""
    layers, outs = pert.net.layers, pert.outputs
    if ref.key is None or not declares(layers[ref.layer], "perturbed_columns"):
        return ""
    if outs[ref.layer].ndim != 2:
        return ""
    for i in range(ref.layer + 1, len(layers)):
        if outs[i].ndim != 2:
            return ""
        if declares(layers[i], "elementwise"):
            continue
        if not declares(layers[i], "rank1_columns"):
            return ""
        if i == len(layers) - 1:
            return "rank1" if declares(pert.net.loss, "forward_rank1") else ""
        x = pert.layer_inputs[i]
        share = np.count_nonzero(x) / max(x.size, 1)  # rows a column change reaches
        return "rows" if share <= ROWS_FRACTION and rows_to_loss(pert, i + 1) else ""
    return "rank1" if declares(pert.net.loss, "forward_rank1") else ""


def copy_bytes(pert: Any, ref: ParamRef) -> int:
    """Bytes of the largest array one copy occupies on its way to the loss (a row copy holds
    one row, a column-delta copy one column, a dense copy the whole layer output)."""
    layers, outs = pert.net.layers, pert.outputs
    if ref.key is None:
        first, start = pert.x, 0
        rows = pert.x.ndim >= 2 and pert.stackable(0)
        cols = not rows and first.ndim == 2
    else:
        first, start = outs[ref.layer], ref.layer + 1
        rows = False
        cols = declares(layers[ref.layer], "perturbed_columns") and first.ndim == 2

    def size(a: Array) -> int:
        if rows:
            return a.nbytes // a.shape[0]
        return a.nbytes // a.shape[1] if cols else a.nbytes

    sizes = [size(first)]
    i = start
    while i < len(layers):
        keyed = cols and outs[i].ndim == 2 and declares(layers[i], "rank1_columns")
        if keyed and fits(pert, i + 1):
            sizes.append(sum(outs[i].shape) * outs[i].itemsize)  # rank-1 factors (N + K)
            cols, i = False, i + 2  # the tanh after it: from taylor.py's tables, never dense
            continue
        rows = rows and pert.stackable(i)
        cols = cols and outs[i].ndim == 2 and declares(layers[i], "elementwise")
        sizes.append(size(outs[i]))
        i += 1
    if not (rows and declares(pert.net.loss, "forward_rows")):
        sizes.append(outs[-1].nbytes)  # the loss sees dense copies
    return max(sizes)
