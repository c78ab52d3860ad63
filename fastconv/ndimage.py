r"""The scipy.ndimage face: ``correlate``, ``convolve``, ``correlate1d``, ``convolve1d``, ``separate``.

Signatures, defaults and semantics follow ``scipy.ndimage`` (1.17): the
output has the input's shape, the kernel is centred at ``K // 2 + origin``
along each axis, and the input is extended beyond its edges by ``mode``.
This module translates that vocabulary into plans of the one primitive; the
border is virtual (no padded copy of the image is made), and separable
kernels run as a sequence of 1-D passes.

Modes and the border rules they map to (``np.pad`` names in brackets):

=================================  ==========================  ==================
``mode``                           extension of ``a b c d``    rule
=================================  ==========================  ==================
``'reflect'``, ``'grid-mirror'``   ``d c b a | a b c d | d c``  [symmetric]
``'mirror'``                       ``d c b | a b c d | c b a``  [reflect]
``'nearest'``                      ``a a a | a b c d | d d d``  [edge]
``'wrap'``, ``'grid-wrap'``        ``b c d | a b c d | a b c``  [wrap]
``'constant'``, ``'grid-constant'`` ``k k k | a b c d | k k k``  constant ``cval``
=================================  ==========================  ==================
"""

from __future__ import annotations

import functools
import math
import operator
import warnings
from collections.abc import Iterable

import numpy as np

from . import _dask, _dispatch, _execute
from ._engines import _scratch, borders
from ._dtypes import all_finite, cast_like_c, ndimage_compute_dtype
from ._plan import make_plan
from ._validate import check_signal_array

__all__ = ["correlate", "convolve", "correlate1d", "convolve1d", "separate"]

# scipy.ndimage mode names -> the engines' border rules.
_MODES = {
    "reflect": "symmetric",
    "grid-mirror": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "wrap": "wrap",
    "grid-wrap": "wrap",
    "constant": "constant",
    "grid-constant": "constant",
}


class NdimageArgumentError(ValueError, RuntimeError):
    """A bad argument that scipy.ndimage refuses with RuntimeError.

    It is a ValueError (fastconv's rule for bad arguments) and a RuntimeError
    (what code written against scipy.ndimage catches) at once.
    """


def correlate(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None):
    r"""Multidimensional cross-correlation, as :func:`scipy.ndimage.correlate`.

    .. math:: out[i] = \sum_j \overline{w[j]} \, \tilde{x}[i + j - K // 2 - origin]

    per axis, where :math:`\tilde{x}` is `input` extended by `mode`.

    Parameters
    ----------
    input : array_like
        The image (any array-API array, N-D).
    weights : array_like
        The kernel, with as many dimensions as `input` (or as `axes`).
        Complex weights are conjugated, as in :func:`numpy.correlate`.
    output : ndarray or dtype, optional
        A NumPy array of the input's shape to write into (and return), or the
        dtype of the result.  Default: the input's dtype (complex if the input
        or the weights are complex).  Where the direct engine computes the
        result (or its last pass, for a separable kernel; not a kernel large
        enough for the FFT, nor a sum of separable terms), a C-contiguous
        array of the dtype the sums are computed in (float32 / complex64 for
        single-precision input and output, else float64 / complex128) that
        does not overlap the input is written by the kernel itself, with no
        temporary result: the fastest way to filter many images of one size.
        Otherwise the result is copied into it.
    mode : str or sequence of str, optional
        ``'reflect'`` (default), ``'constant'``, ``'nearest'``, ``'mirror'``,
        ``'wrap'``, ``'grid-mirror'``, ``'grid-constant'``, ``'grid-wrap'``;
        see the module docstring.  A sequence gives one mode per filtered
        axis (an extension: scipy accepts a sequence only in its separable
        filters).
    cval : scalar, optional
        The value outside the input for the constant modes (default 0).
    origin : int or sequence of int, optional
        Shift of the kernel's centre per axis; ``-(K // 2) <= origin <=
        (K - 1) // 2``.  Positive values shift the filter to the left.
    axes : int or sequence of int, optional
        The axes to filter along (default: all); `weights` has one dimension
        per axis given, in ascending order of the axes, while `origin` and
        `mode` sequences follow the order of `axes` (scipy's rule); when
        `axes` names every axis, scipy 1.17 takes an `origin` sequence in
        ascending order of the axes instead, and so does fastconv.

    Returns
    -------
    out : array
        The filtered image, of the input's shape, in the caller's array kind
        (or `output` itself when it is an array).

    Raises
    ------
    ValueError
        For an origin out of range, an unknown mode, weights whose ndim does
        not match, empty weights, an `output` of the wrong shape, or a
        complex `cval` with real input.  The argument errors scipy raises as
        RuntimeError are :class:`NdimageArgumentError`, both a ValueError and
        a RuntimeError.
    TypeError
        For non-numeric dtypes.

    See Also
    --------
    convolve, correlate1d, separate, fastconv.correlate

    Notes
    -----
    Sums are computed in float64, as scipy does, and converted to the output
    dtype as scipy's C code converts them (integers truncate toward zero and
    wrap: see :func:`fastconv._dtypes.cast_like_c`).  C leaves the conversion
    of NaN, inf and out-of-range values to integers undefined: fastconv
    follows what x86-64 does in scipy's float64-input code path, and scipy's
    own results for such values vary with the input dtype.  Exception, for speed:
    a float32 input written to a float32 output is summed in float32, which
    differs from scipy by at most the float32 rounding of the sum.  float16
    is accepted (scipy refuses it) and summed in float32.

    As in scipy, weights with ``|w| <= 2.2e-16`` (float64 eps), NaN weights
    included, are left out.  One deliberate difference: the remaining zero
    weights are multiplied like any other, so a NaN or inf input sample (or
    ``cval``) that only zero weights of a window reach makes that output NaN,
    where scipy, which skips zero weights, gives a finite sum (for example
    the corners of a NaN pixel under a cross-shaped kernel).  Telling the two
    apart would cost a pass over the image on every call.  With finite data
    the results are scipy's.  (:func:`correlate1d` and :func:`convolve1d`
    multiply every weight, as scipy's do.)  An image that holds a NaN or inf
    never goes to an FFT engine, which would spread it over the whole output.

    Kernels that are outer products of 1-D kernels (box, Gaussian, Sobel,
    ...) are detected (see :func:`separate`) and run as one 1-D pass per axis
    when that is cheaper; 2-D floating kernels of small numerical rank ``r``
    run as ``r`` such filters, summed, when ``r (K_0 + K_1)`` multiply-adds
    beat ``K_0 K_1``.  The decomposition reproduces the kernel to
    ``8 max(K) eps`` of its largest element, with the eps of the kernel's or
    the computation's dtype, whichever is coarser, so the result differs from
    the direct sum only by rounding of the order of that dtype's.

    Large kernels that are not separable (at least 64 taps) run on an FFT
    engine when the cost model of ``method='auto'`` (see
    :func:`fastconv.choose_method`) predicts it faster, counting the padded
    copy of the image that the FFT needs (the direct engine needs none).  FFT
    errors are spread over the whole output, of the order of
    ``eps log2(M) ||x||_2 ||w||_2``, rather than proportional to each output's
    own terms.  An integer ``output`` truncates the sums, as scipy's does, so
    there an FFT engine runs only when the input and weights hold integer
    values and the FFT's error bound is below 1/2: its result, rounded, is
    then exactly the sums; any other weights are summed directly.

    Examples
    --------
    The background document's 2-D example: the kernel slides across the
    image without being flipped.

    >>> import numpy as np
    >>> from fastconv import ndimage
    >>> image = np.array([[1, 1, 1, 0, 0],
    ...                   [0, 1, 1, 1, 0],
    ...                   [0, 0, 1, 1, 1],
    ...                   [0, 0, 1, 1, 0],
    ...                   [0, 1, 1, 0, 0]])
    >>> kernel = np.array([[1, 0, 1],
    ...                    [0, 1, 0],
    ...                    [1, 0, 1]])
    >>> ndimage.correlate(image, kernel, mode="constant")[1:-1, 1:-1]
    array([[4, 3, 4],
           [2, 4, 3],
           [2, 3, 4]])
    """
    return _filter(input, weights, output, mode, cval, origin, axes, convolution=False, footprint=True)


def convolve(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None):
    r"""Multidimensional convolution, as :func:`scipy.ndimage.convolve`.

    The kernel is flipped along every filtered axis; for an even-sized kernel
    the centre moves as in scipy (``origin`` becomes ``-origin - 1``).

    Parameters
    ----------
    input, weights, output, mode, cval, origin, axes
        As in :func:`correlate`; complex weights are not conjugated.

    Returns
    -------
    out : array
        As in :func:`correlate`.

    Raises
    ------
    ValueError, TypeError
        As in :func:`correlate`.

    See Also
    --------
    correlate, convolve1d, fastconv.convolve

    Notes
    -----
    .. math:: out[i] = \sum_j w[j] \, \tilde{x}[i - j + K // 2 + origin]

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import ndimage
    >>> a = np.array([[1, 2, 0, 0],
    ...               [5, 3, 0, 4],
    ...               [0, 0, 0, 7],
    ...               [9, 3, 0, 0]])
    >>> k = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]])
    >>> ndimage.convolve(a, k, mode="constant", cval=0.0)
    array([[11, 10,  7,  4],
           [10,  3, 11, 11],
           [15, 12, 14,  7],
           [12,  3,  7,  0]])
    """
    return _filter(input, weights, output, mode, cval, origin, axes, convolution=True, footprint=True)


def correlate1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0):
    r"""1-D cross-correlation along one axis, as :func:`scipy.ndimage.correlate1d`.

    Parameters
    ----------
    input : array_like
        N-D input.
    weights : array_like
        1-D kernel (complex weights are conjugated).
    axis : int, optional
        The axis to filter along (default: the last).
    output, mode, cval, origin
        As in :func:`correlate`, for one axis.

    Returns
    -------
    out : array
        As in :func:`correlate`.

    Raises
    ------
    ValueError, TypeError
        As in :func:`correlate`.

    See Also
    --------
    convolve1d, correlate

    Notes
    -----
    .. math:: out[i] = \sum_j \overline{w[j]} \, \tilde{x}[i + j - K // 2 - origin]

    along `axis`, where :math:`\tilde{x}` is `input` extended by `mode`.  The
    sums and their conversion to the output dtype are those of
    :func:`correlate`.

    Examples
    --------
    >>> from fastconv import ndimage
    >>> ndimage.correlate1d([2, 8, 0, 4, 1, 9, 9, 0], weights=[1, 3])
    array([ 8, 26,  8, 12,  7, 28, 36,  9])
    """
    _check_weights_1d(weights)  # converted by _filter, after the array-library check
    return _filter(input, weights, output, mode, cval, origin, _axis(axis, input), convolution=False)


def convolve1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0):
    r"""1-D convolution along one axis, as :func:`scipy.ndimage.convolve1d`.

    Parameters
    ----------
    input, weights, axis, output, mode, cval, origin
        As in :func:`correlate1d`; complex weights are not conjugated.

    Returns
    -------
    out : array
        As in :func:`correlate`.

    Raises
    ------
    ValueError, TypeError
        As in :func:`correlate`.

    See Also
    --------
    correlate1d, convolve

    Notes
    -----
    The kernel is flipped: the result is ``correlate1d(input, weights[::-1],
    axis, output, mode, cval, -origin)`` for odd kernel sizes and the same with
    origin ``-origin - 1`` for even ones, as in scipy.  The sums and their
    conversion to the output dtype are those of :func:`correlate`.

    Examples
    --------
    >>> from fastconv import ndimage
    >>> ndimage.convolve1d([2, 8, 0, 4, 1, 9, 9, 0], weights=[1, 3])
    array([14, 24,  4, 13, 12, 36, 27,  0])
    """
    _check_weights_1d(weights)  # converted by _filter, after the array-library check
    return _filter(input, weights, output, mode, cval, origin, _axis(axis, input), convolution=True)


def separate(kernel, *, rtol=None):
    r"""Decompose a kernel into a sum of outer products of 1-D kernels.

    Returns a list of terms ``(f_0, f_1, ..., f_{n-1})``, one 1-D array per
    dimension, such that ``kernel`` equals the sum over the terms of
    ``f_0 ⊗ f_1 ⊗ ... ⊗ f_{n-1}`` to within ``rtol`` (relative to the
    largest element).  A separable kernel (box, Gaussian, Sobel, any outer
    product) gives one term; 2-D kernels of numerical rank ``r`` give ``r``
    terms (from the singular value decomposition).  N-D kernels that are not
    separable are returned as one term per element of the leading axis
    would be of no use, so ValueError is raised for them.

    Parameters
    ----------
    kernel : array_like
        A real kernel of at least one dimension.
    rtol : float, optional
        Relative reconstruction tolerance.  Default: ``8 * max(shape) * eps``
        of the kernel's dtype (float64 for integer kernels), i.e. of the
        order of the kernel's own rounding.

    Returns
    -------
    terms : list of tuple of numpy.ndarray
        The decomposition, the fewest terms first found within `rtol`.

    Raises
    ------
    ValueError
        For an empty or complex kernel, or an N-D (N > 2) kernel that is not
        an outer product.

    See Also
    --------
    correlate, convolve

    Notes
    -----
    A rank-1 kernel is factored from the lines of the kernel through its
    largest element; for an integer kernel every line but the first is
    divided by the gcd of its entries, so the factors of kernels such as
    Sobel or a box are integers and reproduce the kernel exactly.  Integer
    outputs (which truncate the sum) take the separable path only with such
    integer factors, so that every partial sum stays exact.  Filtering with
    the factors one axis after the other costs ``sum(K_i)`` instead of
    ``prod(K_i)`` multiply-adds per output.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv import ndimage
    >>> sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    >>> [(u, v)] = ndimage.separate(sobel)
    >>> u, v
    (array([1., 2., 1.]), array([-1.,  0.,  1.]))
    >>> len(ndimage.separate(np.eye(3)))
    3
    """
    k = np.asarray(kernel)
    if k.size == 0 or k.ndim == 0:
        raise ValueError(f"kernel must be a non-empty array of at least one dimension; got shape {k.shape}")
    if k.dtype.kind == "c":
        raise ValueError("kernel must be real; separate the real and imaginary parts")
    check_signal_array(k, "kernel")
    if not np.all(np.isfinite(k)):
        raise ValueError("kernel must hold finite values (a NaN or inf cannot be separated)")
    if rtol is None:
        tol = _default_rtol(k.shape, k.dtype)
    else:
        try:
            tol = float(rtol)
        except (TypeError, ValueError):
            raise TypeError(f"rtol must be a number; got {rtol!r}") from None
        if not tol >= 0:  # NaN too
            raise ValueError(f"rtol must be a non-negative number; got {rtol!r}")
    k = k.astype(np.float64)
    factors = _rank1_factors(k, tol)
    if factors is not None:
        return [factors]
    if k.ndim > 2:
        raise ValueError(f"kernel of shape {k.shape} is not an outer product of 1-D kernels")
    u, s, vt = np.linalg.svd(k)
    scale = np.abs(k).max()
    terms = []
    approx = 0
    for r in range(len(s)):
        terms.append((u[:, r] * s[r], vt[r].copy()))
        approx = approx + np.outer(*terms[-1])  # the terms' sum so far
        if np.abs(approx - k).max() <= tol * scale:
            break
    return terms


# --- translation into plans ---------------------------------------------------------


def _default_rtol(shape, *dtypes) -> float:
    """``8 max(K) eps``, with the eps of the least precise floating dtype given (float64 at best)."""
    eps = max([float(np.finfo(d).eps) for d in dtypes if np.dtype(d).kind in "fc"]
              + [float(np.finfo(np.float64).eps)])
    return 8 * max(shape) * eps


def _rank1_factors(k: np.ndarray, tol: float):
    """Factors ``f_i`` with ``k == f_0 ⊗ ... ⊗ f_{n-1}`` within ``tol``, or None."""
    if k.ndim == 1:
        return (k.copy(),)
    scale = np.abs(k).max()
    if scale == 0:
        return tuple(np.zeros(n) if i == 0 else np.ones(n) for i, n in enumerate(k.shape))
    pivot = np.unravel_index(np.argmax(np.abs(k)), k.shape)
    lines = []
    for axis in range(k.ndim):
        index = list(pivot)
        index[axis] = slice(None)
        lines.append(k[tuple(index)])
    if np.all(k == np.round(k)) and np.abs(k).max() < 2**52:
        # An integer kernel: divide every line but the first by the gcd of
        # its entries, so that factors such as Sobel's come out as integers.
        factors = [line / np.gcd.reduce(line.astype(np.int64)) for line in lines[1:]]
        at_pivot = math.prod(float(f[p]) for f, p in zip(factors, pivot[1:]))
        factors.insert(0, lines[0] / at_pivot)
    else:
        factors = [lines[0].copy()] + [line / k[pivot] for line in lines[1:]]
    approx = factors[0]
    for f in factors[1:]:
        approx = np.multiply.outer(approx, f)
    if np.abs(approx - k).max() <= tol * scale:
        return tuple(factors)
    return None


def _check_weights_1d(weights) -> None:
    # (Dask weights are not computed here: the result is then a Dask array.)
    w = weights if _dask.is_dask(weights) else _dispatch.to_numpy(weights, "weights")
    if w.ndim != 1 or w.shape[0] < 1:
        raise NdimageArgumentError(
            f"weights must be a non-empty 1-D array (no filter weights given); got shape {w.shape}"
        )


def _axis(axis, input) -> tuple:
    try:
        return (operator.index(axis),)
    except TypeError:
        raise TypeError(f"axis must be an integer; got {axis!r}") from None


def _normalize_axes(axes, ndim: int) -> tuple:
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, Iterable) and not isinstance(axes, (str, bytes)):
        axes = list(axes)
    else:
        axes = [axes]
    for a in axes:
        if not hasattr(type(a), "__index__"):
            raise TypeError(
                f"axes must be an integer, iterable of integers, or None; got {axes!r} "
                f"('{type(a).__name__}' object cannot be interpreted as an integer)"
            )
    axes = [operator.index(a) for a in axes]
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axes: specified axis {a} is out of range for an input of ndim {ndim}")
    axes = [a % ndim for a in axes]
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes must be unique; got {axes!r}")
    return tuple(axes)


def _per_axis(value, n: int, name: str) -> list:
    """A scalar repeated ``n`` times, or a sequence of exactly ``n`` values (scipy's rule)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        return [value] * n
    values = list(value)
    if len(values) != n:
        raise NdimageArgumentError(
            f"{name}: sequence argument must have length equal to input rank "
            f"(one entry per filtered axis, {n}); got {len(values)}"
        )
    return values


def _check_modes(mode, n: int) -> list:
    modes = _per_axis(mode, n, "mode")
    for m in modes:
        if not (isinstance(m, str) and m in _MODES):
            allowed = ", ".join(repr(k) for k in _MODES)
            raise NdimageArgumentError(f"mode must be one of {allowed}; got {m!r} (boundary mode not supported)")
    return modes


def _check_origins(origin, n: int) -> list:
    origins = _per_axis(origin, n, "origin")
    try:
        return [operator.index(o) for o in origins]
    except TypeError:
        raise TypeError(f"origin must be an integer or a sequence of integers; got {origin!r}") from None


def _output_dtype(output, input_dtype: np.dtype, complex_output: bool) -> np.dtype:
    if output is None:
        # in the input's kind, native byte order (as scipy's ``input.dtype.name``)
        return np.promote_types(input_dtype, np.complex64) if complex_output else input_dtype.newbyteorder("=")
    if isinstance(output, np.ndarray):
        dtype = output.dtype
    else:
        try:
            dtype = np.dtype(output)
        except (TypeError, ValueError):  # ValueError: an array of another library
            raise TypeError(
                f"output must be None, a NumPy array or a dtype; got {type(output).__name__}"
            ) from None
    if dtype.kind not in "biufc":
        raise NdimageArgumentError(f"output must have a numeric dtype; got {dtype}")
    check_signal_array(np.empty(0, dtype), "output")
    if complex_output and dtype.kind != "c":
        if isinstance(output, (str, np.ndarray)):
            raise NdimageArgumentError(
                f"output must have a complex dtype for complex input or weights; got {dtype}"
            )
        # scipy promotes a dtype given as an object, with a warning.
        warnings.warn("promoting specified output dtype to complex", UserWarning, stacklevel=4)
        dtype = np.promote_types(dtype, np.complex64)
    return dtype


# scipy.ndimage.correlate / convolve use only the weights with |w| > DBL_EPSILON
# (NaN weights fail the test too); correlate1d / convolve1d use them all.
_TINY_WEIGHT = float(np.finfo(np.float64).eps)


def _footprint_weights(w: np.ndarray) -> np.ndarray:
    """``w`` with the weights scipy's N-D filters leave out set to 0 (real weights)."""
    if w.dtype.kind != "f":
        return w
    keep = np.abs(w.astype(np.float64)) > _TINY_WEIGHT
    return w if keep.all() else np.where(keep, w, 0).astype(w.dtype)


def _filter(input, weights, output, mode, cval, origin, axes, *, convolution, footprint=False):
    lazy = _dask.is_dask(input) or _dask.is_dask(weights)
    if lazy:
        import dask.array as da

        _dispatch.namespace(input, weights)  # refuses a second array library beside Dask
        x = input if _dask.is_dask(input) else da.from_array(_dispatch.to_numpy(input, "input"))
        _dask.check_known_chunks(x, "input")
        weights = _dispatch.to_numpy(_dask.materialize(weights, "weights"), "weights")
        if output is not None and not isinstance(output, (str, type, np.dtype)):
            raise TypeError("output must be None or a dtype when the input is a Dask array")
    else:
        xp = _dispatch.namespace(input, weights)
        x = _dispatch.to_numpy(input, "input")
    w = _dispatch.to_numpy(weights, "weights")
    check_signal_array(x, "input")
    check_signal_array(w, "weights")
    if footprint:
        w = _footprint_weights(w)
    if x.ndim == 0 and w.ndim == 0 and not lazy and axes in (None, ()):
        # As scipy: a 0-d input filtered by 0-d weights gives a 0-d array,
        # input * weight (computed as the 1-D filter of one sample).
        one = output.reshape(1) if isinstance(output, np.ndarray) else output
        result = _filter(x.reshape(1), w.reshape(1), one, mode, cval, origin, None,
                         convolution=convolution, footprint=footprint)
        if isinstance(output, np.ndarray):
            return output
        result = np.asarray(result).reshape(())
        back = _dispatch.from_numpy(result, xp)
        return result if isinstance(back, np.generic) else back  # a 0-d array, not a NumPy scalar
    if x.ndim == 0:
        raise ValueError("input must have at least one dimension (or be 0-d, with 0-d weights); "
                         f"got a 0-d input and weights of shape {w.shape}")
    axes = _normalize_axes(axes, x.ndim)
    if w.ndim != len(axes):
        raise NdimageArgumentError(
            f"weights.ndim ({w.ndim}) must match len(axes) ({len(axes)}) "
            f"(the input's ndim, {x.ndim}, unless axes is given)"
        )
    if w.size == 0:
        raise NdimageArgumentError(f"weights cannot be empty; got shape {w.shape}")
    modes = _check_modes(mode, len(axes))
    origins = _check_origins(origin, len(axes))
    cval_arr = np.asarray(cval)
    if cval_arr.dtype == object and isinstance(cval, int) and not isinstance(cval, bool):
        cval_arr = np.asarray(float(cval))  # beyond int64: scipy reads cval as a double too
    if cval_arr.size != 1 or cval_arr.dtype.kind not in "biufc":
        raise TypeError(f"cval must be a number; got {cval!r}")
    cval = cval_arr.reshape(()).item()
    complex_output = x.dtype.kind == "c" or w.dtype.kind == "c"
    if isinstance(cval, complex) and x.dtype.kind != "c":
        raise ValueError("Cannot provide a complex-valued cval when the input is real.")
    out_dtype = _output_dtype(output, x.dtype, complex_output)
    if isinstance(output, np.ndarray):
        if output.shape != x.shape:
            raise NdimageArgumentError(
                f"output shape not correct: output.shape is {output.shape}, the input's is {x.shape}"
            )
        if not output.flags.writeable:
            raise ValueError("output must be a writeable array")

    finite_weights = all_finite(w)
    # Geometry, per axis of the input; axes not filtered get a kernel of extent 1.
    kshape = [1] * x.ndim
    border = ["zero"] * x.ndim
    shift = [0] * x.ndim
    # As in scipy: the weights' dimensions belong to the filtered axes in
    # ascending order, and modes follow the order of `axes`; so do origins,
    # except when `axes` names every axis: scipy then takes them axis by
    # axis in ascending order too.
    extent = dict(zip(sorted(axes), w.shape))
    origin_of = dict(zip(sorted(axes) if len(axes) == x.ndim else axes, origins))
    for i, a in enumerate(axes):
        k = extent[a]
        o = origin_of[a]
        if convolution:
            # scipy flips the kernel and mirrors the origin; an even kernel's
            # centre moves by one.
            o = -o - (1 - k % 2)
        if not -(k // 2) <= o <= (k - 1) // 2:
            raise ValueError(
                "Invalid origin; origin must satisfy -(weights.shape[k] // 2) <= origin[k] <= "
                f"(weights.shape[k]-1) // 2; got origin {origin_of[a]} for axis {a} with "
                f"{k} weights"
            )
        kshape[a] = k
        shift[a] = k // 2 + o
        border[a] = _MODES[modes[i]]
        if border[a] == "constant" and cval == 0 and finite_weights:
            # The zero border skips the outside taps; scipy multiplies the
            # padding, which differs only for an inf or NaN weight (0 * inf).
            border[a] = "zero"
    w = w.reshape(kshape)
    compute = ndimage_compute_dtype(x.dtype, out_dtype)
    if lazy:
        # Each overlapped chunk is filtered by this very function.
        reach = [max(s, k - 1 - s) for s, k in zip(shift, kshape)]
        wrap = {a for a in range(x.ndim) if border[a] == "wrap"}
        # (the weights rule, footprint or not, is the call's own: correlate1d
        # multiplies every weight, correlate drops the tiny ones)
        block = functools.partial(_filter, weights=weights, output=out_dtype, mode=mode, cval=cval,
                                  origin=origin, axes=axes, convolution=convolution, footprint=footprint)
        return _dask.filter_same_shape(x, block, reach, wrap, out_dtype)

    if x.size == 0:
        result = np.zeros(x.shape, out_dtype)
    else:
        # The engine may write into ``output`` itself (one pass over memory
        # less), never when it overlaps the arrays it reads.
        target = None
        if isinstance(output, np.ndarray) and not (np.may_share_memory(output, x)
                                                    or np.may_share_memory(output, w)):
            target = output
        result = _run(x, w, compute, kshape, shift, border, cval, convolution,
                      exact=out_dtype.kind in "biu", out=target)
        result = cast_like_c(result, out_dtype)
    if isinstance(output, np.ndarray):
        if result is not output:
            np.copyto(output, result, casting="unsafe")
        return output
    return _dispatch.from_numpy(result, xp)


def _run(x, w, compute, kshape, shift, border, cval, convolution, *, exact, out=None):
    """Filter ``x`` (all axes, extents 1 where unfiltered) in ``compute``; separable when cheaper.

    ``out``: where the direct engine may write the result of the (last)
    pass (see :func:`fastconv._execute.run`); the result is then ``out``
    itself.

    With ``exact`` (integer outputs, which truncate the sum) a kernel is run
    separably only if its factors reproduce it exactly, so the sums are the
    same as the direct ones wherever those are exact.
    """
    filtered = [a for a, k in enumerate(kshape) if k > 1]
    # (A NaN or inf weight is summed directly: factors would spread it, and
    # an SVD of it does not converge.)
    if len(filtered) >= 2 and w.dtype.kind != "c" and _separable_pays(kshape, filtered) and all_finite(w):
        core = np.asarray(w, np.float64).reshape([kshape[a] for a in filtered])
        factors = _rank1_factors(core, 0.0 if exact else _default_rtol(kshape, w.dtype, compute))
        if exact and factors is not None and not all(np.all(f == np.round(f)) for f in factors):
            factors = None  # inexact factors would round partial sums that truncation then exposes
        if factors is not None:
            return _run_separable(x, factors, compute, kshape, shift, border, cval, convolution, filtered,
                                  exact=exact, out=out)
        if len(filtered) == 2 and not exact:
            terms = separate(core, rtol=_default_rtol(kshape, w.dtype, compute))
            ks = [kshape[a] for a in filtered]
            if len(terms) * (sum(ks) + 4) + 2 * (len(terms) - 1) < math.prod(ks):
                # A low-rank kernel: one separable filter per singular value.
                total = None
                for factors in terms:
                    y = _run_separable(x, factors, compute, kshape, shift, border, cval, convolution, filtered)
                    total = y if total is None else np.add(total, y, out=total)
                return total
    return _pass(x, w, compute, shift, border, cval, convolution, exact=exact, out=out)


def _separable_pays(kshape, filtered) -> bool:
    # Direct: prod(K) multiply-adds per output; separable: sum(K) plus one
    # extra pass over memory per axis, worth about 4 multiply-adds.
    ks = [kshape[a] for a in filtered]
    return sum(ks) + 4 * (len(ks) - 1) < math.prod(ks)


def _run_separable(x, factors, compute, kshape, shift, border, cval, convolution, filtered, *, exact=False,
                   out=None):
    """One 1-D pass per filtered axis; the last one may write into ``out`` (see :func:`_run`).

    Outside the input a constant border is ``cval``; after filtering along one
    axis, the value outside along the next axes is ``cval * sum(factor)``.
    """
    y = x
    outside = cval
    for i, (a, f) in enumerate(zip(filtered, factors)):
        shape = [1] * x.ndim
        shape[a] = kshape[a]
        one_shift = [0] * x.ndim
        one_shift[a] = shift[a]
        one_border = ["zero"] * x.ndim
        one_border[a] = border[a]
        y = _pass(y, f.reshape(shape), compute, one_shift, one_border, outside, convolution, exact=exact,
                  out=out if i == len(filtered) - 1 else None)
        outside = outside * float(np.sum(f))
    return y


# Kernels with fewer taps never go to an FFT engine (the model is not asked).
_FFT_MIN_TAPS = 64
# Seconds per byte of the padded copy an FFT engine needs (about 5 GB/s).
_PAD_SECONDS_PER_BYTE = 2e-10


def _pass(x, w, compute, shift, border, cval, convolution, *, exact=False, out=None):
    """One correlation of ``x`` with ``w`` (same ndim), by the engine the cost model prefers.

    The direct engine extends the input virtually.  The FFT engines know only
    a zero border, so for them the input is really padded by the border rule
    first: one copy of the image, paid only where the model says the FFT wins
    (large kernels).

    With ``exact`` (an integer output, which truncates the sums) an FFT
    runs only where its result, rounded to integers, is provably the exact
    sums (integer-valued input and weights, :func:`._auto.fft_rounds_exactly`),
    and is rounded; otherwise the sums are direct, as in scipy.
    """
    rule = border[0] if all(b == border[0] for b in border) else tuple(border)
    common = dict(axes=tuple(range(x.ndim)), result_dtype=compute, flip=convolution,
                  conj=not convolution, compute=compute)
    plan = make_plan(x, w, pad_lo=shift, out_shape=x.shape, border=rule, cval=cval, **common)
    if math.prod(w.shape) >= _FFT_MIN_TAPS:
        from ._auto import fft_rounds_exactly, model_times

        padded_shape = tuple(n + k - 1 for n, k in zip(x.shape, w.shape))
        padded = np.lib.stride_tricks.as_strided(x, shape=padded_shape, strides=(0,) * x.ndim)
        valid = make_plan(padded, w, pad_lo=(0,) * x.ndim, out_shape=x.shape, **common)
        times = model_times(valid)
        times["direct"] = model_times(plan)["direct"]
        pad_cost = _PAD_SECONDS_PER_BYTE * 2 * math.prod(padded_shape) * compute.itemsize
        fft_best = min(("fft", "oa"), key=times.get)
        # An FFT spreads one NaN or inf over the whole output; scipy.ndimage
        # (direct sums) keeps it to the outputs whose window holds it.  The
        # check is a pass over the input, paid only where the FFT would run.
        if times[fft_best] + pad_cost < times["direct"] and all_finite(w) and all_finite(cval) \
                and all_finite(x):
            ext = _pad(x.astype(compute, copy=False), shift, w.shape, border, cval)
            valid = make_plan(ext, w, pad_lo=(0,) * x.ndim, out_shape=x.shape, method=fft_best,
                              **common)
            if not exact:
                return _execute.run(valid, ext, w)
            if fft_rounds_exactly(valid, fft_best, ext, w):
                return np.rint(_execute.run(valid, ext, w))
    return _execute.run(plan, x, w, out=out)


def _pad(x, shift, kshape, border, cval):
    """``x`` really padded by ``shift`` before and ``K - 1 - shift`` after, as ``np.pad`` would, axis by axis.

    Mapped rules first, then constant, then zero, so the corners are those
    of the engines' virtual border (outside a zero axis 0, else outside a
    constant axis ``cval``).  One array is allocated and ``x`` copied into
    it once; each axis's margins are then filled from what is already there
    (``np.pad`` axis by axis would copy the whole image once per axis).  The
    array is the calling thread's scratch (:mod:`._engines._scratch`): the
    engines only read it, and it never reaches the caller.
    """
    order = sorted(range(x.ndim), key=lambda a: {"zero": 2, "constant": 1}.get(border[a], 0))
    out = _scratch.empty("ndimage.padded", tuple(n + k - 1 for n, k in zip(x.shape, kshape)), x.dtype)
    filled = [slice(s, s + n) for s, n in zip(shift, x.shape)]  # the part of ``out`` that holds values
    out[tuple(filled)] = x
    for a in order:
        n, before = x.shape[a], shift[a]
        after = kshape[a] - 1 - before
        rule = border[a]
        target = list(filled)
        if rule in ("zero", "constant"):
            for margin in (slice(0, before), slice(before + n, before + n + after)):
                target[a] = margin
                out[tuple(target)] = 0 if rule == "zero" else cval
        elif before or after:
            margins = np.concatenate((np.arange(-before, 0), np.arange(n, n + after)))
            source = list(filled)
            source[a] = borders.map_indices(margins, n, borders.BY_NAME[rule]) + before
            target[a] = margins + before
            out[tuple(target)] = out[tuple(source)]
        filled[a] = slice(None)
    return out
