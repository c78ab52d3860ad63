r"""The torch.nn.functional face: CNN layers and their gradients, without autograd.

``conv1d``, ``conv2d``, ``conv3d`` and ``conv_transpose1d/2d/3d`` have the
signatures and semantics of their ``torch.nn.functional`` namesakes (plus
``padding_mode``, as in ``torch.nn.Conv2d``); ``conv{1,2,3}d_input_grad`` and
``conv{1,2,3}d_weight_grad`` those of ``torch.nn.grad.conv{1,2,3}d_input`` /
``conv{1,2,3}d_weight``.  Every one is the one primitive of fastconv, a valid
cross-correlation over a virtually padded input, here contracting channels:

.. math::

    out[n, o, y] = b[o] + \sum_{c < C_{in}/G} \sum_t
        \tilde{x}[n, g(o) C_{in}/G + c, y s + t d - p] \; w[o, c, t]

with ``g(o) = o // (C_out / G)``.  A CNN "convolution" does not flip the
kernel.  ``padding_mode`` maps to the border rules: ``'zeros'`` to zero,
``'reflect'`` to ``np.pad``'s ``'reflect'`` (``c b | a b c d | c b``),
``'replicate'`` to ``'edge'`` and ``'circular'`` to ``'wrap'``.

A transposed convolution is the same primitive on the input spread out by
``stride`` (``stride - 1`` zeros between samples), padded by
``d (K - 1) - padding`` (plus ``output_padding`` at the end), with the
kernel flipped and its channel roles swapped.  The input gradient of a
convolution is such a transposed convolution; the weight gradient is the
correlation of the input with the output gradient.

Dense layers run on a channel-contracting engine (the input gathered block
by block into a bounded column matrix, then one matrix product per group);
layers with one input channel per group (depthwise) on a plane-by-plane
engine, each channel correlated with its own kernel.  Forward layers with one
input and one output channel per group (a depthwise layer of multiplier 1,
or a single channel) and stride and dilation 1 are a stack of independent
plane correlations, which run on the signal face's engines where those are
faster: 1-D planes of 4096 outputs or more (2**18 in all), 2-D and 3-D
planes of 65,536 outputs or more with kernels of more than 9 taps, and
zero-padded planes with kernels of 200 taps or more that the cost model puts
on the FFT.  The FFT's rounding error is then bounded by
the norms of the whole plane and kernel (see :func:`fastconv.fftconvolve`),
not by each output's window; a layer whose FFT result holds a NaN or an
infinity is recomputed on the depthwise engine, and a NaN or infinite weight
keeps a layer there, so non-finite values reach the outputs torch gives them.  Dense 3x3 layers with
stride and dilation 1 and at least 16 channels per group (forward layers,
and the stride-1 transposed layers and input gradients that equal them) run
on Winograd's algorithm when a cost model says it is faster: F(4x4, 3x3)
on large images (4x fewer multiplications), F(2x2, 3x3) on small ones
(2.25x fewer), the same result up to rounding.  Its rounding error is
bounded by the magnitudes in each output's 6x6 or 4x4 input tile rather
than its 3x3 window (``fastconv/_engines/winograd.py`` states the bound the
tests check); in float32 that is about 1e-5 of the largest output with
F(4x4, 3x3) and 5e-7 with F(2x2, 3x3), where torch's direct summation
gives about 3e-7.  ``FASTCONV_WINOGRAD=2`` keeps every layer on
F(2x2, 3x3).  A NaN or infinity makes fastconv redo the layer by direct
summation, so they reach exactly the outputs they reach in torch.  Set
``FASTCONV_WINOGRAD=0`` (read when fastconv is imported) for direct
summation everywhere.  Any array-API array goes in
(torch tensors that require grad are refused: pass ``.detach()``) and the
result comes back as the caller's kind of array.  A Dask array gives a lazy
Dask array, computed one chunk of the batch per task by the in-memory layer
(a weight gradient sums the chunks' gradients).  It equals the in-memory
result up to rounding, not bitwise: how a call groups its samples into
matrix products, and whether it takes Winograd's algorithm, depend on how
many samples the call holds.

Threads and determinism: blocks of output run side by side on fastconv's
threads (:func:`fastconv.set_num_threads`), each block's matrix product a
single-threaded call of the BLAS NumPy is linked against (for the duration
of a call, NumPy's OpenBLAS is set to one thread, then restored).  Each
output element is therefore computed by one thread in a fixed order, and
results are bitwise identical at any thread count; the tests check this at
1 and 2 fastconv threads and 1 and 2 ``OPENBLAS_NUM_THREADS``, for each
engine.  The engines keep their scratch memory from one call to the next,
up to 64 MiB per calling thread, freed when the thread ends.  Where the
BLAS is not an OpenBLAS fastconv can reach (another BLAS, not Linux), the
blocks run one after the other with that BLAS's own threads, and identical
bits then depend on that library.
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np

from . import _dask, _dispatch, _execute
from ._plan import conv_out_shape, make_conv_plan
from ._validate import check_choice

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv1d_input_grad",
    "conv2d_input_grad",
    "conv3d_input_grad",
    "conv1d_weight_grad",
    "conv2d_weight_grad",
    "conv3d_weight_grad",
]

# torch padding_mode -> the engines' border rules.
_PADDING_MODES = {"zeros": "zero", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# --- argument checks ------------------------------------------------------------------------


# Largest stride, padding, dilation or output_padding: every index the engines
# compute then stays far inside int64 (a larger one only pads absurdly).
_MAX_GEOMETRY = 2**40


def _index(v) -> int:
    if isinstance(v, (bool, np.bool_)):
        raise TypeError("a bool is not a size")
    return operator.index(v)


def _ints(value, nd: int, name: str, func: str, minimum: int) -> tuple:
    """``value`` (an int or a sequence of ``nd`` ints) as a tuple of ``nd`` ints ``>= minimum``."""
    if isinstance(value, (str, bytes)):  # (a bool, alone or inside, is refused by _index)
        raise ValueError(f"{func}: {name} must be an int or a tuple of {nd} ints; got {value!r}")
    try:
        values = (_index(value),) * nd
    except TypeError:
        try:
            values = tuple(_index(v) for v in value)
        except TypeError:
            raise ValueError(
                f"{func}: {name} must be an int or a tuple of {nd} ints; got {value!r}"
            ) from None
        if len(values) == 1:
            values = values * nd
    if len(values) != nd:
        raise ValueError(f"{func}: {name} must be an int or a tuple of {nd} ints; got {value!r}")
    if any(v < minimum for v in values):
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{func}: {name} must be {what}; got {value!r}")
    if any(v > _MAX_GEOMETRY for v in values):
        raise ValueError(f"{func}: {name} must be at most 2**40; got {value!r}")
    return values


def _groups(groups, func: str) -> int:
    try:
        g = _index(groups)
    except TypeError:
        raise ValueError(f"{func}: groups must be a positive integer; got {groups!r}") from None
    if g < 1:
        raise ValueError(f"{func}: groups must be a positive integer; got {groups!r}")
    return g


def _array(a, name: str, func: str) -> np.ndarray:
    a = _dispatch.to_numpy(a, name)
    if a.dtype.kind != "f" or a.dtype.itemsize > 8:
        raise TypeError(
            f"{func}: {name} must have a floating dtype (float16, float32 or float64); got dtype {a.dtype}"
        )
    return a


def _batched(a: np.ndarray, nd: int, name: str, func: str):
    """``a`` as ``(N, C, *S)`` and whether it came unbatched ``(C, *S)``."""
    if a.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{func}: {name} must be {nd + 2}-D (batched: N, C, {_spatial(nd)}) or {nd + 1}-D "
            f"(unbatched: C, {_spatial(nd)}); got {name} of shape {a.shape}"
        )
    if any(s == 0 for s in a.shape[-nd - 1:]):
        raise ValueError(f"{func}: {name} cannot have empty channel or spatial dims; got shape {a.shape}")
    return (a[None], True) if a.ndim == nd + 1 else (a, False)


def _check_weight(w: np.ndarray, nd: int, func: str, layout: str = "out_channels, in_channels/groups"):
    if w.ndim != nd + 2:
        raise ValueError(
            f"{func}: weight must be {nd + 2}-D ({layout}, {_spatial(nd, 'k')}); "
            f"got weight of shape {w.shape}"
        )
    if w.size == 0:
        raise ValueError(f"{func}: weight cannot be empty; got shape {w.shape}")


def _dtype(*arrays) -> np.dtype:
    return np.result_type(*(a.dtype for a in arrays if a is not None))


def _spatial(nd: int, prefix: str = "") -> str:
    names = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}[nd]
    return ", ".join(prefix + n for n in names)


def _check_bias(b, out_channels: int, func: str) -> None:
    if b is not None and b.shape != (out_channels,):
        raise ValueError(
            f"{func}: bias must have shape ({out_channels},) (one value per output channel); "
            f"got bias of shape {b.shape}"
        )


def _padding(padding, nd, kernel, stride, dilation, func):
    """``(pad_lo, pad_hi)`` of an int, tuple, ``'same'`` or ``'valid'`` padding (torch's rules)."""
    if isinstance(padding, str):
        check_choice(padding, f"{func}: padding", ("valid", "same"), "or an int or a tuple of ints")
        if padding == "valid":
            return (0,) * nd, (0,) * nd
        if any(s != 1 for s in stride):
            raise ValueError(
                f"{func}: padding='same' is not supported for strided convolutions; got stride {stride}"
            )
        total = tuple(d * (k - 1) for d, k in zip(dilation, kernel))
        lo = tuple(t // 2 for t in total)
        return lo, tuple(t - low for t, low in zip(total, lo))
    p = _ints(padding, nd, "padding", func, 0)
    return p, p


def _check_size(plan, func):
    """Refuse an output NumPy could not even describe (more than 2**62 bytes)."""
    count = plan.batch * plan.out_channels * math.prod(plan.out_shape)
    if count * plan.compute_dtype.itemsize >= 2**62:
        raise ValueError(
            f"{func}: the output would have shape {(plan.batch, plan.out_channels) + plan.out_shape}, "
            f"{count} elements: too large for memory (check padding, stride and dilation)"
        )


def _check_output(plan, x_shape, kernel, dilation, func):
    _check_size(plan, func)
    if any(o < 1 for o in plan.out_shape):
        dilated = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
        padded = tuple(n + lo + hi for n, lo, hi in zip(x_shape, plan.pad_lo, plan.pad_hi))
        raise ValueError(
            f"{func}: the kernel (dilated extent {dilated}) is larger than the padded input "
            f"(extent {padded}); the output would have shape {plan.out_shape}"
        )


def _check_wrap_padding(mode, pad_lo, pad_hi, shape, func):
    """torch pads by reflection only less than the input's extent, circularly at most its extent."""
    for lo, hi, n in zip(pad_lo, pad_hi, shape):
        if mode == "reflect" and max(lo, hi) >= n:
            raise ValueError(
                f"{func}: padding_mode='reflect' needs padding smaller than the input's spatial "
                f"extent; got padding ({lo}, {hi}) for an extent of {n}"
            )
        if mode == "circular" and max(lo, hi) > n:
            raise ValueError(
                f"{func}: padding_mode='circular' needs padding at most the input's spatial extent; "
                f"got padding ({lo}, {hi}) for an extent of {n}"
            )


def _finish(out: np.ndarray, unbatched: bool, xp):
    return _dispatch.from_numpy(out[0] if unbatched else out, xp)


# --- translation into plans -------------------------------------------------------------------


def _conv(nd, func, input, weight, bias, stride, padding, dilation, groups, padding_mode):
    if _any_dask(input, weight, bias):
        return _lazy(_conv, nd, func, {"input": input}, dict(
            weight=weight, bias=bias, stride=stride, padding=padding, dilation=dilation, groups=groups,
            padding_mode=padding_mode))
    xp = _dispatch.namespace(*(a for a in (input, weight, bias) if a is not None))
    x, unbatched = _batched(_array(input, "input", func), nd, "input", func)
    w = _array(weight, "weight", func)
    _check_weight(w, nd, func)
    b = None if bias is None else _array(bias, "bias", func)
    dtype = _dtype(x, w, b)
    stride = _ints(stride, nd, "stride", func, 1)
    dilation = _ints(dilation, nd, "dilation", func, 1)
    groups = _groups(groups, func)
    check_choice(padding_mode, f"{func}: padding_mode", tuple(_PADDING_MODES))
    N, C = x.shape[:2]
    Cout, Cg = w.shape[:2]
    kernel = w.shape[2:]
    _check_channels(C, Cout, Cg, groups, func, transposed=False)
    _check_bias(b, Cout, func)
    pad_lo, pad_hi = _padding(padding, nd, kernel, stride, dilation, func)
    _check_wrap_padding(padding_mode, pad_lo, pad_hi, x.shape[2:], func)
    plan = make_conv_plan(
        batch=N, in_channels=C, out_channels=Cout, groups=groups, in_shape=x.shape[2:],
        kernel_shape=kernel, pad_lo=pad_lo, pad_hi=pad_hi, stride=stride, dilation=dilation,
        border=(_PADDING_MODES[padding_mode],) * nd, result_dtype=dtype,
    )
    _check_output(plan, x.shape[2:], kernel, dilation, func)
    return _finish(_execute.run_conv(plan, x, w, b), unbatched, xp)


def _check_channels(C, Cout, Cg, groups, func, *, transposed):
    if transposed:
        # weight: (in_channels, out_channels / groups, *kernel)
        if Cout % groups:
            raise ValueError(
                f"{func}: in_channels (weight.shape[0] = {Cout}) must be divisible by groups ({groups})"
            )
        if C != Cout:
            raise ValueError(
                f"{func}: input has {C} channels but weight.shape[0] = {Cout} (in_channels) was expected "
                "to match it"
            )
        return
    if Cout % groups:
        raise ValueError(
            f"{func}: out_channels (weight.shape[0] = {Cout}) must be divisible by groups ({groups})"
        )
    if C % groups:
        raise ValueError(f"{func}: in_channels ({C}) must be divisible by groups ({groups})")
    if C != Cg * groups:
        raise ValueError(
            f"{func}: input has {C} channels, but weight.shape[1] * groups = {Cg} * {groups} = "
            f"{Cg * groups} were expected"
        )


def _transpose_plan(nd, func, N, C, w_shape, groups, in_shape, stride, padding, out_pad, dilation, dtype,
                    out_shape=None):
    """The plan of a transposed convolution (``out_shape`` given: the input gradient's extents)."""
    kernel = w_shape[2:]
    pad_lo = tuple(d * (k - 1) - p for d, k, p in zip(dilation, kernel, padding))
    if out_shape is None:
        pad_hi = tuple(lo + op for lo, op in zip(pad_lo, out_pad))
    else:
        up = tuple((n - 1) * s + 1 for n, s in zip(in_shape, stride))
        pad_hi = tuple(o - u - lo + d * (k - 1)
                       for o, u, lo, d, k in zip(out_shape, up, pad_lo, dilation, kernel))
    return make_conv_plan(
        batch=N, in_channels=C, out_channels=w_shape[1] * groups, groups=groups, in_shape=in_shape,
        kernel_shape=kernel, pad_lo=pad_lo, pad_hi=pad_hi, stride=(1,) * nd, dilation=dilation,
        border=("zero",) * nd, result_dtype=dtype, upsample=stride, transposed_weight=True,
    )


def _conv_transpose(nd, func, input, weight, bias, stride, padding, output_padding, groups, dilation):
    if _any_dask(input, weight, bias):
        return _lazy(_conv_transpose, nd, func, {"input": input}, dict(
            weight=weight, bias=bias, stride=stride, padding=padding, output_padding=output_padding,
            groups=groups, dilation=dilation))
    xp = _dispatch.namespace(*(a for a in (input, weight, bias) if a is not None))
    x, unbatched = _batched(_array(input, "input", func), nd, "input", func)
    w = _array(weight, "weight", func)
    _check_weight(w, nd, func, "in_channels, out_channels/groups")
    b = None if bias is None else _array(bias, "bias", func)
    dtype = _dtype(x, w, b)
    stride = _ints(stride, nd, "stride", func, 1)
    dilation = _ints(dilation, nd, "dilation", func, 1)
    if isinstance(padding, str):
        raise ValueError(f"{func}: padding must be an int or a tuple of {nd} ints; got {padding!r}")
    padding = _ints(padding, nd, "padding", func, 0)
    out_pad = _ints(output_padding, nd, "output_padding", func, 0)
    groups = _groups(groups, func)
    if any(op >= max(s, d) for op, s, d in zip(out_pad, stride, dilation)):
        raise ValueError(
            f"{func}: output_padding must be smaller than either stride or dilation; got "
            f"output_padding {out_pad}, stride {stride}, dilation {dilation}"
        )
    N, C = x.shape[:2]
    _check_channels(C, w.shape[0], w.shape[1], groups, func, transposed=True)
    _check_bias(b, w.shape[1] * groups, func)
    plan = _transpose_plan(nd, func, N, C, w.shape, groups, x.shape[2:], stride, padding, out_pad,
                           dilation, dtype)
    _check_size(plan, func)
    if any(o < 1 for o in plan.out_shape):
        raise ValueError(
            f"{func}: the output would have shape {plan.out_shape}: padding {padding} is too large "
            f"for an input of spatial shape {x.shape[2:]} and a kernel of shape {w.shape[2:]}"
        )
    return _finish(_execute.run_conv(plan, x, w, b), unbatched, xp)


def _grad_geometry(nd, func, input_spatial, kernel, stride, padding, dilation, grad_spatial):
    stride = _ints(stride, nd, "stride", func, 1)
    dilation = _ints(dilation, nd, "dilation", func, 1)
    pad_lo, pad_hi = _padding(padding, nd, kernel, stride, dilation, func)
    expected = conv_out_shape(input_spatial, kernel, pad_lo, pad_hi, stride, dilation)
    if any(e < 1 for e in expected):
        raise ValueError(
            f"{func}: the kernel (shape {tuple(kernel)}, dilation {dilation}) is larger than the padded "
            f"input (spatial shape {tuple(input_spatial)}, padding {padding!r})"
        )
    if tuple(grad_spatial) != expected:
        raise ValueError(
            f"{func}: grad_output has spatial shape {tuple(grad_spatial)}, but the convolution of an input "
            f"of spatial shape {tuple(input_spatial)} with these arguments has output shape {expected}"
        )
    return stride, dilation, pad_lo, pad_hi


def _input_grad(nd, func, input_size, weight, grad_output, stride, padding, dilation, groups):
    if _any_dask(weight, grad_output):
        return _lazy(_input_grad, nd, func, {"grad_output": grad_output}, dict(
            input_size=_without_batch(input_size, nd, grad_output, func), weight=weight, stride=stride,
            padding=padding, dilation=dilation, groups=groups))
    xp = _dispatch.namespace(weight, grad_output)
    go, unbatched = _batched(_array(grad_output, "grad_output", func), nd, "grad_output", func)
    w = _array(weight, "weight", func)
    _check_weight(w, nd, func)
    dtype = _dtype(go, w)
    groups = _groups(groups, func)
    try:
        size = tuple(operator.index(s) for s in input_size)
    except TypeError:
        raise ValueError(f"{func}: input_size must be a sequence of ints; got {input_size!r}") from None
    if len(size) not in (nd, nd + 1, nd + 2):
        raise ValueError(
            f"{func}: input_size must give the {nd} spatial extents, optionally after the batch and "
            f"channel counts; got {input_size!r}"
        )
    N, Cout = go.shape[:2]
    Cg = w.shape[1]
    C = Cg * groups
    _check_channels(C, w.shape[0], Cg, groups, func, transposed=False)
    if Cout != w.shape[0]:
        raise ValueError(
            f"{func}: grad_output has {Cout} channels but weight.shape[0] = {w.shape[0]} (out_channels)"
        )
    lead = size[:-nd] if nd else ()
    want = (N, C) if not unbatched else (C,)
    if lead and tuple(lead) != want[-len(lead):]:
        raise ValueError(f"{func}: input_size {tuple(size)} does not match (batch, channels) {want}")
    spatial = size[len(size) - nd:]
    if any(s < 1 for s in spatial):
        raise ValueError(f"{func}: input_size must have positive spatial extents; got {input_size!r}")
    stride, dilation, pad_lo, pad_hi = _grad_geometry(nd, func, spatial, w.shape[2:], stride, padding,
                                                      dilation, go.shape[2:])
    plan = _transpose_plan(nd, func, N, Cout, (Cout, Cg) + w.shape[2:], groups, go.shape[2:], stride,
                           pad_lo, None, dilation, dtype, out_shape=spatial)
    # The forward weight (Cout, Cg, *K) is the transposed layer's (in_channels, out/groups, *K).
    return _finish(_execute.run_conv(plan, go, w), unbatched, xp)


def _weight_grad(nd, func, input, weight_size, grad_output, stride, padding, dilation, groups):
    if _any_dask(input, grad_output):
        return _lazy(_weight_grad, nd, func, {"input": input, "grad_output": grad_output}, dict(
            weight_size=weight_size, stride=stride, padding=padding, dilation=dilation, groups=groups),
            total=True)
    xp = _dispatch.namespace(input, grad_output)
    x, unbatched = _batched(_array(input, "input", func), nd, "input", func)
    go, go_unbatched = _batched(_array(grad_output, "grad_output", func), nd, "grad_output", func)
    if go_unbatched != unbatched:
        raise ValueError(
            f"{func}: input and grad_output must both be batched or both unbatched; got shapes "
            f"{x.shape[unbatched:]} and {go.shape[go_unbatched:]}"
        )
    dtype = _dtype(x, go)
    groups = _groups(groups, func)
    try:
        size = tuple(operator.index(s) for s in weight_size)
    except TypeError:
        raise ValueError(f"{func}: weight_size must be a sequence of ints; got {weight_size!r}") from None
    if len(size) != nd + 2 or any(s < 1 for s in size):
        raise ValueError(
            f"{func}: weight_size must be (out_channels, in_channels/groups, {_spatial(nd, 'k')}) "
            f"with positive entries; got {weight_size!r}"
        )
    N, C = x.shape[:2]
    Cout, Cg = size[:2]
    kernel = size[2:]
    _check_channels(C, Cout, Cg, groups, func, transposed=False)
    if go.shape[:2] != (N, Cout):
        raise ValueError(
            f"{func}: grad_output must have batch {N} and {Cout} channels; got shape {go.shape}"
        )
    stride, dilation, pad_lo, pad_hi = _grad_geometry(nd, func, x.shape[2:], kernel, stride, padding,
                                                      dilation, go.shape[2:])
    plan = make_conv_plan(
        batch=N, in_channels=C, out_channels=Cout, groups=groups, in_shape=x.shape[2:],
        kernel_shape=kernel, pad_lo=pad_lo, pad_hi=pad_hi, stride=stride, dilation=dilation,
        border=("zero",) * nd, result_dtype=dtype, method="channels",
    )
    return _dispatch.from_numpy(_execute.run_conv_weight_grad(plan, x, go), xp)


# --- Dask arrays: lazily, one task per chunk of the batch --------------------------------------


def _any_dask(*values) -> bool:
    return any(_dask.is_dask(v) for v in values)


def _on_blocks(face, nd, func, names, rest, *blocks):
    return face(nd, func, **dict(zip(names, blocks)), **rest)


def _lazy(face, nd, func, batched: dict, rest: dict, *, total=False):
    """``face(nd, func, **batched, **rest)`` with a Dask argument: a lazy Dask array.

    ``batched`` holds the arguments with a batch axis (``input`` or
    ``grad_output``; both for a weight gradient), ``rest`` the others; Dask
    weights and biases are computed first.  Each chunk of the batch is one
    task, computed by ``face`` itself (:func:`fastconv._dask.over_batch`):
    bitwise what ``face`` gives for those samples alone, which equals the
    whole batch's result up to rounding (the engines' blocking and choice
    depend on the batch size).  A weight gradient sums the chunks'
    gradients.  An unbatched input is one sample.
    """
    import dask.array as da

    _dispatch.namespace(*batched.values(), *rest.values())  # one array library beside NumPy
    rest = {k: _dask.materialize(v, k) for k, v in rest.items()}
    lazy = {}
    for name, a in batched.items():
        a = a if _dask.is_dask(a) else da.from_array(_dispatch.to_numpy(a, name))
        # Chunks of unknown length along the batch (after boolean indexing)
        # are fine where each chunk stands alone, not where two arrays'
        # chunks must be aligned.
        _dask.check_known_chunks(a, name, 0 if total or a.ndim == nd + 1 else 1)
        if a.ndim not in (nd + 1, nd + 2):
            _batched(a, nd, name, func)  # raises, naming the shape
        lazy[name] = a
    unbatched = all(a.ndim == nd + 1 for a in lazy.values())
    if unbatched:
        lazy = {name: a[None] for name, a in lazy.items()}
    run = functools.partial(_on_blocks, face, nd, func, tuple(lazy), rest)
    if len({(a.ndim, a.shape[0]) for a in lazy.values()}) > 1:
        # A batched array beside an unbatched one, or two batch counts: the
        # face refuses the pair (before computing), naming their shapes.
        run(*(np.broadcast_to(np.zeros((), a.dtype), a.shape) for a in lazy.values()))
    # The face on an empty batch validates every argument and gives the
    # result's shape and dtype.
    probe = run(*(np.empty((0,) + a.shape[1:], a.dtype) for a in lazy.values()))
    out = _dask.over_batch(run, list(lazy.values()), probe, total=total)
    return out[0] if unbatched and not total else out


def _without_batch(input_size, nd, grad_output, func):
    """``input_size`` without its batch count, which must be that of the whole ``grad_output``.

    A Dask chunk has its own batch count; its input gradient takes the
    channel count and spatial extents.
    """
    try:
        size = tuple(operator.index(s) for s in input_size)
    except TypeError:
        return input_size  # the face refuses it
    if len(size) == nd + 2 and getattr(grad_output, "ndim", None) == nd + 1:
        raise ValueError(
            f"{func}: input_size {size} has a batch count, but grad_output is unbatched (shape "
            f"{grad_output.shape})"
        )
    if len(size) == nd + 2 and getattr(grad_output, "ndim", None) == nd + 2:
        if size[0] != grad_output.shape[0] and not math.isnan(grad_output.shape[0]):  # NaN: not known yet
            raise ValueError(
                f"{func}: input_size {size} has batch {size[0]}, but grad_output has batch "
                f"{grad_output.shape[0]}"
            )
        return size[1:]
    return input_size


# --- the public functions -----------------------------------------------------------------------

_EXAMPLES = {
    1: """
    >>> import numpy as np
    >>> from fastconv import nn
    >>> x = np.array([[[1., 2., 3., 4., 5.]]])        # (N=1, C=1, L=5)
    >>> w = np.array([[[1., 0., -1.]]])               # (C_out=1, C_in=1, K=3)
    >>> nn.conv1d(x, w)                               # no flip: x[i] - x[i + 2]
    array([[[-2., -2., -2.]]])
    >>> nn.conv1d(x, w, padding=1, padding_mode="replicate")
    array([[[-1., -2., -2., -2., -1.]]])
""",
    2: """
    >>> import numpy as np
    >>> from fastconv import nn
    >>> x = np.arange(16.).reshape(1, 1, 4, 4)
    >>> w = np.ones((2, 1, 2, 2))                     # two 2x2 box filters
    >>> nn.conv2d(x, w, bias=np.array([0., 100.]), stride=2)
    array([[[[ 10.,  18.],
             [ 42.,  50.]],
    <BLANKLINE>
            [[110., 118.],
             [142., 150.]]]])
""",
    3: """
    >>> import numpy as np
    >>> from fastconv import nn
    >>> x = np.ones((1, 2, 3, 3, 3))
    >>> w = np.ones((1, 2, 2, 2, 2))
    >>> nn.conv3d(x, w, padding="same").shape
    (1, 1, 3, 3, 3)
    >>> float(nn.conv3d(x, w)[0, 0, 0, 0, 0])         # 2 channels x 8 taps
    16.0
""",
}

_CONV_DOC = r"""{nd}-D convolution layer (a cross-correlation), as :func:`torch.nn.functional.conv{nd}d`.

    Parameters
    ----------
    input : array
        ``(N, C_in, {spatial})`` or, unbatched, ``(C_in, {spatial})``; any array-API array of a
        floating dtype.
    weight : array
        ``(C_out, C_in / groups, {kspatial})``.
    bias : array, optional
        ``(C_out,)``, added to every output of its channel.
    stride : int or tuple of {nd} ints, optional
        Step between output samples in the input (default 1).
    padding : int, tuple of {nd} ints, 'valid' or 'same', optional
        Padding on both sides of each spatial axis (default 0).  ``'valid'``
        is 0; ``'same'`` pads ``d (K - 1)`` in all, ``d (K - 1) // 2`` before
        (torch's rule, so the extra sample of an even kernel goes after),
        and only with stride 1.
    dilation : int or tuple of {nd} ints, optional
        Spacing between kernel taps (default 1).
    groups : int, optional
        Input and output channels are split into `groups` groups, each
        output group seeing only its input group (default 1;
        ``groups = C_in`` is a depthwise layer).
    padding_mode : {{'zeros', 'reflect', 'replicate', 'circular'}}, optional
        How the input is extended, as in :class:`torch.nn.Conv{nd}d` (default
        ``'zeros'``).  The extension is virtual: no padded copy is made.

    Returns
    -------
    out : array
        ``(N, C_out, {ospatial})`` (or unbatched), in the caller's kind of array, of dtype
        ``numpy.result_type(input, weight, bias)``; each extent is
        ``(n + p_lo + p_hi - d (K - 1) - 1) // s + 1``.

    Raises
    ------
    ValueError
        For a wrong ndim; channels not divisible by `groups` or not matching
        the weight; a bias of the wrong shape; negative padding or
        non-positive stride or dilation; ``'same'`` with stride > 1; a
        kernel larger than the padded input; reflect padding not smaller
        than the input (circular: larger than it), as torch refuses them.
    TypeError
        For non-floating dtypes, or a torch tensor that requires grad.

    See Also
    --------
    conv_transpose{nd}d, conv{nd}d_input_grad, conv{nd}d_weight_grad, fastconv.correlate

    Notes
    -----
    .. math::

        out[n, o, y] = b[o] + \sum_{{c < C_{{in}}/G}} \sum_t
            \tilde{{x}}[n, g(o) C_{{in}}/G + c, y s + t d - p_{{lo}}] \, w[o, c, t]

    with ``g(o) = o // (C_out / G)`` and :math:`\tilde{{x}}` the input extended
    by `padding_mode`.  Dense layers gather the input block by block into a
    column matrix of bounded size and multiply it by the weight with the BLAS
    NumPy uses (large dense 3x3 stride-1 layers use Winograd's algorithm
    instead: the same result up to rounding, see :mod:`fastconv.nn`);
    depthwise layers (one input channel per group) are computed plane by
    plane, each from a padded copy in a per-thread buffer (a 3x3 'same' layer
    with zero padding reads its planes in place).  float16 is computed in
    float32 and rounded once.

    Examples
    --------
    {examples}
    """

_TRANSPOSE_EXAMPLES = {
    1: """
    >>> import numpy as np
    >>> from fastconv import nn
    >>> x = np.array([[[1., 2., 3.]]])
    >>> w = np.array([[[1., 10.]]])                   # (C_in=1, C_out=1, K=2)
    >>> nn.conv_transpose1d(x, w, stride=2)           # each sample spreads w over the output
    array([[[ 1., 10.,  2., 20.,  3., 30.]]])
""",
    2: """
    >>> import numpy as np
    >>> from fastconv import nn
    >>> x = np.ones((1, 1, 2, 2))
    >>> nn.conv_transpose2d(x, np.ones((1, 3, 3, 3)), stride=2, padding=1, output_padding=1).shape
    (1, 3, 4, 4)
""",
    3: """
    >>> import numpy as np
    >>> from fastconv import nn
    >>> nn.conv_transpose3d(np.ones((2, 4, 3, 3, 3)), np.ones((4, 1, 2, 2, 2)), groups=2).shape
    (2, 2, 4, 4, 4)
""",
}

_TRANSPOSE_DOC = r"""{nd}-D transposed convolution, as :func:`torch.nn.functional.conv_transpose{nd}d`.

    The adjoint of :func:`conv{nd}d` with the same weight, stride, padding,
    dilation and groups: the gradient of a convolution with respect to its
    input (sometimes called a "deconvolution").

    Parameters
    ----------
    input : array
        ``(N, C_in, {spatial})`` or, unbatched, ``(C_in, {spatial})``.
    weight : array
        ``(C_in, C_out / groups, {kspatial})`` (note: input channels first).
    bias : array, optional
        ``(C_out,)``.
    stride : int or tuple of {nd} ints, optional
        The stride of the convolution this transposes (default 1).
    padding : int or tuple of {nd} ints, optional
        The padding of that convolution: ``d (K - 1) - padding`` is padded
        around the spread-out input (default 0).
    output_padding : int or tuple of {nd} ints, optional
        Extra samples at the end of each spatial axis, smaller than stride
        or dilation (default 0).
    groups : int, optional
        As in :func:`conv{nd}d` (default 1).
    dilation : int or tuple of {nd} ints, optional
        Spacing between kernel taps (default 1).

    Returns
    -------
    out : array
        ``(N, C_out, {ospatial})``, each extent
        ``(n - 1) s - 2 p + d (K - 1) + output_padding + 1``.

    Raises
    ------
    ValueError
        For a wrong ndim, channels not divisible by `groups`, a bias of the
        wrong shape, negative padding or output_padding, output_padding not
        smaller than stride or dilation, or an empty output.
    TypeError
        For non-floating dtypes.

    See Also
    --------
    conv{nd}d, conv{nd}d_input_grad

    Notes
    -----
    .. math::

        out[n, o, y] = b[o] + \sum_{{c, t:\; y + p = i s + t d}} x[n, c, i] \, w[c, o', t]

    over the input channels ``c`` of the group of ``o`` (``o'`` its index in
    the group).  Computed as a convolution of the input spread out by `stride`
    (``stride - 1`` zeros between samples) with the flipped, channel-swapped
    kernel, on the engines of :func:`conv{nd}d`; the zeros are multiplied too
    (``stride**{nd}`` times the necessary work).

    Examples
    --------
    {examples}
    """

_INPUT_GRAD_DOC = r"""Gradient of :func:`conv{nd}d` with respect to its input, as ``torch.nn.grad.conv{nd}d_input``.

    Parameters
    ----------
    input_size : sequence of int
        The input's shape ``(N, C_in, {spatial})``, or its spatial extents only.
    weight : array
        The layer's weight, ``(C_out, C_in / groups, {kspatial})``.
    grad_output : array
        The gradient of the loss with respect to the layer's output,
        ``(N, C_out, {ospatial})``.
    stride, padding, dilation, groups
        The layer's arguments, as in :func:`conv{nd}d` (zero padding).

    Returns
    -------
    grad_input : array
        ``(N, C_in, {spatial})``, in the caller's kind of array.

    Raises
    ------
    ValueError
        As :func:`conv{nd}d`, and when `grad_output`'s shape is not the
        layer's output shape for `input_size`.
    TypeError
        For non-floating dtypes.

    See Also
    --------
    conv{nd}d, conv{nd}d_weight_grad, conv_transpose{nd}d

    Notes
    -----
    .. math::

        \frac{{\partial L}}{{\partial x[n, c, i]}} = \sum_{{o, y, t:\; i = y s + t d - p}}
            \frac{{\partial L}}{{\partial out[n, o, y]}} \, w[o, c', t]

    a transposed convolution of `grad_output` with `weight`, whose
    ``output_padding`` makes the result the size of the input.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> w = np.ones((1, 1{ones}))
    >>> g = nn.conv{nd}d_input_grad((1, 1{fours}), w, np.ones((1, 1{twos})), stride=2)
    >>> g.shape == (1, 1{fours})
    True
    """

_WEIGHT_GRAD_DOC = r"""Gradient of :func:`conv{nd}d` with respect to its weight, as ``torch.nn.grad.conv{nd}d_weight``.

    Parameters
    ----------
    input : array
        The layer's input, ``(N, C_in, {spatial})``.
    weight_size : sequence of int
        The weight's shape ``(C_out, C_in / groups, {kspatial})``.
    grad_output : array
        The gradient of the loss with respect to the layer's output,
        ``(N, C_out, {ospatial})``.
    stride, padding, dilation, groups
        The layer's arguments, as in :func:`conv{nd}d` (zero padding).

    Returns
    -------
    grad_weight : array
        Of shape `weight_size`, in the caller's kind of array.

    Raises
    ------
    ValueError
        As :func:`conv{nd}d`, and when `grad_output`'s shape is not the
        layer's output shape.
    TypeError
        For non-floating dtypes.

    See Also
    --------
    conv{nd}d, conv{nd}d_input_grad

    Notes
    -----
    .. math::

        \frac{{\partial L}}{{\partial w[o, c, t]}} = \sum_{{n, y}}
            \frac{{\partial L}}{{\partial out[n, o, y]}} \, \tilde{{x}}[n, g(o) C_{{in}}/G + c, y s + t d - p]

    computed by the channel-contracting engine: the input is gathered block
    by block into a bounded column matrix, and the products of `grad_output`
    with its transpose are accumulated in a fixed order.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import nn
    >>> x = np.ones((2, 3{fours}))
    >>> g = nn.conv{nd}d_weight_grad(x, (5, 3{ones}), np.ones((2, 5{threes})))
    >>> g.shape == (5, 3{ones}) and bool((g == 2 * 2**{nd}).all())
    True
    """


def _fill(func, template, nd, **extra):
    func.__doc__ = template.format(
        nd=nd,
        spatial=_spatial(nd),
        kspatial=_spatial(nd, "k"),
        ospatial=_spatial(nd, "o"),
        **extra,
    )
    return func


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    return _conv(1, "conv1d", input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    return _conv(2, "conv2d", input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    return _conv(3, "conv3d", input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(1, "conv_transpose1d", input, weight, bias, stride, padding, output_padding,
                           groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(2, "conv_transpose2d", input, weight, bias, stride, padding, output_padding,
                           groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    return _conv_transpose(3, "conv_transpose3d", input, weight, bias, stride, padding, output_padding,
                           groups, dilation)


def conv1d_input_grad(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    return _input_grad(1, "conv1d_input_grad", input_size, weight, grad_output, stride, padding, dilation,
                       groups)


def conv2d_input_grad(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    return _input_grad(2, "conv2d_input_grad", input_size, weight, grad_output, stride, padding, dilation,
                       groups)


def conv3d_input_grad(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    return _input_grad(3, "conv3d_input_grad", input_size, weight, grad_output, stride, padding, dilation,
                       groups)


def conv1d_weight_grad(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    return _weight_grad(1, "conv1d_weight_grad", input, weight_size, grad_output, stride, padding, dilation,
                        groups)


def conv2d_weight_grad(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    return _weight_grad(2, "conv2d_weight_grad", input, weight_size, grad_output, stride, padding, dilation,
                        groups)


def conv3d_weight_grad(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    return _weight_grad(3, "conv3d_weight_grad", input, weight_size, grad_output, stride, padding, dilation,
                        groups)


for _nd, _f in ((1, conv1d), (2, conv2d), (3, conv3d)):
    _fill(_f, _CONV_DOC, _nd, examples=_EXAMPLES[_nd].strip("\n").lstrip())
for _nd, _f in ((1, conv_transpose1d), (2, conv_transpose2d), (3, conv_transpose3d)):
    _fill(_f, _TRANSPOSE_DOC, _nd, examples=_TRANSPOSE_EXAMPLES[_nd].strip("\n").lstrip())
for _nd, _f in ((1, conv1d_input_grad), (2, conv2d_input_grad), (3, conv3d_input_grad)):
    _fill(_f, _INPUT_GRAD_DOC, _nd, ones=", 3" * _nd, fours=", 4" * _nd, twos=", 1" * _nd)
for _nd, _f in ((1, conv1d_weight_grad), (2, conv2d_weight_grad), (3, conv3d_weight_grad)):
    _fill(_f, _WEIGHT_GRAD_DOC, _nd, ones=", 3" * _nd, fours=", 4" * _nd, threes=", 2" * _nd)
del _nd, _f
