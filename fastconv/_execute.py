"""Run a :class:`~fastconv._plan.Plan` on NumPy arrays.

This is the only place that reshapes user arrays into the engines' layout:
convolved axes last, batch axes flattened into one leading axis (broadcast
between the two inputs), C-contiguous, in the compute dtype.  Engines are
imported here lazily, so ``import fastconv`` stays cheap.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from . import _results
from ._plan import Plan, with_method

# Output columns per task when rows alone do not give every thread enough
# work: about a quarter of a thread's share, within these bounds.  Each task
# costs about 0.3 us to set up; on one 1-D signal of 10**6 samples, blocks of
# 16384 columns took 0.81-0.87x the time of blocks of 4096 for 3 and 7 taps,
# 0.95-0.97x for 15 and the same for 63 (whose eight tap passes over a block
# still run in the L1 cache at 4096); larger blocks gained nothing more.
_COL_BLOCK_MIN = 4096
_COL_BLOCK_MAX = 16384


def column_block(out_cols: int, rows: int, threads: int) -> int:
    """Output columns per task of the direct engine, for ``rows`` output rows in all."""
    if rows >= 4 * threads:
        return out_cols
    share = -(-out_cols // (4 * threads))
    return max(1, min(out_cols, max(_COL_BLOCK_MIN, min(_COL_BLOCK_MAX, share))))

# Trailing batch axes become convolved axes when the input's rows are at
# least this long (or longer than the convolved axis): :func:`_long_rows`.
_SHORT_ROW = 64

# Calls with at least this many outputs per batch item use a fused kernel for
# small windows (:func:`fastconv._engines.direct.for_window`); below it the
# general kernel is as fast and no kernel is compiled for the window.
_FUSED_MIN_OUTPUTS = 4096

# Largest table of mapped border-column taps (entries, int64) that a
# remembered launch keeps (:func:`fastconv._engines.direct.columns`).
_COLUMN_TABLE_KEPT = 4096


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


def _output_buffer(shape, dtype, x: np.ndarray) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` for an engine's output, placed away from ``x``.

    If it would start within 512 bytes of ``x``'s start modulo 4 KiB, it is
    placed half a page away instead.  Large arrays often start at the same
    offset within a page, and output written at the page offset of the input
    read just after it makes the CPU wait on a dependency that is not there
    (4K aliasing): on a 2048 x 2048 float64 image with a 7 x 7 kernel that
    cost 15 %.  Outputs of :data:`fastconv._results.MIN_BYTES` (4 MiB) or
    more are written into the memory of a large result the caller has
    dropped, where there is one (:mod:`fastconv._results`).  The direct
    engine and the CNN layers' engines take their outputs from here.
    """
    n, size = math.prod(shape), np.dtype(dtype).itemsize
    if n * size >= _results.MIN_BYTES:
        raw = _results.empty(n * size + 4096)
        skew = (x.ctypes.data + 2048 - raw.ctypes.data) % 4096 // size * size
        return raw[skew : skew + n * size].view(dtype).reshape(shape)
    out = np.empty(shape, dtype)
    if out.nbytes < 1 << 16:
        return out
    delta = (out.ctypes.data - x.ctypes.data) % 4096
    if 512 <= delta <= 4096 - 512:
        return out
    del out
    buf = np.empty(n + 4096 // size, dtype)
    skew = (x.ctypes.data + 2048 - buf.ctypes.data) % 4096 // size
    return buf[skew : skew + n].reshape(shape)


@functools.lru_cache(maxsize=1024)
def _batch_geometry(axes: tuple, x_shape: tuple, w_shape: tuple):
    """``(order, batch_shape, flip)``: batch axes first then the convolved ones, their broadcast
    shape, and the index that reverses the kernel along the convolved axes."""
    ndim = len(x_shape)
    batch_axes = tuple(a for a in range(ndim) if a not in axes)
    batch_shape = np.broadcast_shapes(
        tuple(x_shape[a] for a in batch_axes), tuple(w_shape[a] for a in batch_axes)
    )
    flip = tuple(slice(None, None, -1) if a in axes else slice(None) for a in range(ndim))
    return batch_axes + tuple(axes), tuple(batch_shape), flip


def _batch_order(plan: Plan, x: np.ndarray, w: np.ndarray):
    """``(order, batch_shape, w)``: see :func:`_batch_geometry`; the kernel flipped (a view) and
    conjugated as the plan says."""
    order, batch_shape, flip = _batch_geometry(plan.axes, x.shape, w.shape)
    if plan.flip:
        w = w[flip]
    if plan.conj:
        w = np.conj(w)
    return order, batch_shape, w


def run(plan: Plan, x: np.ndarray, w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Correlate ``x`` with ``w`` as ``plan`` says; returns an array of the result dtype.

    ``out`` (direct engine only): an array of the output's shape that the
    kernel may write into directly, if its dtype is the compute and result
    dtype and its layout is the engine's (C order after moving batch axes
    first); ``out`` itself is then returned.  It must not overlap ``x``.
    Otherwise it is ignored and the result is a new array.
    """
    if plan.method in ("fft", "oa"):
        return _run_fft(plan, x, w)
    if plan.method != "direct":
        raise ValueError(f"plan.method must be one of 'direct', 'fft', 'oa'; got {plan.method!r}")
    from ._config import threads as thread_count
    from ._engines import direct

    threads = thread_count()
    launch = _direct_launch(plan, x.shape, w.shape, threads)
    plan = launch.plan
    order, batch_shape, w = _batch_order(plan, x, w)
    dtype = plan.compute_dtype
    x3 = _engine_layout(x, order, batch_shape, dtype)
    w3 = _engine_layout(w, order, batch_shape, dtype)
    out3 = _writable_view(out, order, launch.shape3, dtype, plan.result_dtype)
    target = out3 if out3 is not None else _output_buffer(launch.shape3, dtype, x3)
    cval = dtype.type(plan.cval)
    direct.correlate(x3, w3, target, *launch.geometry, cval, launch.col_block, 4 * threads, launch.window,
                     launch.columns)
    if out3 is not None:
        return out
    result = target.reshape(launch.result_shape).transpose(launch.inverse)
    return result.astype(plan.result_dtype, copy=False)


@dataclass(frozen=True)
class _Launch:
    """What :func:`run` derives from a plan and the shapes alone (see :func:`_direct_launch`)."""

    plan: Plan  # the plan the engine runs (trailing batch axes may have become convolved)
    shape3: tuple  # the engine's output layout (batch, rows, columns)
    result_shape: tuple  # batch axes then the output's convolved extents
    inverse: tuple  # the transpose back to the caller's axis order
    window: object  # the window's fused interior, or None (see ``direct.for_window``)
    columns: tuple | None  # ``direct.columns`` of the geometry; None where its table is large
    geometry: tuple  # the kernel's int64 shape and step arguments, never written to
    col_block: int


@functools.lru_cache(maxsize=1024)
def _direct_launch(plan: Plan, x_shape: tuple, w_shape: tuple, threads: int) -> _Launch:
    """The direct engine's launch for ``plan`` on inputs of these shapes, remembered.

    Deriving it costs some 15 us of Python (more than a small convolution
    takes), and calls of one shape repeat.
    """
    from ._engines import direct

    along = _long_rows(plan, x_shape, w_shape)
    if along is not None:
        plan = along
    order, batch_shape, _ = _batch_geometry(plan.axes, x_shape, w_shape)
    nbatch = math.prod(batch_shape)
    out_rows = math.prod(plan.out_shape[:-1])
    out_cols = plan.out_shape[-1]
    window = None
    if plan.stride[-1] == 1 and plan.dilation[-1] == 1 and out_rows * out_cols >= _FUSED_MIN_OUTPUTS:
        window = direct.for_window(math.prod(plan.kernel_shape[:-1]), plan.kernel_shape[-1])
    columns = direct.columns(plan.in_shape[-1], plan.kernel_shape[-1], plan.out_shape[-1], plan.stride[-1],
                             plan.dilation[-1], plan.pad_lo[-1], plan.border_codes[-1])
    if columns[2].size > _COLUMN_TABLE_KEPT:
        columns = None  # not kept among the remembered launches (direct.columns remembers the last few)
    i64 = lambda t: np.asarray(t, dtype=np.int64)  # noqa: E731
    geometry = tuple(i64(t) for t in (plan.in_shape, plan.out_shape, plan.kernel_shape, plan.stride,
                                      plan.dilation, plan.pad_lo, plan.border_codes))
    return _Launch(
        plan=plan,
        shape3=(nbatch, out_rows, out_cols),
        result_shape=batch_shape + tuple(plan.out_shape),
        inverse=tuple(int(i) for i in np.argsort(order)),
        window=window,
        columns=columns,
        geometry=geometry,
        col_block=column_block(out_cols, nbatch * out_rows, threads),
    )


def _long_rows(plan: Plan, x_shape: tuple, w_shape: tuple):
    """``plan`` with the trailing batch axes made convolved axes of kernel extent 1; or None.

    The engines' layout puts batch axes first.  Batch axes after the last
    convolved one (a kernel along axis 0 of many channels, ``axes=0`` on an
    ``(n, channels)`` array) would cost a transposed copy in and a strided
    result, and leave the engine short rows of the convolved axis, with a
    fixed cost each (about 0.3 us: tap mapping, border columns).  Where the
    kernel does not vary along those axes, treating them as convolved axes
    of kernel extent 1 gives the same sums with no copy, along the input's
    own rows; it is done when those rows are long (at least
    :data:`_SHORT_ROW`, or longer than the convolved axis).

    Each output adds the same taps in the same order either way, so the
    result is bitwise the same; only a 'constant' border on the last
    convolved axis is left as it is: the engine adds the outside taps of the
    last axis (within a row) in tap order, but those of the other axes ahead
    of the rest.
    """
    from dataclasses import replace

    from ._engines.borders import CONSTANT

    last = plan.axes[-1]
    tail = range(last + 1, len(x_shape))
    if not tail or any(w_shape[a] != 1 for a in tail) or plan.border_codes[-1] == CONSTANT:
        return None
    row = x_shape[-1]
    if row < 2 or (row < _SHORT_ROW and row <= plan.out_shape[-1]):
        return None
    borders = plan.border if isinstance(plan.border, tuple) else (plan.border,) * len(plan.axes)
    extra = tuple(x_shape[a] for a in tail)
    ones = (1,) * len(extra)
    return replace(plan, axes=plan.axes + tuple(tail), in_shape=plan.in_shape + extra,
                   kernel_shape=plan.kernel_shape + ones, out_shape=plan.out_shape + extra,
                   pad_lo=plan.pad_lo + (0,) * len(extra), stride=plan.stride + ones,
                   dilation=plan.dilation + ones, border=borders + ("zero",) * len(extra))


def _writable_view(out, order, shape3, dtype, result_dtype):
    """``out`` as the direct kernel's output array ``shape3``, or None where it cannot be.

    Only a view the kernel already has a compiled variant for: the same
    dtype, aligned, writeable and C-contiguous once the batch axes come first.
    """
    if out is None or out.dtype != dtype or dtype != result_dtype:
        return None
    if not (out.flags.writeable and out.flags.aligned) or out.size == 0:
        return None
    view = out.transpose(order)
    if not view.flags.c_contiguous:
        return None
    return view.reshape(shape3)


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
    order, batch_shape, w = _batch_order(plan, x, w)
    dtype = plan.compute_dtype
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


# --- CNN layers ---------------------------------------------------------------------


def _nn_layout(a: np.ndarray, lead: int, dtype) -> np.ndarray:
    """``a`` (two leading axes, then spatial) with ``lead`` unit spatial axes in front, C-contiguous, read-only."""
    t = np.ascontiguousarray(a, dtype=dtype)
    t = t.reshape(t.shape[:2] + (1,) * lead + t.shape[2:])
    view = t.view()
    view.flags.writeable = False
    return view


def _conv_weight(plan, w: np.ndarray) -> np.ndarray:
    """The weight in forward layout ``(Cout, Cg, *K)``: flipped and channel-swapped if transposed."""
    if not plan.transposed_weight:
        return w
    G = plan.groups
    cg = plan.in_channels // G
    og = plan.out_channels // G
    k = w.shape[2:]
    w = w.reshape((G, cg, og) + k).swapaxes(1, 2).reshape((plan.out_channels, cg) + k)
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * len(k)]


def _conv_input(plan, x: np.ndarray):
    """The input upsampled by ``plan.upsample`` and cropped where padding is negative; and its padding."""
    if any(u > 1 for u in plan.upsample):
        up = np.zeros(x.shape[:2] + plan.upsampled_shape, plan.compute_dtype)
        up[(slice(None), slice(None)) + tuple(slice(None, None, u) for u in plan.upsample)] = x
        x = up
    pad_lo = plan.pad_lo
    if any(p < 0 for p in pad_lo):
        x = x[(slice(None), slice(None)) + tuple(slice(max(0, -p), None) for p in pad_lo)]
        pad_lo = tuple(max(0, p) for p in pad_lo)
    return x, pad_lo


def _geometry(plan, in_shape, pad_lo, lead: int):
    i64 = lambda t: np.asarray((1,) * lead + tuple(t), dtype=np.int64)  # noqa: E731
    zero = lambda t: np.asarray((0,) * lead + tuple(t), dtype=np.int64)  # noqa: E731
    return (i64(in_shape), i64(plan.out_shape), i64(plan.kernel_shape), i64(plan.stride),
            i64(plan.dilation), zero(pad_lo), zero(plan.border_codes))


def run_conv(plan, x: np.ndarray, w: np.ndarray, bias=None) -> np.ndarray:
    """Run a :class:`~fastconv._plan.ConvPlan`: ``x`` is ``(N, Cin, *S)``; returns ``(N, Cout, *So)``."""
    dtype = plan.compute_dtype
    nd = len(plan.in_shape)
    N, Cout = plan.batch, plan.out_channels
    if N == 0:
        return np.zeros((0, Cout) + plan.out_shape, plan.result_dtype)
    if plan.transposed_weight and plan.method == "channels" and not _winograd_transposed(plan):
        out = _run_transposed(plan, x, w)
        if bias is not None:
            out += np.asarray(bias, dtype=dtype).reshape((1, Cout) + (1,) * nd)
        return out.astype(plan.result_dtype, copy=False)
    planes = planes_plan(plan)
    if planes is not None:
        from . import _auto

        method = _auto.planes_method(planes, plan)
        out = None if method is None else _run_planes(with_method(planes, method), plan, x, w, bias)
        if out is not None:
            return out
    w = _conv_weight(plan, w)
    x, pad_lo = _conv_input(plan, x)
    if plan.method == "direct":
        import numba

        from ._engines import depthwise

        lead = 3 - nd
        x5 = _nn_layout(x, lead, dtype)
        w4 = _nn_layout(w, lead, dtype).reshape((Cout,) + (1,) * lead + plan.kernel_shape)
        out = _output_buffer((N, Cout) + (1,) * lead + plan.out_shape, dtype, x5)
        geometry = _geometry(plan, x.shape[2:], pad_lo, lead)
        depthwise.run(x5, w4, out, geometry[3], geometry[4], geometry[5], geometry[6], Cout // plan.groups,
                      4 * numba.get_num_threads())
        out = out.reshape((N, Cout) + plan.out_shape)
    else:
        from ._engines import channels, winograd

        lead = 3 - nd
        x5 = _nn_layout(x, lead, dtype)
        w5 = _nn_layout(w, lead, dtype)
        out = _output_buffer((N, Cout) + (1,) * lead + plan.out_shape, dtype, x5)
        geometry = _geometry(plan, x.shape[2:], pad_lo, lead)
        if not (winograd.applies(geometry, plan.groups, plan.in_channels, plan.out_channels, N)
                and winograd.forward(x5, w5, out, geometry, plan.groups)):
            channels.forward(x5, w5, out, geometry, plan.groups)
        out = out.reshape((N, Cout) + plan.out_shape)
    if bias is not None:
        out += np.asarray(bias, dtype=dtype).reshape((1, Cout) + (1,) * nd)
    return out.astype(plan.result_dtype, copy=False)


@functools.lru_cache(maxsize=1024)
def planes_plan(plan) -> Plan | None:
    """A forward layer with one input and one output channel per group as a :class:`Plan` of its planes, or None.

    Each ``(sample, channel)`` plane is correlated with its channel's kernel:
    the input ``(N, C, *S)`` and the weight ``(1, C, *K)`` broadcast over
    the two leading axes.  Only stride and dilation 1, padding >= 0.
    """
    if (plan.transposed_weight or not plan.in_channels == plan.out_channels == plan.groups
            or set(plan.stride) != {1} or set(plan.dilation) != {1} or set(plan.upsample) != {1}
            or min(plan.pad_lo) < 0 or min(plan.pad_hi) < 0 or min(plan.out_shape) < 1):
        return None
    nd = len(plan.in_shape)
    # The planes come back in the compute dtype: the bias is added before the one rounding to the result's.
    return Plan(axes=tuple(range(2, 2 + nd)), in_shape=plan.in_shape, kernel_shape=plan.kernel_shape,
                out_shape=plan.out_shape, pad_lo=plan.pad_lo, stride=(1,) * nd, dilation=(1,) * nd,
                border=plan.border, cval=0, flip=False, conj=False, result_dtype=plan.compute_dtype,
                compute_dtype=plan.compute_dtype, method="direct")


def _run_planes(planes: Plan, plan, x: np.ndarray, w: np.ndarray, bias) -> np.ndarray | None:
    """Run a layer :func:`planes_plan` described on the signal face's engines (``planes.method``).

    Returns None, for the depthwise engine to compute the layer, where the
    result would not be torch's: a NaN or infinite weight (the signal
    engines skip the taps that fall in zero padding, torch multiplies the
    zeros by them), and an FFT result that is not all finite (the FFT
    spreads a NaN or infinity over the whole plane, torch only over the
    outputs whose windows hold it).
    """
    if not np.isfinite(w).all():
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        out = run(planes, x, w.reshape((1,) + w.shape[:1] + w.shape[2:]))
    if planes.method != "direct" and not np.isfinite(out).all():
        return None
    if bias is not None:
        out += np.asarray(bias, dtype=plan.compute_dtype).reshape((1, -1) + (1,) * len(plan.in_shape))
    return out.astype(plan.result_dtype, copy=False)


def _winograd_transposed(plan) -> bool:
    """Whether a transposed layer is a stride-1 layer the Winograd engine takes (as the forward layer it equals)."""
    from ._engines import winograd

    nd = len(plan.in_shape)
    if nd != 2 or plan.upsample != (1,) * nd:
        return False
    geometry = _geometry(plan, plan.in_shape, (0,) * nd, 3 - nd)
    return winograd.applies(geometry, plan.groups, plan.in_channels, plan.out_channels, plan.batch)


def _run_transposed(plan, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """A transposed convolution by matrix product and scatter: no multiplications by spread-in zeros."""
    from ._engines import channels

    dtype = plan.compute_dtype
    nd = len(plan.in_shape)
    lead = 3 - nd
    i64 = lambda t, fill=1: np.asarray((fill,) * lead + tuple(t), dtype=np.int64)  # noqa: E731
    # The convolution being transposed pads by p = d (K - 1) - pad_lo.
    pad = tuple(d * (k - 1) - lo for d, k, lo in zip(plan.dilation, plan.kernel_shape, plan.pad_lo))
    geometry = (i64(plan.in_shape), i64(plan.out_shape), i64(plan.kernel_shape), i64(plan.upsample),
                i64(plan.dilation), i64(pad, 0))
    x5 = _nn_layout(x, lead, dtype)
    out = _output_buffer((plan.batch, plan.out_channels) + (1,) * lead + plan.out_shape, dtype, x5)
    channels.transposed(x5, _nn_layout(w, lead, dtype), out, geometry, plan.groups)
    return out.reshape((plan.batch, plan.out_channels) + plan.out_shape)


def run_conv_weight_grad(plan, x: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
    """Gradient of a forward :class:`~fastconv._plan.ConvPlan`'s output with respect to its weight.

    Returns ``gw[o, c, t] = sum_{n, y} grad_output[n, o, y] x~[n, g(o) Cg + c, y s + t d - p]``
    of shape ``(Cout, Cg, *K)``.
    """
    from ._engines import channels

    dtype = plan.compute_dtype
    nd = len(plan.in_shape)
    lead = 3 - nd
    cg = plan.in_channels // plan.groups
    if plan.batch == 0:
        return np.zeros((plan.out_channels, cg) + plan.kernel_shape, plan.result_dtype)
    x, pad_lo = _conv_input(plan, x)
    x5 = _nn_layout(x, lead, dtype)
    go5 = _nn_layout(grad_output, lead, dtype)
    gw = np.empty((plan.out_channels, cg) + (1,) * lead + plan.kernel_shape, dtype)
    channels.weight_grad(x5, go5, gw, _geometry(plan, x.shape[2:], pad_lo, lead), plan.groups)
    return gw.reshape((plan.out_channels, cg) + plan.kernel_shape).astype(plan.result_dtype, copy=False)
