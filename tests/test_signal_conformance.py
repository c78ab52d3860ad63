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


# --- convolve2d / correlate2d: boundary names --------------------------------------


@pytest.mark.parametrize("op", ["convolve2d", "correlate2d"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_pad_is_an_alias_of_fill(op, mode):
    a = np.arange(12).reshape(3, 4)
    v = np.array([[1, 2], [3, 4], [5, 6]])
    expected = getattr(scipy.signal, op)(a, v, mode, "pad", 2)
    got = getattr(fastconv, op)(a, v, mode, "pad", 2)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)  # integers: exact


# --- fillvalue: converted as scipy converts it --------------------------------------

_FILL_OK = [0.75, 1.5, -3, 2, True, np.float64(1.5), np.float32(2.5), np.int64(2),
            np.int8(-1), np.uint8(3), np.array(2), np.array([2]), np.array(2.5),
            np.array([[1.5]]), [[2]], np.nan, np.inf, 2**63, 2**64 - 1, 2**70, 300, -1.5]


def _outcome(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            return exc


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fill", _FILL_OK, ids=repr)
@pytest.mark.parametrize("op", ["convolve2d", "correlate2d"])
def test_fillvalue_conversion_matches_scipy(op, fill, dtype):
    # Every output element of this 'full' call reads outside in1, so the
    # result shows the converted fill value; an error must be a ValueError
    # that names the parameter.
    a = np.arange(1, 7).reshape(2, 3).astype(dtype)
    v = np.ones((2, 2), dtype)
    expected = _outcome(getattr(scipy.signal, op), a, v, "full", "fill", fill)
    if isinstance(expected, ValueError):
        with pytest.raises(ValueError, match="fillvalue"):
            getattr(fastconv, op)(a, v, "full", "fill", fill)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nan / inf in the sums
        got = getattr(fastconv, op)(a, v, "full", "fill", fill)
    assert got.dtype == expected.dtype
    # Exact: integer-valued inputs, dyadic or integer fill values, <= 4 terms.
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    "fill,dtype",
    [
        (np.array([2.5]), np.float32),  # float64 array -> float32 is not a safe cast
        (np.array(2), np.complex64),  # int64 array -> complex64 neither
        (np.array([2.7]), np.int64),
        (300, np.uint8),  # a Python int that does not fit
        (-3, np.uint8),
        (np.nan, np.int64),
        (np.inf, np.int8),
        (2**64, np.uint64),
        (1j, np.float64),
    ],
    ids=repr,
)
def test_fillvalue_that_scipy_cannot_cast_raises_with_scipys_wording(fill, dtype):
    a = np.ones((2, 2), dtype)
    wording = "could not cast `fillvalue` directly to the output type"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=wording):
            scipy.signal.convolve2d(a, a, fillvalue=fill)
    with pytest.raises(ValueError, match=wording):
        fastconv.convolve2d(a, a, fillvalue=fill)


def test_fillvalue_shape_errors_use_scipys_wording():
    with pytest.raises(ValueError, match="`fillvalue` must be scalar or an array with one element"):
        fastconv.convolve2d([[1]], [[1, 2]], fillvalue=[1, 2])
    with pytest.raises(ValueError, match="`fillvalue` cannot be an empty array"):
        fastconv.correlate2d([[1]], [[1, 2]], fillvalue=[])


def test_fillvalue_is_not_a_string_or_none():
    # fastconv's rule: scipy happens to accept numeric strings ('3') and None
    # (as NaN for float output) through NumPy's coercion; fastconv refuses
    # them as non-numbers.
    for fill in ("3", b"3", None, "x"):
        with pytest.raises(TypeError, match="fillvalue must be a number"):
            fastconv.convolve2d(np.ones((2, 2)), np.ones((2, 2)), fillvalue=fill)


@pytest.mark.parametrize("boundary", ["wrap", "circular", "symm", "symmetric"])
@pytest.mark.parametrize("fill", [[1, 2], [], "x", 1j, 2**70])
def test_fillvalue_is_ignored_by_the_other_boundaries(boundary, fill):
    # scipy converts and checks fillvalue only for boundary='fill'.
    a = np.arange(12).reshape(3, 4)
    v = np.array([[1, -1], [2, 0]])
    for op in ("convolve2d", "correlate2d"):
        expected = getattr(scipy.signal, op)(a, v, "same", boundary, fill)
        got = getattr(fastconv, op)(a, v, "same", boundary, fill)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)  # integers: exact


@pytest.mark.parametrize("fill", [2**63, 2**64 - 1])
def test_uint64_fillvalue_beyond_int64(fill):
    a = np.arange(4, dtype=np.uint64).reshape(2, 2)
    v = np.ones((1, 2), np.uint64)
    expected = scipy.signal.convolve2d(a, v, fillvalue=fill)
    got = fastconv.convolve2d(a, v, fillvalue=fill)
    assert got.dtype == np.uint64
    np.testing.assert_array_equal(got, expected)  # modulo 2**64, as scipy


# --- inf and NaN in the kernel: scipy's N-D direct method multiplies its zero padding ---


def _assert_same_nonfinite(got, expected, rtol):
    assert got.dtype == expected.dtype and got.shape == expected.shape
    # The positions of NaN and of +-inf must agree exactly ...
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    finite = np.isfinite(expected)
    infinite = ~finite & ~np.isnan(expected)
    np.testing.assert_array_equal(got[infinite], expected[infinite])
    # ... and the finite outputs within a few rounding errors of <= 125-term sums.
    np.testing.assert_allclose(got[finite], expected[finite], rtol=rtol, atol=rtol)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize(
    "sa,sb",
    [((4, 5), (2, 3)), ((3, 3), (5, 2)), ((2, 3, 4), (2, 2, 2)), ((5,), (7,)), ((7,), (3,))],
)
@pytest.mark.parametrize("op", ["convolve", "correlate"])
def test_nonfinite_kernel_propagates_as_scipy(op, sa, sb, mode, bad):
    rng = np.random.default_rng(1)
    a = rng.standard_normal(sa)
    b = rng.standard_normal(sb)
    b.flat[b.size // 2] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            expected = getattr(scipy.signal, op)(a, b, mode, "direct")
        except ValueError:  # 'valid' with neither input the larger
            with pytest.raises(ValueError, match="For 'valid' mode"):
                getattr(fastconv, op)(a, b, mode, "direct")
            return
        got = getattr(fastconv, op)(a, b, mode, "direct")
    # float64, sums of at most 8 products of standard normals: 1e-12 is ~1e4 ulp.
    _assert_same_nonfinite(got, expected, rtol=1e-12)


@pytest.mark.parametrize(
    "dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5), (np.complex128, 1e-12)]
)
@pytest.mark.parametrize("mode", ["full", "same"])
@pytest.mark.parametrize("op", ["convolve2d", "correlate2d"])
def test_nonfinite_kernel_meets_zero_fill_as_scipy(op, mode, dtype, rtol):
    # float32 with <= 6-term sums: 1e-5 is ~100 ulp.
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 6)).astype(dtype)
    b = rng.standard_normal((2, 3)).astype(dtype)
    b[1, 0] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = getattr(scipy.signal, op)(a, b, mode, "fill", 0)
        got = getattr(fastconv, op)(a, b, mode, "fill", 0)
    _assert_same_nonfinite(got, expected, rtol=rtol)
