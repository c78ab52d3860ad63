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
"""

from __future__ import annotations

import numpy as np

from ._validate import check_signal_array


def result_dtype(in1: np.ndarray, in2: np.ndarray) -> np.dtype:
    check_signal_array(in1, "in1")
    check_signal_array(in2, "in2")
    return np.result_type(in1.dtype, in2.dtype)


def compute_dtype(result: np.dtype) -> np.dtype:
    if result.kind in "biu":
        return np.dtype(np.int64)
    if result == np.float16:
        return np.dtype(np.float32)
    return np.dtype(result)
