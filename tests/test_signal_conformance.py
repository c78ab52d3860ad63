"""Conformance with scipy.signal 1.17 where fastconv once deviated.

Each test here pins one behaviour that differed from scipy and was fixed:
scipy (and NumPy) are the oracles.  Integer and boolean results are compared
exactly; the floating-point cases use small integer-valued inputs and dyadic
fill values (0.75, 1.5, ...), whose products and short sums are exact in
float32 / float64, so they are compared exactly too.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.signal

import fastconv

DTYPES = [np.int8, np.uint8, np.int16, np.int64, np.uint64, np.float32, np.float64,
          np.complex64, np.complex128]


# --- 0-d inputs: a NumPy scalar, as scipy returns -----------------------------------


@pytest.mark.parametrize("op", ["convolve", "correlate"])
@pytest.mark.parametrize(
    "a,b",
    [
        (np.asarray(1289), np.asarray(4567)),
        (1289, 4567),
        (np.int8(100), np.int8(3)),  # wraps in int8, as NumPy
        (np.asarray(True), np.asarray(True)),
        (np.float32(2.5), np.float64(3.0)),
        (np.asarray(1 + 2j, np.complex64), np.asarray(3 - 1j, np.complex64)),
        (2j, 3j),
        (np.uint8(7), 1000),
    ],
)
def test_zero_dim_inputs_give_a_numpy_scalar(op, a, b):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # int8 overflow in the oracle
        expected = getattr(scipy.signal, op)(a, b)
    got = getattr(fastconv, op)(a, b)
    assert type(got) is type(expected)  # e.g. numpy.int64, not a 0-d ndarray
    assert isinstance(got, np.generic)
    assert got.dtype == expected.dtype
    assert got == expected  # one product: exact for every dtype


def test_zero_dim_torch_inputs_give_a_zero_dim_tensor():
    torch = pytest.importorskip("torch")
    got = fastconv.convolve(torch.tensor(3), torch.tensor(4))
    assert isinstance(got, torch.Tensor)
    assert got.shape == ()  # not (1,)
    assert got.item() == 12
    got = fastconv.correlate(torch.tensor(2j), torch.tensor(3j))
    assert got.shape == () and got.item() == 6
