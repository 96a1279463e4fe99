"""Finite-difference machinery: L at perturbed copies of one tensor, evaluated in batches.

Every stencil is built on :meth:`Perturber.losses` (entry ``indices[j]`` moved by ``offsets[k]``).
The engine behind it:

- *Prefix caching*: perturbing a parameter of layer ℓ re-runs only layers ℓ… from its cached input.
- *Batched copies*: the perturbed copies' outputs of layer ℓ are stacked along the batch axis
  (C·N rows) and pushed through the remaining layers in one call per layer; the loss is then
  reduced per copy. A layer is fed stacked copies only if it declares ``row_independent = True``
  (class attribute) *and* a probe on its own input confirms it (:meth:`Perturber.stackable`);
  any other layer (batch statistics, user layers that do not declare it, false declarations,
  which are named in ``Network.findings``) is called once per copy on N rows: always correct.
- *Row deltas*: moving one entry of the input changes one row; while every layer is row
  independent, a copy is carried as that one row (C copies = C rows through each layer), and
  losses that know their per-row terms (``forward_rows``) finish it from the unperturbed rows.
- *Column deltas*: built-in layers whose forward is known exactly short-cut their own
  perturbations (changed columns, rank-1 updates, changed rows, tanh by this CPU's cheapest
  exact form: lowrank.py, kernels.py; a rank-1 form through tanh and the next linear layer from
  tables: taylor.py; dense copies as their change through linear layers and tanh: changes.py).
  Subclasses overriding ``forward`` lose these (``lowrank.declares``); user layers don't.
- *Chunks*: copies are processed in chunks sized so that the stacked arrays stay within
  ``chunk_bytes`` (default :data:`CHUNK_BYTES`), each chunk under one floating-point watch
  (``Network.watching``) and each tensor under one re-binding watch (``Network.focused``).

The caller's arrays are never modified: parameters are either not touched at all (short-cuts,
stacked copies) or set and restored bit-exactly around one forward call (and put back if a
forward re-binds them: ``Network.run_layer``). The engine works on its own C-ordered copies of
the input and every cached layer output, and copies what user layers return, so a Fortran or
transposed input, a reused buffer or a view of a parameter cannot lose a perturbation (pure
NumPy; nothing of tolerances or verdicts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from gradcheck_cli.defaults import CHUNK_BYTES
from gradcheck_cli.engine import changes, chunks, kernels, taylor
from gradcheck_cli.engine.contracts import row_independent, scalar
from gradcheck_cli.engine.lowrank import (
    Cols,
    Rank1,
    Rows,
    RowSet,
    Shifted,
    declares,
    rank1_through,
    rows_to_loss,
    run_rows,
    shift_dense,
)
from gradcheck_cli.engine.network import Network, ParamRef
from gradcheck_cli.engine.probes import distinct_rows, rows_mismatch
from gradcheck_cli.errors import PluginError
from gradcheck_cli.layers.base import Array

UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11}
#: Called with the number of loss evaluations just completed.
ProgressFn = Callable[[int], None]

_State = Cols | Rows | Rank1 | RowSet | Shifted | Array


class Perturber:
    """Evaluates L with entries of one tensor changed, batched and with prefix caching."""

    def __init__(
        self,
        network: Network,
        x: Array,
        *,
        chunk_bytes: int = CHUNK_BYTES,
        batched: bool = True,
        progress: ProgressFn | None = None,
    ) -> None:
        self.net = network
        self.chunk_bytes, self.batched, self.progress = chunk_bytes, batched, progress
        self.chunk_caps: dict[str, int] = {}  # per tensor, a budget's cap on copies a chunk
        chunks.settle_heap()
        kernels.chosen()  # this CPU's kernels, measured once per process before anything is timed
        self._base_terms: Array | None = None  # the loss's per-row terms of the base output
        self._x_complex: Array | None = None  # the input while a complex copy stands in for it
        #: Per layer: may it be fed stacked copies (declared row independent, and verified).
        self._stackable: dict[int, bool] = {}
        self.series_cache: dict[Any, Any] = {}  # taylor.py's tables, changes.py's coefficients
        #: Layers (and len(layers) for the loss) already probed for the complex step.
        self.complex_checked: set[int] = set()
        # Every array the engine perturbs, slices or stacks is C-ordered: a Fortran or transposed
        # input, or a layer returning a transposed view, would otherwise lose perturbations (a
        # reshape of it is a copy). What user layers return is copied (Network.run_layer).
        # So a reused buffer or a view of a parameter cannot change.
        self.x = np.ascontiguousarray(x)
        out = network.forward(self.x)
        self.layer_inputs = [self.x, *(np.ascontiguousarray(a) for a in network.inputs[1:])]
        #: Output of each layer in the unperturbed pass.
        self.outputs: list[Array] = [*self.layer_inputs[1:], np.ascontiguousarray(out)]
        self.f0 = self._loss(self.outputs[-1])

    # -- basics -----------------------------------------------------------------------------------
    def array(self, ref: ParamRef) -> Array:
        if ref.key is None:
            return self.x
        arr: Array = self.net.layers[ref.layer].params[ref.key]
        return arr

    def _loss(self, pred: Array) -> Any:
        with self.net.stage(f"loss ({self.net.loss_label}).forward"):
            value = self.net.loss.forward(pred, self.net.target)
        return scalar(value, self.net.loss_label)

    def layer_forward(self, i: int, x: Array) -> Array:
        """Layer ``i``'s forward on ``x`` (a copy for untrusted layers, whose output is copied
        too and whose params are put back if it re-binds them: ``Network.run_layer``)."""
        return self.net.run_layer(i, x if self.net.trusted[i] else x.copy())

    def stackable(self, i: int) -> bool:
        """Layer ``i`` may be fed stacked copies: it declares ``row_independent = True`` and the
        declaration holds on its own input (checked once, see :meth:`_rows_hold`). A false
        declaration is named in ``net.findings`` and the layer then runs once per copy. A user
        layer on a batch of one distinct row is never stacked: one row cannot show that the
        output of a row ignores the other rows (a batch norm of one row is constant)."""
        known = self._stackable.get(i)
        if known is None:
            x = self.layer_inputs[i]
            one_row = x.ndim == 0 or (not self.net.trusted[i] and distinct_rows(x) < 2)
            known = row_independent(self.net.layers[i]) and not one_row and self._rows_hold(i)
            self._stackable[i] = known
        return known

    def _rows_hold(self, i: int) -> bool:
        """Check layer ``i``'s row-independence declaration on its own input (probes.py); a
        false one is named in ``net.findings``."""
        why = rows_mismatch(
            lambda x: self.layer_forward(i, x), self.layer_inputs[i], self.outputs[i]
        )
        if why is None:
            return True
        self.net.findings[
            f"{self.net.describe(i)} declares row_independent = True, but {why}: its perturbed "
            "copies were run one at a time instead of stacked"
        ] = None
        return False

    def loss_with(self, ref: ParamRef, index: int, value: Any) -> Any:
        """L with entry ``index`` of ``ref`` set to ``value``, restored bit-exactly afterwards:
        the plain one-at-a-time evaluation (the reference the batched engine is tested against)."""
        arr = self.array(ref)
        old = arr.flat[index]
        arr.flat[index] = value
        try:
            start = ref.layer
            inp = self.x if ref.key is None else self.layer_inputs[start]
            return scalar(self.net.loss_value(inp, start), self.net.loss_label)
        finally:
            arr.flat[index] = old

    # -- the entry point ----------------------------------------------------------------------------
    def losses(self, ref: ParamRef, indices: Array, offsets: Array) -> tuple[Array, Array]:
        with self.net.focused(ref):
            return self._losses(ref, indices, offsets)

    def _losses(self, ref: ParamRef, indices: Array, offsets: Array) -> tuple[Array, Array]:
        """L with entry ``indices[j]`` of ``ref`` moved by ``offsets[k]`` (or ``offsets[j, k]``
        when ``offsets`` is 2-D: a step per entry), for every j and k.

        Returns (losses, steps), both (len(indices), len(offsets)); ``steps`` are the offsets as
        represented in the array's dtype ((θ + o) − θ), which the stencils divide by. Complex
        ``offsets`` (complex step) are evaluated on complex copies: the column/stacked paths
        promote dtypes on their own; a layer run once per copy gets a complex copy of the
        perturbed parameter in its ``params`` for that one call. Losses and steps are complex.
        """
        arr = self.array(ref)
        indices = np.asarray(indices, dtype=np.intp).reshape(-1)
        offsets = np.asarray(offsets)
        offsets = offsets.reshape(1, -1) if offsets.ndim < 2 else offsets
        theta = arr.reshape(-1)[indices]
        # θ + o rounded to the array's dtype (float32 moves by float32 steps); complex needs complex
        dtype = np.result_type(arr.dtype, offsets.dtype) if np.iscomplexobj(offsets) else arr.dtype
        moved = (theta[:, None] + offsets).astype(dtype)
        steps = moved.astype(np.result_type(dtype, np.float64)) - theta[:, None]
        if not self.batched:
            out = np.empty(moved.shape, np.result_type(dtype, np.float64))
            for j, i in enumerate(indices):
                for k in range(moved.shape[1]):
                    out[j, k] = self._loop_one(ref, int(i), moved[j, k])
                if self.progress:
                    self.progress(moved.shape[1])
            return out, steps
        flat_idx = np.repeat(indices, moved.shape[1])
        flat_new = moved.reshape(-1)
        flat_delta = steps.reshape(-1)
        out_flat = np.empty(flat_new.shape, np.result_type(dtype, np.float64))
        per_chunk = self.chunk_size(ref)
        for lo in range(0, len(flat_idx), per_chunk):
            hi = min(lo + per_chunk, len(flat_idx))
            out_flat[lo:hi] = self._batch(ref, flat_idx[lo:hi], flat_new[lo:hi], flat_delta[lo:hi])
            if self.progress:
                self.progress(hi - lo)
        return out_flat.reshape(moved.shape), steps

    def _loop_one(self, ref: ParamRef, index: int, value: Any) -> Any:
        arr = self.array(ref)
        if np.iscomplexobj(value) and not np.iscomplexobj(arr):
            with self._complex_entry(ref, index, value):
                inp = self.x_complex if ref.key is None else self.layer_inputs[ref.layer]
                return scalar(self.net.loss_value(inp, ref.layer), self.net.loss_label)
        return self.loss_with(ref, index, value)

    def chunk_size(self, ref: ParamRef) -> int:
        """Copies per chunk (see :func:`gradcheck_cli.engine.chunks.chunk_size`)."""
        return min(chunks.chunk_size(self, ref), self.chunk_caps.get(ref.name, 1 << 62))

    # -- the batched path -------------------------------------------------------------------------
    def _batch(self, ref: ParamRef, idx: Array, new: Array, delta: Array) -> Array:
        """Losses of len(idx) copies, copy c having entry idx[c] of ``ref`` set to new[c]."""
        with self.net.watching():
            return self._batch_watched(ref, idx, new, delta)

    def _batch_watched(self, ref: ParamRef, idx: Array, new: Array, delta: Array) -> Array:
        state: _State
        if ref.key is None:
            state, start = self._input_copies(idx, new), 0
        else:
            state, start = self._perturbed_outputs(ref, idx, new, delta), ref.layer + 1
        state = taylor.run(self, start, state, chunks.CHUNK_TARGET)  # layer by layer
        self.net.fp.where = f"loss ({self.net.loss_label}).forward"  # its short-cuts below
        if isinstance(state, Rows) and declares(self.net.loss, "forward_rows"):
            values: Array = self.net.loss.forward_rows(
                state.base, state.rows, state.values, self.net.target
            )
            return values
        loss = self.net.loss
        if isinstance(state, RowSet) and declares(loss, "row_terms"):
            base, target = state.base, self.net.target
            if self._base_terms is None:  # the unperturbed rows' terms, once per Perturber
                self._base_terms = loss.row_terms(base.shape, np.arange(len(base)), base, target)
            return state.losses(
                self._base_terms, loss.row_terms(base.shape, state.rows, state.values, target)
            )
        if isinstance(state, Cols) and declares(self.net.loss, "forward_rank1"):
            state = state.rank1()  # one changed column = a rank-1 update along a unit vector
        if isinstance(state, Rank1) and declares(self.net.loss, "forward_rank1"):
            ranked: Array = self.net.loss.forward_rank1(state, self.net.target)
            return ranked
        return self._losses_per_copy(state)

    def _input_copies(self, idx: Array, new: Array) -> _State:
        x = self.x
        c = len(idx)
        if x.ndim >= 2 and self.stackable(0):
            rows, within = np.divmod(idx, x[0].size)
            values = np.array(x[rows], dtype=np.result_type(x, new), order="C")
            values.reshape(c, -1)[np.arange(c), within] = new
            return Rows(x, rows, values)
        if x.ndim == 2:
            rows, cols = np.unravel_index(idx, x.shape)
            values = np.array(x[:, cols].T, dtype=np.result_type(x, new))
            values[np.arange(c), rows] = new
            return Cols(x, np.asarray(cols), values)
        dense = np.empty((c, *x.shape), np.result_type(x, new))
        dense[...] = x
        dense.reshape(c, -1)[np.arange(c), idx] = new
        return dense

    def _perturbed_outputs(self, ref: ParamRef, idx: Array, new: Array, delta: Array) -> Any:
        """The perturbed layer's outputs for every copy: a column short-cut, or one call each."""
        i, key = ref.layer, ref.key
        assert key is not None
        layer = self.net.layers[i]
        x, out = self.layer_inputs[i], self.outputs[i]
        self.net.fp.where = self.net.call(i, "forward")
        if declares(layer, "perturbed_columns") and x.ndim == 2 and out.ndim == 2:
            cols, values = layer.perturbed_columns(key, x, out, idx, delta)
            return Cols(out, cols, values)
        arr = layer.params[key]
        outs = []
        for c in range(len(idx)):
            if np.iscomplexobj(new) and not np.iscomplexobj(arr):
                with self._complex_entry(ref, int(idx[c]), new[c]):
                    outs.append(self.layer_forward(i, x))
                continue
            old = arr.flat[idx[c]]
            arr.flat[idx[c]] = new[c]
            try:
                outs.append(self.layer_forward(i, x))
            finally:
                arr.flat[idx[c]] = old
        return self._stack(i, outs)

    def propagate(self, i: int, state: _State) -> _State:
        """Layer ``i`` applied to every copy in ``state``."""
        layer = self.net.layers[i]
        self.net.fp.where = self.net.call(i, "forward")  # for its short-cuts too
        x_base, out_base = self.layer_inputs[i], self.outputs[i]
        if isinstance(state, Rank1) and rows_to_loss(self, i):
            through = rank1_through(self, i, state)  # changed rows only, if few change
            if through is not None:
                return through
        if isinstance(state, RowSet):
            if self.stackable(i):
                return RowSet(
                    out_base, state.n_copies, state.copy, state.rows, run_rows(self, i, state)
                )
            state = state.dense()
        if isinstance(state, Rows) and self.stackable(i):
            out = self.layer_forward(i, state.values)
            if out.shape != (len(state.rows), *out_base.shape[1:]):
                raise PluginError(
                    f"{self.net.describe(i)} declares row_independent = True but returned shape "
                    f"{out.shape} for {len(state.rows)} rows (expected rows of {out_base.shape})"
                )
            return Rows(out_base, state.rows, out)
        if isinstance(state, Cols) and out_base.ndim == 2:
            if declares(layer, "rank1_columns"):
                u, w = layer.rank1_columns(x_base, out_base, state.cols, state.values)
                return Rank1(out_base, u, w, state.cols, i)
            if declares(layer, "elementwise") and out_base.shape == x_base.shape:
                values = self.layer_forward(i, state.values)
                return Cols(out_base, state.cols, values)
        if (moved := changes.through(self, i, state)) is not None:
            return moved  # the change alone through linear layers and tanh (changes.py)
        if (shifted := shift_dense(self, i, state)) is not None:
            return shifted  # tanh from the change itself (kernels.py)
        copies = state if isinstance(state, np.ndarray) else state.dense()
        c, n = copies.shape[0], copies.shape[1]
        if self.stackable(i):
            out = self.layer_forward(i, copies.reshape(c * n, *copies.shape[2:]))
            if out.shape[:1] != (c * n,):
                raise PluginError(
                    f"{self.net.describe(i)} declares row_independent = True but returned "
                    f"{out.shape[0] if out.ndim else 0} rows for {c * n} input rows"
                )
            return out.reshape(c, n, *out.shape[1:])
        return self._stack(i, [self.layer_forward(i, copies[k]) for k in range(c)])

    def _stack(self, i: int, outs: list[Array]) -> Array:
        shapes = {o.shape for o in outs}
        if len(shapes) > 1:
            raise PluginError(
                f"{self.net.call(i, 'forward')} returned outputs of different shapes "
                f"{sorted(shapes)} for inputs of the same shape"
            )
        return np.stack(outs)

    def _losses_per_copy(self, state: Any) -> Array:
        loss = self.net.loss
        if isinstance(state, Shifted) and declares(loss, "forward_shifted"):
            return loss.forward_shifted(state, self.net.target)
        dense = state if isinstance(state, np.ndarray) else state.dense()
        if declares(loss, "forward_copies"):
            values: Array = loss.forward_copies(dense, self.net.target)
            return values
        return np.array([self._loss(dense[k]) for k in range(dense.shape[0])])

    # -- complex copies (complex step) --------------------------------------------------------------
    @property
    def x_complex(self) -> Array:
        return self.x if self._x_complex is None else self._x_complex

    @contextmanager
    def _complex_entry(self, ref: ParamRef, index: int, value: Any) -> Iterator[None]:
        """``ref``'s tensor replaced by a complex copy with entry ``index`` = ``value``."""
        arr = self.array(ref)
        tmp = arr.astype(np.result_type(arr, value))
        tmp.flat[index] = value
        params = None if ref.key is None else self.net.layers[ref.layer].params
        if params is None:
            self._x_complex = tmp
        else:
            params[ref.key] = tmp
        try:
            yield
        finally:
            if params is None:
                self._x_complex = None
            else:
                params[ref.key] = arr

    # -- whole-tensor directions (directional checks) -----------------------------------------------
    def along(self, ref: ParamRef, direction: Array, steps: Array) -> Array:
        """L(θ + s·v) for each s in ``steps``, v = ``direction`` (the tensor's shape); θ restored
        bit-exactly afterwards. Runs layers ℓ… once per step."""
        arr = self.array(ref)
        saved = arr.copy()
        out = np.empty(len(steps))
        with self.net.focused(ref):
            try:
                for k, s in enumerate(steps):
                    np.add(saved, s * direction, out=arr, casting="unsafe")
                    inp = self.x if ref.key is None else self.layer_inputs[ref.layer]
                    out[k] = scalar(self.net.loss_value(inp, ref.layer), self.net.loss_label)
                    if self.progress:
                        self.progress(1)
            finally:
                arr[...] = saved
        return out
