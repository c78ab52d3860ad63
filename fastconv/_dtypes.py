"""Result-dtype and compute-dtype rules.

Result dtype: ``numpy.result_type(in1, in2)``, as scipy's direct method does
(int8 with int8 gives int8 with wrap-around; uint8 with int8 gives int16;
bool with bool gives bool; int64 with float32 gives float64).

Compute dtype: what the engine sees.

* float32, float64, complex64, complex128: themselves;
* float16: float32, rounded to float16 at the end (scipy computes in float16);
* bool and every integer dtype: int64.  Integer sums wrap modulo 2**64 and the
  final cast to the result dtype wraps like NumPy, which gives exactly the
  result of computing in the result dtype itself (arithmetic modulo 2**n
  commutes with reduction modulo 2**m for m <= n).  For bool the cast turns
  any positive count into True, which is scipy's logical OR of ANDs.

The FFT engines (``method='fft'`` / ``'oa'``) compute in floating point:
float32 / complex64 stay single precision, float16 goes to float32, bool and
integers go to float64 and are rounded back to the nearest integer (then cast
with NumPy's wrap-around), as ``scipy.signal.convolve(method='fft')`` does.
That is exact only when the FFT error bound is below 1/2 (see
:func:`fastconv._auto.int_fft_exact`); ``method='auto'`` checks it.
"""

from __future__ import annotations

import numpy as np

from ._validate import check_signal_array


def result_dtype(in1: np.ndarray, in2: np.ndarray) -> np.dtype:
    check_signal_array(in1, "in1")
    check_signal_array(in2, "in2")
    return np.result_type(in1.dtype, in2.dtype)


def fft_result_dtype(in1: np.ndarray, in2: np.ndarray) -> np.dtype:
    """Result dtype of ``scipy.signal.fftconvolve`` / ``oaconvolve`` (scipy 1.17).

    Each input counts with the dtype its FFT has: bool and integers as
    float64, float16 as float32; then ``numpy.result_type``.  So integer
    inputs give float64, and float32 with int8 gives float64.
    """
    check_signal_array(in1, "in1")
    check_signal_array(in2, "in2")

    def fft_type(dt):
        if dt.kind in "biu":
            return np.dtype(np.float64)
        if dt == np.float16:
            return np.dtype(np.float32)
        return dt

    return np.result_type(fft_type(in1.dtype), fft_type(in2.dtype))


def compute_dtype(result: np.dtype, method: str = "direct") -> np.dtype:
    if method in ("fft", "oa"):
        if result.kind in "biu":
            return np.dtype(np.float64)
        if result == np.float16:
            return np.dtype(np.float32)
        return np.dtype(result)
    if result.kind in "biu":
        return np.dtype(np.int64)
    if result == np.float16:
        return np.dtype(np.float32)
    return np.dtype(result)


# --- scipy.ndimage's output rules ---------------------------------------------------------

_INT32_RANGE = (-(2.0**31), 2.0**31)
_INT64_RANGE = (-(2.0**63), 2.0**63)


def ndimage_compute_dtype(input_dtype: np.dtype, output_dtype: np.dtype) -> np.dtype:
    """The dtype fastconv.ndimage sums in.

    scipy.ndimage always sums in float64 (real and imaginary parts apart for
    complex data).  fastconv does too, except that float32 (and float16)
    inputs written to float32 (or float16) outputs are summed in float32,
    complex64 likewise in complex64: the result then differs from scipy's by
    at most float32 rounding of the sum, and the kernels run twice as wide.
    """
    single = input_dtype.kind in "fc" and input_dtype.itemsize <= (4 if input_dtype.kind == "f" else 8)
    single_out = output_dtype.kind in "fc" and output_dtype.itemsize <= (
        4 if output_dtype.kind == "f" else 8
    )
    complex_ = input_dtype.kind == "c" or output_dtype.kind == "c"
    if single and single_out:
        return np.dtype(np.complex64 if complex_ else np.float32)
    return np.dtype(np.complex128 if complex_ else np.float64)


def cast_like_c(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` (floating) converted to ``dtype`` as scipy.ndimage's C code converts them.

    scipy.ndimage writes each sum with a C cast, compiled for x86-64:
    integers truncate toward zero; int8, int16, uint8 and uint16 go through
    int32 and keep the low bits (600 in int8 is 88, -3 in uint8 is 253);
    uint32 and int64 go through int64; a value outside the intermediate
    integer's range, or NaN, becomes its minimum (so 0 in the narrower
    types); uint64 keeps values in [2**63, 2**64), wraps negative ones and
    turns values from 2**64 on into 0.  bool is a C unsigned char: the value
    converted as for uint8, then nonzero (so 256.0 is False).  Floating and complex outputs round as NumPy does.
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "biu":
        return values.astype(dtype, copy=False)
    if values.dtype.kind == "c":
        values = values.real
    if dtype == np.bool_:
        # NumPy's bool is a C unsigned char: the low byte of the int32 decides.
        return cast_like_c(values, np.dtype(np.uint8)) != 0
    with np.errstate(invalid="ignore", over="ignore"):
        t = np.trunc(values)
        if dtype.itemsize <= 2 or dtype == np.int32:
            lo, hi = _INT32_RANGE
            inside = (t >= lo) & (t < hi)
            wide = np.where(inside, t, lo).astype(np.int64)
            return wide.astype(dtype)
        lo, hi = _INT64_RANGE
        inside = (t >= lo) & (t < hi)
        wide = np.where(inside, t, lo).astype(np.int64)
        if dtype == np.uint64:
            upper = (t >= hi) & (t < 2 * hi)
            high = np.where(upper, t - hi, 0).astype(np.int64).astype(np.uint64) + np.uint64(2**63)
            low = np.where(t >= 2 * hi, np.uint64(0), wide.astype(np.uint64))
            return np.where(upper, high, low)
        return wide.astype(dtype)


def all_finite(a) -> bool:
    """Whether ``a`` (an array or a scalar) holds no NaN or infinity; integers and bools always do."""
    a = np.asarray(a)
    return a.dtype.kind not in "fc" or bool(np.isfinite(a).all())
