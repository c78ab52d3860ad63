"""The scipy.ndimage face: correlate, convolve, correlate1d, convolve1d, separate.

Oracles: scipy.ndimage itself, and ``reference.primitive`` on an input that
``numpy.pad`` really extends (reflect = np.pad 'symmetric', mirror = np.pad
'reflect', nearest = 'edge', wrap = 'wrap').  Integer outputs must equal
scipy's exactly (truncation and wrap-around included); float64 results lie
within the rounding bound of a sum of products, float32 ones (summed in
float32 here, in float64 by scipy) within the float32 bound.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

import reference as ref
from fastconv import ndimage
from fastconv._dtypes import cast_like_c
from kinds import ARRAY_KINDS, as_numpy, is_kind, to_kind

MODES = ["reflect", "constant", "nearest", "mirror", "wrap", "grid-mirror", "grid-constant", "grid-wrap"]


def oracle(x, w, mode, cval, origin, convolution=False):
    """scipy.ndimage's definition from a really padded input (real data, float64 sums)."""
    return ref.ndimage_correlate(x, w, mode, cval, origin, convolution)


def check_float(got, expected, x, w, mode, cval, origin, convolution=False):
    magnitude = np.abs(oracle(np.abs(x), np.abs(w), mode, abs(cval), origin, convolution))
    ref.assert_close(got, expected, magnitude, np.asarray(w).size, np.asarray(got).dtype)


# --- the background document's example ---------------------------------------------

IMAGE = np.array(
    [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
)
KERNEL = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])


def test_worked_2d_example():
    out = ndimage.correlate(IMAGE, KERNEL, mode="constant")
    np.testing.assert_array_equal(out[1:-1, 1:-1], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    np.testing.assert_array_equal(out, ndi.correlate(IMAGE, KERNEL, mode="constant"))
    # The kernel is symmetric under the flip, so convolve agrees here...
    np.testing.assert_array_equal(ndimage.convolve(IMAGE, KERNEL, mode="constant"), out)
    # ...and differs for an asymmetric one.
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    assert not np.array_equal(ndimage.convolve(IMAGE, sobel), ndimage.correlate(IMAGE, sobel))
    np.testing.assert_array_equal(ndimage.convolve(IMAGE, sobel), ndi.convolve(IMAGE, sobel))


# --- every mode, origin and dimension against both oracles ------------------------------

SHAPES = [((9, 11), (3, 3)), ((9, 11), (4, 2)), ((3, 4), (5, 6)), ((1, 6), (3, 3)), ((2, 2), (7, 5)),
          ((13,), (4,)), ((5, 6, 7), (3, 2, 4))]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,kshape", SHAPES)
@pytest.mark.parametrize("op", ["correlate", "convolve"])
def test_modes_and_origins(rng, op, shape, kshape, mode):
    x = rng.standard_normal(shape)
    w = rng.standard_normal(kshape)
    conv = op == "convolve"
    for origin in [0, tuple(-(k // 2) for k in kshape), tuple((k - 1) // 2 for k in kshape)]:
        got = getattr(ndimage, op)(x, w, mode=mode, cval=1.25, origin=origin)
        expected = getattr(ndi, op)(x, w, mode=mode, cval=1.25, origin=origin)
        assert got.dtype == expected.dtype == np.float64
        check_float(got, oracle(x, w, mode, 1.25, origin, conv), x, w, mode, 1.25, origin, conv)
        check_float(got, expected, x, w, mode, 1.25, origin, conv)


@pytest.mark.parametrize(
    "dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.bool_]
)
@pytest.mark.parametrize("mode", ["reflect", "constant", "wrap"])
def test_integer_outputs_truncate_and_wrap_like_scipy(rng, dtype, mode):
    x = rng.integers(0, 2, (12, 10)).astype(dtype) if dtype == np.bool_ else (
        rng.integers(0, 100, (12, 10)).astype(dtype))
    # Integer weights keep every float64 sum exact, so truncation is
    # deterministic; large weights push int8 / uint8 results past their range.
    w = rng.integers(-40, 40, (3, 4)).astype(np.float64)
    for op in ("correlate", "convolve"):
        got = getattr(ndimage, op)(x, w, mode=mode, cval=3)
        expected = getattr(ndi, op)(x, w, mode=mode, cval=3)
        assert got.dtype == expected.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, expected)


def test_int8_wraps_and_unsigned_negative_wraps_like_scipy():
    np.testing.assert_array_equal(ndimage.correlate1d(np.array([100, 100, 100], np.int8), [2, 2, 2]),
                                  [88, 88, 88])
    np.testing.assert_array_equal(
        ndimage.correlate1d(np.array([1, 1, 1], np.uint8), [-1.5, 0, 0]), [255, 255, 255]
    )


def test_the_c_conversion_rule_against_scipy():
    # scipy writes each float64 sum with a C cast; an identity filter shows it.
    values = np.array([600.0, -3, -1.5, 1.5, 6e9, -6e9, np.nan, np.inf, -np.inf, 1.5 * 2.0**63, 3 * 2.0**64,
                       -(2.0**63), 3 * 2.0**62, 1e300, 255.9, -0.5, 256, 2.0**64, 2.0**63, 2**31 - 0.5,
                       -(2**31) - 0.5, 65535.5])
    for dtype in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.bool_):
        expected = ndi.correlate1d(values, [1.0], output=dtype)
        np.testing.assert_array_equal(cast_like_c(values, np.dtype(dtype)), expected, err_msg=str(dtype))
        np.testing.assert_array_equal(ndimage.correlate1d(values, [1.0], output=dtype), expected)


@pytest.mark.parametrize("mode", ["reflect", "constant", "mirror"])
def test_float32_is_summed_in_float32_within_its_rounding(rng, mode):
    x = rng.standard_normal((40, 37)).astype(np.float32)
    w = rng.standard_normal((5, 4)).astype(np.float32)
    got = ndimage.correlate(x, w, mode=mode, cval=0.5)
    assert got.dtype == np.float32
    check_float(got, oracle(x, w, mode, 0.5, 0), x, w, mode, 0.5, 0)
    check_float(got, ndi.correlate(x, w, mode=mode, cval=0.5), x, w, mode, 0.5, 0)


def test_float16_is_accepted(rng):
    # A deliberate difference: scipy.ndimage refuses float16.
    x = rng.standard_normal((10, 10)).astype(np.float16)
    w = rng.standard_normal((3, 3))
    got = ndimage.correlate(x, w)
    assert got.dtype == np.float16
    expected = oracle(x, w, "reflect", 0, 0)
    check_float(got, expected.astype(np.float16), x, w, "reflect", 0, 0)


@pytest.mark.parametrize("op", ["correlate", "convolve"])
def test_complex_inputs_and_weights(rng, op):
    x = rng.standard_normal((8, 9)) + 1j * rng.standard_normal((8, 9))
    w = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    for xi, wi in [(x, w), (x.real, w), (x, w.real)]:
        got = getattr(ndimage, op)(xi, wi, mode="constant", cval=0)
        expected = getattr(ndi, op)(xi, wi, mode="constant", cval=0)
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(wi).sum())
    # Complex cval with complex input: the real and imaginary parts pad apart.
    got = getattr(ndimage, op)(x, w, mode="constant", cval=1 - 2j)
    expected = getattr(ndi, op)(x, w, mode="constant", cval=1 - 2j)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-11)
    with pytest.raises(ValueError, match="complex-valued cval"):
        getattr(ndimage, op)(x.real, w, mode="constant", cval=1j)


# --- the 1-D functions --------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [1, 2, 3, 4, 7, 12])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_1d_functions(rng, mode, k, axis):
    x = rng.standard_normal((6, 9))
    w = rng.standard_normal(k)
    for origin in {0, -(k // 2), (k - 1) // 2}:
        for op in ("correlate1d", "convolve1d"):
            got = getattr(ndimage, op)(x, w, axis=axis, mode=mode, cval=-2.0, origin=origin)
            expected = getattr(ndi, op)(x, w, axis=axis, mode=mode, cval=-2.0, origin=origin)
            np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13 * (np.abs(w).sum() + 2))


def test_1d_docstring_examples_match_scipy():
    a = [2, 8, 0, 4, 1, 9, 9, 0]
    np.testing.assert_array_equal(ndimage.correlate1d(a, [1, 3]), ndi.correlate1d(a, [1, 3]))
    np.testing.assert_array_equal(ndimage.convolve1d(a, [1, 3]), ndi.convolve1d(a, [1, 3]))


def test_axes_and_per_axis_modes(rng):
    x = rng.standard_normal((5, 6, 7))
    w = rng.standard_normal((3, 4))
    got = ndimage.correlate(x, w, axes=(0, 2), mode="mirror", origin=(1, -1))
    expected = ndi.correlate(x, w, axes=(0, 2), mode="mirror", origin=(1, -1))
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    # One mode per axis is an extension; it equals filtering axis by axis
    # with a separable kernel.
    u, v = rng.standard_normal(3), rng.standard_normal(4)
    y = rng.standard_normal((9, 8))
    got = ndimage.correlate(y, np.outer(u, v), mode=["wrap", "nearest"])
    axis_by_axis = ndi.correlate1d(ndi.correlate1d(y, u, axis=0, mode="wrap"), v, axis=1, mode="nearest")
    np.testing.assert_allclose(got, axis_by_axis, rtol=1e-12, atol=1e-12)


# --- separable kernels ---------------------------------------------------------------


def test_separate_finds_exact_integer_factors():
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    [(u, v)] = ndimage.separate(sobel)
    np.testing.assert_array_equal(np.outer(u, v), sobel)
    box = np.ones((3, 4, 5))
    [factors] = ndimage.separate(box)
    np.testing.assert_array_equal(np.multiply.outer(np.multiply.outer(*factors[:2]), factors[2]), box)


def test_separate_low_rank_and_full_rank(rng):
    k = np.outer(rng.standard_normal(7), rng.standard_normal(7)) + np.outer(rng.standard_normal(7),
                                                                          rng.standard_normal(7))
    terms = ndimage.separate(k)
    assert len(terms) == 2
    np.testing.assert_allclose(sum(np.outer(a, b) for a, b in terms), k, rtol=0, atol=1e-13 * np.abs(k).max())
    assert len(ndimage.separate(rng.standard_normal((5, 5)))) == 5
    with pytest.raises(ValueError, match="not an outer product"):
        ndimage.separate(rng.standard_normal((3, 3, 3)))
    with pytest.raises(ValueError, match="non-empty"):
        ndimage.separate(np.ones((0, 3)))
    with pytest.raises(ValueError, match="real"):
        ndimage.separate(np.ones((2, 2)) * 1j)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8, np.int16])
def test_separable_path_matches_scipy(rng, mode, dtype):
    # 9x9 outer products take the separable path (18 < 81 multiply-adds).
    x = (rng.standard_normal((40, 33)) * 50).astype(dtype)
    if dtype in (np.uint8, np.int16):
        u = rng.integers(-3, 4, 9).astype(float)  # exact factors keep integer sums exact
        v = rng.integers(-3, 4, 9).astype(float)
    else:
        u, v = rng.standard_normal(9), rng.standard_normal(9)
    w = np.outer(u, v)
    for op in ("correlate", "convolve"):
        got = getattr(ndimage, op)(x, w, mode=mode, cval=2.0, origin=(1, -2))
        expected = getattr(ndi, op)(x, w, mode=mode, cval=2.0, origin=(1, -2))
        assert got.dtype == expected.dtype
        if np.dtype(dtype).kind in "iu":
            np.testing.assert_array_equal(got, expected)
        else:
            # Separable sums round differently from direct ones: the bound of
            # a sum of 9 + 9 products applies to each pass.
            check_float(got, expected, x, w, mode, 2.0, (1, -2), op == "convolve")


def test_gaussian_kernel_matches_gaussian_filter(rng):
    x = rng.standard_normal((64, 64)).astype(np.float32)
    sigma, radius = 5.0, 15
    t = np.arange(-radius, radius + 1)
    g = np.exp(-0.5 * t**2 / sigma**2)
    g /= g.sum()
    got = ndimage.correlate(x, np.outer(g, g), mode="reflect")
    expected = ndi.gaussian_filter(x, sigma, mode="reflect", truncate=radius / sigma)
    # float32 rounding of 31 + 31 terms of weight at most 1 each pass.
    np.testing.assert_allclose(got, expected, rtol=0, atol=2 * 62 * np.finfo(np.float32).eps * np.abs(x).max())


# --- output argument, array kinds, empty input ---------------------------------------------


def test_output_argument(rng):
    x = rng.standard_normal((6, 7))
    w = rng.standard_normal((3, 3))
    out = np.empty((6, 7), np.float32)
    result = ndimage.correlate(x, w, output=out)
    assert result is out
    np.testing.assert_allclose(out, ndi.correlate(x, w, output=np.float32), rtol=1e-6, atol=1e-6)
    assert ndimage.correlate(x, w, output=np.int16).dtype == np.int16
    assert ndimage.correlate(x, w, output="float32").dtype == np.float32
    # In place: input and output may be the same array, as in scipy.
    y = x.copy()
    ndimage.correlate(y, w, output=y)
    np.testing.assert_allclose(y, ndi.correlate(x, w), rtol=1e-13, atol=1e-13)
    with pytest.warns(UserWarning, match="promoting specified output dtype to complex"):
        assert ndimage.correlate(x, w + 1j, output=np.float64).dtype == np.complex128


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("separable", [False, True])
def test_output_array_is_written_in_place_without_a_temporary(rng, order, dtype, separable):
    import tracemalloc

    x = rng.standard_normal((300, 200)).astype(dtype)
    if separable:  # two 1-D passes: one intermediate array, the last pass writes the output
        w = np.outer(rng.standard_normal(5), rng.standard_normal(5))
    else:  # full rank: one direct pass
        w = rng.standard_normal((5, 5))
    expected = ndimage.correlate(x, w)
    out = np.full(x.shape, np.nan, dtype, order=order)
    ndimage.correlate(x, w, output=out)  # compiles / loads the kernel
    out[...] = np.nan
    tracemalloc.start()
    try:
        result = ndimage.correlate(x, w, output=out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result is out
    np.testing.assert_array_equal(out, expected)
    temporaries = 1 if separable else 0  # the separable filter's intermediate
    if order == "C":
        # The kernel wrote into ``out``: no output-sized result was allocated.
        assert peak < (temporaries + 0.25) * out.nbytes
    else:
        # Another layout goes through a result array and a copy.
        assert peak >= (temporaries + 1) * out.nbytes


def test_output_overlapping_the_input_is_not_written_while_read(rng):
    x = rng.standard_normal((40, 50))
    w = rng.standard_normal((3, 3))
    expected = ndi.correlate(x, w)
    y = x.copy()
    ndimage.correlate(y[:, :], w, output=y)  # a view of the same memory
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-13)
    z = np.zeros((42, 50))
    z[1:41] = x
    ndimage.correlate(z[1:41], w, output=z[:40])  # overlapping, shifted by a row
    np.testing.assert_allclose(z[:40], expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("kind", ARRAY_KINDS)
def test_array_kinds(rng, kind):
    x = rng.standard_normal((10, 12)).astype(np.float32)
    w = rng.standard_normal((3, 3)).astype(np.float32)
    out = ndimage.convolve(to_kind(kind, x), to_kind(kind, w), mode="nearest")
    assert is_kind(kind, out)
    check_float(as_numpy(out), ndi.convolve(x, w, mode="nearest"), x, w, "nearest", 0, 0, True)


def test_empty_input_gives_empty_output():
    out = ndimage.correlate(np.ones((0, 3)), np.ones((1, 3)))
    assert out.shape == (0, 3)
    np.testing.assert_array_equal(out, ndi.correlate(np.ones((0, 3)), np.ones((1, 3))))


# --- bad input --------------------------------------------------------------------


def test_bad_arguments_raise_scipy_kind_of_error():
    x = np.ones((4, 4))
    with pytest.raises(RuntimeError, match=r"weights.ndim \(1\) must match len\(axes\) \(2\)"):
        ndimage.correlate(x, np.ones(3))
    with pytest.raises(ValueError, match="weights.ndim"):
        ndimage.correlate(x, np.ones(3))
    with pytest.raises(RuntimeError, match=r"mode must be one of .*'bad'"):
        ndimage.correlate(x, np.ones((3, 3)), mode="bad")
    with pytest.raises(ValueError, match="Invalid origin"):
        ndimage.correlate(x, np.ones((3, 3)), origin=2)
    with pytest.raises(ValueError, match="Invalid origin"):
        ndimage.convolve1d(x, np.ones(4), origin=-3)
    with pytest.raises(RuntimeError, match="output shape not correct"):
        ndimage.correlate(x, np.ones((3, 3)), output=np.ones((2, 2)))
    with pytest.raises(RuntimeError, match="sequence argument must have length"):
        ndimage.correlate(x, np.ones((3, 3)), origin=[0, 0, 0])
    with pytest.raises(RuntimeError, match="no filter weights given"):
        ndimage.correlate1d(x, np.ones((2, 2)))
    with pytest.raises(RuntimeError, match="weights cannot be empty"):
        ndimage.correlate(x, np.ones((0, 3)))
    with pytest.raises(RuntimeError, match="output must have a complex dtype"):
        ndimage.correlate(x, np.ones((3, 3)) * 1j, output="float64")
    with pytest.raises(TypeError, match="input must have a boolean"):
        ndimage.correlate(np.array([["a"]]), np.ones((1, 1)))
    with pytest.raises(ValueError, match="out of range"):
        ndimage.correlate(x, np.ones(3), axes=5)
    with pytest.raises(ValueError, match="out of range"):
        ndimage.correlate1d(x, np.ones(3), axis=2)
    with pytest.raises(ValueError, match="axes must be unique"):
        ndimage.correlate(x, np.ones((3, 3)), axes=(0, -2))
    with pytest.raises(TypeError, match="cval must be a number"):
        ndimage.correlate(x, np.ones((3, 3)), cval="x")
    with pytest.raises(RuntimeError, match=r"mode must be one of .*b'wrap'"):
        ndimage.correlate(x, np.ones((3, 3)), mode=b"wrap")
    with pytest.raises(TypeError, match="output must be None, a NumPy array or a dtype; got list"):
        ndimage.correlate(x, np.ones((3, 3)), output=[[0.0] * 4] * 4)
    with pytest.raises(ValueError, match="kernel must hold finite values"):
        ndimage.separate(np.array([[np.nan, 1.0], [1.0, 1.0]]))
    with pytest.raises(TypeError, match="rtol must be a number"):
        ndimage.separate(np.ones((3, 3)), rtol="x")
    for rtol in (-1, np.nan):
        with pytest.raises(ValueError, match="rtol must be a non-negative number"):
            ndimage.separate(np.ones((3, 3)), rtol=rtol)


def test_cval_beyond_int64_is_read_as_a_float_like_scipy():
    ndi = pytest.importorskip("scipy.ndimage")
    x = np.arange(20.0).reshape(4, 5)
    np.testing.assert_array_equal(ndimage.correlate(x, np.ones((3, 3)), mode="constant", cval=10**30),
                                  ndi.correlate(x, np.ones((3, 3)), mode="constant", cval=10**30))


@settings(max_examples=50, deadline=None)
@given(
    shape=st.lists(st.integers(1, 7), min_size=1, max_size=3),
    data=st.data(),
)
def test_random_against_scipy(shape, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    kshape = [data.draw(st.integers(1, 6)) for _ in shape]
    mode = data.draw(st.sampled_from(MODES))
    origin = [data.draw(st.integers(-(k // 2), (k - 1) // 2)) for k in kshape]
    op = data.draw(st.sampled_from(["correlate", "convolve"]))
    x = rng.integers(-50, 50, shape).astype(np.int32)
    w = rng.integers(-5, 5, kshape).astype(np.float64)
    got = getattr(ndimage, op)(x, w, mode=mode, cval=7, origin=origin)
    np.testing.assert_array_equal(got, getattr(ndi, op)(x, w, mode=mode, cval=7, origin=origin))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_low_rank_kernel_matches_scipy(rng, dtype):
    # Rank 2, 15x15: two separable filters (2 * 30 multiply-adds) beat 225.
    k = np.outer(rng.standard_normal(15), rng.standard_normal(15)) + np.outer(
        rng.standard_normal(15), rng.standard_normal(15))
    assert len(ndimage.separate(k)) == 2
    x = rng.standard_normal((50, 47)).astype(dtype)
    got = ndimage.correlate(x, k, mode="mirror")
    expected = ndi.correlate(x, k, mode="mirror")
    assert got.dtype == dtype
    # Each of the 2 terms is a sum of 15 + 15 products: bound as for 2 * 30
    # terms, plus the decomposition's own error (8 * 15 * eps64 of max|k|).
    magnitude = np.abs(oracle(np.abs(x), np.abs(k), "mirror", 0, 0))
    bound = 2 * 60 * np.finfo(dtype).eps * magnitude + 8 * 15 * 2.2e-16 * np.abs(k).max() * np.abs(x).sum()
    assert np.all(np.abs(got - expected) <= bound)


def test_unsorted_axes_follow_scipy(rng):
    # The weights' dimensions belong to the axes in ascending order; the
    # origins follow the order in which the axes are given.
    x = rng.standard_normal((6, 5, 7))
    w = rng.standard_normal((3, 2))
    for axes, origin in [((2, 0), (-1, 1)), ((0, 2), (1, 0)), ((-1, 1), (0, -1))]:
        for op in ("correlate", "convolve"):
            got = getattr(ndimage, op)(x, w, axes=axes, origin=origin, mode="wrap")
            expected = getattr(ndi, op)(x, w, axes=axes, origin=origin, mode="wrap")
            np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    # Every axis named, out of order: scipy takes the origins in ascending
    # order of the axes (not in the order given), and validates them so.
    x2, w2 = rng.standard_normal((8, 9)), rng.standard_normal((5, 4))
    for axes, origin in [((1, 0), (2, -1)), ((-1, 0), (-2, 1)), ((1, 0), (0, 1))]:
        for op in ("correlate", "convolve"):
            got = getattr(ndimage, op)(x2, w2, axes=axes, origin=origin)
            expected = getattr(ndi, op)(x2, w2, axes=axes, origin=origin)
            np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)
    for call in (ndimage.correlate, ndi.correlate):
        with pytest.raises(ValueError, match="Invalid origin"):
            call(np.ones((4, 6)), np.ones((1, 5)), axes=(1, 0), origin=[2, 0])
    with pytest.raises(TypeError, match="axes must be an integer"):
        ndimage.correlate(x, w, axes=(1.5, 0))


@pytest.mark.parametrize("engine", ["fft", "oa", "direct"])
@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "wrap", "constant"])
def test_large_kernels_on_every_engine(rng, monkeypatch, engine, mode):
    # Large kernels may run on an FFT engine over a really padded input;
    # force each engine in turn through the cost model.
    import fastconv._auto as auto

    def forced(plan, *args, **kwargs):
        return {m: (0.0 if m == engine else 1.0) for m in ("direct", "fft", "oa")}

    monkeypatch.setattr(auto, "model_times", forced)
    used = []
    from fastconv import _execute

    run = _execute.run
    monkeypatch.setattr(_execute, "run", lambda plan, x, w, **kw: used.append(plan.method) or run(plan, x, w, **kw))
    x = rng.standard_normal((37, 41))
    w = rng.standard_normal((13, 11))
    for op in ("correlate", "convolve"):
        got = getattr(ndimage, op)(x, w, mode=mode, cval=0.5, origin=(2, -3))
        expected = getattr(ndi, op)(x, w, mode=mode, cval=0.5, origin=(2, -3))
        # FFT errors are spread over the outputs: bound them by the FFT
        # engine's documented scale, eps log2(M) ||x||_2 ||w||_2, over the
        # padded input (at most 3x the image's norm for these borders).
        scale = np.finfo(np.float64).eps * np.log2(x.size * 4) * 3 * np.linalg.norm(x) * np.linalg.norm(w)
        np.testing.assert_allclose(got, expected, rtol=0, atol=scale)
    assert set(used) == {engine}


@pytest.mark.parametrize("engine", ["fft", "oa"])
@pytest.mark.parametrize("mode", ["reflect", "mirror", "nearest", "wrap", "constant"])
def test_fft_engines_pad_kernels_wider_than_the_image(rng, monkeypatch, engine, mode):
    # The FFT engines read a really padded copy of the image; with a kernel
    # wider than the image its margins repeat the border rule several times
    # over.
    import fastconv._auto as auto

    monkeypatch.setattr(auto, "model_times",
                        lambda plan, *a, **k: {m: (0.0 if m == engine else 1.0) for m in ("direct", "fft", "oa")})
    x = rng.standard_normal((5, 7))
    w = rng.standard_normal((13, 17))
    got = ndimage.correlate(x, w, mode=mode, cval=-1.5, origin=(1, -2))
    expected = ndi.correlate(x, w, mode=mode, cval=-1.5, origin=(1, -2))
    scale = np.finfo(np.float64).eps * np.log2(w.size * 4) * 8 * np.linalg.norm(x) * np.linalg.norm(w)
    np.testing.assert_allclose(got, expected, rtol=0, atol=scale)


def test_padded_copy_follows_numpy_pad_axis_by_axis(rng):
    # The copy the FFT engines read: np.pad axis by axis (mapped rules
    # first, then constant, then zero), per-axis rules, margins wider
    # than the axis.
    rules = ["zero", "constant", "edge", "symmetric", "reflect", "wrap"]  # the mapped ones are np.pad modes
    for _ in range(200):
        nd = int(rng.integers(1, 4))
        shape = tuple(int(n) for n in rng.integers(1, 7, nd))
        k = tuple(int(n) for n in rng.integers(1, 16, nd))
        shift = tuple(int(rng.integers(0, kk)) for kk in k)
        border = tuple(rules[int(i)] for i in rng.integers(0, len(rules), nd))
        x = rng.standard_normal(shape)
        want = x
        for a in sorted(range(nd), key=lambda a: {"zero": 2, "constant": 1}.get(border[a], 0)):
            widths = [(0, 0)] * nd
            widths[a] = (shift[a], k[a] - 1 - shift[a])
            if border[a] in ("zero", "constant"):
                want = np.pad(want, widths, constant_values=0.0 if border[a] == "zero" else 2.5)
            elif border[a] == "reflect" and shape[a] == 1:
                want = np.pad(want, widths, mode="edge")
            else:
                want = np.pad(want, widths, mode=border[a])
        np.testing.assert_array_equal(ndimage._pad(x, shift, k, border, 2.5), want)


# --- weights scipy leaves out, non-finite data ------------------------------------

@pytest.mark.parametrize("mode", ["constant", "reflect", "wrap"])
def test_tiny_and_nan_weights_are_left_out_like_scipy(mode):
    # scipy's N-D filters use only the weights with |w| > float64 eps, so a
    # NaN weight and a tiny one that a huge sample would make visible drop
    # out; its 1-D filters multiply every weight (a NaN weight there takes
    # scipy's shortcut for symmetric kernels, which the NaN fools: not
    # compared).
    x = np.array([[1.0, 2.0, 1e20, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0, 9.0]])
    w = np.array([[1e-17, 1.0, np.nan], [0.5, 2.2e-16, -1.0]])
    for op in ("correlate", "convolve"):
        np.testing.assert_array_equal(getattr(ndimage, op)(x, w, mode=mode),
                                      getattr(ndi, op)(x, w, mode=mode))
    w1 = np.array([1e-17, 1.0, 0.5])
    for op in ("correlate1d", "convolve1d"):
        got = getattr(ndimage, op)(x, w1, mode=mode)
        np.testing.assert_array_equal(got, getattr(ndi, op)(x, w1, mode=mode))
        assert ((got > 999) & (got < 1100)).any()  # 1e20 * 1e-17 was added


def test_inf_weights_multiply_the_zero_padding_like_scipy():
    # mode='constant' with cval 0: scipy multiplies the padding, inf * 0 = NaN.
    x = np.array([1.0, 2.0, 3.0, 4.0])
    w = np.array([np.inf, 1.0, 0.5])
    for op in ("correlate", "convolve", "correlate1d", "convolve1d"):
        got = getattr(ndimage, op)(x, w, mode="constant")
        expected = getattr(ndi, op)(x, w, mode="constant")
        np.testing.assert_array_equal(got, expected)
        assert np.isnan(got).any() and np.isinf(got).any()


def test_a_nan_pixel_stays_in_its_windows_with_a_large_kernel(rng, monkeypatch):
    # A large kernel goes to an FFT engine, which would spread a NaN over the
    # whole output; an image holding one is filtered by direct sums.
    from fastconv import _execute

    used = []
    run = _execute.run
    monkeypatch.setattr(_execute, "run", lambda plan, x, w, **kw: used.append(plan.method) or run(plan, x, w, **kw))
    x = rng.standard_normal((300, 300))
    w = rng.standard_normal((31, 31))
    ndimage.correlate(x, w)
    assert set(used) & {"fft", "oa"}  # finite: an FFT engine wins here
    for bad in (np.nan, np.inf):
        used.clear()
        y = x.copy()
        y[100, 200] = bad
        got = ndimage.correlate(y, w)
        assert used == ["direct"]
        expected = ndi.correlate(y, w)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
        assert np.isfinite(got).sum() == got.size - 31 * 31
        ok = np.isfinite(expected)
        magnitude = np.abs(oracle(np.abs(x), np.abs(w), "reflect", 0.0, 0))
        ref.assert_close(got[ok], expected[ok], magnitude[ok], w.size, got.dtype)


def test_zero_weights_multiply_non_finite_samples(rng):
    # The documented difference: scipy skips zero weights, fastconv multiplies
    # them, so a NaN reached only by the zero corners of a cross-shaped kernel
    # makes those outputs NaN here and finite in scipy.  Elsewhere, and with
    # finite data, the two agree.
    x = rng.standard_normal((7, 8))
    x[3, 4] = np.nan
    cross = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    got = ndimage.correlate(x, cross, mode="constant")
    expected = ndi.correlate(x, cross, mode="constant")
    corners = np.zeros(x.shape, bool)
    corners[[2, 2, 4, 4], [3, 5, 3, 5]] = True
    assert np.isnan(got[corners]).all() and np.isfinite(expected[corners]).all()
    np.testing.assert_array_equal(got[~corners], expected[~corners])
    multiplied = oracle(x, cross, "constant", 0.0, 0)  # every weight multiplied
    np.testing.assert_array_equal(np.isnan(got), np.isnan(multiplied))


@pytest.mark.parametrize("engine", ["fft", "oa"])
@pytest.mark.parametrize("mode", ["reflect", "constant", "wrap", "nearest"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32])
def test_integer_outputs_of_large_kernels_equal_scipy_exactly(rng, monkeypatch, engine, mode, dtype):
    # An integer output truncates the sums, so a sum of 7 computed as
    # 6.9999... by an FFT would come out as 6: the FFT engines run only
    # where rounding their result provably gives the exact sums (integer
    # values in the input and weights), and the result is rounded; other
    # weights are summed directly.  Each engine is forced in turn.
    import fastconv._auto as auto
    from fastconv import _execute

    monkeypatch.setattr(auto, "model_times",
                        lambda plan, *a, **k: {m: (0.0 if m == engine else 1.0) for m in ("direct", "fft", "oa")})
    used = []
    run = _execute.run
    monkeypatch.setattr(_execute, "run", lambda plan, x, w, **kw: used.append(plan.method) or run(plan, x, w, **kw))
    info = np.iinfo(dtype)
    x = rng.integers(max(info.min, -1000), min(info.max, 1000) + 1, (45, 52)).astype(dtype)
    for w, route in [(rng.integers(-3, 4, (15, 13)), engine),            # integer weights: the FFT
                     (rng.integers(-3, 4, (15, 13)).astype(np.float64), engine),  # integer-valued floats
                     (rng.standard_normal((15, 13)), "direct")]:          # any other: direct sums
        for op in ("correlate", "convolve"):
            used.clear()
            got = getattr(ndimage, op)(x, w, mode=mode, cval=2)
            np.testing.assert_array_equal(got, getattr(ndi, op)(x, w, mode=mode, cval=2))
            assert got.dtype == dtype and set(used) == {route}
    # One axis, through correlate1d: the same rule.
    w1 = rng.integers(-3, 4, 80)
    used.clear()
    np.testing.assert_array_equal(ndimage.correlate1d(x, w1, axis=1, mode=mode),
                                  ndi.correlate1d(x, w1, axis=1, mode=mode))
    assert set(used) == {engine}


@pytest.mark.parametrize("dtype", [">f8", ">i4", ">c16", "<f4"])
def test_byte_order_of_the_output_is_scipys(rng, dtype):
    # Without `output` the result has the input's kind in native byte order;
    # a requested dtype is kept as given.
    x = (rng.standard_normal((6, 7)) * 10).astype(dtype)
    w = rng.integers(-2, 3, (3, 3)).astype(np.float64)
    for op, kernel in [("correlate", w), ("convolve", w), ("correlate1d", w[0]), ("convolve1d", w[0])]:
        got = getattr(ndimage, op)(x, kernel)
        want = getattr(ndi, op)(x, kernel)
        assert got.dtype.str == want.dtype.str
        # integer-valued weights: exact for integers, rounding of the dtype otherwise
        tol = 0 if got.dtype.kind == "i" else 4 * np.finfo(got.dtype).eps * np.abs(x).max() * 9
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)
        requested = np.dtype(dtype).newbyteorder(">")
        assert getattr(ndimage, op)(x, kernel, output=requested).dtype.str == requested.str


@pytest.mark.parametrize("op", ["correlate", "convolve"])
@pytest.mark.parametrize("x, w", [(5.0, 2.0), (5, 2), (np.uint8(3), 100.0), (1 + 2j, 2 - 1j), (7.0, 1e-17)])
def test_0d_input_and_weights_give_a_0d_array_like_scipy(op, x, w):
    x, w = np.array(x), np.array(w)
    got = getattr(ndimage, op)(x, w)
    want = getattr(ndi, op)(x, w)
    assert type(got) is np.ndarray and got.shape == () and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    out = np.zeros((), want.dtype)
    assert getattr(ndimage, op)(x, w, output=out) is out
    np.testing.assert_array_equal(out, want)
    with pytest.raises(ValueError, match="0-d input and weights of shape"):
        getattr(ndimage, op)(x, np.ones(3))


def test_two_array_libraries_are_refused_by_every_filter():
    torch = pytest.importorskip("torch")
    xps = pytest.importorskip("array_api_strict")
    for op, w in [("correlate", np.ones((3,))), ("correlate1d", np.ones(3)), ("convolve1d", np.ones(3))]:
        with pytest.raises(TypeError, match="one array library"):
            getattr(ndimage, op)(torch.ones(8, dtype=torch.float64), xps.asarray(w))
        # a NumPy array or a list beside a tensor is plain data: a tensor comes back
        assert isinstance(getattr(ndimage, op)(torch.ones(8, dtype=torch.float64), list(w)), torch.Tensor)


def test_output_of_another_array_library_is_refused_by_name():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="output must be None, a NumPy array or a dtype; got Tensor"):
        ndimage.correlate(torch.ones(5, 5), torch.ones(3, 3), output=torch.zeros(5, 5))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_large_kernels_with_a_non_finite_weight_are_summed_directly(rng, bad):
    # Such kernels skip the separable and low-rank paths (an SVD of them does
    # not converge): the result is scipy's, NaN and inf where scipy has them.
    ndi = pytest.importorskip("scipy.ndimage")
    w = rng.standard_normal((9, 9))
    w[0, 0] = bad
    x = rng.standard_normal((40, 37))
    got, expected = ndimage.correlate(x, w), ndi.correlate(x, w)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
    finite = np.isfinite(expected)
    if finite.any():  # float64 sums of 81 terms, in another order than scipy's
        scale = np.abs(expected[finite]).max()
        np.testing.assert_allclose(got[finite], expected[finite], rtol=0, atol=81 * 4 * np.finfo(float).eps * scale)
