"""The scipy.signal face: convolve, correlate, convolve2d, correlate2d.

Two independent oracles: the slow loops of ``reference.py`` and scipy itself
(numpy for the 1-D mapping).  Integer and bool results must be equal exactly;
floating results must lie within the rounding-error bound of a sum of
products (``reference.assert_close``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
import reference as ref
from kinds import ARRAY_KINDS, as_numpy, is_kind, random_array, to_kind

MODES = ["full", "same", "valid"]
FLOAT_DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
EXACT_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]


def check(got, expected, a, v, fn, *args, nterms=None, **kwargs):
    """Exact for integer/bool results, within the rounding bound for floating ones."""
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    if got.dtype.kind in "biu":
        np.testing.assert_array_equal(got, expected)
        return
    nterms = np.asarray(v).size if nterms is None else nterms
    magnitude = ref.abs_magnitude(fn, a, v, *args, **kwargs)
    ref.assert_close(got, expected, magnitude, nterms, got.dtype)


# --- the background document's worked examples ------------------------------------


def test_worked_1d_example():
    # c[n] = sum_m a[m] b[n - m]: flip b, slide it across a.
    out = fastconv.convolve([1, 0.5, 1, 1], [1, 0.5, 0.25])
    np.testing.assert_array_equal(out, [1, 1, 1.5, 1.625, 0.75, 0.25])
    np.testing.assert_array_equal(out, np.convolve([1, 0.5, 1, 1], [1, 0.5, 0.25]))


def test_worked_1d_example_step_by_step():
    a = np.array([1, 0.5, 1, 1])
    b = np.array([1, 0.5, 0.25])
    # c[3] = 1*0 + 0.5*0.25 + 1*0.5 + 1*1, the document's fourth step.
    assert fastconv.convolve(a, b)[3] == 0.5 * 0.25 + 1 * 0.5 + 1 * 1 == 1.625
    # Cross-correlation does not flip b: it is the convolution with b reversed.
    np.testing.assert_array_equal(fastconv.correlate(a, b), fastconv.convolve(a, b[::-1]))
    assert not np.array_equal(fastconv.correlate(a, b), fastconv.convolve(a, b))


IMAGE = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
)
KERNEL = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])


def test_worked_2d_sliding_window():
    # The kernel slides across the image unflipped: a cross-correlation.
    expected = np.array([[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    np.testing.assert_array_equal(fastconv.correlate(IMAGE, KERNEL, mode="valid"), expected)
    np.testing.assert_array_equal(fastconv.correlate2d(IMAGE, KERNEL, mode="valid"), expected)
    # Each entry is the sum of the elementwise product of a window and the kernel.
    windows = np.array([[(IMAGE[i : i + 3, j : j + 3] * KERNEL).sum() for j in range(3)] for i in range(3)])
    np.testing.assert_array_equal(windows, expected)


def test_2d_flip_is_the_only_difference():
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    conv = fastconv.convolve(IMAGE, sobel, mode="valid")
    np.testing.assert_array_equal(conv, fastconv.correlate(IMAGE, sobel[::-1, ::-1], mode="valid"))
    np.testing.assert_array_equal(conv, scipy.signal.convolve(IMAGE, sobel, mode="valid"))
    assert not np.array_equal(conv, fastconv.correlate(IMAGE, sobel, mode="valid"))


# --- modes, shapes and dtypes against both oracles ------------------------------------

SHAPES_1D = [(1, 1), (5, 1), (1, 5), (8, 3), (8, 4), (7, 7), (3, 8), (4, 9), (33, 16), (40, 17)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n,k", SHAPES_1D)
@pytest.mark.parametrize("op", ["convolve", "correlate"])
def test_1d_float64_against_scipy_and_reference(rng, op, n, k, mode):
    a = rng.standard_normal(n)
    v = rng.standard_normal(k)
    fc = getattr(fastconv, op)
    oracle = ref.signal_convolve if op == "convolve" else ref.signal_correlate
    got = fc(a, v, mode=mode)
    check(got, oracle(a, v, mode), a, v, oracle, mode)
    check(got, getattr(scipy.signal, op)(a, v, mode=mode, method="direct"), a, v, oracle, mode)


SHAPES_2D = [((6, 7), (3, 3)), ((6, 7), (2, 4)), ((5, 5), (5, 5)), ((3, 4), (5, 6)), ((9, 2), (1, 2)),
             ((1, 1), (1, 1)), ((4, 9), (4, 1))]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sa,sv", SHAPES_2D)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES + [np.int64, np.int8])
@pytest.mark.parametrize("op", ["convolve", "correlate"])
def test_2d_modes_and_dtypes(rng, op, dtype, sa, sv, mode):
    a = random_array(rng, sa, dtype)
    v = random_array(rng, sv, dtype)
    oracle = ref.signal_convolve if op == "convolve" else ref.signal_correlate
    got = getattr(fastconv, op)(a, v, mode=mode)
    check(got, oracle(a, v, mode), a, v, oracle, mode)
    check(got, getattr(scipy.signal, op)(a, v, mode=mode, method="direct"), a, v, oracle, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", ["convolve", "correlate"])
def test_3d(rng, op, mode):
    a = rng.standard_normal((5, 6, 7)) + 1j * rng.standard_normal((5, 6, 7))
    v = rng.standard_normal((2, 3, 4)) - 0.5j
    oracle = ref.signal_convolve if op == "convolve" else ref.signal_correlate
    got = getattr(fastconv, op)(a, v, mode=mode)
    check(got, getattr(scipy.signal, op)(a, v, mode=mode, method="direct"), a, v, oracle, mode)


@pytest.mark.parametrize("dtype", EXACT_DTYPES)
@pytest.mark.parametrize("mode", MODES)
def test_integer_and_bool_are_exact_like_scipy(rng, dtype, mode):
    a = random_array(rng, (9, 8), dtype)
    v = random_array(rng, (3, 4), dtype)
    for op in ("convolve", "correlate"):
        got = getattr(fastconv, op)(a, v, mode=mode)
        oracle = ref.signal_convolve if op == "convolve" else ref.signal_correlate
        if dtype == np.bool_:
            # scipy's N-D direct path refuses bool ("Unsupported type"); its
            # 1-D path (numpy) gives the logical OR of ANDs, as the oracle does.
            expected = oracle(a, v, mode)
            row = getattr(np, op)(a[0], v[0], mode)
            np.testing.assert_array_equal(getattr(fastconv, op)(a[0], v[0], mode), row)
        else:
            expected = getattr(scipy.signal, op)(a, v, mode=mode, method="direct")
            np.testing.assert_array_equal(got, oracle(a, v, mode))
        assert got.dtype == expected.dtype == np.result_type(a, v)
        np.testing.assert_array_equal(got, expected)


def test_int8_wraps_around_like_scipy():
    got = fastconv.convolve(np.array([100, 100, 100], np.int8), np.array([2, 2], np.int8))
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, [-56, -112, -112, -56])
    np.testing.assert_array_equal(
        got, scipy.signal.convolve(np.array([100] * 3, np.int8), np.array([2, 2], np.int8), method="direct")
    )


@pytest.mark.parametrize(
    "d1,d2",
    [(np.uint8, np.int8), (np.int64, np.float32), (np.float32, np.float32), (np.int16, np.complex64),
     (np.bool_, np.bool_), (np.bool_, np.int32), (np.float32, np.complex128), (np.uint64, np.int64)],
)
def test_mixed_dtypes_promote_like_scipy(rng, d1, d2):
    a = random_array(rng, (6, 5), d1)
    v = random_array(rng, (2, 3), d2)
    got = fastconv.convolve(a, v)
    if d1 == d2 == np.bool_:
        expected = ref.signal_convolve(a, v)  # scipy's N-D direct path refuses bool
    else:
        expected = scipy.signal.convolve(a, v, method="direct")
    assert got.dtype == expected.dtype == np.result_type(d1, d2)
    check(got, expected, a, v, ref.signal_convolve)


def test_python_lists_and_scalars():
    got = fastconv.convolve([1, 2, 3], [0, 1, 0.5])
    np.testing.assert_array_equal(got, scipy.signal.convolve([1, 2, 3], [0, 1, 0.5]))
    ints = fastconv.convolve([1, 2, 3], [1, 1])
    assert ints.dtype == np.result_type(np.asarray([1]), np.asarray([1]))
    np.testing.assert_array_equal(ints, [1, 3, 5, 3])
    # 0-d inputs multiply, as in scipy.
    zero_d = fastconv.convolve(2.0, 3.0)
    assert zero_d == scipy.signal.convolve(2.0, 3.0) == 6.0
    assert np.asarray(fastconv.correlate(1j, 1j)) == scipy.signal.correlate(1j, 1j)


def test_float16_is_computed_in_float32_and_rounded_once(rng):
    # A deliberate difference: scipy accumulates in float16.
    a = rng.standard_normal(300).astype(np.float16)
    v = rng.standard_normal(31).astype(np.float16)
    got = fastconv.convolve(a, v)
    assert got.dtype == np.float16
    exact = ref.signal_convolve(a.astype(np.float64), v.astype(np.float64))
    check(got, exact.astype(np.float16), a, v, ref.signal_convolve)


def test_nan_and_inf_propagate_like_scipy():
    a = np.array([1.0, np.nan, 2.0, 3.0, np.inf, 4.0, 5.0, 6.0, -np.inf, 1.0])
    v = np.array([1.0, 2.0, 0.5])
    for op in ("convolve", "correlate"):
        for mode in MODES:
            got = getattr(fastconv, op)(a, v, mode=mode)
            expected = getattr(scipy.signal, op)(a, v, mode=mode, method="direct")
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
            np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected))
            np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
            finite = np.isfinite(expected)
            np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-14)



@pytest.mark.parametrize("op", ["convolve", "correlate"])
def test_fft_methods_warn_on_nan_or_inf_like_scipy(op):
    # scipy.signal.convolve / correlate warn when the FFT path's first output
    # is NaN or inf; the direct method and fftconvolve / oaconvolve do not.
    import warnings

    rng = np.random.default_rng(5)
    a = rng.standard_normal(500)
    v = rng.standard_normal(40)

    def messages(call):
        # (an inf input also gives NumPy's "invalid value" warnings, in scipy too)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        return [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]

    expected = ("Use of fft convolution on input with NAN or inf results in NAN or inf output. "
                "Consider using method='direct' instead.")
    for bad in (np.nan, np.inf):
        a[0] = bad
        for method in ("fft", "oa"):
            assert expected in messages(lambda: getattr(fastconv, op)(a, v, method=method))
        assert expected in messages(lambda: getattr(scipy.signal, op)(a, v, method="fft"))
        assert messages(lambda: getattr(fastconv, op)(a, v, method="direct")) == []
        assert expected not in messages(lambda: fastconv.fftconvolve(a, v))
        assert expected not in messages(lambda: fastconv.oaconvolve(a, v))
    a[0] = 1.0
    assert messages(lambda: getattr(fastconv, op)(a, v, method="fft")) == []  # finite: no warning


# --- 'same' centring and the 'valid' rule ------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_same_is_centred_as_scipy(k):
    # 'same' output i is full output i + (K - 1) // 2, for odd and even K.
    a = np.arange(1.0, 9.0)
    v = np.arange(1.0, k + 1)
    for op in ("convolve", "correlate"):
        full = getattr(fastconv, op)(a, v, mode="full")
        same = getattr(fastconv, op)(a, v, mode="same")
        np.testing.assert_array_equal(same, full[(k - 1) // 2 : (k - 1) // 2 + 8])
        np.testing.assert_array_equal(same, getattr(scipy.signal, op)(a, v, mode="same"))


def test_same_with_kernel_longer_than_input(rng):
    a = rng.standard_normal(4)
    v = rng.standard_normal(11)
    for op in ("convolve", "correlate"):
        got = getattr(fastconv, op)(a, v, mode="same")
        assert got.shape == (4,)
        np.testing.assert_allclose(got, getattr(scipy.signal, op)(a, v, mode="same"), rtol=1e-13, atol=1e-14)


def test_valid_swaps_when_second_input_is_larger(rng):
    a = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    v = rng.standard_normal((6, 7)) + 1j * rng.standard_normal((6, 7))
    for op in ("convolve", "correlate"):
        got = getattr(fastconv, op)(a, v, mode="valid")
        expected = getattr(scipy.signal, op)(a, v, mode="valid", method="direct")
        assert got.shape == (4, 4)
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


def test_valid_refuses_when_neither_input_is_larger():
    with pytest.raises(ValueError, match="at least as large as the other in every dimension"):
        fastconv.convolve(np.ones((3, 5)), np.ones((5, 3)), mode="valid")
    with pytest.raises(ValueError, match="at least as large as the other in every dimension"):
        fastconv.correlate2d(np.ones((3, 5)), np.ones((5, 3)), mode="valid")


# --- complex conjugation ----------------------------------------------------------


def test_correlate_conjugates_the_second_input():
    np.testing.assert_array_equal(fastconv.correlate([1j, 1], [1j, 1]), [1j, 2, -1j])
    np.testing.assert_array_equal(
        fastconv.correlate([1j, 1], [1j, 1]), scipy.signal.correlate([1j, 1], [1j, 1])
    )
    # convolve does not conjugate.
    np.testing.assert_array_equal(fastconv.convolve([1j, 1], [1j, 1]), [-1, 2j, 1])


@pytest.mark.parametrize("mode", MODES)
def test_complex_correlate_2d_against_scipy(rng, mode):
    a = random_array(rng, (7, 6), np.complex128)
    v = random_array(rng, (3, 2), np.complex64)
    got = fastconv.correlate(a, v, mode=mode)
    check(got, scipy.signal.correlate(a, v, mode=mode, method="direct"), a, v, ref.signal_correlate, mode)
    got2 = fastconv.correlate2d(a, v, mode=mode)
    check(got2, scipy.signal.correlate2d(a, v, mode=mode), a, v, ref.correlate_2d, mode)


# --- convolve2d / correlate2d boundaries --------------------------------------------

BOUNDARIES = ["fill", "wrap", "circular", "symm", "symmetric"]


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sa,sv", [((7, 9), (3, 3)), ((7, 9), (4, 2)), ((3, 4), (5, 6)), ((2, 2), (5, 5)),
                                   ((8, 3), (1, 1))])
@pytest.mark.parametrize("op", ["convolve2d", "correlate2d"])
def test_2d_boundaries(rng, op, sa, sv, mode, boundary):
    a = rng.standard_normal(sa)
    v = rng.standard_normal(sv)
    kwargs = dict(mode=mode, boundary=boundary, fillvalue=0.75)
    try:
        expected = getattr(scipy.signal, op)(a, v, **kwargs)
    except ValueError:
        with pytest.raises(ValueError):
            getattr(fastconv, op)(a, v, **kwargs)
        return
    got = getattr(fastconv, op)(a, v, **kwargs)
    conv = op == "convolve2d"
    oracle = ref.correlate_2d(a, v, mode, boundary, 0.75, convolution=conv)
    # The error-bound magnitude includes the fill value's contribution.
    check(got, oracle, a, v, ref.correlate_2d, mode, boundary, 0.75, convolution=conv)
    check(got, expected, a, v, ref.correlate_2d, mode, boundary, 0.75, convolution=conv)


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int64, np.float32, np.complex64])
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_2d_boundaries_dtypes(rng, dtype, boundary):
    a = random_array(rng, (9, 10), dtype)
    v = random_array(rng, (3, 4), dtype)
    for op in ("convolve2d", "correlate2d"):
        got = getattr(fastconv, op)(a, v, mode="same", boundary=boundary, fillvalue=3)
        expected = getattr(scipy.signal, op)(a, v, mode="same", boundary=boundary, fillvalue=3)
        conv = op == "convolve2d"
        check(got, expected, a, v, ref.correlate_2d, "same", boundary, 3, convolution=conv)


def test_2d_correlate2d_same_centring_differs_from_correlate_for_even_kernels(rng):
    a = rng.standard_normal((6, 6))
    v = rng.standard_normal((4, 4))
    full = fastconv.correlate2d(a, v)
    np.testing.assert_allclose(fastconv.correlate2d(a, v, mode="same"), full[2:8, 2:8], rtol=1e-13)
    np.testing.assert_allclose(fastconv.correlate(a, v, mode="same"), full[1:7, 1:7], rtol=1e-13)


def test_fillvalue_complex_with_real_inputs():
    with pytest.raises(ValueError, match="fillvalue"):
        fastconv.convolve2d(np.ones((3, 3)), np.ones((2, 2)), fillvalue=1 + 2j)
    out = fastconv.convolve2d(np.ones((3, 3)), np.ones((2, 2)), fillvalue=1 + 0j)
    np.testing.assert_array_equal(out, scipy.signal.convolve2d(np.ones((3, 3)), np.ones((2, 2)), fillvalue=1))


# --- axes: many signals at once ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_axes_batches_rows_like_fftconvolve(rng, mode):
    x = rng.standard_normal((6, 50))
    v = rng.standard_normal((1, 9))
    got = fastconv.convolve(x, v, mode=mode, axes=-1)
    expected = scipy.signal.fftconvolve(x, v, mode=mode, axes=-1)
    assert got.shape == expected.shape
    rows = np.stack([ref.signal_convolve(x[i], v[0], mode) for i in range(6)])
    check(got, rows, x, v, ref.signal_convolve, mode)
    # fftconvolve's own error is of order eps * sqrt(log N) * max|x| * sum|v|.
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(v).sum() * np.abs(x).max())


@pytest.mark.parametrize("mode", MODES)
def test_axes_broadcast_both_inputs_and_integer_exactness(rng, mode):
    x = rng.integers(-9, 9, (4, 1, 13))
    v = rng.integers(-9, 9, (1, 3, 5))
    got = fastconv.correlate(x, v, mode=mode, axes=[2])
    assert got.dtype == np.int64
    expected = np.stack(
        [np.stack([ref.signal_correlate(x[i, 0], v[0, j], mode) for j in range(3)]) for i in range(4)]
    )
    np.testing.assert_array_equal(got, expected)


def test_axes_on_a_middle_axis_and_several_axes(rng):
    x = rng.standard_normal((3, 20, 4))
    v = rng.standard_normal((3, 5, 1))
    got = fastconv.convolve(x, v, axes=1)
    expected = scipy.signal.fftconvolve(x, v, axes=1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * 30)
    y = rng.standard_normal((5, 2, 6))
    w = rng.standard_normal((3, 2, 2))
    got = fastconv.convolve(y, w, mode="same", axes=(0, 2))
    expected = scipy.signal.fftconvolve(y, w, mode="same", axes=(0, 2))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * 30)


def test_axes_incompatible_batch_shapes():
    with pytest.raises(ValueError, match="incompatible shapes"):
        fastconv.convolve(np.ones((3, 8)), np.ones((2, 3)), axes=1)


# --- the numpy mapping -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n,k", [(10, 3), (10, 4), (5, 5), (17, 1), (64, 15)])
def test_equals_numpy_when_first_input_is_longer(rng, n, k, mode):
    a = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    v = rng.standard_normal(k) + 1j * rng.standard_normal(k)
    np.testing.assert_allclose(fastconv.convolve(a, v, mode), np.convolve(a, v, mode), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(
        fastconv.correlate(a, v, mode), np.correlate(a, v, mode), rtol=1e-13, atol=1e-13
    )
    ints_a, ints_v = rng.integers(-99, 99, n), rng.integers(-99, 99, k)
    np.testing.assert_array_equal(fastconv.convolve(ints_a, ints_v, mode), np.convolve(ints_a, ints_v, mode))
    np.testing.assert_array_equal(fastconv.correlate(ints_a, ints_v, mode), np.correlate(ints_a, ints_v, mode))


def test_numpy_correlate_default_is_valid(rng):
    a, v = rng.standard_normal(12), rng.standard_normal(4)
    np.testing.assert_allclose(fastconv.correlate(a, v, "valid"), np.correlate(a, v), rtol=1e-13)


@pytest.mark.parametrize("mode", MODES)
def test_numpy_mapping_when_second_input_is_longer(rng, mode):
    # numpy swaps the inputs; the README gives the matching fastconv calls.
    a = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    v = rng.standard_normal(9) + 1j * rng.standard_normal(9)
    np.testing.assert_allclose(fastconv.convolve(v, a, mode), np.convolve(a, v, mode), rtol=1e-13, atol=1e-13)
    if mode == "same":
        mapped = np.conj(fastconv.correlate(v, a, "same")[::-1])
    else:
        mapped = fastconv.correlate(a, v, mode)
    np.testing.assert_allclose(mapped, np.correlate(a, v, mode), rtol=1e-13, atol=1e-13)


# --- properties ----------------------------------------------------------------------

small_ints = st.lists(st.integers(-1000, 1000), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(a=small_ints, b=small_ints)
def test_convolve_is_commutative(a, b):
    np.testing.assert_array_equal(fastconv.convolve(a, b), fastconv.convolve(b, a))


@settings(max_examples=60, deadline=None)
@given(
    a=st.lists(st.complex_numbers(max_magnitude=100, allow_nan=False, allow_infinity=False),
               min_size=1, max_size=16),
    b=st.lists(st.complex_numbers(max_magnitude=100, allow_nan=False, allow_infinity=False),
               min_size=1, max_size=16),
    mode=st.sampled_from(["full", "same"]),
)
def test_correlate_is_convolve_with_flipped_conjugated_kernel(a, b, mode):
    a, b = np.array(a, complex), np.array(b, complex)
    got = fastconv.correlate(a, b, mode)
    # The full outputs are the same array, and 'same' takes the same slice of
    # it (from (K - 1) // 2) in both operations.
    via_convolve = fastconv.convolve(a, np.conj(b[::-1]), mode)
    scale = np.abs(a).sum() * np.abs(b).max() + 1
    np.testing.assert_allclose(got, via_convolve, rtol=0, atol=4 * len(b) * 2.3e-16 * scale)


@settings(max_examples=40, deadline=None)
@given(a=small_ints, b=small_ints, c=small_ints, s=st.integers(-50, 50), t=st.integers(-50, 50))
def test_linearity(a, b, c, s, t):
    n = min(len(a), len(b))
    a, b, c = np.array(a[:n]), np.array(b[:n]), np.array(c)
    lhs = fastconv.convolve(s * a + t * b, c)
    rhs = s * fastconv.convolve(a, c) + t * fastconv.convolve(b, c)
    np.testing.assert_array_equal(lhs, rhs)


@settings(max_examples=40, deadline=None)
@given(
    shape_a=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    shape_v=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    mode=st.sampled_from(MODES),
    boundary=st.sampled_from(["fill", "wrap", "symm"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_2d_against_scipy(shape_a, shape_v, mode, boundary, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-20, 20, shape_a)
    v = rng.integers(-20, 20, shape_v)
    for op in ("convolve2d", "correlate2d"):
        try:
            expected = getattr(scipy.signal, op)(a, v, mode, boundary, 2)
        except ValueError:
            with pytest.raises(ValueError):
                getattr(fastconv, op)(a, v, mode, boundary, 2)
            continue
        np.testing.assert_array_equal(getattr(fastconv, op)(a, v, mode, boundary, 2), expected)


# --- array kinds in and out --------------------------------------------------------


@pytest.mark.parametrize("kind", ARRAY_KINDS)
@pytest.mark.parametrize("op", ["convolve", "correlate", "convolve2d", "correlate2d"])
def test_array_kinds_in_and_out(rng, kind, op):
    a = rng.standard_normal((12, 10)).astype(np.float32)
    v = rng.standard_normal((3, 4)).astype(np.float32)
    out = getattr(fastconv, op)(to_kind(kind, a), to_kind(kind, v), mode="same")
    assert is_kind(kind, out)
    expected = getattr(scipy.signal, op)(a, v, mode="same")
    got = as_numpy(out)
    assert got.dtype == np.float32
    oracle = {"convolve": ref.signal_convolve, "correlate": ref.signal_correlate}.get(op)
    if oracle is None:
        oracle = lambda x, y, m: ref.correlate_2d(x, y, m, convolution=op == "convolve2d")  # noqa: E731
    check(got, expected, a, v, oracle, "same")


def test_mixing_numpy_with_another_kind_returns_that_kind(rng):
    torch = pytest.importorskip("torch")
    a = rng.standard_normal(20)
    out = fastconv.convolve(torch.from_numpy(a), [1.0, 2.0])
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), np.convolve(a, [1.0, 2.0]), rtol=1e-14)


def test_results_come_back_on_the_callers_device(rng):
    # array_api_strict has several (CPU) devices and refuses to mix them
    xp = pytest.importorskip("array_api_strict")
    from fastconv import ndimage, nn

    dev = xp.Device("device1")
    a = xp.asarray(rng.standard_normal((6, 7)), device=dev)
    k = xp.asarray(rng.standard_normal((2, 3)), device=dev)
    batch = xp.asarray(rng.standard_normal((2, 1, 6, 7)), device=dev)
    for out in (fastconv.convolve(a, k), fastconv.fftconvolve(a, k), fastconv.correlate2d(a, k, "same"),
                ndimage.correlate(a, k), nn.conv2d(batch, xp.reshape(k, (1, 1, 2, 3)))):
        assert out.device == dev
        out + out  # noqa: B018 - usable with the caller's arrays


@pytest.mark.parametrize(
    "layout",
    ["non-contiguous", "negative-stride", "fortran", "byteswapped", "readonly-broadcast"],
)
def test_memory_layouts(rng, layout):
    base = rng.standard_normal((16, 22))
    v = rng.standard_normal((3, 5))
    if layout == "non-contiguous":
        a = base[::2, 1::3]
    elif layout == "negative-stride":
        a = base[::-1, ::-2]
    elif layout == "fortran":
        a = np.asfortranarray(base)
    elif layout == "byteswapped":
        a = base.astype(base.dtype.newbyteorder(">"))
    else:
        a = np.broadcast_to(base[0], (16, 22))
    for op in ("convolve", "correlate"):
        got = getattr(fastconv, op)(a, v[::-1, ::2], mode="same")
        expected = getattr(scipy.signal, op)(np.array(a), np.array(v[::-1, ::2]), mode="same")
        oracle = ref.signal_convolve if op == "convolve" else ref.signal_correlate
        check(got, expected, np.array(a), v[::-1, ::2], oracle, "same")


def test_torch_tensor_that_requires_grad_is_refused():
    torch = pytest.importorskip("torch")
    t = torch.ones(5, requires_grad=True)
    with pytest.raises(TypeError, match=r"requires grad.*detach"):
        fastconv.convolve(t, torch.ones(2))


def test_torch_conjugated_and_noncontiguous_views(rng):
    torch = pytest.importorskip("torch")
    z = torch.from_numpy(rng.standard_normal(10) + 1j * rng.standard_normal(10))
    out = fastconv.correlate(z.conj(), z[::2])
    expected = scipy.signal.correlate(np.conj(z.numpy()), z.numpy()[::2])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-13, atol=1e-13)


class _FakeDeviceArray:
    """An array-API-looking object that lives on a CUDA device (DLPack device type 2)."""

    def __array_namespace__(self, api_version=None):
        return np

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, **kwargs):
        raise BufferError("device memory")

    shape = (4,)
    dtype = np.float64
    ndim = 1


def test_device_arrays_are_refused_naming_the_device():
    with pytest.raises(TypeError, match=r"in1 lives on device.*CPU"):
        fastconv.convolve(_FakeDeviceArray(), np.ones(2))
    with pytest.raises(TypeError, match=r"in2 lives on device"):
        fastconv.correlate2d(np.ones((3, 3)), _FakeDeviceArray())


def test_arrays_of_two_libraries_are_refused():
    torch = pytest.importorskip("torch")
    xps = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match="one array library"):
        fastconv.convolve(torch.ones(3), xps.ones(3))


# --- bad input ---------------------------------------------------------------------


@pytest.mark.parametrize("op", ["convolve", "correlate"])
def test_bad_arguments(op):
    f = getattr(fastconv, op)
    with pytest.raises(ValueError, match=r"mode must be one of .*'sme'"):
        f([1.0, 2.0], [1.0], mode="sme")
    with pytest.raises(ValueError, match=r"method must be one of .*'fastest'"):
        f([1.0, 2.0], [1.0], method="fastest")
    with pytest.raises(ValueError, match="same dimensionality"):
        f(np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="in1 cannot be empty"):
        f([], [1.0])
    with pytest.raises(ValueError, match="in2 cannot be empty"):
        f(np.ones((3, 3)), np.ones((0, 2)))
    with pytest.raises(TypeError, match="in1 must have a boolean, integer, floating or complex dtype"):
        f(np.array(["a", "b"]), [1.0])
    with pytest.raises(TypeError, match="in2 must have a boolean"):
        f([1.0, 2.0], np.array([object(), object()], dtype=object))
    with pytest.raises(TypeError, match="extended precision"):
        f(np.ones(3, np.longdouble), [1.0])
    with pytest.raises(ValueError, match="axes exceeds dimensionality"):
        f(np.ones((3, 3)), np.ones((1, 2)), axes=2)
    with pytest.raises(ValueError, match="axes must be unique"):
        f(np.ones((3, 3)), np.ones((1, 2)), axes=[1, -1])
    with pytest.raises(ValueError, match="axes cannot be empty"):
        f(np.ones((3, 3)), np.ones((1, 2)), axes=[])
    with pytest.raises(ValueError, match="axes must be a scalar or iterable of integers"):
        f(np.ones((3, 3)), np.ones((1, 2)), axes=[0.5])


def test_mode_is_validated_before_any_work():
    # An invalid mode is refused even with inputs that would otherwise be valid
    # but expensive (scipy rejects a bad method only at the very end).
    with pytest.raises(ValueError, match="mode"):
        fastconv.convolve(np.ones(10**6), np.ones(1000), mode=None)


@pytest.mark.parametrize("op", ["convolve2d", "correlate2d"])
def test_bad_arguments_2d(op):
    f = getattr(fastconv, op)
    with pytest.raises(ValueError, match="must both be 2-D"):
        f(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match=r"boundary must be one of .*'reflect'"):
        f(np.ones((3, 3)), np.ones((2, 2)), boundary="reflect")
    with pytest.raises(ValueError, match=r"mode must be one of"):
        f(np.ones((3, 3)), np.ones((2, 2)), mode="circular")
    with pytest.raises(ValueError, match="fillvalue must be scalar"):
        f(np.ones((3, 3)), np.ones((2, 2)), fillvalue=[1, 2])
    with pytest.raises(TypeError, match="fillvalue must be a number"):
        f(np.ones((3, 3)), np.ones((2, 2)), fillvalue="x")
    with pytest.raises(ValueError, match="cannot be empty"):
        f(np.ones((0, 3)), np.ones((2, 2)))


def test_method_fft_is_not_faked():
    try:
        out = fastconv.convolve(np.arange(10.0), [1.0, 2.0], method="fft")
    except NotImplementedError as exc:
        assert "fft" in str(exc)
    else:
        np.testing.assert_allclose(out, np.convolve(np.arange(10.0), [1.0, 2.0]), rtol=1e-12, atol=1e-12)


def test_long_inputs_agree_with_numpy(rng):
    # Long enough for the engine to split rows into parallel column blocks.
    a = rng.standard_normal(100_003)
    v = rng.standard_normal(37)
    got = fastconv.convolve(a, v)
    check(got, np.convolve(a, v), a, v, ref.signal_convolve, nterms=math.prod(v.shape))


@pytest.mark.parametrize("func", ["fftconvolve", "oaconvolve"])
@pytest.mark.parametrize("s1, s2, axes, mode", [((5,), (1,), None, "full"), ((1, 2), (1, 1), None, "same"),
                                                ((3, 4), (1, 1), None, "valid"), ((3, 4), (1, 4), [0], "full"),
                                                ((3, 4), (3, 1), [1], "same")])
@pytest.mark.parametrize("dtypes", [(np.int32, np.int32), (np.complex64, np.int16), (np.uint8, np.bool_),
                                    (np.float32, np.int8), (np.int64, np.float64)])
def test_fft_functions_without_a_transform_return_the_product(rng, func, s1, s2, axes, mode, dtypes):
    # With one input of length 1 along every convolved axis, scipy's
    # fftconvolve / oaconvolve return in1 * in2 (no FFT), in the product's
    # dtype: integers stay integers.
    a = (rng.standard_normal(s1) * 5).astype(dtypes[0])
    b = (rng.standard_normal(s2) * 5).astype(dtypes[1])
    got = getattr(fastconv, func)(a, b, mode, axes=axes)
    want = getattr(scipy.signal, func)(a, b, mode, axes=axes)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("func", ["fftconvolve", "oaconvolve"])
@pytest.mark.parametrize("s1, s2", [((2, 3), (4, 1)), ((1, 3), (4, 1)), ((2, 5), (3, 1)), ((3, 1, 4), (1, 5, 2)),
                                    ((1, 7), (4, 1))])
def test_fft_functions_valid_mode_leaves_length_1_axes_to_broadcasting(rng, func, s1, s2):
    # scipy's fftconvolve / oaconvolve compare only the axes where neither
    # input has length 1 for 'valid' (scipy.signal.convolve compares all and
    # refuses these shapes); along the others the result has the product's
    # broadcast length.  The same on a Dask in1.
    a = rng.standard_normal(s1)
    b = rng.standard_normal(s2)
    want = getattr(scipy.signal, func)(a, b, "valid")
    got = getattr(fastconv, func)(a, b, "valid")
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * np.abs(want).max())
    with pytest.raises(ValueError, match="at least as large"):
        fastconv.convolve(a, b, "valid")
    da = pytest.importorskip("dask.array")
    if any(n < k for n, k in zip(s1, s2) if n != 1 and k != 1):
        # scipy swaps the inputs; a Dask in1 must be the larger one (documented)
        with pytest.raises(NotImplementedError, match="in2 is larger than in1"):
            getattr(fastconv, func)(da.from_array(a, chunks=2), b, "valid")
        return
    lazy = getattr(fastconv, func)(da.from_array(a, chunks=2), b, "valid")
    np.testing.assert_allclose(lazy.compute(), want, rtol=0, atol=1e-12 * np.abs(want).max())


def test_fft_functions_without_a_transform_keep_the_product_dtype_on_dask(rng):
    da = pytest.importorskip("dask.array")
    a = (rng.standard_normal(33) * 9).astype(np.int16)
    b = np.array([3], np.int8)
    for func in ("fftconvolve", "oaconvolve"):
        lazy = getattr(fastconv, func)(da.from_array(a, chunks=5), b)
        want = getattr(scipy.signal, func)(a, b)
        assert lazy.dtype == want.dtype == np.int16
        np.testing.assert_array_equal(lazy.compute(), want)
