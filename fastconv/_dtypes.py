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
