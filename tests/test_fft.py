"""The FFT and block engines (method='fft' / 'oa'), fftconvolve and oaconvolve.

Oracles: scipy.signal (the anchor) and a plain NumPy direct sum computed in
extended precision (``longdouble``), which is exact to far below the float64
errors checked here.

Tolerances come from the accuracy analysis in ``fastconv/_engines/fft.py``
(section "Accuracy"):

* ``norm_tol`` -- for inputs with random signs, the largest error of an FFT
  convolution is below ``eps * log2(M) * ||x||_2 * ||w||_2`` (the normwise
  bound of the transforms with the rounding errors adding like a random walk);
  the measured ratio was at most 0.03 of it, so this never flakes and still
  catches any indexing error (those are O(1)).
* ``rigorous_tol`` -- for structured inputs (all ones, ...) the worst-case
  bound ``(5 log2 M + 1) eps (||x||_2 ||w||_1 + ||x||_1 ||w||_2)``.

``eps`` is that of the compute dtype (float32 for float32 / complex64).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastconv
from fastconv import _execute
from fastconv._engines import fft as F
from fastconv._plan import make_plan

scipy_signal = pytest.importorskip("scipy.signal")

RNG = np.random.default_rng(20261201)


def _eps(dtype) -> float:
    dtype = np.dtype(dtype)
    single = dtype in (np.float32, np.complex64, np.float16)
    return float(np.finfo(np.float32 if single else np.float64).eps)


def norm_tol(x, w, m, dtype) -> float:
    x2 = np.linalg.norm(np.asarray(x, np.complex128).ravel())
    w2 = np.linalg.norm(np.asarray(w, np.complex128).ravel())
    return _eps(dtype) * math.log2(max(m, 2)) * x2 * w2 + np.finfo(np.float64).tiny


def rigorous_tol(x, w, m, dtype) -> float:
    xa = np.abs(np.asarray(x, np.complex128)).ravel()
    wa = np.abs(np.asarray(w, np.complex128)).ravel()
    t = np.linalg.norm(xa) * wa.sum() + xa.sum() * np.linalg.norm(wa)
    return (5 * math.log2(max(m, 2)) + 1) * _eps(dtype) * t


def reference_1d(x, w, mode, correlate=False):
    """Direct sum in extended precision: numpy.convolve on longdouble / clongdouble."""
    kind = np.clongdouble if np.iscomplexobj(x) or np.iscomplexobj(w) else np.longdouble
    xe, we = np.asarray(x).astype(kind), np.asarray(w).astype(kind)
    if correlate:
        we = np.conj(we[::-1])
    full = np.convolve(xe, we)
    n, k = len(xe), len(we)
    if mode == "full":
        return full
    if mode == "same":
        start = (k - 1) // 2
        return full[start : start + n]
    lo, hi = min(n, k), max(n, k)
    return full[lo - 1 : hi]


def transform_length(n, k, mode, method):
    o = {"full": n + k - 1, "same": n, "valid": abs(n - k) + 1}[mode]
    if method == "oa":
        return F.block_length(min(n, k), o)
    return F.fast_length(n + k - 1)


SIZES_1D = [
    (1, 1),
    (2, 1),
    (7, 3),
    (8, 4),
    (100, 7),
    (101, 8),
    (64, 64),
    (5, 40),
    (1000, 63),
    (4097, 300),
]


@pytest.mark.parametrize("method", ["fft", "oa"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("n,k", SIZES_1D)
def test_1d_against_extended_precision(method, mode, n, k):
    x = RNG.standard_normal(n)
    w = RNG.standard_normal(k)
    m = transform_length(n, k, mode, method)
    for op, corr in ((fastconv.convolve, False), (fastconv.correlate, True)):
        got = op(x, w, mode, method=method)
        want = reference_1d(x, w, mode, correlate=corr)
        assert got.dtype == np.float64 and got.shape == want.shape
        np.testing.assert_allclose(
            got, want.astype(np.float64), rtol=0, atol=norm_tol(x, w, m, np.float64)
        )


@pytest.mark.parametrize("method", ["fft", "oa"])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.complex128])
def test_dtypes_stay_and_errors_scale_with_their_eps(method, dtype):
    x = RNG.standard_normal(3000) + (
        1j * RNG.standard_normal(3000) if np.dtype(dtype).kind == "c" else 0
    )
    w = RNG.standard_normal(200) + (
        1j * RNG.standard_normal(200) if np.dtype(dtype).kind == "c" else 0
    )
    x, w = x.astype(dtype), w.astype(dtype)
    m = transform_length(3000, 200, "full", method)
    for op, corr in ((fastconv.convolve, False), (fastconv.correlate, True)):
        got = op(x, w, method=method)
        assert got.dtype == dtype  # float32 is computed in float32, not promoted
        want = reference_1d(x, w, "full", correlate=corr)
        err = np.abs(got.astype(np.clongdouble) - want).max()
        assert err <= norm_tol(x, w, m, dtype)


def test_float32_is_computed_in_single_precision():
    # Computed in float32, the error is of order eps32, far above eps64:
    # proof that the transforms are not silently done in float64.
    x = RNG.standard_normal(1 << 14).astype(np.float32)
    w = RNG.standard_normal(1000).astype(np.float32)
    want = reference_1d(x, w, "full")
    for method in ("fft", "oa"):
        err = float(np.abs(fastconv.convolve(x, w, method=method) - want).max())
        m = transform_length(len(x), len(w), "full", method)
        assert 1e3 * norm_tol(x, w, m, np.float64) < err <= norm_tol(x, w, m, np.float32)


@pytest.mark.parametrize("method", ["fft", "oa"])
@pytest.mark.parametrize(
    "shape1,shape2,axes",
    [
        ((30, 41), (5, 6), None),
        ((31, 40), (40, 7), None),  # kernel larger than the input on one axis
        ((9, 10, 11), (3, 4, 2), None),
        ((6, 500), (1, 33), -1),  # a batch of signals, kernel broadcast
        ((6, 500), (6, 33), 1),  # one kernel per signal
        ((1, 300), (5, 40), 1),  # one signal, many kernels
        ((4, 3, 200), (1, 3, 17), (2,)),
        ((40, 5, 30), (7, 1, 4), (0, 2)),
    ],
)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_nd_and_axes_against_scipy(method, shape1, shape2, axes, mode):
    x = RNG.standard_normal(shape1)
    w = RNG.standard_normal(shape2)
    ax = range(x.ndim) if axes is None else np.atleast_1d(axes) % x.ndim
    if mode == "valid" and not (
        all(x.shape[a] >= w.shape[a] for a in ax) or all(x.shape[a] <= w.shape[a] for a in ax)
    ):
        with pytest.raises(ValueError, match="For 'valid' mode"):
            fastconv.convolve(x, w, mode, method=method, axes=axes)
        return
    got = fastconv.convolve(x, w, mode, method=method, axes=axes)
    got_face = {"fft": fastconv.fftconvolve, "oa": fastconv.oaconvolve}[method](
        x, w, mode, axes=axes
    )
    np.testing.assert_array_equal(got_face, got)
    want = scipy_signal.fftconvolve(x, w, mode, axes=axes)
    if mode == "same" and want.shape != got.shape:
        # scipy crops 'same' to in1's shape on the batch axes too, keeping
        # one entry of the broadcast batch; fastconv keeps the whole batch.
        batch = [i for i in range(x.ndim) if i not in ax]
        assert all(x.shape[i] == 1 for i in batch if got.shape[i] != want.shape[i])
        got = got[
            tuple(
                slice((g - 1) // 2, (g - 1) // 2 + 1) if i in batch and g != h else slice(None)
                for i, (g, h) in enumerate(zip(got.shape, want.shape))
            )
        ]
    m = math.prod(F.fast_length(x.shape[a] + w.shape[a] - 1) for a in ax)
    # both results lie within norm_tol of the exact one (scipy's transforms
    # are at most that long), so they differ by at most twice that
    np.testing.assert_allclose(got, want, rtol=0, atol=2 * norm_tol(x, w, m, np.float64))


def test_complex_correlate_conjugates_and_matches_scipy():
    x = RNG.standard_normal((20, 30)) + 1j * RNG.standard_normal((20, 30))
    w = RNG.standard_normal((4, 5)) + 1j * RNG.standard_normal((4, 5))
    for method in ("fft", "oa"):
        for mode in ("full", "same", "valid"):
            got = fastconv.correlate(x, w, mode, method=method)
            want = scipy_signal.correlate(x, w, mode, method="direct")
            np.testing.assert_allclose(got, want, rtol=0, atol=norm_tol(x, w, 1024, np.complex128))
            # in2 larger: scipy swaps and conjugates
            got = fastconv.correlate(w, x, mode, method=method) if mode != "valid" else None
            if got is not None:
                want = scipy_signal.correlate(w, x, mode, method="direct")
                np.testing.assert_allclose(
                    got, want, rtol=0, atol=norm_tol(x, w, 1024, np.complex128)
                )


def test_structured_inputs_within_the_rigorous_bound():
    # All-ones inputs make every product the same sign: the random-walk
    # tolerance does not apply, the worst-case bound does.
    x = np.ones(20000)
    w = np.ones(1500)
    want = reference_1d(x, w, "full").astype(np.float64)
    for method in ("fft", "oa"):
        got = fastconv.convolve(x, w, method=method)
        m = transform_length(20000, 1500, "full", method)
        np.testing.assert_allclose(got, want, rtol=0, atol=rigorous_tol(x, w, m, np.float64))


# --------------------------------------------------------------------------
# dtypes as scipy
# --------------------------------------------------------------------------
DTYPES = [
    np.bool_,
    np.int8,
    np.uint8,
    np.int32,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    np.complex64,
]


@pytest.mark.parametrize("d1", DTYPES)
@pytest.mark.parametrize("d2", [np.int8, np.float32, np.float64, np.complex128])
def test_fftconvolve_and_oaconvolve_dtypes_match_scipy(d1, d2):
    x = (RNG.standard_normal(50) * 3).astype(d1)
    w = (RNG.standard_normal(9) * 3).astype(d2)
    want = scipy_signal.fftconvolve(x, w)
    for f in (fastconv.fftconvolve, fastconv.oaconvolve):
        got = f(x, w)
        assert got.dtype == want.dtype, (f.__name__, d1, d2)
        # scipy transforms a float16 / float32 input in single precision even
        # when the result is float64; fastconv then computes in float64.
        single = {np.dtype(d1), np.dtype(d2)} & {
            np.dtype(np.float16),
            np.dtype(np.float32),
            np.dtype(np.complex64),
        }
        tol = rigorous_tol(x, w, 64, np.float32 if single else want.dtype)
        np.testing.assert_allclose(got, want, rtol=0, atol=2 * tol)
    assert scipy_signal.oaconvolve(x, w).dtype == want.dtype


@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint8, np.int16, np.int64, np.float16])
def test_convolve_method_fft_rounds_integers_back_like_scipy(dtype):
    # scipy.signal.convolve(method='fft') rounds integer results back to the
    # result dtype (with NumPy's wrap-around), and gives float16 for float16.
    x = (RNG.standard_normal(300) * 40).astype(dtype)
    w = (RNG.standard_normal(20) * 40).astype(dtype)
    want = scipy_signal.convolve(x, w, method="fft")
    for method in ("fft", "oa"):
        got = fastconv.convolve(x, w, method=method)
        assert got.dtype == want.dtype
        if np.dtype(dtype).kind in "biu":
            # exact: equal to the direct method, wrap-around included
            np.testing.assert_array_equal(got, fastconv.convolve(x, w, method="direct"))
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-2 * np.abs(want).max())


def test_int8_wraps_like_numpy():
    a = np.array([100, 100, 100], np.int8)
    b = np.array([2, 2], np.int8)
    for method in ("fft", "oa"):
        np.testing.assert_array_equal(
            fastconv.convolve(a, b, method=method), [-56, -112, -112, -56]
        )


def test_scalars_and_lists():
    assert fastconv.fftconvolve(2.0, 3.0) == 6.0
    for f, g in (
        (fastconv.fftconvolve, scipy_signal.fftconvolve),
        (fastconv.oaconvolve, scipy_signal.oaconvolve),
    ):
        for a in (np.array(2), np.array(2, np.int8), np.float32(2), np.array(2 + 1j)):
            assert np.asarray(f(a, a)).dtype == np.asarray(g(a, a)).dtype
            assert f(a, a) == g(a, a)
    np.testing.assert_allclose(fastconv.oaconvolve([1, 2], [1, 1]), [1, 3, 2])
    assert fastconv.oaconvolve([1, 2], [1, 1]).dtype == np.float64


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    x = torch.randn(1000, dtype=torch.float32)
    w = torch.randn(100, dtype=torch.float32)
    y = fastconv.fftconvolve(x, w)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    want = reference_1d(x.numpy(), w.numpy(), "full")
    assert np.abs(y.numpy() - want).max() <= norm_tol(x.numpy(), w.numpy(), 1200, np.float32)


# --------------------------------------------------------------------------
# engine properties
# --------------------------------------------------------------------------
def test_results_do_not_depend_on_the_thread_count():
    x = RNG.standard_normal((3, 50000))
    w = RNG.standard_normal((1, 700))
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        one = [fastconv.convolve(x, w, method=m, axes=-1) for m in ("fft", "oa")]
        fastconv.set_num_threads(before)
        many = [fastconv.convolve(x, w, method=m, axes=-1) for m in ("fft", "oa")]
    finally:
        fastconv.set_num_threads(before)
    for a, b in zip(one, many):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("k", [3, 64, 1000])
def test_block_sizes_do_not_change_the_result_beyond_rounding(k):
    x = RNG.standard_normal((1, 20000))
    w = RNG.standard_normal((1, k))
    o, p = 20000 + k - 1, k - 1
    want = F.fft_correlate(x, w, (o,), (p,))
    for m in (F.fast_length(k + 1), F.fast_length(2 * k), F.fast_length(10 * k)):
        got = F.oa_correlate(x, w, (o,), (p,), block=(m,))
        np.testing.assert_allclose(
            got, want, rtol=0, atol=2 * norm_tol(x, w, F.fast_length(o), np.float64)
        )



@pytest.mark.parametrize("block", [None, (72, 144), (96, 36), (48, 64)])
def test_2d_blocks_of_3_smooth_lengths(block):
    # 2-D blocks may be three or nine times a power of two (block_shape picks
    # them where they tile the output more closely); a partial last tile on
    # each axis, and a non-square kernel.
    x = RNG.standard_normal((1, 301, 250))
    w = RNG.standard_normal((1, 17, 9))
    out, pad = (301 + 16, 250 + 8), (16, 8)
    want = scipy_signal.correlate(x[0], w[0], mode="full", method="direct")
    if block is None:
        block = F.block_shape((17, 9), out)
    got = F.oa_correlate(x, w, out, pad, block=block)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=2 * norm_tol(x, w, math.prod(block), np.float64))


def test_2d_block_lengths_are_3_smooth_and_cover_the_kernel():
    for k, o in [((31, 31), (2048, 2048)), ((17, 17), (512, 512)), ((9, 63), (1000, 3000)), ((3, 3), (40, 40))]:
        for m, kk, oo in zip(F.block_shape(k, o), k, o):
            odd = m
            while odd % 2 == 0:
                odd //= 2
            assert m == F.fast_length(oo + kk - 1) or (odd in (1, 3, 9) and m >= 2 * kk), (k, o, m)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64])
def test_block_engine_with_many_groups_and_batched_tasks(dtype):
    # One long signal cut into several groups of tiles (each one transform
    # call), and a batch of short signals taken whole, several per task.
    k = 31
    m = F.block_length(k, 10**7)
    n = 3 * F.group_rows(m, np.dtype(dtype).itemsize) * (m - k + 1) + 1000
    x = RNG.standard_normal(n).astype(dtype)
    w = RNG.standard_normal(k).astype(dtype)
    assert F.block_length(k, x.size + k - 1) == m
    tiles = -(-(x.size + k - 1) // (m - k + 1))
    assert tiles > 3 * F.group_rows(m, x.itemsize)  # three interior groups and the ends
    got = fastconv.convolve(x, w, method="oa")
    want = reference_1d(x, w, "full")
    assert got.dtype == dtype
    assert float(np.abs(got.astype(want.dtype) - want).max()) <= norm_tol(x, w, m, dtype)

    xb = RNG.standard_normal((3000, 300)).astype(dtype)
    o = 300 + k - 1
    m = F.block_length(k, o)
    tiles = -(-o // (m - k + 1))
    assert 3000 > 2 * F.batch_rows(tiles, m, xb.itemsize)  # several tasks of whole signals
    got = fastconv.convolve(xb, w[None], method="oa", axes=-1)
    for i in (0, 1234, 2999):
        want = reference_1d(xb[i], w, "full")
        assert float(np.abs(got[i].astype(want.dtype) - want).max()) <= norm_tol(xb[i], w, m, dtype)

def test_fast_length():
    assert [F.fast_length(n) for n in (1, 7, 11, 17, 97, 1000, 1025, 4097)] == [
        1,
        8,
        12,
        18,
        100,
        1000,
        1080,
        4320,
    ]
    for n in range(1, 2000, 37):
        m = F.fast_length(n)
        assert m >= n
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        assert r == 1


def test_block_engine_memory_is_bounded_by_the_blocks():
    # The output plus the per-thread groups of blocks; the full-size
    # transform would need 2x the output (a complex spectrum) on top.
    import tracemalloc

    x = RNG.standard_normal(1 << 21)
    w = RNG.standard_normal(1023)
    fastconv.oaconvolve(x[:5000], w)  # warm up outside the window
    tracemalloc.start()
    try:
        out = fastconv.oaconvolve(x, w)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Per thread, a group of G blocks of length M holds its spectrum
    # (G (M/2 + 1) complex), the inverse transform (G M real) and at the ends
    # a zero-padded copy of the windows (G M real): 24 G M bytes in float64.
    m = F.block_length(len(w), out.size)
    group = F.group_rows(m, 8) * m * 24
    threads = fastconv.get_num_threads()
    assert peak <= out.nbytes + 1.5 * threads * group, (peak - out.nbytes) / group
    assert peak < 1.5 * out.nbytes  # the full-size transform alone needs 2x


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------
def test_bad_arguments():
    x, w = np.ones(10), np.ones(3)
    with pytest.raises(
        ValueError, match=r"method must be one of 'auto', 'direct', 'fft', 'oa'; got 'ffft'"
    ):
        fastconv.convolve(x, w, method="ffft")
    with pytest.raises(ValueError, match=r"mode must be one of"):
        fastconv.fftconvolve(x, w, mode="sme")
    with pytest.raises(ValueError, match=r"mode must be one of"):
        fastconv.oaconvolve(x, w, mode=None)
    with pytest.raises(ValueError, match="axes exceeds dimensionality"):
        fastconv.fftconvolve(x, w, axes=1)
    with pytest.raises(ValueError, match="incompatible shapes"):
        fastconv.oaconvolve(np.ones((2, 10)), np.ones((3, 3)), axes=1)
    with pytest.raises(ValueError, match="same dimensionality"):
        fastconv.fftconvolve(np.ones((2, 10)), w)
    with pytest.raises(ValueError, match="cannot be empty"):
        fastconv.oaconvolve(np.ones(0), w)
    with pytest.raises(TypeError, match="dtype"):
        fastconv.fftconvolve(np.array(["a"]), w)


def test_engines_refuse_plans_they_cannot_run():
    x, w = np.ones((8, 8)), np.ones((3, 3))
    for method in ("fft", "oa"):
        plan = make_plan(
            x,
            w,
            axes=(0, 1),
            pad_lo=(1, 1),
            out_shape=(8, 8),
            result_dtype=np.float64,
            border="wrap",
            method=method,
        )
        with pytest.raises(ValueError, match=r"supports only a zero border.*border='wrap'"):
            _execute.run(plan, x, w)
        plan = make_plan(
            x,
            w,
            axes=(0, 1),
            pad_lo=(0, 0),
            out_shape=(3, 3),
            result_dtype=np.float64,
            stride=(2, 2),
            method=method,
        )
        with pytest.raises(ValueError, match=r"stride=\(2, 2\)"):
            _execute.run(plan, x, w)
    with pytest.raises(ValueError, match="block length 4 is shorter than the kernel"):
        F.oa_correlate(np.ones((1, 10)), np.ones((1, 5)), (14,), (4,), block=(4,))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_numpy_fft_backend(monkeypatch, dtype):
    # Without scipy the engines use numpy.fft (batches split over threads);
    # results must agree with the scipy backend to rounding, dtypes kept.
    x = RNG.standard_normal((3, 40, 300)).astype(dtype)
    w = RNG.standard_normal((1, 5, 31)).astype(dtype)
    want = {m: fastconv.convolve(x, w, method=m, axes=(1, 2)) for m in ("fft", "oa")}
    monkeypatch.setattr(F, "backend", lambda: F._NumpyFFT())
    for m in ("fft", "oa"):
        got = fastconv.convolve(x, w, method=m, axes=(1, 2))
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want[m], rtol=0, atol=2 * norm_tol(x[0], w, 1 << 14, dtype))
    long_x = RNG.standard_normal(70_000).astype(dtype)  # the four-step path
    got = fastconv.convolve(long_x, w[0, 0], method="fft")
    assert got.dtype == dtype
    want_long = reference_1d(long_x, w[0, 0], "full")
    assert np.abs(got - want_long).max() <= norm_tol(long_x, w[0, 0], 72000, dtype)
    got = fastconv.convolve(x[0, 0], w[0, 0], method="oa")
    np.testing.assert_allclose(
        got,
        reference_1d(x[0, 0], w[0, 0], "full").astype(dtype),
        rtol=0,
        atol=norm_tol(x[0, 0], w[0, 0], 512, dtype),
    )


def test_numpy_fft_backend_splits_one_nd_transform(monkeypatch):
    # A single 2-D transform: every 1-D pass is split over the threads.
    x = RNG.standard_normal((1, 70, 90))
    w = RNG.standard_normal((1, 9, 7))
    want = F.fft_correlate(x, w, (78, 96), (8, 6), threads=1)
    monkeypatch.setattr(F, "backend", lambda: F._NumpyFFT())
    for threads in (1, 2, 3):
        got = F.fft_correlate(x, w, (78, 96), (8, 6), threads=threads)
        np.testing.assert_allclose(got, want, rtol=0, atol=2 * norm_tol(x, w, 80 * 96, np.float64))
    xc = (x + 1j * x[:, ::-1]).astype(np.complex64)
    wc = w.astype(np.complex64)
    want = F.fft_correlate(xc, wc, (70, 90), (4, 3), threads=1)
    got = F.fft_correlate(xc, wc, (70, 90), (4, 3), threads=2)
    np.testing.assert_allclose(got, want, rtol=0, atol=2 * norm_tol(xc, wc, 80 * 96, np.complex64))


def test_concurrent_calls_from_many_threads():
    # The engines share one pool of worker threads; callers in other
    # threads must neither block each other forever nor mix results.
    from concurrent.futures import ThreadPoolExecutor

    xs = [RNG.standard_normal(50_000 + 1000 * i) for i in range(8)]
    w = RNG.standard_normal(777)
    serial = [(fastconv.oaconvolve(x, w), fastconv.fftconvolve(x, w)) for x in xs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(
            pool.map(lambda x: (fastconv.oaconvolve(x, w), fastconv.fftconvolve(x, w)), xs)
        )
    for (a, b), (c, d) in zip(serial, parallel):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


@pytest.mark.parametrize("method", ["fft", "oa"])
def test_strided_transposed_and_byteswapped_inputs(method):
    base = RNG.standard_normal((300, 40))
    w = RNG.standard_normal((7, 5))
    want = fastconv.convolve(np.ascontiguousarray(base[::2].T), w.T, method="direct")
    for x in (base[::2].T, np.asfortranarray(base[::2].T), base[::2].T.astype(">f8")):
        got = fastconv.convolve(x, w.T.astype(">f8"), method=method)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=0, atol=2 * norm_tol(x, w, 64 * 160, np.float64))
    x = base[:, 3][::3]  # a strided 1-D view feeds the block engine's windows
    got = fastconv.convolve(x, w[:, 0], method=method)
    np.testing.assert_allclose(
        got,
        reference_1d(x, w[:, 0], "full").astype(np.float64),
        rtol=0,
        atol=norm_tol(x, w[:, 0], 128, np.float64),
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "n,k,mode", [(100_000, 2000, "full"), (70_001, 3, "same"), (99_999, 777, "valid")]
)
def test_long_single_signal_four_step_transform(dtype, n, k, mode):
    # One long real signal goes through the four-step transform (batches of
    # short transforms): same accuracy as one long transform.
    m = transform_length(n, k, mode, "fft") if mode == "full" else None
    x = RNG.standard_normal(n).astype(dtype)
    w = RNG.standard_normal(k).astype(dtype)
    assert F.four_step_split(F.fast_length(n + k - 1)) is not None
    got = fastconv.convolve(x, w, mode, method="fft")
    want = reference_1d(x, w, mode)
    assert got.dtype == dtype and got.shape == want.shape
    m = m or F.fast_length(n + k - 1)
    assert float(np.abs(got.astype(np.longdouble) - want).max()) <= norm_tol(x, w, m, dtype)


def test_four_step_split():
    assert F.four_step_split(1012500) == (900, 1125)
    assert F.four_step_split(1 << 16) == (256, 256)
    assert F.four_step_split(84375) is None  # odd: the one long transform is used
    for m in (F.fast_length(n) for n in range(1 << 16, 1 << 20, 77777)):
        if m % 2 == 0:
            m1, m2 = F.four_step_split(m)
            assert m1 * m2 == m and m1 % 2 == 0 and m2 >= 16
