"""The scipy.signal face: ``convolve``, ``correlate``, ``convolve2d``, ``correlate2d``.

Signatures, defaults, output shapes, dtypes and edge cases follow
``scipy.signal`` (1.17).  This module only translates that vocabulary into a
:class:`~fastconv._plan.Plan`; the work happens in :mod:`fastconv._execute`.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from . import _dask, _dispatch, _execute
from ._dtypes import all_finite, fft_result_dtype, result_dtype
from ._plan import make_plan, signal_padding
from ._validate import (
    check_choice,
    check_not_empty,
    check_same_ndim,
    check_fillvalue,
    normalize_axes,
)

__all__ = ["convolve", "correlate", "convolve2d", "correlate2d", "fftconvolve", "oaconvolve"]

_MODES = ("full", "valid", "same")
_MODE_HINT = "Acceptable mode flags are 'valid', 'same', or 'full'."
_METHODS = ("auto", "direct", "fft", "oa")
_METHOD_HINT = "Acceptable method flags are 'auto', 'direct', 'fft', or 'oa'."
# scipy.signal.convolve2d boundary names -> plan border rules
_BOUNDARIES = {
    "fill": "constant",
    "pad": "constant",
    "wrap": "wrap",
    "circular": "wrap",
    "symm": "symmetric",
    "symmetric": "symmetric",
}
_BOUNDARY_HINT = (
    "Acceptable boundary flags are 'fill', 'circular' (or 'wrap'), and 'symmetric' (or 'symm')."
)


def convolve(in1, in2, mode="full", method="auto", axes=None):
    r"""Convolve two N-dimensional arrays.

    Same signature and semantics as :func:`scipy.signal.convolve`, plus
    ``axes`` (as in :func:`scipy.signal.fftconvolve`) to convolve along some
    axes only and batch over the others.

    Parameters
    ----------
    in1 : array_like
        First input: a NumPy array, any array-API array (PyTorch, JAX,
        array-api-strict, ...), a list or a scalar.
    in2 : array_like
        Second input, with the same number of dimensions as `in1`.
    mode : {'full', 'valid', 'same'}, optional
        ``'full'`` (default): the full discrete linear convolution, of shape
        ``in1.shape + in2.shape - 1`` along the convolved axes.
        ``'valid'``: only elements that do not rely on zero-padding; one input
        must be at least as large as the other along every convolved axis.
        ``'same'``: the size of `in1`, centred on the 'full' output as
        scipy centres it (output ``i`` is full output ``i + (K - 1) // 2``).
    method : {'auto', 'direct', 'fft', 'oa'}, optional
        ``'direct'`` runs fastconv's parallel Numba kernels (exact for
        integers, error proportional to each output's own magnitude).
        ``'fft'`` multiplies real (or, for complex data, complex) FFTs of the
        whole inputs; ``'oa'`` (an extension) does the same by blocks of the
        output, in parallel, with memory bounded by the blocks.  ``'auto'``
        (default) runs the one the cost model of :func:`choose_method`
        predicts fastest on this machine (see :func:`calibrate`); integer
        and bool inputs get an FFT method only when its result is provably
        exact.
    axes : int or sequence of int, optional
        Axes to convolve over (default: all).  Along the other axes the
        inputs must have equal lengths or length 1, and broadcast.

    Returns
    -------
    out : array
        An array of the caller's kind (NumPy in, NumPy out; torch in, torch
        out) with dtype ``numpy.result_type(in1, in2)``.

    Raises
    ------
    ValueError
        For an unknown `mode` or `method`, inputs of different ndim, empty
        inputs, bad `axes`, or 'valid' shapes where neither input is at least
        as large as the other.
    TypeError
        For non-numeric dtypes, extended precision, or arrays on a GPU.

    Warns
    -----
    RuntimeWarning
        When an FFT engine ran (``method='fft'`` or ``'oa'``, or chosen by
        ``'auto'``) and the first output is NaN or inf, as
        :func:`scipy.signal.convolve` warns: one NaN or inf in the input makes
        every FFT output NaN or inf, where the direct method keeps it local.

    See Also
    --------
    correlate : Cross-correlation (no flip).
    convolve2d : 2-D convolution with boundary conditions.
    numpy.convolve : 1-D; equal to ``convolve(a, v, mode)`` when ``len(a) >= len(v)``.

    Notes
    -----
    The convolution of :math:`f` and :math:`g` is

    .. math:: (f * g)[n] = \sum_m f[m] \, g[n - m]

    i.e. :math:`g` is flipped and slid across :math:`f`.  fastconv computes it
    as a cross-correlation with the flipped kernel.  Integer and boolean
    inputs are computed exactly, with the same wrap-around as NumPy integer
    arithmetic in the result dtype (as scipy's direct method).  float16 is
    computed in float32 and rounded to float16 (scipy computes in float16).
    NaN and inf propagate as in scipy's direct method (with ``'fft'`` /
    ``'oa'`` a NaN spreads to every output of its transform).

    Accuracy: ``'direct'`` sums each output in a fixed order, so its error is
    at most about ``K eps (|in1| * |in2|)[n]`` (relative to that output's own
    scale).  The FFT methods' error is spread over all outputs, at most
    ``(5 log2 M + 1) eps (||in1||_2 ||in2||_1 + ||in1||_1 ||in2||_2)`` for
    transforms of ``M`` points and measured around
    ``0.03 eps log2(M) ||in1||_2 ||in2||_2`` on random data, ``eps`` being
    that of float32 for single-precision inputs (which stay single
    precision).  With ``method='fft'`` / ``'oa'`` integer inputs are computed
    in float64 and rounded back, as scipy does; ``'auto'`` uses them for
    integers only when that bound is below 1/2, so the result is exact.

    Examples
    --------
    The worked example of the background document: flip ``b`` and slide it
    across ``a``.

    >>> import fastconv
    >>> fastconv.convolve([1, 0.5, 1, 1], [1, 0.5, 0.25])
    array([1.   , 1.   , 1.5  , 1.625, 0.75 , 0.25 ])

    Many 1-D signals at once: convolve every row of a 2-D array.

    >>> import numpy as np
    >>> x = np.arange(8.0).reshape(2, 4)
    >>> fastconv.convolve(x, np.array([[1.0, -1.0]]), mode="valid", axes=-1)
    array([[1., 1., 1.],
           [1., 1., 1.]])
    """
    return _signal_op(in1, in2, mode, method, axes, convolution=True)


def correlate(in1, in2, mode="full", method="auto", axes=None):
    r"""Cross-correlate two N-dimensional arrays.

    Same signature and semantics as :func:`scipy.signal.correlate`, plus
    ``axes`` as in :func:`convolve`.

    Parameters
    ----------
    in1, in2 : array_like
        Inputs with the same number of dimensions (any array-API arrays,
        lists or scalars).
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`convolve`.
    method : {'auto', 'direct', 'fft', 'oa'}, optional
        As in :func:`convolve`.
    axes : int or sequence of int, optional
        As in :func:`convolve`.

    Returns
    -------
    out : array
        The cross-correlation, of the caller's array kind and dtype
        ``numpy.result_type(in1, in2)``.

    Raises
    ------
    ValueError, TypeError
        As for :func:`convolve`.

    Warns
    -----
    RuntimeWarning
        As for :func:`convolve`.

    See Also
    --------
    convolve : Convolution (the kernel flipped).
    correlate2d : 2-D cross-correlation with boundary conditions.
    numpy.correlate : 1-D; equal to ``correlate(a, v, mode)`` when
        ``len(a) >= len(v)`` (NumPy's default mode is ``'valid'``).

    Notes
    -----
    .. math:: z[k] = \sum_n in1[n + k] \, \overline{in2[n]}

    with ``k`` running over the lags of the chosen mode.  The second input is
    conjugated for complex data, and is *not* flipped: this is the operation a
    convolutional neural network layer computes.  In 'valid' mode, when
    `in2` is the larger input, the result is computed as scipy does:
    ``correlate(in2, in1)`` reversed and conjugated.

    Examples
    --------
    A 2-D cross-correlation slides the kernel across the image without
    flipping it:

    >>> import numpy as np, fastconv
    >>> image = np.array([[1, 1, 1, 0, 0],
    ...                   [0, 1, 1, 1, 0],
    ...                   [0, 0, 1, 1, 1],
    ...                   [0, 0, 1, 1, 0],
    ...                   [0, 1, 1, 0, 0]])
    >>> kernel = np.array([[1, 0, 1],
    ...                    [0, 1, 0],
    ...                    [1, 0, 1]])
    >>> fastconv.correlate(image, kernel, mode="valid")
    array([[4, 3, 4],
           [2, 4, 3],
           [2, 3, 4]])

    Complex inputs: the second input is conjugated.

    >>> fastconv.correlate([1j, 1], [1j, 1])
    array([0.+1.j, 2.+0.j, 0.-1.j])
    """
    return _signal_op(in1, in2, mode, method, axes, convolution=False)


def fftconvolve(in1, in2, mode="full", axes=None):
    r"""Convolve two N-dimensional arrays using FFTs.

    Same signature, semantics and result dtype as
    :func:`scipy.signal.fftconvolve`: ``convolve(in1, in2, mode,
    method='fft', axes=axes)``, except that integer and bool inputs give a
    float64 result (not rounded), as scipy's.

    Parameters
    ----------
    in1, in2 : array_like
        Inputs with the same number of dimensions (any array-API arrays,
        lists or scalars).
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`convolve`, except that, as in scipy's fftconvolve,
        'valid' compares only the axes where neither input has length 1
        (along the others the result has the broadcast length), so shapes
        such as (2, 3) and (4, 1) are accepted here and refused by
        :func:`convolve`.
    axes : int or sequence of int, optional
        Axes to convolve over (default: all).  Along the other axes the
        inputs must have equal lengths or length 1.

    Returns
    -------
    out : array
        Of the caller's array kind.  Its dtype is ``numpy.result_type`` of
        the inputs' FFT dtypes: bool and integers count as float64, float16
        as float32 (so float32 stays float32, and float32 with int8 gives
        float64, as in scipy).  As in scipy, where one input has length 1
        along every convolved axis the result is the product ``in1 * in2``,
        computed exactly in its own dtype (integers stay integers).

    Raises
    ------
    ValueError
        For an unknown `mode`, inputs of different ndim, empty inputs, bad
        `axes`, incompatible batch shapes, or 'valid' shapes where neither
        input is at least as large as the other.
    TypeError
        For non-numeric dtypes, extended precision, or arrays on a GPU.

    See Also
    --------
    convolve : Chooses the fastest method (``method='auto'``).
    oaconvolve : The same by blocks (overlap), for a large `in1` and a
        smaller `in2`.

    Notes
    -----
    One real FFT (``rfftn``) per input for real data, complex FFTs for
    complex data, of lengths with only factors 2, 3, 5 and just long enough
    that the circular convolution does not alias into the requested outputs.
    float32 / complex64 inputs are transformed in single precision.  Per
    output sample the error is bounded by about
    ``c eps log2(M) (||in1||_2 ||in2||_1 + ||in1||_1 ||in2||_2)`` with ``M``
    the transform length and ``eps`` of the compute dtype; it is spread over
    all outputs, so outputs much smaller than the largest have a large
    *relative* error (the direct method has none of that).  Measured errors
    are listed in :mod:`fastconv._engines.fft`.  Empty inputs raise
    ValueError (scipy returns an empty array).  When `in1` has length 1 on a
    batch axis where `in2` is longer, scipy's ``'same'`` output keeps
    `in1`'s length 1 there (it crops the broadcast batch to the middle
    entry); fastconv returns the whole broadcast batch.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> y = fastconv.fftconvolve([1, 2, 3], [0, 1, 0.5])
    >>> np.abs(y).round(12)  # abs: an FFT may give -0.0 where the exact result is 0
    array([0. , 1. , 2.5, 4. , 1.5])
    >>> fastconv.fftconvolve(np.ones((2, 4), np.float32), np.ones((1, 2)), axes=1).dtype
    dtype('float64')
    """
    return _signal_op(in1, in2, mode, "fft", axes, convolution=True, fft_dtypes=True)


def oaconvolve(in1, in2, mode="full", axes=None):
    r"""Convolve two N-dimensional arrays by blocks of FFTs (overlap method).

    Same signature, semantics and result dtype as
    :func:`scipy.signal.oaconvolve`: ``convolve(in1, in2, mode,
    method='oa', axes=axes)`` with the result dtypes of :func:`fftconvolve`.

    Parameters
    ----------
    in1, in2 : array_like
        Inputs with the same number of dimensions.
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`convolve`.
    axes : int or sequence of int, optional
        As in :func:`fftconvolve`.

    Returns
    -------
    out : array
        As for :func:`fftconvolve`.

    Raises
    ------
    ValueError, TypeError
        As for :func:`fftconvolve`.

    See Also
    --------
    fftconvolve : One transform of the whole input.
    convolve : Chooses the fastest method.

    Notes
    -----
    The output is cut into blocks whose length comes from a cost model (about
    2 to 8 times the kernel length); each block is computed from its own
    window of the input (overlap-save), in parallel, so the memory used
    beyond the output is a few blocks per thread rather than one transform of
    the whole padded input.  The error per output is bounded as for
    :func:`fftconvolve` with ``M`` the block length (smaller, so slightly
    more accurate).

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.zeros(10_000); x[5000] = 1.0
    >>> y = fastconv.oaconvolve(x, np.arange(1.0, 4.0), mode="same")
    >>> np.abs(y[4998:5003]).round(12)
    array([0., 1., 2., 3., 0.])
    """
    return _signal_op(in1, in2, mode, "oa", axes, convolution=True, fft_dtypes=True)


def _signal_op(in1, in2, mode, method, axes, *, convolution, fft_dtypes=False):
    if _dask.is_dask(in1) or _dask.is_dask(in2):
        return _lazy(in1, in2, mode, axes, convolution=convolution, method=method, fft_dtypes=fft_dtypes)
    xp, a, b, plan, swapped = _signal_plan(
        in1, in2, mode, method, axes, convolution=convolution, fft_dtypes=fft_dtypes
    )
    if plan is None:  # 0-d inputs: a is the product
        return _dispatch.from_numpy(a, xp)
    out = _execute.run(plan, a, b)
    if not fft_dtypes and plan.method != "direct" and out.size and not np.isfinite(out.flat[0]):
        # scipy.signal.convolve / correlate warn here (checking, like them,
        # the first output only); fftconvolve and oaconvolve do not.
        warnings.warn(
            "Use of fft convolution on input with NAN or inf results in NAN or inf output. "
            "Consider using method='direct' instead.",
            RuntimeWarning,
            stacklevel=3,
        )
    if swapped and not convolution:
        out = _reverse(out, axes=plan.axes)
        if out.dtype.kind == "c":
            out = np.conj(out)
    return _dispatch.from_numpy(out, xp)


_PLANS: dict = {}  # (shapes, dtypes, arguments) -> (plan, swapped); see _signal_plan


def _geometry(a, b, mode, method, axes, *, convolution, fft_dtypes):
    """The plan (before ``method='auto'`` is resolved) and whether the inputs swap, from shapes and dtypes."""
    check_same_ndim(a, b)
    check_not_empty(a, "in1")
    check_not_empty(b, "in2")
    axes = normalize_axes(axes, a.ndim)
    _check_batch_shapes(a, b, axes)
    fft_rule = fft_dtypes
    if fft_dtypes and _product_only(a, b, axes):
        fft_dtypes, method = False, "direct"
    rdt = fft_result_dtype(a, b) if fft_dtypes else result_dtype(a, b)

    if mode == "valid":
        swapped = _valid_swap_needed(a, b, _valid_axes(a, b, axes, fft_rule))
    else:
        # 'full' is symmetric up to a reversal: keep the smaller input as the
        # kernel, which is what the direct engine is fast at.
        size = lambda arr: math.prod(arr.shape[i] for i in axes)  # noqa: E731
        swapped = mode == "full" and size(b) > size(a)
    if swapped:
        a, b = b, a

    pad_lo, out_shape = _mode_padding(a, b, axes, mode, fft_rule)
    plan = make_plan(
        a,
        b,
        axes=axes,
        pad_lo=pad_lo,
        out_shape=out_shape,
        result_dtype=rdt,
        flip=convolution,
        conj=not convolution,
        method="direct" if method == "auto" else method,
    )
    return plan, swapped


def _signal_plan(in1, in2, mode, method, axes, *, convolution, fft_dtypes=False):
    """Validate the arguments of convolve / correlate; return ``(xp, a, b, plan, swapped)``.

    ``method='auto'`` is resolved here.  For 0-d inputs ``plan`` is None and
    ``a`` holds the result.  ``fft_dtypes`` gives the result dtype of
    ``scipy.signal.fftconvolve`` (float for integer inputs).
    """
    xp = _dispatch.namespace(in1, in2)
    a = _dispatch.to_numpy(in1, "in1")
    b = _dispatch.to_numpy(in2, "in2")
    check_choice(mode, "mode", _MODES, _MODE_HINT)
    check_choice(method, "method", _METHODS, _METHOD_HINT)
    if a.ndim == b.ndim == 0:
        out = a * (b if convolution else np.conj(b))
        # scipy's fftconvolve returns in1 * in2 here, in the direct dtype
        return xp, np.asarray(out, dtype=result_dtype(a, b)), None, None, False
    # What follows depends on the shapes and dtypes only: remembered, since
    # it costs as much as a small convolution.
    try:
        key = (a.shape, b.shape, a.dtype, b.dtype, mode, method, axes if axes is None or isinstance(axes, int)
               else tuple(axes), convolution, fft_dtypes)
        hash(key)
    except TypeError:  # axes of an unhashable kind: validated below, not remembered
        key = None
    found = _PLANS.get(key) if key is not None else None
    if found is None:
        found = _geometry(a, b, mode, method, axes, convolution=convolution, fft_dtypes=fft_dtypes)
        if key is not None:
            if len(_PLANS) >= 1024:
                _PLANS.clear()
            _PLANS[key] = found
    plan, swapped = found
    if swapped:
        a, b = b, a
    if method == "auto":
        from . import _auto

        plan = _auto.plan_for_auto(plan, a, b)
    if plan.method == "direct" and _multiplies_padding(a, b, mode):
        # The zero border skips the taps outside in1; scipy's N-D direct method
        # multiplies zero padding by them, so an inf or NaN in the kernel makes
        # every padded output NaN.  The constant border with cval 0 does the same.
        plan = dataclasses.replace(plan, border="constant", cval=0)
    return xp, a, b, plan, swapped


def convolve2d(in1, in2, mode="full", boundary="fill", fillvalue=0):
    r"""Convolve two 2-dimensional arrays, with a boundary condition.

    Same signature and semantics as :func:`scipy.signal.convolve2d`.

    Parameters
    ----------
    in1 : array_like
        First 2-D input (any array-API array or nested list).
    in2 : array_like
        Second 2-D input.
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`convolve`.
    boundary : {'fill', 'pad', 'wrap', 'circular', 'symm', 'symmetric'}, optional
        How `in1` is extended beyond its edges: ``'fill'`` (or ``'pad'``)
        with `fillvalue` (default), ``'wrap'`` / ``'circular'`` periodically, ``'symm'`` /
        ``'symmetric'`` by mirroring with the edge sample repeated
        (``d c b a | a b c d | d c b a``).  The extension is virtual: no padded
        copy of `in1` is made.
    fillvalue : scalar, optional
        Value outside `in1` for ``boundary='fill'`` (default 0); ignored for
        the other boundaries.  It is converted to the result dtype as scipy
        converts it: an array must cast safely (``numpy.can_cast``), a scalar
        is converted by value and must fit; a complex value with real inputs
        is an error unless its imaginary part is 0.

    Returns
    -------
    out : array
        2-D array of the caller's kind, dtype ``numpy.result_type(in1, in2)``.

    Raises
    ------
    ValueError
        If the inputs are not both 2-D or are empty, or for an unknown `mode`
        or `boundary`, or a `fillvalue` that is not one number or does not
        convert to the result dtype.
    TypeError
        For non-numeric dtypes or arrays on a GPU.

    See Also
    --------
    correlate2d, convolve

    Notes
    -----
    Unlike scipy, bool and float16 inputs are accepted (scipy raises for
    them), and empty inputs raise ValueError (scipy returns an array).

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> image = np.arange(9.0).reshape(3, 3)
    >>> fastconv.convolve2d(image, [[0, 1], [1, 0]], mode="same", boundary="wrap")
    array([[ 8.,  7.,  9.],
           [ 5.,  4.,  6.],
           [11., 10., 12.]])
    """
    return _signal_2d(in1, in2, mode, boundary, fillvalue, convolution=True)


def correlate2d(in1, in2, mode="full", boundary="fill", fillvalue=0):
    r"""Cross-correlate two 2-dimensional arrays, with a boundary condition.

    Same signature and semantics as :func:`scipy.signal.correlate2d`.

    Parameters
    ----------
    in1, in2 : array_like
        2-D inputs.
    mode : {'full', 'valid', 'same'}, optional
        As in :func:`convolve`, except that for 'same' an even-sized kernel
        is centred as :func:`scipy.signal.correlate2d` centres it (output
        ``i`` is full output ``i + K // 2``), which differs by one sample from
        :func:`correlate`.
    boundary : {'fill', 'pad', 'wrap', 'circular', 'symm', 'symmetric'}, optional
        As in :func:`convolve2d`.
    fillvalue : scalar, optional
        As in :func:`convolve2d`.

    Returns
    -------
    out : array
        2-D array of the caller's kind, dtype ``numpy.result_type(in1, in2)``.

    Raises
    ------
    ValueError, TypeError
        As for :func:`convolve2d`.

    See Also
    --------
    convolve2d, correlate

    Notes
    -----
    As in scipy, when 'valid' mode swaps the inputs (`in2` larger) the result
    is ``correlate2d(in2, in1)`` reversed but *not* conjugated, so for complex
    inputs it differs from :func:`correlate` by a conjugation.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> fastconv.correlate2d([[1, 2], [3, 4]], [[1, 0], [0, 1]])
    array([[1, 2, 0],
           [3, 5, 2],
           [0, 3, 4]])
    """
    return _signal_2d(in1, in2, mode, boundary, fillvalue, convolution=False)


def _signal_2d(in1, in2, mode, boundary, fillvalue, *, convolution):
    name = "convolve2d" if convolution else "correlate2d"
    if _dask.is_dask(in1) or _dask.is_dask(in2):
        return _lazy(in1, in2, mode, (0, 1), convolution=convolution, boundary=boundary, fillvalue=fillvalue)
    xp = _dispatch.namespace(in1, in2)
    a = _dispatch.to_numpy(in1, "in1")
    b = _dispatch.to_numpy(in2, "in2")
    if not a.ndim == b.ndim == 2:
        raise ValueError(
            f"{name} inputs must both be 2-D arrays; got in1.ndim={a.ndim} and in2.ndim={b.ndim}"
        )
    check_choice(mode, "mode", _MODES, _MODE_HINT)
    check_choice(boundary, "boundary", tuple(_BOUNDARIES), _BOUNDARY_HINT)
    rdt = result_dtype(a, b)
    border = _BOUNDARIES[boundary]
    # As scipy, `fillvalue` is converted to the result dtype (and checked)
    # only for the 'fill' boundary; the other boundaries ignore it.
    fill = check_fillvalue(fillvalue, rdt) if border == "constant" else 0
    check_not_empty(a, "in1")
    check_not_empty(b, "in2")

    axes = (0, 1)
    swapped = mode == "valid" and _valid_swap_needed(a, b, axes)
    if swapped:
        a, b = b, a
    if border == "constant" and fill == 0 and all_finite(b):
        border = "zero"  # the same sums, unless an inf or NaN tap meets the fill (0 * inf)
    pad_lo, out_shape = signal_padding(
        a.shape, b.shape, mode, same_lo=(lambda k: k // 2) if convolution else (lambda k: (k - 1) // 2)
    )
    plan = make_plan(
        a,
        b,
        axes=axes,
        pad_lo=pad_lo,
        out_shape=out_shape,
        result_dtype=rdt,
        border=border,
        cval=fill,
        flip=convolution,
        conj=not convolution,
    )
    out = _execute.run(plan, a, b)
    if swapped and not convolution:
        out = out[::-1, ::-1]
    return _dispatch.from_numpy(out, xp)


def _lazy_choice(in1, in2, mode, axes):
    """What ``method='auto'`` runs in the first task of a Dask ``in1`` (see :func:`fastconv.choose_method`).

    Each task correlates, on one thread and in 'valid' mode, a chunk of the
    padded input extended by the kernel's reach (:mod:`fastconv._dask`); the
    first task's block is computed (one chunk, not the array) and the
    engines' model chooses for it.
    """
    from . import _auto

    a, b, axes, _, _, fft_rule, rdt = _lazy_operands(in1, in2, mode, axes, "auto", False, None)
    pad_lo, out_shape = _mode_padding(a, b, axes, mode, fft_rule)
    kshape = [b.shape[i] for i in axes]
    block = np.asarray(_dask.first_block(a, axes, kshape, pad_lo, out_shape, "zero", 0, rdt).compute())
    return _dask.single_thread(lambda blk: _auto.choose_method(blk, b, "valid", axes))(block)


def _lazy_operands(in1, in2, mode, axes, method, fft_dtypes, name):
    """:func:`_lazy`'s arguments validated as in memory: ``(a, b, axes, method, fft_dtypes, fft_rule, rdt)``.

    ``a`` is ``in1`` as a Dask array, ``b`` the kernel in memory; ``name`` is
    that of a 2-D function, or None.
    """
    import dask.array as da

    _dispatch.namespace(in1, in2)  # refuses a second array library beside Dask
    b = _dispatch.to_numpy(_dask.materialize(in2, "in2"), "in2")
    a = in1 if _dask.is_dask(in1) else da.from_array(_dispatch.to_numpy(in1, "in1"))
    _dask.check_known_chunks(a, "in1")
    check_choice(mode, "mode", _MODES, _MODE_HINT)
    check_choice(method, "method", _METHODS, _METHOD_HINT)
    if name is not None and not a.ndim == b.ndim == 2:
        raise ValueError(
            f"{name} inputs must both be 2-D arrays; got in1.ndim={a.ndim} and in2.ndim={b.ndim}"
        )
    check_same_ndim(a, b)
    check_not_empty(a, "in1")
    check_not_empty(b, "in2")
    axes = normalize_axes(axes, a.ndim)
    _check_batch_shapes(a, b, axes)
    fft_rule = fft_dtypes
    if fft_dtypes and _product_only(a, b, axes):
        fft_dtypes, method = False, "direct"
    rdt = fft_result_dtype(a, b) if fft_dtypes else result_dtype(a, b)
    if mode == "valid" and _valid_swap_needed(a, b, _valid_axes(a, b, axes, fft_rule)):
        raise NotImplementedError(
            "in2 is larger than in1 in 'valid' mode; with a Dask in1 the kernel in2 must be the "
            "smaller input (swap them, as 'valid' mode allows)"
        )
    if any(b.shape[i] != 1 for i in range(a.ndim) if i not in axes):
        raise NotImplementedError(
            "with a Dask in1, in2 must have length 1 along the axes that are not convolved"
        )
    return a, b, axes, method, fft_dtypes, fft_rule, rdt


def _lazy(in1, in2, mode, axes, *, convolution, method="auto", fft_dtypes=False, boundary=None, fillvalue=0):
    """A Dask ``in1``: validated as in memory, then lowered chunk by chunk (see :mod:`fastconv._dask`).

    ``in1`` is padded lazily by the boundary rule; each overlapped chunk is
    correlated in 'valid' mode by the in-memory function itself, so every
    output sample is summed as it would be in memory.  ``boundary`` is None
    for convolve / correlate, a scipy boundary name for the 2-D functions.
    """
    two_d = boundary is not None
    name = ("convolve2d" if convolution else "correlate2d") if two_d else None
    a, b, axes, method, fft_dtypes, fft_rule, rdt = _lazy_operands(in1, in2, mode, axes, method, fft_dtypes, name)
    border, fill = "zero", 0
    if two_d:
        check_choice(boundary, "boundary", tuple(_BOUNDARIES), _BOUNDARY_HINT)
        border = _BOUNDARIES[boundary]
        fill = check_fillvalue(fillvalue, rdt) if border == "constant" else 0
        same_lo = (lambda k: k // 2) if convolution else (lambda k: (k - 1) // 2)
    else:
        same_lo = lambda k: k // 2  # noqa: E731
    kshape = [b.shape[i] for i in axes]
    pad_lo, out_shape = _mode_padding(a, b, axes, mode, fft_rule, same_lo)

    if two_d:
        op = convolve2d if convolution else correlate2d
        valid = lambda block: op(block, b, "valid")  # noqa: E731
    elif fft_dtypes:  # fftconvolve / oaconvolve
        op = fftconvolve if method == "fft" else oaconvolve
        valid = lambda block: op(block, b, "valid", axes)  # noqa: E731
    else:
        op = convolve if convolution else correlate
        valid = lambda block: op(block, b, "valid", method, axes)  # noqa: E731

    def anchored(block):
        out = np.asarray(valid(block), dtype=rdt)
        widths = [(0, block.shape[i] - out.shape[i]) for i in range(block.ndim)]
        return np.pad(out, widths)

    return _dask.correlate_padded(a, anchored, axes, kshape, pad_lo, out_shape, border, fill, rdt)


def _multiplies_padding(a, b, mode) -> bool:
    """Whether scipy's direct method multiplies zero padding by a non-finite kernel.

    ``a`` and ``b`` are the inputs after the swap.  scipy pads `in1` with zeros
    and multiplies (``0 * inf`` is NaN) on its N-D path; its 1-D path, NumPy's
    convolve / correlate, skips the taps outside, as the zero border does.
    """
    if mode == "valid":
        return False
    if a.ndim == 1 and (mode == "full" or a.size >= b.size):
        return False
    return not all_finite(b)


def _product_only(a, b, axes) -> bool:
    """Whether scipy's fftconvolve / oaconvolve return ``in1 * in2`` without an FFT.

    With one input of length 1 along every convolved axis, they return the
    product, in the product's dtype (integers stay integers); fastconv then
    runs the direct engine, which computes it exactly.
    """
    return all(a.shape[i] == 1 or b.shape[i] == 1 for i in axes)


def _valid_axes(a, b, axes, fft_rule: bool) -> list:
    """The axes scipy's 'valid' rule compares: all, or for fftconvolve / oaconvolve those where no input has length 1."""
    return [i for i in axes if a.shape[i] != 1 and b.shape[i] != 1] if fft_rule else list(axes)


def _mode_padding(a, b, axes, mode, fft_rule: bool, same_lo=lambda k: k // 2):
    """``signal_padding`` of ``mode``; with ``fft_rule`` (scipy's fftconvolve / oaconvolve)
    'valid' along an axis where one input has length 1 is the product's
    broadcast length there, which is 'full'.
    """
    lens = [a.shape[i] for i in axes], [b.shape[i] for i in axes]
    pad_lo, out_shape = signal_padding(*lens, mode, same_lo=same_lo)
    if mode == "valid" and fft_rule:
        full_lo, full_out = signal_padding(*lens, "full")
        one = [a.shape[i] == 1 or b.shape[i] == 1 for i in axes]
        pad_lo = tuple(f if t else p for f, p, t in zip(full_lo, pad_lo, one))
        out_shape = tuple(f if t else o for f, o, t in zip(full_out, out_shape, one))
    return pad_lo, out_shape


def _valid_swap_needed(a, b, axes) -> bool:
    """scipy's rule: in 'valid' mode the larger input must come first."""
    ok1 = all(a.shape[i] >= b.shape[i] for i in axes)
    ok2 = all(b.shape[i] >= a.shape[i] for i in axes)
    if not (ok1 or ok2):
        raise ValueError(
            "For 'valid' mode, one must be at least as large as the other in every dimension; "
            f"got in1.shape={a.shape} and in2.shape={b.shape}"
        )
    return not ok1


def _check_batch_shapes(a, b, axes) -> None:
    for i in range(a.ndim):
        if i not in axes and not (a.shape[i] == b.shape[i] or a.shape[i] == 1 or b.shape[i] == 1):
            raise ValueError(
                f"incompatible shapes for in1 and in2: {a.shape} and {b.shape} "
                f"(axis {i} is not convolved, so its lengths must be equal or 1)"
            )


def _reverse(out: np.ndarray, axes) -> np.ndarray:
    return out[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(out.ndim))]
