"""Run a :class:`~fastconv._plan.Plan` on NumPy arrays.

This is the only place that reshapes user arrays into the engines' layout:
convolved axes last, batch axes flattened into one leading axis (broadcast
between the two inputs), C-contiguous, in the compute dtype.  Engines are
imported here lazily, so ``import fastconv`` stays cheap.
"""

from __future__ import annotations

import math

import numpy as np

from ._plan import Plan

# Output columns per task when rows alone do not give every thread enough work.
_COL_BLOCK = 4096


def _engine_layout(a: np.ndarray, order, batch_shape, dtype) -> np.ndarray:
    """``a`` transposed to ``order``, batch axes flattened to one, C-contiguous, ``dtype``."""
    nb = len(batch_shape)
    t = a.transpose(order)
    spatial = t.shape[nb:]
    rows = math.prod(spatial[:-1])
    if t.shape[:nb] == tuple(batch_shape):
        nbatch = math.prod(batch_shape)
    elif all(s == 1 for s in t.shape[:nb]):
        nbatch = 1
    else:  # partial broadcasting between the inputs' batch axes
        t = np.broadcast_to(t, tuple(batch_shape) + spatial)
        nbatch = math.prod(batch_shape)
    t = np.ascontiguousarray(t, dtype=dtype).reshape(nbatch, rows, spatial[-1])
    # Engines only read their inputs.  Handing them read-only views means one
    # compiled variant serves writeable and read-only arrays alike (Numba
    # types the two differently and would otherwise compile the kernel twice).
    view = t.view()
    view.flags.writeable = False
    return view


def run(plan: Plan, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Correlate ``x`` with ``w`` as ``plan`` says; returns an array of the result dtype."""
    if plan.method in ("fft", "oa"):
        return _run_fft(plan, x, w)
    if plan.method != "direct":
        raise ValueError(f"plan.method must be one of 'direct', 'fft', 'oa'; got {plan.method!r}")
    import numba

    from ._engines import direct

    ndim = x.ndim
    axes = plan.axes
    batch_axes = tuple(a for a in range(ndim) if a not in axes)
    order = batch_axes + axes
    batch_shape = np.broadcast_shapes(
        tuple(x.shape[a] for a in batch_axes), tuple(w.shape[a] for a in batch_axes)
    )
    dtype = plan.compute_dtype

    if plan.flip:
        w = w[tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(ndim))]
    if plan.conj:
        w = np.conj(w)
    x3 = _engine_layout(x, order, batch_shape, dtype)
    w3 = _engine_layout(w, order, batch_shape, dtype)

    nbatch = math.prod(batch_shape)
    out_rows = math.prod(plan.out_shape[:-1])
    out_cols = plan.out_shape[-1]
    out = np.empty((nbatch, out_rows, out_cols), dtype)

    threads = numba.get_num_threads()
    col_block = out_cols if nbatch * out_rows >= 4 * threads else min(out_cols, _COL_BLOCK)
    i64 = lambda t: np.asarray(t, dtype=np.int64)  # noqa: E731
    direct.correlate(
        x3,
        w3,
        out,
        i64(plan.in_shape),
        i64(plan.out_shape),
        i64(plan.kernel_shape),
        i64(plan.stride),
        i64(plan.dilation),
        i64(plan.pad_lo),
        i64(plan.border_codes),
        dtype.type(plan.cval),
        max(col_block, 1),
        4 * threads,
    )

    out = out.reshape(tuple(batch_shape) + tuple(plan.out_shape))
    out = out.transpose(np.argsort(order))
    return out.astype(plan.result_dtype, copy=False)


def check_fft_plan(plan: Plan) -> None:
    """Refuse plans the FFT engines cannot run (they only do the zero border, stride 1, dilation 1)."""
    borders = (plan.border,) if isinstance(plan.border, str) else plan.border
    bad = [
        f"{name}={value!r}"
        for name, value, ok in (
            ("border", plan.border, all(b == "zero" for b in borders)),
            ("stride", plan.stride, all(s == 1 for s in plan.stride)),
            ("dilation", plan.dilation, all(d == 1 for d in plan.dilation)),
        )
        if not ok
    ]
    if bad:
        raise ValueError(
            f"method={plan.method!r} supports only a zero border, stride 1 and dilation 1; "
            f"got {', '.join(bad)} (use method='direct')"
        )


def _fft_layout(a: np.ndarray, order, batch_shape, dtype) -> np.ndarray:
    """``a`` transposed to ``order``, batch axes flattened to one, in ``dtype`` (no copy if possible)."""
    nb = len(batch_shape)
    t = a.transpose(order)
    spatial = t.shape[nb:]
    if t.shape[:nb] != tuple(batch_shape) and not all(s == 1 for s in t.shape[:nb]):
        t = np.broadcast_to(t, tuple(batch_shape) + spatial)
    nbatch = math.prod(t.shape[:nb])
    return t.astype(dtype, copy=False).reshape((nbatch,) + spatial)


def _run_fft(plan: Plan, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    from ._engines import fft

    check_fft_plan(plan)
    ndim = x.ndim
    axes = plan.axes
    batch_axes = tuple(a for a in range(ndim) if a not in axes)
    order = batch_axes + axes
    batch_shape = np.broadcast_shapes(
        tuple(x.shape[a] for a in batch_axes), tuple(w.shape[a] for a in batch_axes)
    )
    dtype = plan.compute_dtype
    if plan.flip:
        w = w[tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(ndim))]
    if plan.conj:
        w = np.conj(w)
    x3 = _fft_layout(x, order, batch_shape, dtype)
    w3 = _fft_layout(w, order, batch_shape, dtype)
    engine = fft.fft_correlate if plan.method == "fft" else fft.oa_correlate
    out = engine(x3, w3, plan.out_shape, plan.pad_lo)
    out = out.reshape(tuple(batch_shape) + tuple(plan.out_shape))
    out = out.transpose(np.argsort(order))
    if plan.result_dtype.kind in "biu":
        # Round to the nearest integer, then wrap like NumPy integer arithmetic.
        return np.rint(out).astype(np.int64).astype(plan.result_dtype)
    return out.astype(plan.result_dtype, copy=False)
